"""What the studio accepts from a browser: bounded uploads, verified pictures, validated names.

The server is meant for a person on their own machine (it binds to 127.0.0.1 by default), but a page on any other
site that person opens can still send requests to it, and uploads are untrusted bytes. So:

- uploads are capped in bytes (read at most ``max_bytes + 1``) and in pixels, the pixel count read from the header
  *before* decoding, so a decompression bomb (a small file that decodes to gigapixels) is refused without being
  decoded; only a few formats are parsed at all, and the file is checked with PIL's ``verify`` before it is decoded;
- no file path ever comes from a request: models are addressed by the names fixed at start, timeline frames by their
  index, and the static page is served from memory;
- ``Host`` must be one the server was started for (a DNS-rebinding page cannot address it under another name), and a
  state-changing request carrying an ``Origin`` from elsewhere is refused.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np
from PIL import Image, UnidentifiedImageError

# Formats PIL may parse for an upload; everything else is refused before a parser runs.
UPLOAD_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{16,64}$")


class UploadError(ValueError):
    """An upload that is refused; ``status`` is the HTTP status to answer with (413 too large, 415 not an image)."""

    def __init__(self, message: str, status: int = 415) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """Bounds on the work one request may ask for (every one is checked; a request beyond them gets a 4xx).

    Args:
        max_upload_bytes: largest uploaded file accepted.
        max_upload_pixels: largest uploaded picture (width x height), checked from the header before decoding.
        max_grid: images in one sample grid.
        max_steps: images in one interpolation strip.
        max_mix: seeds per side of a style-mixing grid.
        max_sliders: latent sliders (z coordinates) one request may move.
        max_seed: seeds are integers in ``[0, max_seed]``.
    """

    max_upload_bytes: int = 4 * 1024 * 1024
    max_upload_pixels: int = 4096 * 4096
    max_grid: int = 64
    max_steps: int = 16
    max_mix: int = 6
    max_sliders: int = 16
    max_seed: int = 2**31 - 1

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"limit {name} must be a positive integer, got {value!r}")

    def to_dict(self) -> dict[str, int]:
        return dict(vars(self))


def check_upload_size(data: bytes, limits: Limits) -> None:
    if len(data) > limits.max_upload_bytes:
        raise UploadError(f"upload too large: more than {limits.max_upload_bytes} bytes", status=413)
    if not data:
        raise UploadError("empty upload: expected a picture file", status=400)


def read_upload(data: bytes, limits: Limits) -> np.ndarray:
    """Verify and decode an uploaded picture to uint8 ``[H, W, C]`` (C = 1 for grey, 3 for colour).

    Raises ``UploadError`` (413 for too many bytes or pixels, 415 for anything that is not a whole picture in one of
    ``UPLOAD_FORMATS``). Animated pictures contribute their first frame; alpha is composited on black.
    """
    check_upload_size(data, limits)
    try:
        with Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS) as probe:
            fmt, (w, h) = probe.format, probe.size
            if w < 1 or h < 1:
                raise UploadError(f"zero-size picture ({w}x{h})")
            if w * h > limits.max_upload_pixels:
                raise UploadError(f"picture too large: {w}x{h} = {w * h} pixels, limit {limits.max_upload_pixels}",
                                  status=413)
            probe.verify()  # structure and checksums, without decoding the pixels
        with Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS) as im:
            if im.format != fmt or im.size != (w, h):
                raise UploadError("picture changed format or size between header and decode")
            im.seek(0)
            im.load()
            rgb = _to_rgb_or_grey(im)
    except UploadError:
        raise
    except Image.DecompressionBombError as e:
        raise UploadError(f"picture refused as a decompression bomb ({e})", status=413) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        accepted = ", ".join(UPLOAD_FORMATS)
        raise UploadError(f"not a readable picture ({accepted} accepted): {type(e).__name__}") from None
    arr = np.asarray(rgb, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _to_rgb_or_grey(im: Image.Image) -> Image.Image:
    if im.mode in ("1", "L", "I;16", "I", "F"):
        return im.convert("L")
    if im.mode in ("LA", "PA", "RGBA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    return im.convert("RGB")


def check_name(name: str, known: list[str], what: str = "model") -> str:
    """``name`` if it is one of ``known``; ``KeyError`` otherwise (path-like or unknown names never reach a lookup)."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or name not in known:
        shown = name if isinstance(name, str) and len(name) <= 80 else f"{str(name)[:80]}..."
        raise KeyError(f"unknown {what} {shown!r}; known: {', '.join(known) or '(none)'}")
    return name


def allowed_hosts_for(host: str) -> list[str]:
    """Host header values accepted for a server bound to ``host`` (loopback names when bound to loopback)."""
    loopback = ["127.0.0.1", "localhost", "[::1]", "::1"]
    if host in ("127.0.0.1", "localhost", "::1"):
        return loopback
    if host in ("0.0.0.0", "::"):
        return ["*"]  # bound to every interface on purpose: the user chose to serve the network
    return sorted({host, *loopback})


def host_allowed(host_header: str | None, allowed: list[str]) -> bool:
    """Whether a ``Host`` header (with or without port) names one of ``allowed`` (``"*"`` allows any)."""
    if "*" in allowed:
        return True
    if not host_header:
        return False
    host = host_header.strip().lower()
    if host.startswith("["):  # IPv6 literal with optional port
        host = host[: host.find("]") + 1] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host in {a.lower() for a in allowed}


def origin_allowed(origin: str | None, host_header: str | None) -> bool:
    """A request with no ``Origin`` (same-origin GET, curl) passes; otherwise the origin must be this server."""
    if origin is None:
        return True
    if origin == "null" or not host_header:
        return False
    return urlsplit(origin).netloc.lower() == host_header.strip().lower()


SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                 b"connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


def _too_large(limit: int) -> Exception:
    """Raised while the body streams in; an HTTP exception so the framework's body parsing passes it on as a 413."""
    from starlette.exceptions import HTTPException

    return HTTPException(413, f"request body too large (limit {limit} bytes)")


class GuardMiddleware:
    """ASGI middleware in front of the studio: ``Host`` check, same-origin check for state-changing requests, a cap
    on request bodies (counted as they stream in, whatever ``Content-Length`` claims), and security headers."""

    def __init__(self, app, allowed_hosts: list[str], max_body: int) -> None:  # noqa: ANN001 (any ASGI app)
        self.app, self.allowed_hosts, self.max_body = app, allowed_hosts, max_body

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 (ASGI signature)
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host")
        if not host_allowed(host, self.allowed_hosts):
            await _reply(send, 400, f"host {host!r} is not served here (allowed: {', '.join(self.allowed_hosts)})")
            return
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and not origin_allowed(headers.get("origin"), host):
            await _reply(send, 403, "cross-origin request refused")
            return
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _reply(send, 413, f"request body too large (limit {self.max_body} bytes)")
            return
        received = 0
        started = False

        async def limited_receive():  # noqa: ANN202
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _too_large(self.max_body)
            return message

        async def send_with_headers(message) -> None:  # noqa: ANN001
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": list(message.get("headers", [])) + SECURITY_HEADERS}
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except Exception as e:
            if started or getattr(e, "status_code", None) != 413:
                raise
            await _reply(send, 413, f"request body too large (limit {self.max_body} bytes)")


async def _reply(send, status: int, detail: str) -> None:  # noqa: ANN001
    import json

    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})
