"""Hostile input through the real server (uvicorn on 127.0.0.1): every string and number edge
case in every field of every POST endpoint is answered 200 or a 4xx with OpenAI's error object,
never a 500; fields the server does not implement are refused with a 400 naming them."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.serve.conftest import data_url, png_bytes

HOLE = "\u0000HOLE\u0000"  # where an edge case goes, as raw JSON text
IMAGE = data_url(png_bytes(32, 24))

# raw JSON text of each edge case: (name, text, the status it must get, or None for "any 2xx/4xx")
HUGE = "1" + "0" * 4999
EDGES = [
    ("lone surrogate", '"\\ud800"', 400),
    ("lone low surrogate", '"a\\udfffb"', 400),
    ("huge integer", HUGE, 400),
    ("huge negative integer", "-" + HUGE, 400),
    ("NaN", "NaN", 400),
    ("Infinity", "Infinity", 400),
    ("-Infinity", "-Infinity", 400),
    ("1e400", "1e400", 400),
    ("huge float text", HUGE + ".5", 400),
    ("deep nesting", "[" * 10_000 + "]" * 10_000, 400),
    ("deep objects", '{"a":' * 5_000 + "1" + "}" * 5_000, 400),
    ("empty string", '""', None),
    ("null", "null", None),
    ("zero", "0", None),
    ("negative", "-1", None),
    ("float", "0.5", None),
    ("true", "true", None),
    ("empty list", "[]", None),
    ("empty object", "{}", None),
    ("a string of digits", '"5"', None),
    ("a control character", '"\\u0000"', None),
    ("a long string", json.dumps("x" * 40_000), None),
]

CHAT = {"model": "tiny", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}], "logit_bias": {"5": 1}}
# every field of the chat request that the server reads, as a path into CHAT
CHAT_FIELDS = ["model", "messages", "messages.0", "messages.0.role", "messages.0.content", "messages.0.name",
               "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "stop", "stream", "n",
               "stream_options", "logprobs", "top_logprobs", "frequency_penalty", "presence_penalty", "logit_bias",
               "logit_bias.5", "user", "tools", "tool_choice", "response_format"]
CLASSIFY = {"model": "tiny", "image": IMAGE, "labels": ["Graph Plots", "Table"]}
CLASSIFY_FIELDS = ["model", "image", "labels", "labels.0", "question"]
CAPTION = {"model": "tiny", "image": IMAGE, "max_tokens": 2}
CAPTION_FIELDS = ["model", "image", "max_tokens"]


def with_hole(template: dict, path: str) -> dict:
    body = json.loads(json.dumps(template))
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = HOLE
    else:
        node[last] = HOLE
    return body


def raw_body(template: dict, path: str, edge: str) -> bytes:
    text = json.dumps(with_hole(template, path))
    hole = json.dumps(HOLE)
    assert text.count(hole) == 1
    return text.replace(hole, edge).encode()


def check_answer(response: httpx.Response, expected: int | None, what: str) -> None:
    assert response.status_code < 500, (what, response.status_code, response.text[:300])
    if expected is not None:
        assert response.status_code == expected, (what, response.status_code, response.text[:300])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, (what, error)
        assert error["message"] and error["type"] and error["code"], (what, error)


ENDPOINTS = [("/v1/chat/completions", CHAT, CHAT_FIELDS), ("/v1/figures/classify", CLASSIFY, CLASSIFY_FIELDS),
             ("/v1/figures/caption", CAPTION, CAPTION_FIELDS)]


@pytest.mark.parametrize("path,template,fields", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_every_edge_case_in_every_field_is_answered_without_a_500(client, path, template, fields):
    assert client.post(path, json=template).status_code == 200  # the template itself is good
    cases = [(f"{path} {field} = {name}", raw_body(template, field, edge), expected)
             for field in fields for name, edge, expected in EDGES]

    def send(case):  # concurrently, so that the requests that generate share batches
        what, body, expected = case
        check_answer(client.post(path, content=body, headers={"content-type": "application/json"}), expected, what)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, cases))


@pytest.mark.parametrize("name,edge,expected", [e for e in EDGES if e[2]], ids=[e[0] for e in EDGES if e[2]])
def test_edge_cases_at_the_top_and_in_keys(client, name, edge, expected):
    for body in (edge, '{"model": "tiny", ' + json.dumps("k") + ": " + edge + "}"):
        response = client.post("/v1/chat/completions", content=body.encode(), headers={"content-type": "application/json"})
        check_answer(response, expected, name)
    if "surrogate" in name:  # a surrogate in an object's key
        body = '{"model": "tiny", "messages": [{"role": "user", "content": "hi", ' + edge + ": 1}]}"
        response = client.post("/v1/chat/completions", content=body.encode(), headers={"content-type": "application/json"})
        check_answer(response, 400, name)


def test_a_surrogate_names_its_field_and_a_paired_one_is_text(client):
    body = raw_body(CHAT, "messages.0.content", '"x\\ud800"')
    error = client.post("/v1/chat/completions", content=body).json()["error"]
    assert error["code"] == "invalid_string" and error["param"] == "messages[0].content"
    paired = raw_body(CHAT, "messages.0.content", '"\\ud83d\\ude00 what is this?"')  # an emoji, escaped as a pair
    assert client.post("/v1/chat/completions", content=paired).status_code == 200


def test_empty_content_and_prompts_are_refused(client):
    for content in ([], "", "   ", [{"type": "text", "text": ""}], [{"type": "text", "text": " "}]):
        body = {**CHAT, "messages": [{"role": "user", "content": content}]}
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 400, (content, response.text)
        assert response.json()["error"]["param"] == "messages[0].content"
    system_empty = {**CHAT, "messages": [{"role": "system", "content": []}, {"role": "user", "content": "hi"}]}
    assert client.post("/v1/chat/completions", json=system_empty).json()["error"]["param"] == "messages[0].content"
    image_only = {**CHAT, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": IMAGE}}]}]}
    assert client.post("/v1/chat/completions", json=image_only).status_code == 200


REFUSED = {
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "tool_choice": "required",
    "parallel_tool_calls": True,
    "functions": [{"name": "f"}],
    "function_call": "auto",
    "response_format": {"type": "json_object"},
    "audio": {"voice": "alloy", "format": "wav"},
    "modalities": ["text", "audio"],
    "prediction": {"type": "content", "content": "x"},
    "reasoning_effort": "high",
    "verbosity": "low",
    "web_search_options": {},
    "store": True,
    "metadata": {"a": "b"},
    "service_tier": "flex",
    "stream_options": {"include_usage": True},  # without stream: true
    "top_logprobs": 2,  # without logprobs: true
    "logit_bias": {"99999999": 1},  # not a token id
    "unknown_field": 1,
}


@pytest.mark.parametrize("field", list(REFUSED))
def test_unimplemented_fields_are_refused_naming_them(client, field):
    response = client.post("/v1/chat/completions", json={**CHAT, field: REFUSED[field]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == field and field in error["message"]


def test_schema_response_format_and_tool_choice_in_a_tool_call_message_are_refused(client):
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    response = client.post("/v1/chat/completions", json={**CHAT, "response_format": schema})
    assert response.status_code == 400 and response.json()["error"]["param"] == "response_format"
    obfuscated = {**CHAT, "stream": True, "stream_options": {"include_obfuscation": True}}
    assert client.post("/v1/chat/completions", json=obfuscated).json()["error"]["param"] == "stream_options"
    forced = {**CHAT, "tools": REFUSED["tools"], "tool_choice": {"type": "function", "function": {"name": "f"}}}
    assert client.post("/v1/chat/completions", json=forced).json()["error"]["param"] == "tools"
    history = {**CHAT, "messages": [{"role": "user", "content": "a"},
                                    {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function"}]},
                                    {"role": "user", "content": "b"}]}
    assert client.post("/v1/chat/completions", json=history).json()["error"]["param"] == "messages[1].tool_calls"


def test_defaults_of_unimplemented_fields_are_accepted(client):
    plain = client.post("/v1/chat/completions", json=CHAT).json()["choices"][0]["message"]["content"]
    defaults = {"tool_choice": "none", "tools": [], "response_format": {"type": "text"}, "store": False,
                "modalities": ["text"], "service_tier": "auto", "user": "someone", "n": 1, "logprobs": False,
                "frequency_penalty": 0, "presence_penalty": 0.0, "logit_bias": {}, "stream": False, "metadata": None}
    response = client.post("/v1/chat/completions", json={**CHAT, **defaults})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == plain
    history = {**CHAT, "messages": [{"role": "user", "content": "a"},
                                    {"role": "assistant", "content": "b", "tool_calls": None, "refusal": None,
                                     "function_call": None, "audio": None, "annotations": []},
                                    {"role": "user", "content": "c"}]}
    assert client.post("/v1/chat/completions", json=history).status_code == 200
