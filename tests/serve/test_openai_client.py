"""The official `openai` Python client against `scitune serve` (the command, in a subprocess on
127.0.0.1): plain, streaming and image requests, the model list, and errors as the client's
exception types."""

from __future__ import annotations

import openai
import pytest

from tests.serve.conftest import data_url, png_bytes
from tests.serve.test_api import expected


@pytest.fixture(scope="module")
def oa(cli_server):
    client = openai.OpenAI(base_url=cli_server.url + "/v1", api_key="not-needed", max_retries=0, timeout=60)
    yield client
    client.close()


@pytest.fixture(scope="module")
def figure(tmp_path_factory):
    path = tmp_path_factory.mktemp("oa-figure") / "bars.png"
    path.write_bytes(png_bytes(120, 90, color=(30, 160, 60)))
    return path


def test_plain_request(oa, reference):
    response = oa.chat.completions.create(
        model="tiny", messages=[{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Which axis shows time?"}],
        max_tokens=8, temperature=0,
    )
    sample = {"id": "x", "conversations": [{"from": "system", "value": "Answer briefly."}, {"from": "human", "value": "Which axis shows time?"}]}
    engine = reference["tiny"]
    prompt = engine.renderer.prompt(sample, reserve=8)
    want = engine.tokenizer.decode(
        engine.generate_batch([prompt], max_new_tokens=8)[0], skip_special_tokens=True
    ).strip()
    choice = response.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == want
    assert choice.finish_reason in ("stop", "length")
    assert response.usage.prompt_tokens == len(prompt["input_ids"]) and 1 <= response.usage.completion_tokens <= 8
    assert response.model == "tiny"


def test_streaming_request(oa, reference):
    stream = oa.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Name the largest bar."}], max_tokens=10, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == expected(reference["tiny"], "Name the largest bar.", 10)
    assert len([c for c in chunks if c.choices and c.choices[0].finish_reason]) == 1
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 1


def test_image_request(oa, reference, figure):
    response = oa.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "What type of figure is this?"},
            {"type": "image_url", "image_url": {"url": data_url(figure.read_bytes()), "detail": "low"}},
        ]}],
        max_tokens=8,
    )
    assert response.choices[0].message.content == expected(reference["tiny"], "What type of figure is this?", 8, figure)


def test_models_and_errors(oa):
    assert [model.id for model in oa.models.list()] == ["tiny"]
    with pytest.raises(openai.NotFoundError) as missing:
        oa.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    assert "not found" in missing.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        oa.chat.completions.create(
            model="tiny", max_tokens=2,
            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}}]}],
        )
    assert bad.value.code == "invalid_image"
    with pytest.raises(openai.BadRequestError):
        oa.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=10_000)


def test_logprobs_and_refused_fields_through_the_client(oa):
    response = oa.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Name the largest bar."}],
                                          max_tokens=5, logprobs=True, top_logprobs=2, frequency_penalty=0.5)
    content = response.choices[0].logprobs.content
    assert 1 <= len(content) <= 5 and all(len(entry.top_logprobs) == 2 and entry.logprob <= 0 for entry in content)
    stream = oa.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Name the largest bar."}],
                                        max_tokens=5, logprobs=True, top_logprobs=2, frequency_penalty=0.5, stream=True)
    streamed = [entry.token for chunk in stream if chunk.choices and chunk.choices[0].logprobs
                for entry in chunk.choices[0].logprobs.content]
    assert streamed == [entry.token for entry in content]
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
    with pytest.raises(openai.BadRequestError) as refused:
        oa.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=2,
                                   tools=[tool], tool_choice="required")
    assert refused.value.param == "tools"
    with pytest.raises(openai.BadRequestError) as refused:
        oa.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=2,
                                   response_format={"type": "json_object"})
    assert refused.value.param == "response_format"
