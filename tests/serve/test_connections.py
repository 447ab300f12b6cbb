"""Slow, idle and oversized connections, by raw sockets to 127.0.0.1: a server with 1 s header
and body deadlines answers 408 (or closes) when they pass, and 431 to headers over its limit;
each wait is bounded by the socket's own timeout, never a sleep, and no test asserts on the
seconds a wait took: a server that misses its deadline fails by the socket's timeout."""

from __future__ import annotations

import json
import socket

import pytest

from scitune.serve.limits import ServeLimits

DEADLINE_S = 1.0
WAIT_S = 15.0  # how long a test waits on a socket before it fails (a server without deadlines waits forever)
PAST_DEADLINE_S = DEADLINE_S + 5  # the socket's wait where the server must act on its deadline


@pytest.fixture(scope="module")
def guarded(slots):
    from scitune.serve.app import create_app
    from scitune.serve.server import ServerThread

    limits = ServeLimits(header_timeout_s=DEADLINE_S, body_timeout_s=DEADLINE_S, max_header_bytes=16 * 1024, max_queue=4)
    with ServerThread(create_app(slots, limits)) as running:
        yield running


def exchange(server, data: bytes, wait_s: float = WAIT_S) -> bytes:
    """Sends `data`, then reads until the server closes the connection: what it sent. Fails if
    the server neither answers nor closes within `wait_s` of the last byte sent."""
    with socket.create_connection((server.host, server.port), timeout=wait_s) as sock:
        if data:
            sock.sendall(data)
        received = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError:
                pytest.fail(f"the server neither answered nor closed within {wait_s} s; got {b''.join(received)[:200]!r}")
            if not chunk:
                break
            received.append(chunk)
        return b"".join(received)


def status_and_error(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)["error"]


def test_a_body_that_never_arrives_is_408_within_the_deadline(guarded):
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
               b"content-length: 100\r\n\r\n{\"model\":")
    status, error = status_and_error(exchange(guarded, request, PAST_DEADLINE_S))
    assert status == 408 and error["code"] == "request_timeout" and error["type"] == "timeout_error"


def test_headers_that_never_end_are_408_within_the_deadline(guarded):
    answer = exchange(guarded, b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ", PAST_DEADLINE_S)
    status, error = status_and_error(answer)
    assert status == 408 and error["code"] == "request_timeout"


def test_a_connection_that_sends_nothing_is_closed(guarded):
    answer = exchange(guarded, b"", PAST_DEADLINE_S)
    if answer:
        assert status_and_error(answer)[0] == 408


def test_a_200_kb_header_is_431_not_a_reset(guarded):
    request = (b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: " + b"a" * 200_000 + b"\r\n\r\n")
    answer = exchange(guarded, request)
    status, error = status_and_error(answer)
    assert status == 431 and error["code"] == "headers_too_large" and "16384" in error["message"]


def test_a_well_behaved_client_is_served_and_kept_alive(guarded):
    with socket.create_connection((guarded.host, guarded.port), timeout=WAIT_S) as sock:
        for _ in range(2):  # two requests on one connection
            sock.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 200")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
            body = head.partition(b"\r\n\r\n")[2]
            while len(body) < length:
                body += sock.recv(65536)
            assert json.loads(body)["status"] == "ok"
