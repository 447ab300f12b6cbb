"""logprobs / top_logprobs, logit_bias and OpenAI's frequency and presence penalties through the
server, against a decoding loop written out here: one forward pass per token over the prompt
and the tokens so far, the penalties applied as OpenAI defines them."""

from __future__ import annotations

import json

import pytest
import torch

from scitune.inference import EvalItem

from tests.serve.conftest import chat
from tests.serve.test_api import answer, sse_events

PROMPT = "Describe the figure in detail."


def reference(engine, prompt: str, steps: int, bias: dict[int, float] | None = None, frequency: float = 0.0,
              presence: float = 0.0) -> list[tuple[int, torch.Tensor]]:
    """Greedy decoding, one full forward pass a token: (token, log-softmax of the model's logits)
    for each generated token, the end token included."""
    ids = list(engine.renderer.prompt(EvalItem("ref", prompt, ()).sample())["input_ids"])
    out: list[tuple[int, torch.Tensor]] = []
    with torch.no_grad():
        for _ in range(steps):
            logits = engine.model(input_ids=torch.tensor([ids])).logits[0, -1].float()
            shaped = logits.clone()
            for token, value in (bias or {}).items():
                shaped[token] += value
            generated = [t for t, _ in out]
            for token in set(generated):
                shaped[token] -= generated.count(token) * frequency + presence
            token = int(shaped.argmax())
            out.append((token, torch.log_softmax(logits, -1)))
            if token in engine.stop_ids:
                break
            ids.append(token)
    return out


def entries_of(engine, steps, top: int) -> list[dict]:
    tokenizer = engine.tokenizer
    out = []
    for token, logprobs in steps:
        if token in engine.stop_ids:
            break
        values, ids = torch.topk(logprobs, top)
        out.append({"token": tokenizer.decode([token]), "logprob": float(logprobs[token]),
                    "top": [(tokenizer.decode([i]), float(v)) for i, v in zip(ids.tolist(), values.tolist())]})
    return out


def assert_entries(got: list[dict], want: list[dict]) -> None:
    assert [e["token"] for e in got] == [e["token"] for e in want]
    for g, w in zip(got, want):
        assert g["logprob"] == pytest.approx(w["logprob"], abs=1e-4)
        assert g["bytes"] == list(g["token"].encode("utf-8"))
        assert [t["token"] for t in g["top_logprobs"]] == [t for t, _ in w["top"]]
        assert [t["logprob"] for t in g["top_logprobs"]] == pytest.approx([v for _, v in w["top"]], abs=1e-4)


def test_logprobs_are_the_models_log_probabilities(client, reference_tiny):
    response = client.post("/v1/chat/completions", json=chat("tiny", PROMPT, max_tokens=8, logprobs=True, top_logprobs=3))
    text = answer(response)
    choice = response.json()["choices"][0]
    want = entries_of(reference_tiny, reference(reference_tiny, PROMPT, 8), 3)
    assert_entries(choice["logprobs"]["content"], want)
    # greedy: each token is its step's likeliest
    for entry in choice["logprobs"]["content"]:
        assert entry["logprob"] == pytest.approx(entry["top_logprobs"][0]["logprob"])
    without_top = client.post("/v1/chat/completions", json=chat("tiny", PROMPT, max_tokens=8, logprobs=True)).json()
    assert [e["top_logprobs"] for e in without_top["choices"][0]["logprobs"]["content"]] == [[]] * len(want)
    assert without_top["choices"][0]["message"]["content"] == text
    plain = client.post("/v1/chat/completions", json=chat("tiny", PROMPT, max_tokens=8)).json()
    assert plain["choices"][0]["logprobs"] is None and plain["choices"][0]["message"]["content"] == text


def test_streamed_logprobs_add_up_to_the_plain_ones(client):
    body = chat("tiny", PROMPT, max_tokens=10, logprobs=True, top_logprobs=2)
    plain = client.post("/v1/chat/completions", json=body).json()["choices"][0]["logprobs"]["content"]
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
        events = sse_events(response)
    streamed = [entry for e in events[:-1] if e["choices"] and e["choices"][0]["logprobs"]
                for entry in e["choices"][0]["logprobs"]["content"]]
    assert streamed == plain and len(plain) >= 2


def test_a_stop_string_drops_the_logprobs_after_it(client, reference_tiny):
    full = client.post("/v1/chat/completions", json=chat("tiny", PROMPT, max_tokens=10, logprobs=True)).json()
    entries = full["choices"][0]["logprobs"]["content"]
    stop = entries[3]["token"]  # a token in the middle of the answer
    assert stop.strip() and stop not in "".join(e["token"] for e in entries[:3])
    cut = client.post("/v1/chat/completions", json=chat("tiny", PROMPT, max_tokens=10, logprobs=True, stop=[stop])).json()
    kept = cut["choices"][0]["logprobs"]["content"]
    assert kept == entries[: len(kept)] and len(kept) <= 3


def test_penalties_and_logit_bias_follow_openais_definition(client, reference_tiny):
    plain = reference(reference_tiny, PROMPT, 12)
    banned = plain[0][0]  # the token greedy decoding starts with
    bias = {banned: -100.0, plain[1][0]: 2.5}
    want = reference(reference_tiny, PROMPT, 12, bias=bias, frequency=1.5, presence=0.5)
    assert [t for t, _ in want] != [t for t, _ in plain]  # the settings change the answer
    body = chat("tiny", PROMPT, max_tokens=12, logprobs=True, frequency_penalty=1.5, presence_penalty=0.5,
                logit_bias={str(k): v for k, v in bias.items()})
    response = client.post("/v1/chat/completions", json=body)
    got = response.json()["choices"][0]["logprobs"]["content"]
    assert_entries(got, entries_of(reference_tiny, want, 0))
    assert banned not in [t for t, _ in want]
    frequency_only = reference(reference_tiny, PROMPT, 12, frequency=2.0)
    body = chat("tiny", PROMPT, max_tokens=12, logprobs=True, frequency_penalty=2.0)
    got = client.post("/v1/chat/completions", json=body).json()["choices"][0]["logprobs"]["content"]
    assert [e["token"] for e in got] == [e["token"] for e in entries_of(reference_tiny, frequency_only, 0)]


def test_logprob_requests_batch_with_plain_ones(client, reference_tiny):
    """Rows with and without logprobs, bias and penalties in one batch each get their own."""
    from concurrent.futures import ThreadPoolExecutor

    first = reference(reference_tiny, PROMPT, 1)[0][0]
    bodies = [chat("tiny", PROMPT, max_tokens=6), chat("tiny", PROMPT, max_tokens=6, logprobs=True, top_logprobs=1),
              chat("tiny", PROMPT, max_tokens=6, presence_penalty=2.0, logit_bias={str(first): -50}),
              chat("tiny", "hello", max_tokens=6)]
    alone = [client.post("/v1/chat/completions", json=b).json()["choices"][0] for b in bodies]
    with ThreadPoolExecutor(len(bodies) * 2) as pool:
        together = list(pool.map(lambda b: client.post("/v1/chat/completions", json=b).json()["choices"][0], bodies * 2))
    for got, want in zip(together, alone * 2):
        assert got["message"] == want["message"]
        if want["logprobs"] is None:
            assert got["logprobs"] is None
        else:  # the same tokens; their values up to float error of a padded batch
            assert [e["token"] for e in got["logprobs"]["content"]] == [e["token"] for e in want["logprobs"]["content"]]
            assert [e["logprob"] for e in got["logprobs"]["content"]] == pytest.approx(
                [e["logprob"] for e in want["logprobs"]["content"]], abs=1e-4)
    assert alone[1]["logprobs"] is not None and alone[0]["logprobs"] is None
    assert alone[2]["message"] != alone[0]["message"]  # the bias changed that row's answer


@pytest.fixture(scope="module")
def reference_tiny(reference):
    return reference["tiny"]


def test_logit_bias_keys_must_be_token_ids(client):
    for key in ("-1", "abc", "1.5", "99999999999999", "\u0661"):  # the last: an Arabic-Indic digit one
        response = client.post("/v1/chat/completions", content=json.dumps(chat("tiny", "hi", logit_bias={key: 1})))
        assert response.status_code == 400 and response.json()["error"]["param"] == "logit_bias", key
