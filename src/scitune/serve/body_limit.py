"""Reading a request's body under a byte limit and a deadline: the server's ASGI middleware."""

from __future__ import annotations

import asyncio
import json
import time

from scitune.serve.errors import error_body


class BodyLimit:
    """ASGI middleware: reads a request body whole, up to `max_bytes`, then hands it on. A body
    over the limit is answered 413 (from its Content-Length header when it has one, else once the
    limit is passed); the rest of it is read and dropped first, up to `DRAIN_BYTES`, so that the
    client, still sending, reads the answer instead of a reset connection. A body not whole within
    `timeout_s` of the request's headers is answered 408 and its connection closed (uvicorn has no
    read timeout: a client that declares a body and never sends it would hold the connection)."""

    DRAIN_BYTES = 64 * 1024**2

    def __init__(self, app, max_bytes: int, timeout_s: float = 30.0):
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        too_large = f"the request body is over the limit of {self.max_bytes} bytes"
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                return await _send_error(send, 400, "Content-Length is not a number", "invalid_content_length")
            if size > self.max_bytes:
                if size <= self.DRAIN_BYTES:
                    await _drain(receive, self.DRAIN_BYTES)
                return await _send_error(send, 413, f"the request body is {size} bytes, over the limit of {self.max_bytes}",
                                         "body_too_large")
        chunks, size = [], 0
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                return await _send_error(send, 408, f"the request body did not arrive within {self.timeout_s:g} s",
                                         "request_timeout")
            if message["type"] == "http.disconnect":
                return None
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                if message.get("more_body", False):
                    await _drain(receive, self.DRAIN_BYTES)
                return await _send_error(send, 413, too_large, "body_too_large")
            chunks.append(body)
            if not message.get("more_body", False):
                break
        body, delivered = b"".join(chunks), False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


async def _drain(receive, budget: int, timeout_s: float = 10.0) -> None:
    """Reads and drops the rest of a request body, up to `budget` bytes and `timeout_s` seconds."""
    deadline = time.monotonic() + timeout_s
    while budget > 0:
        try:
            message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            return
        if message["type"] != "http.request":
            return
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _send_error(send, status: int, message: str, code: str) -> None:
    payload = json.dumps(error_body(status, message, code)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})
