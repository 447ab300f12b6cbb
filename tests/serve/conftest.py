"""Fixtures of the serve tests (their tiny checkpoint and LoRA adapter are the session's
`checkpoints`, tests/conftest.py): the app in a thread of this process on a free port of
127.0.0.1, and `scitune serve` itself as a subprocess (started early, so it loads while the
in-process tests run)."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from scitune.serve.limits import ServeLimits
from tests.waiting import wait_until

HERE = Path(__file__).resolve().parent
ARTIFACTS = Path(os.environ.get("SCITUNE_TEST_ARTIFACTS", HERE / "artifacts"))
CLI_START_TIMEOUT_S = 180


def png_bytes(width: int = 96, height: int = 72, color=(200, 40, 40), kind: str = "PNG") -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([width // 8, height // 3, width // 3, height - 4], fill=color)
    draw.rectangle([width // 2, height // 5, width // 2 + width // 6, height - 4], fill=(40, 80, 200))
    buffer = io.BytesIO()
    image.save(buffer, format=kind)
    return buffer.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def chat(model: str, text: str, image: str | None = None, max_tokens: int = 6, **extra) -> dict:
    content = text if image is None else [{"type": "image_url", "image_url": {"url": image}}, {"type": "text", "text": text}]
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens, **extra}


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every serve test runs on one thread (tests/conftest.py)."""


@pytest.fixture(scope="session")
def image_root(tmp_path_factory):
    """A folder of images for --image-root, with a link that leads out of it."""
    root = tmp_path_factory.mktemp("serve-images")
    (root / "figs").mkdir()
    (root / "figs" / "bars.png").write_bytes(png_bytes())
    outside = tmp_path_factory.mktemp("outside") / "secret.png"
    outside.write_bytes(png_bytes(color=(0, 0, 0)))
    (root / "figs" / "link.png").symlink_to(outside)
    return root


# Limits of the in-process server: small, so the tests reach them cheaply.
TEST_LIMITS = ServeLimits(max_body_bytes=2 * 1024**2, max_image_bytes=512 * 1024, max_image_pixels=1_000_000,
                          max_images=2, max_tokens=64, default_max_tokens=16, max_batch=8, window_ms=20,
                          max_queue=64, timeout_s=60)


@pytest.fixture(scope="session")
def slots(checkpoints):
    from scitune.serve.models import load_slots

    return load_slots([f"tiny={checkpoints['tiny']}", f"lora={checkpoints['lora']}"])


@pytest.fixture(scope="session")
def server(slots, image_root):
    """The app in a thread of this process (uvicorn on 127.0.0.1, a free port)."""
    from scitune.serve.app import create_app
    from scitune.serve.server import ServerThread

    with ServerThread(create_app(slots, TEST_LIMITS, image_root=image_root), max_queue=TEST_LIMITS.max_queue) as running:
        yield running


@pytest.fixture(scope="session")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
def reference(checkpoints):
    """Engines on the same checkpoints, outside any server: what one-by-one generation gives."""
    from scitune.inference import Engine
    from scitune.model import load_model

    engines = {}
    for name in ("tiny", "merged"):
        model, processor = load_model(checkpoints[name])
        engines[name] = Engine(model, processor)
    return engines


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CliServer:
    """`scitune serve` in a subprocess on 127.0.0.1."""

    def __init__(self, checkpoint: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "scitune", "--threads", "1", "serve", "--model", f"tiny={checkpoint}",
                   "--host", "127.0.0.1", "--port", str(self.port), "--max-batch", "8", "--max-queue", "256",
                   "--max-tokens", "64", "--max-body-mb", "1", "--max-image-mb", "0.5", "--timeout", "120",
                   "--log-level", "warning"]
        self.handle = log.open("w")
        self.process = subprocess.Popen(command, stdout=self.handle, stderr=subprocess.STDOUT, env=env)

    def answers(self) -> bool:
        """Whether the server answers /health (a RuntimeError once its process has exited)."""
        if self.process.poll() is not None:
            raise RuntimeError(f"scitune serve exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
        try:
            return httpx.get(self.url + "/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait(self) -> CliServer:
        try:
            wait_until(self.answers, CLI_START_TIMEOUT_S, f"scitune serve to answer on {self.url}", poll_s=0.25)
        except AssertionError as err:
            raise RuntimeError(f"{err}: {self.log.read_text()[-2000:]}") from None
        return self

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()  # uvicorn shuts down on SIGTERM
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.handle.close()
        return self.process.returncode


@pytest.fixture(scope="session")
def cli_server_process(checkpoints, tmp_path_factory):
    running = CliServer(checkpoints["tiny"], tmp_path_factory.mktemp("cli-serve") / "serve.log")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def cli_server(cli_server_process):
    return cli_server_process.wait()


@pytest.fixture(scope="session", autouse=True)
def start_cli_server_early(request):
    """Starts `scitune serve` at the beginning of a session that will use it, without waiting."""
    wanted = any("cli_server" in getattr(item, "fixturenames", ()) for item in request.session.items)
    if wanted:
        request.getfixturevalue("cli_server_process")
