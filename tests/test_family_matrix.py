"""Issue 24's matrix, the using half: for a tiny checkpoint of every model family (LLaVA,
LLaVA-OneVision, Idefics3, SmolVLM, Qwen2-VL, Qwen2.5-VL, Qwen3-VL, Gemma 3, LLaVA-NeXT, InternVL), saved with
`save_model` and read back as a user would, `scitune predict` (one question, and `--batch`),
every `scitune eval` task in each of its modes, and `scitune serve`'s app through FastAPI's
TestClient (a chat completion, a streamed one, the figure endpoints, the page and its examples).

Every answer is checked against the `Engine` on the same folder, one item at a time: the
command's or the server's greedy answer must equal `Engine.generate`'s, its option scores
`Engine.score_options`' (so the commands' batching, full-sequence scoring for Qwen and Gemma 3
included, changes nothing), and the pixels a served batch hands the model must be `torch.equal`
to what training's `ImageLoader` gives for the same files. Training, resume and export per family
are tests/model/test_family_training.py; exact ids and plain `generate` on the folder are
tests/prompting/test_families_render.py.

The weights are drawn wider than their initialisation (std 0.1, as tests/fixtures.py does for the
serving checkpoint), so different prompts get different answers and a swapped answer would show.
Each family's folder, engine and app are built once (module-scoped fixtures)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from scitune.cli import main
from scitune.inference import Engine, EvalItem
from tests.model.helpers import figure

PRESETS = [
    "tiny",  # the LLaVA composition
    "tiny-llava-onevision",
    "tiny-idefics3",
    "tiny-smolvlm",
    "tiny-qwen2-vl",
    "tiny-qwen2.5-vl",
    "tiny-qwen3-vl",
    "tiny-gemma3",
    "tiny-llava-next",
    "tiny-internvl",
]
TOKENS = 5  # new tokens per answer: enough to tell answers apart, cheap on a CPU
QUESTIONS = ("What type of figure is this?", "Describe the figure in detail please.")
SQA_PROBLEMS = ("23",)  # a ScienceQA test problem with an image; text-only ones are added
MATHVISTA_LIMIT = 2


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every matrix test runs on one thread (tests/conftest.py)."""


@pytest.fixture(scope="module")
def files(tmp_path_factory, shared_data):
    """Images, a predict batch, figure-type and caption records, a small ScienceQA problems file
    and MathVista figures, shared by every family."""
    root = tmp_path_factory.mktemp("matrix")
    images = root / "images"
    images.mkdir()
    figure(3, (60, 40)).save(images / "wide.png")
    figure(4, (30, 90)).save(images / "tall.png")
    rows = [{"question_id": "p1", "prompt": QUESTIONS[0], "image": "wide.png"},
            {"question_id": "p2", "prompt": "Which is larger, two or three?"},
            {"question_id": "p3", "prompt": QUESTIONS[1], "image": "tall.png"}]
    (images / "batch.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def record(rid, image, question, answer):
        return {"id": rid, "image": image, "conversations": [{"from": "human", "value": f"<image>\n{question}"},
                                                             {"from": "gpt", "value": answer}]}

    data = root / "data"
    data.mkdir()
    (data / "types.json").write_text(json.dumps([record("t1", "wide.png", QUESTIONS[0], "Bar Chart"),
                                                 record("t2", "tall.png", QUESTIONS[0], "Table")]))
    (data / "captions.json").write_text(json.dumps([record("c1", "wide.png", "Caption this figure.", "the loss of the model"),
                                                    record("c2", "tall.png", "Caption this figure.", "counts per bin")]))
    problems = json.loads((shared_data / "scienceqa" / "problems_subset.json").read_text())
    text_only = [pid for pid, p in problems.items() if p["split"] == "test" and not p["image"]][:2]
    chosen = {pid: problems[pid] for pid in (*SQA_PROBLEMS, *text_only)}
    assert chosen[SQA_PROBLEMS[0]]["image"]
    (data / "sqa").mkdir()  # apart: a problems.json's folder is read for captions.json and pid_splits.json
    (data / "sqa" / "problems.json").write_text(json.dumps(chosen))
    mathvista = shared_data / "mathvista" / "testmini.json"
    records = json.loads(mathvista.read_text())
    figures = root / "mathvista"
    for seed, pid in enumerate(list(records)[:MATHVISTA_LIMIT]):
        (figures / records[pid]["image"]).parent.mkdir(parents=True, exist_ok=True)
        figure(seed, (90, 60)).save(figures / records[pid]["image"], format="JPEG")
    return SimpleNamespace(root=root, images=images, data=data, mathvista=mathvista, mathvista_images=figures,
                           sqa_images=shared_data / "scienceqa" / "images" / "test")


@pytest.fixture(scope="module", params=PRESETS)
def family(request, tmp_path_factory, files):
    """A tiny checkpoint of one family, saved; and an Engine on it, loaded as `predict` loads it."""
    from scitune.config import ModelConfig
    from scitune.model import build_model, load_model, save_model

    torch.manual_seed(0)
    settings = {} if request.param == "tiny" else {"vocab_size": 300}
    model, processor = build_model(ModelConfig(preset=request.param, **settings))
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.normal_(0, 0.1)
    folder = save_model(model, processor, tmp_path_factory.mktemp(request.param) / "model")
    loaded, loaded_processor = load_model(folder)
    engine = Engine(loaded.eval(), loaded_processor, image_root=files.images)
    return SimpleNamespace(preset=request.param, folder=folder, engine=engine)


def _item(qid: str, question: str, image: str | None = None, options=()) -> EvalItem:
    return EvalItem(qid, f"<image>\n{question}" if image else question, (image,) if image else (), tuple(options))


def _alone(engine: Engine, items: list[EvalItem]) -> list[str]:
    return engine.generate(items, batch_size=1, max_new_tokens=TOKENS)


# ---------------------------------------------------------------------- predict


def test_predict_answers_as_the_engine_does(family, files, tmp_path, capsys):
    question = QUESTIONS[0]
    assert main(["predict", "--model", str(family.folder), "--image", str(files.images / "wide.png"),
                 "--max-new-tokens", str(TOKENS), question]) == 0
    printed = capsys.readouterr().out.rstrip("\n").split("\n")[-1]
    assert printed == _alone(family.engine, [_item("0", question, "wide.png")])[0]

    out = tmp_path / "predictions.jsonl"
    assert main(["predict", "--model", str(family.folder), "--batch", str(files.images / "batch.jsonl"),
                 "--batch-size", "3", "--max-new-tokens", str(TOKENS), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    items = [_item("p1", QUESTIONS[0], "wide.png"), _item("p2", "Which is larger, two or three?"),
             _item("p3", QUESTIONS[1], "tall.png")]
    assert [r["question_id"] for r in rows] == ["p1", "p2", "p3"]
    assert [r["text"] for r in rows] == _alone(family.engine, items)
    assert len({r["text"] for r in rows}) > 1  # the prompts get different answers: a swap would show


# ---------------------------------------------------------------------- eval


def _eval_runs(files) -> dict[str, list[str]]:
    """Each task's `scitune eval` arguments (all of its modes), without --model and --out."""
    return {
        "scienceqa": ["--problems", str(files.data / "sqa" / "problems.json"), "--images", str(files.sqa_images),
                      "--format", "QCM-A", "--mode", "generate,likelihood"],
        "figure-type": ["--data", str(files.data / "types.json"), "--images", str(files.images),
                        "--mode", "generate,likelihood"],
        "captions": ["--data", str(files.data / "captions.json"), "--images", str(files.images), "--no-meteor"],
        "mathvista": ["--problems", str(files.mathvista), "--images", str(files.mathvista_images),
                      "--limit", str(MATHVISTA_LIMIT)],
    }


def test_every_eval_task_in_every_mode_scores_what_the_engine_gives(family, files, tmp_path):
    from scitune.cli import build_parser
    from scitune.eval.registry import task_clis

    runs = _eval_runs(files)
    clis = {cli.name: cli for cli in task_clis()}
    assert set(runs) == set(clis)  # a new task joins the matrix
    for name, arguments in runs.items():
        out = tmp_path / name
        argv = ["eval", name, *arguments, "--model", str(family.folder), "--batch-size", "4",
                "--max-new-tokens", str(TOKENS), "--out", str(out)]
        assert main(argv) == 0, name
        args = build_parser().parse_args(argv)
        task = clis[name].build(args)
        engine = Engine(family.engine.model, family.engine.processor, image_root=args.images)
        for mode in clis[name].modes:
            rows = [json.loads(line) for line in (out / mode / "predictions.jsonl").read_text().splitlines()]
            items = task.items(mode)
            assert [r["question_id"] for r in rows] == [i.question_id for i in items], (name, mode)
            assert json.loads((out / mode / "metrics.json").read_text()), (name, mode)
            if mode == "generate":
                assert [r["text"] for r in rows] == engine.generate(items, batch_size=1, max_new_tokens=TOKENS), name
            else:
                for row, item in zip(rows, items):
                    assert row["option_scores"] == pytest.approx(engine.score_options(item), abs=1e-4), (name, item.question_id)
                    assert row["text"] == item.options[row["choice"]]


# ---------------------------------------------------------------------- serve


@pytest.fixture(scope="module")
def served(family):
    """The app on the family's folder, loaded as `scitune serve` loads it, through a TestClient."""
    from fastapi.testclient import TestClient

    from scitune.serve.app import create_app
    from scitune.serve.limits import ServeLimits
    from scitune.serve.models import load_slot

    slot = load_slot("m", family.folder)
    # max_batch 2: the five figure-type labels of a classify request, scored in full (Qwen-VL,
    # Gemma 3), run two at a time
    limits = ServeLimits(max_tokens=16, default_max_tokens=TOKENS, max_batch=2, window_ms=0, timeout_s=60)
    with TestClient(create_app({"m": slot}, limits)) as client:
        yield SimpleNamespace(client=client, slot=slot)


def _data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _chat(text: str, image: str | None = None, **extra) -> dict:
    content = text if image is None else [{"type": "image_url", "image_url": {"url": image}}, {"type": "text", "text": text}]
    return {"model": "m", "messages": [{"role": "user", "content": content}], "max_tokens": TOKENS, **extra}


def test_served_chat_and_stream_answer_as_the_engine_does(family, files, served):
    client = served.client
    asked = [(QUESTIONS[0], "wide.png"), (QUESTIONS[1], "tall.png"), ("Which is larger, two or three?", None)]
    answers = []
    for question, image in asked:
        url = _data_url(files.images / image) if image else None
        response = client.post("/v1/chat/completions", json=_chat(question, url))
        assert response.status_code == 200, response.text
        answers.append(response.json()["choices"][0]["message"]["content"])
    assert answers == _alone(family.engine, [_item(str(i), q, image) for i, (q, image) in enumerate(asked)])
    assert len(set(answers)) > 1

    streamed = client.post("/v1/chat/completions", json=_chat(QUESTIONS[0], _data_url(files.images / "wide.png"), stream=True))
    assert streamed.status_code == 200
    events = [line[len("data: "):] for line in streamed.text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == answers[0]


def test_served_figure_endpoints_answer_as_the_engine_does(family, files, served):
    from scitune.data.corpus.vocab import FIGURE_TYPES
    from scitune.data.instructions import CAPTION, FIGURE_TYPE

    url = _data_url(files.images / "tall.png")
    rows = []
    model = served.slot.engine.model
    hook = model.register_forward_pre_hook(lambda module, args, kwargs: rows.append(kwargs["input_ids"].shape[0]),
                                           with_kwargs=True)
    try:
        classified = served.client.post("/v1/figures/classify", json={"model": "m", "image": url})
    finally:
        hook.remove()
    assert classified.status_code == 200, classified.text
    if not served.slot.engine._shared_prefix():  # every "prompt + label" in full, at most max_batch a pass
        assert max(rows) == 2 and sum(rows) == len(FIGURE_TYPES)
    labels = classified.json()["labels"]
    expected = family.engine.score_options(_item("c", FIGURE_TYPE[0], "tall.png", FIGURE_TYPES))
    assert [label["label"] for label in labels] == list(FIGURE_TYPES)
    assert [label["log_likelihood"] for label in labels] == pytest.approx(expected, abs=1e-4)
    assert classified.json()["prediction"] == FIGURE_TYPES[max(range(len(expected)), key=expected.__getitem__)]

    captioned = served.client.post("/v1/figures/caption", json={"model": "m", "image": url, "max_tokens": TOKENS})
    assert captioned.status_code == 200, captioned.text
    assert captioned.json()["caption"] == _alone(family.engine, [_item("c", CAPTION[0], "tall.png")])[0]


def test_the_page_and_its_examples_work(served):
    client = served.client
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" in page.text and "app.js" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["m"]
    # the page's own flow: an example figure, sent back as a data URL
    example = client.get("/v1/examples").json()["data"][0]
    png = client.get(example["url"])
    assert png.status_code == 200
    url = "data:image/png;base64," + base64.b64encode(png.content).decode()
    answer = client.post("/v1/chat/completions", json=_chat(QUESTIONS[0], url))
    assert answer.status_code == 200 and answer.json()["choices"][0]["finish_reason"] in ("stop", "length")


def test_a_served_batch_hands_the_model_what_training_gives(family, files, served):
    """Two requests with differently shaped images in one batch (Idefics3's tiles and
    LLaVA-OneVision's patches padded across it, Qwen's grids side by side): the model inputs equal
    training's collator on the files, and each row's greedy answer its answer alone."""
    from scitune.prompting import ImageLoader, PaddingCollator, Renderer
    from scitune.serve.limits import ServeLimits
    from scitune.serve.prompts import prepare_chat
    from scitune.serve.schemas import ChatRequest

    slot = served.slot
    asked = [(QUESTIONS[0], "wide.png"), (QUESTIONS[1], "tall.png")]
    prepared = [prepare_chat(slot, ChatRequest.model_validate(_chat(q, _data_url(files.images / image))), ServeLimits(), None)
                for q, image in asked]
    processor = family.engine.processor
    loader = ImageLoader(processor.image_processor, files.images)
    renderer = Renderer(processor, images=loader)
    family_ = renderer.family
    training = PaddingCollator(processor.tokenizer.pad_token_id, loader, side="left",
                               image_inputs=family_.image_inputs if family_ else ())
    trained = training([{**renderer.prompt(_item(str(i), q, image).sample()), "id": str(i)} for i, (q, image) in enumerate(asked)])
    for p in prepared:
        slot.images.hold(p.images)
    try:
        batch = slot.engine.collate([p.prompt for p in prepared])
        for key in ("input_ids", "attention_mask", "pixel_values", *(family_.image_inputs if family_ else ())):
            assert torch.equal(batch[key], trained[key]), key
        new = slot.engine.generate_batch([p.prompt for p in prepared], max_new_tokens=TOKENS)
    finally:
        for p in prepared:
            slot.images.release(p.images)
    assert len(slot.images) == 0
    texts = []
    for row in new:
        ids = row.tolist()
        end = next((i for i, t in enumerate(ids) if t in slot.engine.stop_ids), len(ids))
        texts.append(slot.engine.tokenizer.decode(ids[:end], skip_special_tokens=True).strip())
    assert texts == _alone(family.engine, [_item(str(i), q, image) for i, (q, image) in enumerate(asked)])


def test_a_lora_adapter_folder_is_served_as_its_merged_model_predicts(family, files, tmp_path, capsys):
    """A LoRA stage's adapter folder (peft on the family's language model, its connector saved
    whole, as `scitune.model.stages.attach_lora` makes it), served merged on load: its greedy
    answer equals `scitune predict` on the merged folder, and differs from the base's."""
    from fastapi.testclient import TestClient

    from scitune.config.stage import LoraConfig
    from scitune.model import load_model, save_model
    from scitune.model.stages import attach_lora
    from scitune.serve.app import create_app
    from scitune.serve.limits import ServeLimits
    from scitune.serve.models import load_slot

    model, processor = load_model(family.folder)
    torch.manual_seed(1)
    peft_model = attach_lora(model, LoraConfig(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    for config in peft_model.peft_config.values():
        config.base_model_name_or_path = str(family.folder.resolve())
    adapter = save_model(peft_model, processor, tmp_path / "adapter")
    merged = save_model(peft_model.merge_and_unload(), processor, tmp_path / "merged")

    slot = load_slot("m", adapter)
    assert slot.kind == "lora adapter (merged)"
    question = QUESTIONS[1]
    with TestClient(create_app({"m": slot}, ServeLimits(max_tokens=16, default_max_tokens=TOKENS, window_ms=0))) as client:
        response = client.post("/v1/chat/completions", json=_chat(question, _data_url(files.images / "tall.png")))
    assert response.status_code == 200, response.text
    served = response.json()["choices"][0]["message"]["content"]
    assert main(["predict", "--model", str(merged), "--image", str(files.images / "tall.png"),
                 "--max-new-tokens", str(TOKENS), question]) == 0
    assert served == capsys.readouterr().out.rstrip("\n").split("\n")[-1]
    # predict (and eval) take the adapter folder as serve does
    assert main(["predict", "--model", str(adapter), "--image", str(files.images / "tall.png"),
                 "--max-new-tokens", str(TOKENS), question]) == 0
    assert served == capsys.readouterr().out.rstrip("\n").split("\n")[-1]
    assert served != _alone(family.engine, [_item("0", question, "tall.png")])[0]
