"""Running the app on uvicorn: in the foreground (`scitune serve`), or in a thread of this process
on a port of 127.0.0.1 the system picks (tests, `benchmarks/serve_throughput.py`)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

# connections beyond the queue: uvicorn answers 503 rather than accepting without bound
EXTRA_CONNECTIONS = 256


def config(app, host: str, port: int, max_queue: int, log_level: str = "info") -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, lifespan="on", access_log=log_level == "debug",
        limit_concurrency=max_queue + EXTRA_CONNECTIONS, timeout_keep_alive=5, timeout_graceful_shutdown=10,
        h11_max_incomplete_event_size=64 * 1024,
    )


def serve(app, host: str, port: int, max_queue: int, log_level: str = "info") -> None:
    uvicorn.Server(config(app, host, port, max_queue, log_level)).run()


class ServerThread:
    """The app served by uvicorn in a daemon thread on `host` (default 127.0.0.1) and a free
    port; `url` once started; `stop()` shuts it down (the app's lifespan stops its model thread)."""

    def __init__(self, app, host: str = "127.0.0.1", max_queue: int = 64, log_level: str = "warning"):
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
