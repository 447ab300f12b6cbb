from scitune.config import StageConfig
from scitune.model import apply_stage
from scitune.train.flops import part_sizes, step_flops
from tests.fixtures import build_tiny


def test_step_flops_by_stage():
    model, _ = build_tiny(vocab_size=300)
    emb = model.get_input_embeddings().weight.numel()
    align = part_sizes(apply_stage(model, StageConfig(name="align")))
    # the embedding lookup is no matmul; with tied embeddings the one copy is the lm_head matmul
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert tied  # the tiny preset ties them
    n_lm = align["language_model"]["frozen"] - (0 if tied else emb)
    n_vis = align["vision_tower"]["frozen"]
    proj = align["projector"]
    n_proj = proj["trainable"] + proj["frozen"]
    # align: LM forward + activation backward (4N per token), projector forward + weight grads,
    # vision forward only
    assert step_flops(align, 10, 17) == 10 * 4 * n_lm + 17 * (2 * n_proj + 2 * proj["trainable"]) + 17 * 2 * n_vis
    instruct = part_sizes(apply_stage(model, StageConfig(name="instruct")))
    assert step_flops(instruct, 10, 0) == 10 * 6 * n_lm

    # the lm_head runs only where a target is supervised: 3 of the 10 positions here
    head = model.get_output_embeddings().weight.numel()
    assert step_flops(instruct, 10, 0, logit_tokens=3) == 10 * 6 * n_lm - 7 * 6 * head
    assert step_flops(align, 10, 17, logit_tokens=3) == step_flops(align, 10, 17) - 7 * 4 * head
