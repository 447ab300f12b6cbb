"""The API over HTTP against the app on 127.0.0.1: answers equal `Engine.generate` one by one,
streaming, stop strings, seeds, figure endpoints, LoRA adapters, image paths, every kind of bad
input answered 4xx with OpenAI's error object, batching, the bounded queue and timeouts."""

from __future__ import annotations

import json
import math
import threading

import httpx
import pytest

from scitune.data.corpus.vocab import FIGURE_TYPES
from scitune.data.instructions import CAPTION, FIGURE_TYPE
from scitune.inference import EvalItem
from scitune.serve.limits import ServeLimits

from tests.serve.conftest import chat, data_url, png_bytes
from tests.waiting import wait_until

PROMPTS = ["hello", "What type of figure is this?", "Describe the figure in detail.", "Which axis shows time?",
           "Is the trend rising or falling?", "Name the largest bar.", "the quick brown fox", "Explain the equation."]


@pytest.fixture(scope="module")
def figure(tmp_path_factory):
    """A figure as a file (for the reference engine) and as a data: URL (for the server)."""
    path = tmp_path_factory.mktemp("figure") / "bars.png"
    path.write_bytes(png_bytes())
    return path, data_url(path.read_bytes())


def expected(engine, prompt: str, max_tokens: int, image=None) -> str:
    images = (str(image),) if image is not None else ()
    text = f"<image>\n{prompt}" if image is not None else prompt
    return engine.generate([EvalItem("ref", text, images)], batch_size=1, max_new_tokens=max_tokens)[0]


def answer(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def test_health_and_models(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["models"] == ["tiny", "lora"]
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["tiny", "lora"]
    assert models["data"][1]["kind"] == "lora adapter (merged)"
    assert client.get("/v1/models/tiny").json()["max_positions"] == 1024
    assert client.get("/v1/models/nope").status_code == 404


def test_answers_are_what_generate_gives_alone(client, reference, figure):
    path, url = figure
    engine = reference["tiny"]
    texts = [answer(client.post("/v1/chat/completions", json=chat("tiny", p, max_tokens=8))) for p in PROMPTS[:4]]
    assert texts == [expected(engine, p, 8) for p in PROMPTS[:4]]
    assert len(set(texts)) == 4  # different prompts, different answers
    response = client.post("/v1/chat/completions", json=chat("tiny", "What is shown?", url, max_tokens=8))
    assert answer(response) == expected(engine, "What is shown?", 8, path)
    body = response.json()
    assert body["object"] == "chat.completion" and body["choices"][0]["finish_reason"] in ("stop", "length")
    prompt = engine.renderer.prompt(EvalItem("x", "<image>\nWhat is shown?", ("x",)).sample())
    assert body["usage"]["prompt_tokens"] == len(prompt["input_ids"])
    assert 1 <= body["usage"]["completion_tokens"] <= 8
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]


def sse_events(response: httpx.Response) -> list:
    events = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[len("data: "):]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def test_streaming_adds_up_to_the_plain_answer(client):
    for prompt in PROMPTS[4:7]:
        plain = answer(client.post("/v1/chat/completions", json=chat("tiny", prompt, max_tokens=12)))
        body = chat("tiny", prompt, max_tokens=12, stream=True, stream_options={"include_usage": True})
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = sse_events(response)
        assert events[-1] == "[DONE]"
        chunks = events[:-1]
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        assert text == plain
        finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
        assert len(finals) == 1
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] >= 1


def test_a_stop_string_cuts_the_answer(client, reference):
    full = expected(reference["tiny"], "Explain the equation.", 16)
    stop = next(full[i : i + 2] for i in range(3, len(full) - 2) if full[i : i + 2].strip() and full[i : i + 2] in full[3:])
    cut = full[: full.find(stop)].strip()
    response = client.post("/v1/chat/completions", json=chat("tiny", "Explain the equation.", max_tokens=16, stop=[stop, "\u2603\u2603"]))
    assert answer(response) == cut
    assert response.json()["choices"][0]["finish_reason"] == "stop"


def test_seeded_sampling_repeats_and_seeds_differ(client):
    def sample(seed):
        body = chat("tiny", "Describe the figure in detail.", max_tokens=10, temperature=1.5, top_p=0.95, seed=seed)
        return answer(client.post("/v1/chat/completions", json=body))

    assert sample(7) == sample(7)
    assert len({sample(seed) for seed in (1, 2, 3, 4)}) > 1


def softmax(scores):
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    return [w / sum(weights) for w in weights]


def test_classify_gives_label_probabilities_by_likelihood(client, reference, figure):
    path, url = figure
    body = client.post("/v1/figures/classify", json={"model": "tiny", "image": url}).json()
    labels = [entry["label"] for entry in body["labels"]]
    assert labels == list(FIGURE_TYPES) and body["question"] == FIGURE_TYPE[0]
    probabilities = [entry["probability"] for entry in body["labels"]]
    assert sum(probabilities) == pytest.approx(1.0)
    scores = reference["tiny"].score_options(EvalItem("ref", f"<image>\n{FIGURE_TYPE[0]}", (str(path),), tuple(FIGURE_TYPES)))
    assert probabilities == pytest.approx(softmax(scores), rel=1e-4, abs=1e-6)
    assert body["prediction"] == labels[probabilities.index(max(probabilities))]
    custom = client.post("/v1/figures/classify", json={"model": "tiny", "image": {"url": url}, "labels": ["Table", "Photo"],
                                                        "question": "What is this?"}).json()
    assert [entry["label"] for entry in custom["labels"]] == ["Table", "Photo"] and custom["question"] == "What is this?"


def test_caption_is_the_greedy_answer_to_the_caption_question(client, reference, figure):
    path, url = figure
    body = client.post("/v1/figures/caption", json={"model": "tiny", "image": url, "max_tokens": 10}).json()
    assert body["object"] == "figure.caption"
    assert body["caption"] == expected(reference["tiny"], CAPTION[0], 10, path)


def test_a_lora_adapter_folder_is_served_merged(client, reference):
    lora = [answer(client.post("/v1/chat/completions", json=chat("lora", p, max_tokens=8))) for p in PROMPTS[:3]]
    assert lora == [expected(reference["merged"], p, 8) for p in PROMPTS[:3]]
    assert lora != [expected(reference["tiny"], p, 8) for p in PROMPTS[:3]]


def test_image_paths_only_under_the_image_root(client, image_root):
    by_path = client.post("/v1/chat/completions", json=chat("tiny", "What is shown?", "figs/bars.png"))
    by_data = client.post("/v1/chat/completions", json=chat("tiny", "What is shown?", data_url((image_root / "figs" / "bars.png").read_bytes())))
    assert answer(by_path) == answer(by_data)
    absolute = client.post("/v1/chat/completions", json=chat("tiny", "What is shown?", f"file://{image_root}/figs/bars.png"))
    assert answer(absolute) == answer(by_data)
    for outside in ("figs/link.png", "../outside/secret.png", "/etc/hostname", "figs/none.png"):
        response = client.post("/v1/chat/completions", json=chat("tiny", "What is shown?", outside))
        assert response.status_code == 400, outside
        assert response.json()["error"]["param"].endswith("image_url")


GOOD = chat("tiny", "hi", max_tokens=4)


def with_(**changes):
    return json.dumps({**GOOD, **changes}).encode()


def image_message(url, text="hi"):
    return with_(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": text}]}])


def bomb():
    from tests.serve.test_units import bomb_png

    return bomb_png(30_000, 30_000)


MALFORMED = {
    "not json": (b"{model: tiny", 400, "invalid_json"),
    "not utf-8": (b"\xff\xfe\x00", 400, "invalid_json"),
    "too deep": (b"[" * 50 + b"]" * 50, 400, "invalid_json"),
    "a list": (b"[]", 422, "invalid_type"),
    "no messages": (json.dumps({"model": "tiny"}).encode(), 422, "invalid_request"),
    "empty messages": (with_(messages=[]), 422, "invalid_request"),
    "wrong type": (with_(max_tokens="4"), 422, "invalid_request"),
    "bad role": (with_(messages=[{"role": "robot", "content": "hi"}]), 422, "invalid_request"),
    "bad part": (with_(messages=[{"role": "user", "content": [{"type": "video"}]}]), 422, "invalid_request"),
    "negative temperature": (with_(temperature=-1), 422, "invalid_request"),
    "unknown model": (with_(model="gpt-17"), 404, "model_not_found"),
    "max_tokens over the cap": (with_(max_tokens=100_000), 400, "max_tokens_too_large"),
    "n > 1": (with_(n=2), 400, "invalid_n"),
    "too many stops": (with_(stop=["a", "b", "c", "d", "e"]), 400, "invalid_stop"),
    "ends with assistant": (with_(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]), 400, "invalid_messages"),
    "image in assistant": (with_(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}, {"role": "user", "content": "c"}]), 400, "invalid_messages"),
    "<image> in text": (with_(messages=[{"role": "user", "content": "look: <image>"}]), 400, "invalid_messages"),
    "prompt too long": (with_(messages=[{"role": "user", "content": "figure " * 3000}]), 400, "context_length_exceeded"),
    "text too long": (with_(messages=[{"role": "user", "content": "x" * 40_000}]), 413, "text_too_long"),
    "bad base64": (image_message("data:image/png;base64,%%%"), 400, "invalid_base64"),
    "not an image": (image_message(data_url(b"GIF89a this is no image")), 400, "invalid_image"),
    "not an image type": (image_message("data:application/pdf;base64,AAAA"), 400, "invalid_image"),
    "remote url": (image_message("https://example.org/a.png"), 400, "invalid_image_url"),
    "image bytes over the limit": (image_message(data_url(b"\x89PNG" + b"\x00" * 600_000)), 413, "image_too_large"),
    "decompression bomb": (image_message(data_url(bomb())), 413, "image_too_large"),
    "truncated image": (image_message(data_url(png_bytes(400, 300)[:600])), 400, "invalid_image"),
    "too many images": (with_(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(png_bytes())}}] * 3}]), 413, "too_many_images"),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_bad_input_is_a_4xx_with_an_error_object(client, kind):
    body, status, code = MALFORMED[kind]
    response = client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["type"]


def test_bad_figure_requests(client):
    url = data_url(png_bytes())
    cases = [
        ({"model": "tiny", "image": url, "labels": ["one"]}, 400),
        ({"model": "tiny", "image": url, "labels": ["a", "a"]}, 400),
        ({"model": "tiny", "image": url, "labels": ["x"] * 40}, 400),
        ({"model": "tiny", "image": url, "question": "  "}, 400),
        ({"model": "tiny"}, 422),
        ({"model": "tiny", "image": 5}, 422),
        ({"model": "nope", "image": url}, 404),
        ({"model": "tiny", "image": "data:image/png;base64,AAA="}, 400),
    ]
    for body, status in cases:
        response = client.post("/v1/figures/classify", json=body)
        assert response.status_code == status, (body, response.text)
    assert client.post("/v1/figures/caption", json={"model": "tiny", "image": url, "max_tokens": 1000}).status_code == 400


def test_body_size_routes_and_methods(client, server):
    big = b'{"model": "tiny", "messages": [{"role": "user", "content": "' + b"x" * (3 * 1024**2) + b'"}]}'
    response = client.post("/v1/chat/completions", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"

    def chunks():  # no Content-Length: the limit is found while reading
        for _ in range(40):
            yield b"x" * 100_000

    with httpx.Client(base_url=server.url, timeout=30) as fresh:
        response = fresh.post("/v1/chat/completions", content=chunks())
    assert response.status_code == 413
    assert client.get("/v1/nothing").status_code == 404 and client.get("/v1/nothing").json()["error"]["code"] == "not_found"
    response = client.get("/v1/chat/completions")
    assert response.status_code == 405 and "error" in response.json()
    assert client.get("/health").json()["status"] == "ok"


# ---------------------------------------------------------------------- batching, queue, timeouts


@pytest.fixture()
def gated(checkpoints, image_root):
    """A second app on its own copy of the tiny model, whose model thread waits at a gate before
    each batch: requests pile up exactly as the test says. Yields (start, gate, held): `held` lists
    the rows (RowDecoders) of each batch that reached the gate, so a test can wait on their state."""
    from scitune.serve.app import create_app
    from scitune.serve.models import load_slot
    from scitune.serve.server import ServerThread

    slot = load_slot("tiny", checkpoints["tiny"])
    gate = threading.Event()
    original = slot.engine.generate_batch
    held = []

    def wait_then_generate(*args, **kwargs):
        held.append(kwargs["stopping_criteria"][0].rows)
        gate.wait(60)
        return original(*args, **kwargs)

    slot.engine.generate_batch = wait_then_generate
    servers = []

    def start(limits: ServeLimits):
        app = create_app({"tiny": slot}, limits, image_root=image_root)
        servers.append(ServerThread(app, max_queue=limits.max_queue).start())
        return servers[-1], app.state.batcher

    yield start, gate, held
    gate.set()
    for running in servers:
        running.stop()


def test_batched_answers_equal_one_by_one_and_a_full_queue_is_429(gated, reference, figure):
    start, gate, _ = gated
    path, url = figure
    server, batcher = start(ServeLimits(max_batch=4, max_queue=10, window_ms=5, timeout_s=120))
    requests = [chat("tiny", PROMPTS[i % len(PROMPTS)], url if i % 3 == 0 else None, max_tokens=4 + i % 5) for i in range(10)]
    results: dict[int, httpx.Response] = {}

    def send(index, body):
        with httpx.Client(base_url=server.url, timeout=120) as c:
            results[index] = c.post("/v1/chat/completions", json=body)

    plug = threading.Thread(target=send, args=(-1, chat("tiny", "plug", max_tokens=2)))
    plug.start()
    wait_until(lambda: batcher.stats()["running"] == 1, what="the model thread to hold the plug at the gate")
    threads = [threading.Thread(target=send, args=(i, body)) for i, body in enumerate(requests)]
    for t in threads:
        t.start()
    wait_until(lambda: batcher.stats()["pending"] == 10, what="10 requests queued")
    with httpx.Client(base_url=server.url, timeout=30) as c:
        refused = c.post("/v1/chat/completions", json=chat("tiny", "one too many"))
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "rate_limit_error"
    gate.set()
    for t in [plug, *threads]:
        t.join(120)
    got = [answer(results[i]) for i in range(10)]
    want = [expected(reference["tiny"], PROMPTS[i % len(PROMPTS)], 4 + i % 5, path if i % 3 == 0 else None) for i in range(10)]
    assert got == want
    stats = batcher.stats()
    assert stats["largest_batch"] == 4 and stats["completed"] == 11


def test_a_request_over_its_time_is_504_and_the_server_goes_on(gated):
    start, gate, _ = gated
    server, batcher = start(ServeLimits(timeout_s=1.0, window_ms=0))
    with httpx.Client(base_url=server.url, timeout=30) as c:
        response = c.post("/v1/chat/completions", json=chat("tiny", "slow"))
        assert response.status_code == 504 and response.json()["error"]["code"] == "timeout"
        assert not gate.is_set()  # answered with the gate shut: the 504 did not wait for a generation
        with c.stream("POST", "/v1/chat/completions", json=chat("tiny", "slow", stream=True)) as streamed:
            events = sse_events(streamed)
        assert events[0]["choices"][0]["delta"]["role"] == "assistant"
        assert events[-1]["error"]["code"] == "timeout"
        gate.set()
        wait_until(lambda: batcher.stats()["running"] == 0 and batcher.stats()["pending"] == 0)
        assert c.get("/health").json()["status"] == "ok"
        assert c.post("/v1/chat/completions", json=chat("tiny", "fast again", max_tokens=3)).status_code == 200


def test_a_client_that_leaves_mid_stream_frees_its_row(gated):
    start, gate, held = gated
    server, batcher = start(ServeLimits(window_ms=0))
    with httpx.Client(base_url=server.url, timeout=30) as c:
        with c.stream("POST", "/v1/chat/completions", json=chat("tiny", "long answer", max_tokens=64, stream=True)) as streamed:
            lines = streamed.iter_lines()  # held open: an abandoned iterator would close the stream now
            first = next(lines)
            assert first.startswith("data: ") and '"role": "assistant"' in first
            wait_until(lambda: len(held) == 1, what="its row in a batch at the gate")
            assert not held[0][0].cancelled()
        # the connection is closed here, while the model thread waits at the gate with the row
        wait_until(lambda: held[0][0].cancelled(), what="the server to see the client leave")
        assert not gate.is_set() and len(held) == 1 and len(held[0]) == 1
        gate.set()
        wait_until(lambda: batcher.stats()["running"] == 0 and batcher.stats()["completed"] == 1)
        assert batcher.stats()["cancelled"] == 1
        assert c.get("/health").json()["status"] == "ok"
