"""The web page at `/`: a small page of our own (static HTML, CSS and JavaScript shipped as
package data in `scitune/serve/static/`), which talks to the same API as any client: choose a
model (or two, side by side), upload a figure or pick a built-in example, ask, and read the answer
as it streams; the figure-type probabilities are drawn as a bar chart. Model output is put on the
page as text, never as HTML."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import Response

from scitune.serve.errors import ApiError

FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
HEADERS = {
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'",
}


def static_file(name: str) -> bytes:
    return resources.files("scitune.serve").joinpath("static", name).read_bytes()


def mount(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def index():
        return Response(static_file("index.html"), media_type=FILES["index.html"], headers=HEADERS)

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str):
        if name not in FILES:
            raise ApiError(404, f"no static file {name!r}", "not_found")
        return Response(static_file(name), media_type=FILES[name], headers=HEADERS)
