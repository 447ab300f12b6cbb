"""A bounded load test against `scitune serve` (the command, in a subprocess on 127.0.0.1): 200
requests from 32 concurrent clients, a fifth of them malformed. Every valid one gets the answer
`Engine.generate` gives alone, every malformed one a 4xx error object, and afterwards the server
is healthy, has nothing queued, and its memory is back near where it started."""

from __future__ import annotations

import gc
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from tests.serve.conftest import chat, data_url, png_bytes
from tests.serve.test_api import PROMPTS, expected, sse_events
from tests.serve.test_units import bomb_png

REQUESTS = 200
CLIENTS = 32
MEMORY_SLACK_MB = 64  # allocator caches and per-thread arenas (measured: about 15 MB)


def malformed_requests() -> list[tuple[str, dict]]:
    """(path, httpx keyword arguments) of each malformed kind."""
    good = chat("tiny", "hi", max_tokens=4)
    png = data_url(png_bytes())
    return [
        ("/v1/chat/completions", {"content": b'{"model": "tiny", "messages": [', "headers": {"content-type": "application/json"}}),
        ("/v1/chat/completions", {"json": {**good, "max_tokens": "four"}}),
        ("/v1/chat/completions", {"json": {**good, "model": "no-such-model"}}),
        ("/v1/chat/completions", {"json": chat("tiny", "hi", "data:image/png;base64,**not base64**")}),
        ("/v1/chat/completions", {"json": chat("tiny", "hi", data_url(b"plain text, not an image"))}),
        ("/v1/chat/completions", {"json": chat("tiny", "hi", data_url(bomb_png(25_000, 25_000)))}),
        ("/v1/chat/completions", {"json": {**good, "max_tokens": 5000}}),
        ("/v1/chat/completions", {"content": json.dumps({**good, "user": "x" * 1_300_000}).encode(),
                                  "headers": {"content-type": "application/json"}}),
        ("/v1/figures/classify", {"json": {"model": "tiny", "image": png, "labels": ["only one"]}}),
        ("/v1/figures/caption", {"json": {"model": "tiny", "image": 42}}),
    ]


def test_200_requests_from_32_clients_a_fifth_malformed(cli_server, reference, tmp_path):
    figures = []
    for i, color in enumerate(((200, 40, 40), (20, 120, 200))):
        path = tmp_path / f"figure{i}.png"
        path.write_bytes(png_bytes(100 + 20 * i, 80, color=color))
        figures.append(path)
    valid_kinds = [(PROMPTS[i % len(PROMPTS)], figures[i % 2] if i % 4 == 0 else None, 3 + i % 4, i % 3 == 0) for i in range(16)]
    answers = {(p, f, n): expected(reference["tiny"], p, n, f) for p, f, n, _ in valid_kinds}
    bad = malformed_requests()
    plan = []
    for i in range(REQUESTS):
        if i % 5 == 4:
            plan.append(("bad", bad[(i // 5) % len(bad)]))
        else:
            plan.append(("good", valid_kinds[i % len(valid_kinds)]))

    def run(entry):
        kind, spec = entry
        if kind == "bad":
            path, kwargs = spec
            response = client.post(path, **kwargs)
            return kind, spec, response.status_code, response.json()
        prompt, figure, max_tokens, stream = spec
        body = chat("tiny", prompt, data_url(figure.read_bytes()) if figure else None, max_tokens=max_tokens, stream=stream)
        if stream:
            with client.stream("POST", "/v1/chat/completions", json=body) as response:
                events = sse_events(response) if response.status_code == 200 else [response.read()]
            text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if isinstance(e, dict) and e.get("choices"))
            return kind, spec, response.status_code, text
        response = client.post("/v1/chat/completions", json=body)
        content = response.json()["choices"][0]["message"]["content"] if response.status_code == 200 else response.text
        return kind, spec, response.status_code, content

    process = psutil.Process(cli_server.process.pid)
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    with httpx.Client(base_url=cli_server.url, timeout=120, limits=limits) as client:
        with ThreadPoolExecutor(CLIENTS) as pool:  # warm-up: one of each valid kind
            list(pool.map(run, [("good", kind) for kind in valid_kinds]))
        gc.collect()
        memory_before = process.memory_info().rss
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(run, plan))
        health = client.get("/health").json()  # every request answered: nothing queued (asserted below)
        memory_after = process.memory_info().rss

    good = [r for r in results if r[0] == "good"]
    bad_results = [r for r in results if r[0] == "bad"]
    assert len(good) == 160 and len(bad_results) == 40
    wrong = [(spec[:3], status, text) for _, spec, status, text in good if status != 200 or text != answers[spec[:3]]]
    assert not wrong, wrong[:3]
    for _, (path, _), status, body in bad_results:
        assert 400 <= status < 500, (path, status, body)
        assert body["error"]["message"] and body["error"]["type"]
    assert {status for *_, status, _ in bad_results} >= {400, 404, 413, 422}
    assert health["status"] == "ok" and health["queue"]["pending"] == 0 and health["queue"]["failed"] == 0
    assert health["queue"]["largest_batch"] > 1  # concurrent requests were batched
    grown_mb = (memory_after - memory_before) / 1024**2
    print(f"\n{REQUESTS} requests; server RSS {memory_before / 1024**2:.0f} -> "
          f"{memory_after / 1024**2:.0f} MB; batches {health['queue']['batch_sizes']}")
    assert grown_mb < MEMORY_SLACK_MB
    assert cli_server.process.poll() is None  # still running


@pytest.fixture(autouse=True)
def _collect():
    yield
    gc.collect()
