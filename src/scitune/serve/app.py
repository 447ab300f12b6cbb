"""The FastAPI app: OpenAI's chat API, the figure endpoints, health, and the page.

- `GET /health`, `GET /v1/models`, `GET /v1/models/{id}`;
- `POST /v1/chat/completions` (OpenAI's schema; `stream: true` as server-sent events, ending
  with `data: [DONE]`; `stream_options.include_usage` adds a usage chunk);
- `POST /v1/figures/classify`: each label's probability, the softmax of the labels' summed
  log-likelihoods as answers to the figure-type question (`Engine.score_options`), not parsed
  from free text; `POST /v1/figures/caption`: a greedy caption;
- `GET /v1/examples`, `GET /v1/examples/{id}.png`: built-in example figures;
- `GET /`: the page (`scitune.serve.page`).

Every error is OpenAI's error object (`scitune.serve.errors`): 400 malformed JSON, a value we
cannot use or a field we do not implement, 404 unknown model or route, 408 a body (or headers,
`scitune.serve.server`) not sent in time, 413 over a size limit (body, image bytes or pixels,
images, text), 422 wrong shape or type, 429 queue full, 431 headers too large, 504 timeout, 500
only for a failure of ours. Bodies are read whole by `BodyLimit` before any handler sees them, up
to the size limit and within the body deadline.

`/openapi.json` declares each POST's request body (the models of `scitune.serve.schemas`; the
handlers parse the bytes themselves, strictly, so FastAPI's own parsing is not used) and every
status each endpoint answers, with the error object's schema.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from scitune import __version__
from scitune.data.corpus.vocab import FIGURE_TYPES
from scitune.data.instructions import CAPTION, FIGURE_TYPE
from scitune.serve import page
from scitune.serve.batcher import Batcher, Closed, Job, QueueFull, Result
from scitune.serve.body_limit import BodyLimit
from scitune.serve.errors import ApiError, error_body
from scitune.serve.limits import ServeLimits
from scitune.serve.models import ModelSlot
from scitune.serve.prompts import prepare_caption, prepare_chat, prepare_classify, request_id
from pydantic.json_schema import models_json_schema

from scitune.serve.schemas import CaptionRequest, ChatRequest, ClassifyRequest, ErrorBody, parse_body

log = logging.getLogger("scitune.serve")


def _error_response(err: ApiError) -> JSONResponse:
    headers = {"retry-after": "1"} if err.status in (429, 503) else None
    return JSONResponse(err.body(), status_code=err.status, headers=headers)


def _sse(obj) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _usage(result: Result) -> dict:
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens}


def _finish_reason(result: Result) -> str:
    return "length" if result.finish_reason == "length" else "stop"


# what each endpoint may answer besides 200, declared in /openapi.json with the error object
ERRORS = {
    400: "malformed JSON, a value the server cannot use, or a field it does not implement",
    404: "unknown model, route or example",
    408: "the request's headers or body did not arrive in time",
    413: "over a size limit (body, image, images, text, messages)",
    422: "a field of the wrong type or shape",
    429: "the queue is full; retry shortly",
    431: "the request's headers are too large",
    500: "a failure of the server",
    503: "the server is shutting down or its model thread has stopped",
    504: "the request took longer than the server's timeout",
}
ALWAYS = (400, 404, 408, 413, 431, 500)  # any request can meet these (routing, body reading, headers)


def _responses(*statuses: int) -> dict:
    return {status: {"model": ErrorBody, "description": ERRORS[status]} for status in sorted({*ALWAYS, *statuses})}


def _body(model) -> dict:
    """openapi_extra declaring `model` as the required JSON request body."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


def _openapi(app: FastAPI, models: list[str]) -> dict:
    """FastAPI's schema, with the request-body models the handlers parse themselves; `model` is
    one of the served `models`."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        bodies = (ChatRequest, ClassifyRequest, CaptionRequest)
        _, defs = models_json_schema([(m, "validation") for m in bodies], ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(defs.get("$defs", {}))
        for body in bodies:
            components[body.__name__]["properties"]["model"] = {"type": "string", "enum": models, "title": "Model"}
        chat = schema["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]
        chat["example"] = {"model": models[0], "max_tokens": 16,
                           "messages": [{"role": "user", "content": "What does a bar chart show?"}]}
        app.openapi_schema = schema
    return app.openapi_schema


def _logprobs(entries: list[dict] | None) -> dict | None:
    return {"content": entries, "refusal": None} if entries is not None else None


def softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    total = sum(weights)
    return [w / total for w in weights]


def create_app(
    slots: dict[str, ModelSlot],
    limits: ServeLimits | None = None,
    image_root: str | Path | None = None,
    labels: tuple[str, ...] = FIGURE_TYPES,
) -> FastAPI:
    """The app serving `slots` (name -> loaded model). The model thread starts and stops with
    the app's lifespan."""
    if not slots:
        raise ValueError("create_app needs at least one model")
    limits = limits or ServeLimits()
    root = Path(image_root).resolve() if image_root is not None else None
    batcher = Batcher(limits)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        try:
            yield
        finally:
            await run_in_threadpool(batcher.close)

    # no /docs: the Swagger page loads its scripts from a CDN; the schema is at /openapi.json
    app = FastAPI(title="scitune serve", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.batcher = batcher
    app.state.slots = slots
    app.state.limits = limits
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes, timeout_s=limits.body_timeout_s)
    app.openapi = lambda: _openapi(app, list(slots))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError):
        return _error_response(err)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException):
        message = f"no route {request.method} {request.url.path}" if err.status_code in (404, 405) else str(err.detail)
        return JSONResponse(error_body(err.status_code, message), status_code=err.status_code, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError):
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(error_body(422, f"{where}: {first.get('msg', 'invalid request')}"), status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, err: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body(500, f"internal error ({type(err).__name__})"), status_code=500)

    def slot_for(name: str) -> ModelSlot:
        slot = slots.get(name)
        if slot is None:
            raise ApiError(404, f"model {name!r} not found; this server has {', '.join(map(repr, slots))}",
                           "model_not_found", "model")
        return slot

    def submit(prepared, kind: str, stream: bool = False) -> Job:
        job = Job(prepared, kind, asyncio.get_running_loop(), stream=stream)
        try:
            batcher.submit(job)
        except QueueFull as err:
            raise ApiError(429, f"the server is busy ({err}); retry shortly", "queue_full") from None
        except Closed as err:
            raise ApiError(503, str(err), "unavailable") from None
        return job

    async def next_event(job: Job, deadline: float):
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise asyncio.TimeoutError
            return await asyncio.wait_for(job.events.get(), left)
        except asyncio.TimeoutError:
            job.cancel()
            raise ApiError(504, f"the request took longer than {limits.timeout_s:g} s", "timeout") from None

    async def result_of(job: Job) -> Result:
        deadline = job.enqueued + limits.timeout_s
        try:
            while True:
                kind, value = await next_event(job, deadline)
                if kind == "done":
                    return value
                if kind == "error":
                    raise value
        finally:
            job.cancel()  # no-op once done; a gone client or timeout frees its batch row

    # ------------------------------------------------------------------ info
    @app.get("/health", responses=_responses(503))
    async def health():
        body = {"status": "ok" if batcher.alive else "down", "version": __version__, "models": list(slots),
                "queue": batcher.stats()}
        return JSONResponse(body, status_code=200 if batcher.alive else 503)

    @app.get("/v1/models", responses=_responses())
    async def models():
        return {"object": "list", "data": [slot.describe() for slot in slots.values()]}

    @app.get("/v1/models/{name:path}", responses=_responses())
    async def model(name: str):
        return slot_for(name).describe()

    # ------------------------------------------------------------------ chat
    @app.post("/v1/chat/completions", responses=_responses(422, 429, 503, 504), openapi_extra=_body(ChatRequest))
    async def chat(request: Request):
        body = parse_body(ChatRequest, await request.body())
        slot = slot_for(body.model)
        prepared = await run_in_threadpool(prepare_chat, slot, body, limits, root)
        completion_id, created = request_id("chatcmpl"), int(time.time())
        job = submit(prepared, "generate", stream=bool(body.stream))
        if body.stream:
            usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(stream_chat(job, completion_id, created, body.model, usage), media_type="text/event-stream",
                                     headers={"cache-control": "no-cache", "x-accel-buffering": "no"})
        result = await result_of(job)
        return {
            "id": completion_id, "object": "chat.completion", "created": created, "model": body.model,
            "system_fingerprint": f"scitune-{__version__}",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text, "refusal": None},
                         "logprobs": _logprobs(result.logprobs), "finish_reason": _finish_reason(result)}],
            "usage": _usage(result),
        }

    async def stream_chat(job: Job, completion_id: str, created: int, model_name: str, include_usage: bool):
        def chunk(delta: dict, finish: str | None = None, entries: list[dict] | None = None) -> dict:
            return {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model_name,
                    "system_fingerprint": f"scitune-{__version__}",
                    "choices": [{"index": 0, "delta": delta, "logprobs": _logprobs(entries), "finish_reason": finish}]}

        deadline = job.enqueued + limits.timeout_s
        try:
            yield _sse(chunk({"role": "assistant", "content": ""}))
            while True:
                kind, value = await next_event(job, deadline)
                if kind == "delta":
                    piece, entries = value
                    yield _sse(chunk({"content": piece}, entries=entries))
                elif kind == "error":
                    yield _sse(value.body())
                    return
                else:
                    yield _sse(chunk({}, _finish_reason(value)))
                    if include_usage:
                        yield _sse({**chunk({}), "choices": [], "usage": _usage(value)})
                    yield "data: [DONE]\n\n"
                    return
        except ApiError as err:
            yield _sse(err.body())
        except Exception as err:  # the status line has gone: the error object ends the stream
            log.exception("unhandled error while streaming %s", completion_id)
            yield _sse(error_body(500, f"internal error ({type(err).__name__})"))
        finally:
            job.cancel()

    # ------------------------------------------------------------------ figures
    @app.post("/v1/figures/classify", responses=_responses(422, 429, 503, 504), openapi_extra=_body(ClassifyRequest))
    async def classify(request: Request):
        body = parse_body(ClassifyRequest, await request.body())
        slot = slot_for(body.model)
        prepared = await run_in_threadpool(prepare_classify, slot, body, limits, root, labels, FIGURE_TYPE[0])
        result = await result_of(submit(prepared, "score"))
        probabilities = softmax(result.scores)
        options = list(prepared.item.options)
        best = max(range(len(options)), key=lambda i: (probabilities[i], -i))
        return {
            "id": request_id("figcls"), "object": "figure.classification", "created": int(time.time()), "model": body.model,
            "question": prepared.item.prompt.split("\n", 1)[1],
            "prediction": options[best],
            "labels": [{"label": label, "probability": p, "log_likelihood": s}
                       for label, p, s in zip(options, probabilities, result.scores)],
        }

    @app.post("/v1/figures/caption", responses=_responses(422, 429, 503, 504), openapi_extra=_body(CaptionRequest))
    async def caption(request: Request):
        body = parse_body(CaptionRequest, await request.body())
        slot = slot_for(body.model)
        prepared = await run_in_threadpool(prepare_caption, slot, body, limits, root, CAPTION[0])
        result = await result_of(submit(prepared, "generate"))
        return {"id": request_id("figcap"), "object": "figure.caption", "created": int(time.time()), "model": body.model,
                "caption": result.text, "finish_reason": _finish_reason(result), "usage": _usage(result)}

    # ------------------------------------------------------------------ examples and the page
    @app.get("/v1/examples", responses=_responses())
    async def examples():
        from scitune.serve.examples import example_figures

        figures = await run_in_threadpool(example_figures)
        return {"object": "list", "data": [{"id": f["id"], "figure_type": f["figure_type"], "url": f"/v1/examples/{f['id']}.png"}
                                           for f in figures]}

    @app.get("/v1/examples/{name}.png", responses=_responses())
    async def example_png(name: str):
        from scitune.serve.examples import example_figures

        for figure in await run_in_threadpool(example_figures):
            if figure["id"] == name:
                return Response(figure["png"], media_type="image/png", headers={"cache-control": "max-age=3600"})
        raise ApiError(404, f"no example figure {name!r}", "example_not_found")

    page.mount(app)
    return app
