import pytest
import torch

from scitune.config import LoraConfig, ModelConfig, StageConfig
from scitune.errors import ScituneError
from scitune.model import apply_stage, build_model, parameter_table
from scitune.model.stages import format_parameter_table

from .helpers import batch


def _names(model, prefix=""):
    return {n for n, _ in model.named_parameters() if n.startswith(prefix)}


def _trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


@pytest.fixture
def mlp_model():
    return build_model(ModelConfig(preset="tiny", projector="mlp2x_gelu"))


def test_align_trains_projector_only_linear():
    model, _ = build_model(ModelConfig(preset="tiny", projector="linear"))
    model = apply_stage(model, StageConfig(name="align"))
    # linear_2 is the fixed identity of the linear projector: never trained
    assert _trainable(model) == {"model.multi_modal_projector.linear_1.weight", "model.multi_modal_projector.linear_1.bias"}


def test_align_trains_projector_only_mlp(mlp_model):
    model = apply_stage(mlp_model[0], StageConfig(name="align"))
    assert _trainable(model) == _names(model, "model.multi_modal_projector.") and len(_trainable(model)) == 4


def test_instruct_trains_projector_and_llm(mlp_model):
    model = apply_stage(mlp_model[0], StageConfig(name="instruct"))
    # the tiny preset ties lm_head to the input embeddings: one parameter, listed under the LM
    lm_head = set() if model.config.text_config.tie_word_embeddings else {"lm_head.weight"}
    expected = _names(model, "model.multi_modal_projector.") | _names(model, "model.language_model.") | lm_head
    assert _trainable(model) == expected
    assert not (_trainable(model) & _names(model, "model.vision_tower."))


def test_tune_vision_adds_the_tower(mlp_model):
    model = apply_stage(mlp_model[0], StageConfig(name="align", tune_vision=True))
    assert _trainable(model) == _names(model, "model.multi_modal_projector.") | _names(model, "model.vision_tower.")


def test_lora_targets_llm_only_and_keeps_projector_trainable(mlp_model):
    model = apply_stage(mlp_model[0], StageConfig(name="instruct", lora=True, lora_config=LoraConfig(r=4, alpha=8)))
    trainable = _trainable(model)
    lora = {n for n in trainable if "lora_" in n}
    assert lora and all(".language_model." in n for n in lora)
    # peft's plain q_proj would also have matched CLIP's attention layers: ours does not
    assert not any("vision_tower" in n and "lora_" in n for n, _ in model.named_parameters())
    modules = {n.split(".lora_")[0].rsplit(".", 1)[1] for n in lora}
    assert modules == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    projector = {n for n in trainable if "multi_modal_projector" in n}
    assert {n.rsplit(".", 2)[-2] + "." + n.rsplit(".", 1)[-1] for n in projector} == {
        "linear_1.weight", "linear_1.bias", "linear_2.weight", "linear_2.bias"
    }
    assert trainable == lora | projector


def test_lora_on_align_is_refused():
    with pytest.raises(ScituneError, match="keeps the LLM frozen"):
        StageConfig(name="align", lora=True)


def test_parameter_table_counts(mlp_model):
    model = apply_stage(mlp_model[0], StageConfig(name="align"))
    rows = {r["part"]: r for r in parameter_table(model)}
    total = sum(p.numel() for p in model.parameters())
    assert rows["total"]["trainable"] + rows["total"]["frozen"] == total
    assert rows["projector"]["trainable"] == sum(p.numel() for p in model.model.multi_modal_projector.parameters())
    assert rows["language_model"]["trainable"] == rows["vision_tower"]["trainable"] == 0
    assert "projector" in format_parameter_table(list(rows.values()))


@pytest.mark.parametrize(
    "stage",
    [StageConfig(name="align"), StageConfig(name="instruct"), StageConfig(name="instruct", tune_vision=True),
     StageConfig(name="instruct", lora=True, lora_config=LoraConfig(r=4, alpha=8, dropout=0.0))],
    ids=["align", "instruct", "instruct+vision", "instruct+lora"],
)
def test_one_step_changes_exactly_the_trainable(stage):
    model, processor = build_model(ModelConfig(preset="tiny", projector="mlp2x_gelu"))
    model = apply_stage(model, stage)
    if stage.lora:  # LoRA B starts at zero; give it a value so A also receives gradient
        for n, p in model.named_parameters():
            if "lora_B" in n:
                torch.nn.init.normal_(p, std=0.02)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)
    loss = model(**batch(processor, n=2)).loss
    loss.backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    trainable = _trainable(model)
    assert changed <= trainable, f"frozen parameters changed: {sorted(changed - trainable)[:5]}"
    # Features come from vision layer -2, so the last vision layer and the post-layernorm get no
    # gradient even when the tower trains: the one allowed exception.
    last = model.config.vision_config.num_hidden_layers - 1 if hasattr(model.config, "vision_config") else None
    no_grad = {n for n in trainable if f"encoder.layers.{last}." in n or "post_layernorm" in n}
    if stage.tune_vision:
        assert no_grad, "expected the last vision layer to be trainable but gradient-free"
    assert changed == trainable - no_grad
    assert all(before[n].equal(p) for n, p in model.named_parameters() if n in no_grad)


def test_part_of_names_every_parameter_once_and_refuses_strangers(mlp_model):
    from scitune.model.parts import PARTS, part_of

    model = mlp_model[0]
    parts = {name: part_of(name) for name, _ in model.named_parameters()}
    assert set(parts.values()) <= set(PARTS)
    assert parts["model.multi_modal_projector.linear_1.weight"] == "projector"
    assert all(p == "vision_tower" for n, p in parts.items() if n.startswith("model.vision_tower."))
    assert all(p == "language_model" for n, p in parts.items() if n.startswith("model.language_model."))
    assert part_of("lm_head.weight") == part_of("base_model.model.lm_head.weight") == "lm_head"
    with pytest.raises(ValueError, match="no known part"):
        part_of("model.image_adapter.weight")  # in no family of scitune.model.families


def test_an_untied_lm_head_trains_with_the_llm_and_has_its_own_row():
    model, _ = build_model(ModelConfig(preset="tiny"))
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())  # untied from the embeddings
    assert "lm_head.weight" in _names(model)
    align = {r["part"]: r for r in parameter_table(apply_stage(model, StageConfig(name="align")))}
    assert align["lm_head"] == {"part": "lm_head", "trainable": 0, "frozen": model.lm_head.weight.numel()}
    instruct = {r["part"]: r for r in parameter_table(apply_stage(model, StageConfig(name="instruct")))}
    assert instruct["lm_head"] == {"part": "lm_head", "trainable": model.lm_head.weight.numel(), "frozen": 0}


def test_stage_applied_opens_a_plan_and_puts_the_flags_back(mlp_model):
    from scitune.config import Trainable
    from scitune.model.stages import stage_applied

    model = apply_stage(mlp_model[0], StageConfig(name="align"))
    before = {n: p.requires_grad for n, p in model.named_parameters()}
    with stage_applied(model, Trainable(projector=False, language_model=False, vision_tower=True)) as trained:
        assert {id(p) for p in trained} == {id(p) for p in model.model.vision_tower.parameters()}
        assert _trainable(model) == _names(model, "model.vision_tower.")
    assert {n: p.requires_grad for n, p in model.named_parameters()} == before
