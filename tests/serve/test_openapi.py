"""/openapi.json declares the request bodies and every status the endpoints answer, and a
schema-based fuzzer (schemathesis, a bounded number of examples per operation, positive and
negative) run from it against the live server finds no 5xx, no undeclared status, and no
answer that breaks its declared schema."""

from __future__ import annotations

import pytest


POSTS = {"/v1/chat/completions": "ChatRequest", "/v1/figures/classify": "ClassifyRequest",
         "/v1/figures/caption": "CaptionRequest"}


def test_the_schema_declares_request_bodies_and_error_statuses(client):
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    for path, model in POSTS.items():
        operation = schema["paths"][path]["post"]
        body = operation["requestBody"]
        assert body["required"] is True
        assert body["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{model}"}
        assert set(operation["responses"]) >= {"200", "400", "404", "408", "413", "422", "429", "431", "500", "503", "504"}
        assert operation["responses"]["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    chat = components["ChatRequest"]
    assert chat["required"] == ["model", "messages"] and chat["additionalProperties"] is False
    assert {"logprobs", "top_logprobs", "logit_bias", "tools", "response_format"} <= set(chat["properties"])
    assert components["ErrorBody"]["properties"]["error"] == {"$ref": "#/components/schemas/ErrorDetail"}
    assert chat["properties"]["model"]["enum"] == ["tiny", "lora"]
    example = schema["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert client.post("/v1/chat/completions", json=example).status_code == 200
    for path in ("/health", "/v1/models", "/v1/models/{name}", "/v1/examples"):
        assert "404" in schema["paths"][path]["get"]["responses"], path


def test_a_schema_based_fuzzer_finds_nothing(server):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,
                                                   response_schema_conformance, status_code_conformance)

    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= set(POSTS)
    for operation in operations:
        for mode, examples, extra in ((GenerationMode.POSITIVE, 25, []), (GenerationMode.NEGATIVE, 25, [negative_data_rejection])):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
            def fuzz(case):
                case.call_and_validate(base_url=server.url, checks=checks + extra, timeout=30)

            try:
                fuzz()
            except Unsatisfiable:  # nothing to break in a request without parameters or body (GET /health)
                assert mode is GenerationMode.NEGATIVE, operation.label
