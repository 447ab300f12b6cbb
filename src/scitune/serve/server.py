"""Running the app on uvicorn: in the foreground (`scitune serve`), or in a thread of this process
on a port of 127.0.0.1 the system picks (tests, `benchmarks/serve_throughput.py`).

Connections are guarded by `GuardedH11`, uvicorn's h11 protocol with what it lacks for a server
facing untrusted clients: a deadline for a request's headers (uvicorn has only a keep-alive timeout
between requests, so a client that opens a connection and sends nothing, or half its headers,
would hold it forever), and an answer, rather than a reset, to headers over the size limit. The
deadline for a request's body is kept by `scitune.serve.body_limit.BodyLimit`, which reads the body. The
limits come from the app's `ServeLimits` (`app.state.limits`)."""

from __future__ import annotations

import json
import socket
import threading
import time

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from scitune.serve.errors import error_body
from scitune.serve.limits import ServeLimits

# connections beyond the queue: uvicorn answers 503 rather than accepting without bound
EXTRA_CONNECTIONS = 256
# after an error answer to a request we did not read (headers too large), what is still coming is
# read and dropped, up to this many bytes or seconds, so that the client reads the answer instead
# of a reset connection
DISCARD_BYTES = 1024**2
DISCARD_S = 2.0


def raw_error(status: int, message: str, code: str) -> bytes:
    """A whole HTTP/1.1 error answer (OpenAI's error object) that closes the connection, for
    answers given outside h11's request cycle."""
    from http import HTTPStatus

    body = json.dumps(error_body(status, message, code)).encode()
    head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode("ascii") + body


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with a header deadline (408) and a 431 for oversized headers.

    `limits` is set on a subclass made for each server (`protocol_for`)."""

    limits: ServeLimits = ServeLimits()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._header_timer = None
        self._discarding = 0  # bytes still to drop after an early answer; 0: not dropping

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.limits.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _waiting_for_headers(self) -> bool:
        return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            self._discarding = max(0, self._discarding - len(data))
            if not self._discarding:
                self.transport.close()
            return
        super().data_received(data)
        if self.transport.is_closing():
            self._disarm()
        elif self._waiting_for_headers():
            self._arm()  # (part of) the next request's headers: they have until the deadline
        else:
            self._disarm()

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._waiting_for_headers():
            return
        self._answer_and_close(408, f"the request's headers did not arrive within {self.limits.header_timeout_s:g} s",
                               "request_timeout")

    def send_400_response(self, msg: str) -> None:
        """h11 could not parse the request: 431 when its headers are over the limit, else 400."""
        buffered = len(self.conn.trailing_data[0])
        if buffered > self.limits.max_header_bytes:
            self._answer_and_close(431, f"the request's headers are over the limit of {self.limits.max_header_bytes} bytes",
                                   "headers_too_large")
        else:
            self._answer_and_close(400, "malformed HTTP request", "bad_http_request")

    def _answer_and_close(self, status: int, message: str, code: str) -> None:
        """Answers, stops sending, and drops what the client still sends for a while (a close with
        unread data would reset the connection, and the client would lose the answer)."""
        self._disarm()
        self.transport.write(raw_error(status, message, code))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self._discarding = DISCARD_BYTES
            self.transport.resume_reading()
            self.loop.call_later(DISCARD_S, self.transport.close)
        else:
            self.transport.close()


def protocol_for(limits: ServeLimits) -> type[GuardedH11]:
    return type("GuardedH11", (GuardedH11,), {"limits": limits})


def config(app, host: str, port: int, max_queue: int | None = None, log_level: str = "info") -> uvicorn.Config:
    limits = getattr(getattr(app, "state", None), "limits", None) or ServeLimits()
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, lifespan="on", access_log=log_level == "debug",
        limit_concurrency=(max_queue or limits.max_queue) + EXTRA_CONNECTIONS, timeout_keep_alive=5,
        timeout_graceful_shutdown=10, http=protocol_for(limits), h11_max_incomplete_event_size=limits.max_header_bytes,
    )


def serve(app, host: str, port: int, max_queue: int | None = None, log_level: str = "info") -> None:
    uvicorn.Server(config(app, host, port, max_queue, log_level)).run()


class ServerThread:
    """The app served by uvicorn in a daemon thread on `host` (default 127.0.0.1) and a free
    port; `url` once started; `stop()` shuts it down (the app's lifespan stops its model thread)."""

    def __init__(self, app, host: str = "127.0.0.1", max_queue: int | None = None, log_level: str = "warning"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.host, self.port = host, self.sock.getsockname()[1]
        self.server = uvicorn.Server(config(app, host, self.port, max_queue, log_level))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True,
                                       name="scitune-serve-test")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
