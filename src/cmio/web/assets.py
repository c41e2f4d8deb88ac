"""Static assets: the stylesheet, htmx, the page script and the Vega-Lite bundle.

Nothing is fetched from a CDN: htmx ships in ``static/`` and the Vega, Vega-Lite and
Vega-Embed bundle is produced offline by ``vl-convert-python`` and cached on disk
(https://vega.github.io/vega-lite/usage/embed.html).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["VegaBundle", "asset_routes"]

STATIC_DIR = Path(__file__).resolve().parent / "static"


class VegaBundle:
    """The browser bundle of Vega-Embed + Vega-Lite + Vega, built once per machine.

    Args:
        cache_dir: where the bundle is kept between runs (``$CMIO_CACHE_DIR``).
    """

    def __init__(self, cache_dir: Path | None = None) -> None:
        if cache_dir is None:
            from cmio.model.cache import default_cache_dir

            cache_dir = default_cache_dir()
        self.cache_dir = cache_dir
        self._lock = threading.Lock()
        self._body: bytes | None = None
        self._etag = ""

    def body(self) -> tuple[bytes, str]:
        """The bundle's bytes and ETag (built or read on first use, then kept)."""
        with self._lock:
            if self._body is None:
                self._body = self._load()
                self._etag = '"' + hashlib.sha256(self._body).hexdigest()[:20] + '"'
            return self._body, self._etag

    def _load(self) -> bytes:
        import vl_convert

        versions = "-".join(
            [
                vl_convert.get_vega_version(),
                vl_convert.get_vega_embed_version(),
                *sorted(vl_convert.get_vegalite_versions())[-1:],
            ]
        )
        path = self.cache_dir / f"vega-bundle-{versions}.js"
        try:
            return path.read_bytes()
        except OSError:
            pass
        body = _bundle_text().encode("utf-8")
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            temp = path.with_suffix(f".{os.getpid()}.tmp")
            temp.write_bytes(body)
            temp.replace(path)
        except OSError:
            pass  # a read-only cache only costs the rebuild next time
        return body


def _bundle_text() -> str:
    import vl_convert

    build: Any = vl_convert.javascript_bundle  # its stub wants a snippet; None = the default
    text: str = build()
    return text


def asset_routes(bundle: VegaBundle) -> list[Route | Mount]:
    """``/static/vega.js`` (the chart bundle), ``/static/*`` (package files) and the icon."""

    async def vega(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        body, etag = await run_in_threadpool(bundle.body)
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"etag": etag})
        return Response(
            body,
            media_type="text/javascript",
            headers={"etag": etag, "cache-control": "public, max-age=86400"},
        )

    async def favicon(request: Request) -> Response:
        return Response(
            (STATIC_DIR / "favicon.svg").read_bytes(),
            media_type="image/svg+xml",
            headers={"cache-control": "public, max-age=86400"},
        )

    return [
        Route("/favicon.ico", favicon),
        Route("/static/vega.js", vega),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
