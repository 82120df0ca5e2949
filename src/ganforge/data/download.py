"""Checksummed, cached downloads with an offline path and a clear error when offline.

Resolution order for a named file: an explicit directory (``--data-dir PATH``), ``$GANFORGE_DATA``, the cache
(``$GANFORGE_CACHE`` or ``~/.cache/ganforge``), then a download from the listed URLs into the cache. Every file is
verified against its checksum before use; a partial download is written to a temporary name and renamed only after
it verified, so the cache never holds a bad file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ganforge.data.errors import DataError


@dataclass(frozen=True)
class RemoteFile:
    """A file known by name and checksum (``sha256:<hex>``, or ``md5:<hex>`` where upstream publishes only MD5, or
    ``sha256-prefix:<hex>`` where upstream publishes only a prefix, as torch.hub file names do)."""

    filename: str
    checksum: str
    urls: tuple[str, ...]


def cache_dir() -> Path:
    return Path(os.environ.get("GANFORGE_CACHE", Path.home() / ".cache" / "ganforge"))


def file_digest(path: Path, algo: str = "sha256") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, checksum: str) -> bool:
    algo, _, want = checksum.partition(":")
    if algo.endswith("-prefix"):  # torch.hub convention: only the first hex digits are published (in the file name)
        return file_digest(path, algo.removesuffix("-prefix")).startswith(want)
    return file_digest(path, algo) == want


def locate(remote: RemoteFile, search_dirs: list[Path], subdir: str, download: bool = True) -> Path:
    """Find ``remote`` locally (verified) or download it into the cache; raise ``DataError`` saying what to do."""
    candidates = [d / remote.filename for d in search_dirs]
    env = os.environ.get("GANFORGE_DATA")
    if env:
        candidates += [Path(env) / remote.filename, Path(env) / subdir / remote.filename]
    target = cache_dir() / subdir / remote.filename
    candidates.append(target)
    for path in candidates:
        if path.is_file():
            if not verify(path, remote.checksum):
                raise DataError(f"{path}: checksum mismatch (expected {remote.checksum}); delete or replace the file")
            return path
    how = (
        f"put {remote.filename} in a folder and pass --data-dir FOLDER (or set GANFORGE_DATA=FOLDER), "
        f"or copy it to {target.parent}"
    )
    if not download:
        raise DataError(f"{remote.filename} not found locally; {how}")
    errors = []
    for url in remote.urls:
        try:
            _download(url, target, remote.checksum)
            return target
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            errors.append(f"{url}: {e}")
        except DataError as e:
            errors.append(str(e))
    raise DataError(
        f"could not download {remote.filename} (offline?). Tried:\n  "
        + "\n  ".join(errors)
        + f"\nTo work offline, {how}."
    )


def _download(url: str, target: Path, checksum: str, timeout: float = 20.0) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=target.name, leave=False) as bar:
                for chunk in iter(lambda: resp.read(1 << 16), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
        if not verify(Path(tmp), checksum):
            raise DataError(f"{url}: downloaded file does not match checksum {checksum}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
