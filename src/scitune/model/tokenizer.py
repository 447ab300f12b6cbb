"""Tokenizers: the tiny preset's byte-level BPE (trained offline on given text), and the special
tokens every scitune model needs (`<image>`, and a pad token distinct from BOS/EOS)."""

from __future__ import annotations

from collections.abc import Iterable

from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

IMAGE_TOKEN = "<image>"
PAD_TOKEN = "<pad>"
BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"

# Used when no texts are given: enough science prose for a tokenizer that round-trips anything
# (byte-level BPE never produces unknown tokens; merges only make common words shorter).
DEFAULT_TEXTS = (
    "The figure shows the temperature as a function of time for three samples.",
    "Graph Plot. Scatterplot. Bar Chart. Node Diagram. Equation.",
    "Question: Which solution has a higher concentration of particles? Options: (A) solution A (B) solution B",
    "The answer is A. The pressure increases with the depth of the water column.",
    "Context: A magnet attracts iron. Lecture: Magnets can pull or push other magnets without touching them.",
    "Energy, velocity, mass, density, voltage, current, frequency, wavelength, population, rainfall.",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 0.5 1e-3 kg m s K Pa J W Hz mol %",
)


def train_bpe_tokenizer(texts: Iterable[str] | None = None, vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Trains a byte-level BPE tokenizer on `texts` (deterministic for the same input)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    specials = [PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, IMAGE_TOKEN]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts) if texts is not None else list(DEFAULT_TEXTS), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        model_max_length=2048,
        clean_up_tokenization_spaces=False,
    )
    return fast


def ensure_special_tokens(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """Adds `<image>` and a dedicated pad token where missing; returns the tokens added.

    A pad token that equals BOS or EOS is replaced: padding positions would otherwise share an id
    with real sequence boundaries (and EOS labels could be masked as padding).
    """
    added: list[str] = []
    vocab = tokenizer.get_vocab()
    if IMAGE_TOKEN not in vocab:
        tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]}, replace_extra_special_tokens=False)
        added.append(IMAGE_TOKEN)
    pad = tokenizer.pad_token
    if pad is None or pad in (tokenizer.bos_token, tokenizer.eos_token):
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
        added.append(PAD_TOKEN)
    return added
