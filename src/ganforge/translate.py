"""Translating images, folders and videos between the two domains of a trained UNIT model.

The translator is fully convolutional, so pictures keep their size: an input whose sides are not multiples of
``2**n_downsample`` is reflection-padded up to the next multiple and the output cropped back. Alternatively
``resize`` (a policy of ``ganforge.data.transforms``) first brings every input to the model's training resolution,
and the output then has that size. Channel counts are never changed silently: an input whose channels differ from
the source domain's is an error unless ``convert_channels=True`` (luminance for 3 -> 1, repetition for 1 -> 3, alpha
composited on black), which also converts the output to the input's channel count.

Videos are translated frame by frame in batches and written at the input's frame rate, without audio (mp4 through
the ffmpeg bundled with ``imageio-ffmpeg``; see ``ganforge.media``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ganforge.data.errors import DataError
from ganforge.data.formats import IMAGE_EXTENSIONS, decode_image, iter_image_folder
from ganforge.data.transforms import RESIZE_POLICIES, convert_channels, resize
from ganforge.media import VIDEO_SUFFIXES, from_uint8, read_video, save_image, to_uint8, write_video
from ganforge.models.unit import UnitGenerator, check_direction

# .gif is both a picture and a (possibly animated) video; as input it is treated as a video.
IMAGE_INPUTS = tuple(sorted(set(IMAGE_EXTENSIONS) - set(VIDEO_SUFFIXES)))
IMAGE_OUTPUTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def load_translator(path: str | Path, device: str | torch.device = "cpu", ema: bool = True) -> UnitGenerator:
    """The UNIT generator of a run or checkpoint (``G_ema`` when present and ``ema``), in eval mode."""
    from ganforge.checkpoint import load_networks, read_config, resolve_checkpoint

    ckpt = resolve_checkpoint(path)
    entries = read_config(ckpt)["networks"]
    name = "G_ema" if ema and "G_ema" in entries else "G"
    if name not in entries or entries[name]["class"] != "unit-g":
        found = {k: v["class"] for k, v in entries.items()}
        raise ValueError(f"{ckpt}: not a UNIT translation model (networks: {found}); train one with --model unit")
    G = load_networks(ckpt, [name], device=device)[name]
    return G.eval().requires_grad_(False)


@dataclass(frozen=True)
class Options:
    """How inputs are fitted to the model: ``resize`` policy to the training resolution (None: keep the size),
    ``convert_channels`` to allow channel conversion, ``batch`` images per forward pass."""

    resize: str | None = None
    convert_channels: bool = False
    batch: int = 16

    def __post_init__(self) -> None:
        if self.resize is not None and (self.resize not in RESIZE_POLICIES or self.resize == "none"):
            raise ValueError(f"resize must be one of {[p for p in RESIZE_POLICIES if p != 'none']} or None, "
                             f"got {self.resize!r}")
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1, got {self.batch}")


@torch.no_grad()
def translate_tensor(G: UnitGenerator, x: torch.Tensor, direction: str, batch: int = 16) -> torch.Tensor:
    """``x [N, C_src, H, W]`` in [-1, 1] -> ``[N, C_dst, H, W]``, in batches; H and W are padded up to the model's
    multiple (and minimum size).

    Reflection padding (replicate for inputs smaller than the pad) is cropped off the output, so sizes are kept.
    """
    src, _ = check_direction(direction)
    c = G.channels[src]
    if x.ndim != 4 or x.shape[1] != c:
        raise ValueError(f"direction {direction} reads domain {src.upper()} images with {c} channel(s); "
                         f"got shape {list(x.shape)}")
    m = G.multiple
    h, w = x.shape[-2:]
    ph, pw = max(-h % m, G.min_size - h), max(-w % m, G.min_size - w)
    device = next(G.parameters()).device
    out = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch].to(device)
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            xb = F.pad(xb, (0, pw, 0, ph), mode=mode)
        out.append(G.translate(xb, direction)[..., :h, :w].cpu())
    return torch.cat(out)


def translate_arrays(G: UnitGenerator, frames: np.ndarray, direction: str, opts: Options, name: str) -> np.ndarray:
    """uint8 ``[N, H, W, C]`` pictures (one size) -> translated uint8 ``[N, H', W', C']`` (see module docstring)."""
    src, _ = check_direction(direction)
    c_in, c_src = frames.shape[-1], G.channels[src]
    if c_in != c_src:
        if not opts.convert_channels:
            raise DataError(f"{name}: has {c_in} channel(s) but domain {src.upper()} of this model has {c_src}; "
                            f"pass --convert-channels to convert ({'luminance' if c_src == 1 else 'repeat gray'})")
        frames = np.stack([convert_channels(f, c_src, name) for f in frames])
    if opts.resize is not None:
        frames = np.stack([resize(f, G.resolution, opts.resize, name) for f in frames])
    if not frames.flags.writeable:  # decoded pictures can be read-only views; torch wants writable memory
        frames = frames.copy()
    y = to_uint8(translate_tensor(G, from_uint8(frames), direction, opts.batch))  # [N, H, W, C_dst]
    c_out = min(c_in, 3)
    if opts.convert_channels and y.shape[-1] != c_out:
        y = np.stack([convert_channels(f, c_out, name) for f in y])
    return y


def translate_image(G: UnitGenerator, src: str | Path, dst: str | Path, direction: str, opts: Options) -> Path:
    """One picture file to another (format by ``dst``'s suffix)."""
    dst = Path(dst)
    _check_image_output(dst)
    arr = decode_image(Path(src), str(src))  # [H, W, C]
    return save_image(translate_arrays(G, arr[None], direction, opts, str(src))[0], dst)


def translate_folder(G: UnitGenerator, src: str | Path, dst: str | Path, direction: str, opts: Options,
                     progress: bool = False) -> list[Path]:
    """Every picture below ``src`` (recursive) to ``dst/<same relative path>.png``; returns the written files."""
    src, dst = Path(src), Path(dst)
    if dst.exists() and not dst.is_dir():
        raise ValueError(f"{dst}: the output of a folder must be a folder, and this is a file")
    files = iter_image_folder(src)
    targets = [dst / f.relative_to(src).with_suffix(".png") for f in files]
    seen: dict[Path, Path] = {}
    for f, t in zip(files, targets, strict=True):
        if t in seen:
            raise ValueError(f"{seen[t]} and {f} would both be written to {t}; rename one of them")
        seen[t] = f
    for f, t in tqdm(list(zip(files, targets, strict=True)), unit="img", disable=not progress):
        translate_image(G, f, t, direction, opts)
    return targets


def translate_video(G: UnitGenerator, src: str | Path, dst: str | Path, direction: str, opts: Options,
                    progress: bool = False) -> dict:
    """Frame by frame, in batches of ``opts.batch``, at the input's frame rate; audio is dropped.

    The video is written to a temporary file beside ``dst`` and renamed when complete. Returns
    ``{"frames": n, "fps": fps, "size": [W, H]}`` of the written video.
    """
    src, dst = Path(src), Path(dst)
    if dst.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"{dst}: a video's output must be a video file ({', '.join(VIDEO_SUFFIXES)})")
    frames, fps = read_video(src)
    chunks = _chunks(frames, opts.batch)
    first = next(chunks, None)
    if first is None:
        raise ValueError(f"{src}: the video has no frames")
    count = {"frames": 0, "size": None}
    bar = tqdm(unit="frame", disable=not progress)

    def translated() -> Iterator[np.ndarray]:
        for chunk in itertools.chain([first], chunks):
            out = translate_arrays(G, np.stack(chunk), direction, opts, str(src))  # [B, H, W, C]
            count["frames"] += len(out)
            count["size"] = [int(out.shape[2]), int(out.shape[1])]
            bar.update(len(out))
            yield from out

    tmp = dst.with_name(f".{dst.stem}.tmp-{os.getpid()}{dst.suffix}")
    try:
        write_video(translated(), tmp, fps=fps)
        os.replace(tmp, dst)
    finally:
        bar.close()
        tmp.unlink(missing_ok=True)
    return {"frames": count["frames"], "fps": fps, "size": count["size"]}


def translate_path(G: UnitGenerator, src: str | Path, dst: str | Path, direction: str, opts: Options | None = None,
                   progress: bool = False) -> str:
    """Dispatch on the input: a folder, a video file or a picture. Returns the kind handled."""
    opts = opts or Options()
    check_direction(direction)
    src = Path(src)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file or folder")
    if src.is_dir():
        translate_folder(G, src, dst, direction, opts, progress)
        return "folder"
    suffix = src.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        translate_video(G, src, dst, direction, opts, progress)
        return "video"
    if suffix in IMAGE_INPUTS:
        translate_image(G, src, dst, direction, opts)
        return "image"
    raise ValueError(f"{src}: unsupported input {suffix or '(no suffix)'!r}; expected a folder, a picture "
                     f"({', '.join(IMAGE_INPUTS)}) or a video ({', '.join(VIDEO_SUFFIXES)})")


def _check_image_output(dst: Path) -> None:
    if dst.suffix.lower() not in IMAGE_OUTPUTS:
        raise ValueError(f"{dst}: a picture's output must be one of {', '.join(IMAGE_OUTPUTS)}")


def _chunks(items: Iterable[np.ndarray], n: int) -> Iterator[list[np.ndarray]]:
    chunk: list[np.ndarray] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
