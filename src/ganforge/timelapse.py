"""A run's training timeline: its fixed-noise grids ``fakesNNNNNN.png`` in order, as frames or as a video.

The training loop writes a grid of the same latents every ``grid_kimg`` thousand images (``fakes<kimg:06d>.png``),
so played in order the grids show each face (or digit) take shape as training goes, the "Day 1 ... Day 18" strip of
the source material. ``render_timelapse`` writes them as mp4 or gif (``ganforge.media.write_video``) with the kimg
and, when the run logged one (``metric-<name>.jsonl``), the latest metric value drawn under each frame; the studio
shows the same frames with a slider.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from ganforge.media import write_video
from ganforge.train.rundir import read_jsonl

FRAME_PATTERN = re.compile(r"^fakes(\d{6,})\.png$")
METRIC_PATTERN = re.compile(r"^metric-([A-Za-z0-9_.\-]+)\.jsonl$")


@dataclass(frozen=True)
class Frame:
    """One fixed-noise grid of a run: its file and the training progress (thousands of images) it was written at."""

    path: Path
    kimg: int


@dataclass(frozen=True)
class MetricSeries:
    """A metric the run logged: its name (the record key, e.g. ``fid50k``) and ``(kimg, value)`` points in order."""

    name: str
    points: tuple[tuple[float, float], ...]

    def value_at(self, kimg: float) -> float | None:
        """The latest value logged at or before ``kimg`` (``None`` before the first measurement)."""
        value = None
        for k, v in self.points:
            if k <= kimg + 1e-9:
                value = v
            else:
                break
        return value


def find_run_dir(path: str | Path) -> Path:
    """The run directory of ``path``: the run itself, or the run a ``checkpoints/ckpt-*`` folder belongs to."""
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"{path}: no such run directory")
    if p.parent.name == "checkpoints" and (p.parent.parent / "config.json").is_file():
        return p.parent.parent
    return p


def timeline_frames(run_dir: str | Path) -> list[Frame]:
    """The run's fixed-noise grids, oldest first (files not named ``fakes<digits>.png`` are ignored)."""
    run = Path(run_dir)
    if not run.is_dir():
        return []
    frames = [Frame(f, int(m.group(1))) for f in run.iterdir() if f.is_file() and (m := FRAME_PATTERN.match(f.name))]
    return sorted(frames, key=lambda fr: fr.kimg)


def metric_names(run_dir: str | Path) -> list[str]:
    run = Path(run_dir)
    return sorted(m.group(1) for f in run.glob("metric-*.jsonl") if (m := METRIC_PATTERN.match(f.name)))


def metric_series(run_dir: str | Path, metric: str | None = None) -> MetricSeries | None:
    """The series of ``metric-<metric>.jsonl`` (default: the first logged metric); ``None`` if the run has none.

    A record is ``{"nimg", "kimg", "<name>": value}``; the first other numeric key is the value.
    """
    run = Path(run_dir)
    names = metric_names(run)
    if metric is None:
        if not names:
            return None
        metric = names[0]
    elif metric not in names:
        raise ValueError(f"{run}: no metric {metric!r} logged (metric-{metric}.jsonl); "
                         f"logged: {', '.join(names) or 'none'}")
    name, points = metric, []
    for rec in read_jsonl(run / f"metric-{metric}.jsonl"):
        values = [(k, v) for k, v in rec.items() if k not in ("nimg", "kimg") and isinstance(v, int | float)]
        if "kimg" not in rec or not values:
            continue
        name = values[0][0]
        points.append((float(rec["kimg"]), float(values[0][1])))
    points.sort()
    return MetricSeries(name, tuple(points)) if points else None


def caption(frame: Frame, series: MetricSeries | None) -> str:
    text = f"{frame.kimg} kimg"
    value = series.value_at(frame.kimg) if series is not None else None
    if series is not None and value is not None:
        text += f"    {series.name} {value:.4g}"
    return text


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def annotate(arr: np.ndarray, text: str) -> np.ndarray:
    """uint8 ``[H, W, C]`` -> RGB ``[H + band, W', 3]`` with ``text`` in a black band under the picture.

    The canvas has even sides (one black column is added to an odd width): H.264 in yuv420p needs them.
    """
    h, w = arr.shape[:2]
    size = max(10, min(32, w // 24))
    band = size * 2
    band += (h + band) % 2
    canvas = Image.new("RGB", (w + w % 2, h + band), (0, 0, 0))
    canvas.paste(Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr[:, :, :3]).convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(canvas)
    draw.text((size // 2, h + band // 2), text, fill=(255, 255, 255), font=_font(size), anchor="lm")
    return np.asarray(canvas)


def load_frame(frame: Frame, size: tuple[int, int] | None = None) -> np.ndarray:
    """A grid as uint8 ``[H, W, 3]``, resized (nearest) to ``size = (W, H)`` if given."""
    with Image.open(frame.path) as im:
        im = im.convert("RGB")
        if size is not None and im.size != size:
            im = im.resize(size, Image.NEAREST)
        return np.asarray(im)


def render_timelapse(
    run: str | Path,
    out: str | Path,
    fps: float = 4.0,
    metric: str | None = None,
    min_width: int = 512,
    progress: bool = False,
) -> dict:
    """Write the run's grids as a video (.mp4 or .gif) with a caption per frame; returns a summary dict.

    Every frame is brought to the size of the last grid (nearest neighbour: progressive runs write smaller grids
    early) and upscaled by a whole factor until at least ``min_width`` pixels wide, so small digits stay crisp.
    """
    run_dir = find_run_dir(run)
    frames = timeline_frames(run_dir)
    if not frames:
        raise ValueError(f"{run_dir}: no fixed-noise grids (fakes<kimg>.png) in this run; nothing to render")
    if fps <= 0 or not math.isfinite(fps):
        raise ValueError(f"fps must be a positive number, got {fps}")
    series = metric_series(run_dir, metric)
    with Image.open(frames[-1].path) as last:
        base = last.size  # (W, H)
    factor = max(1, math.ceil(min_width / base[0]))
    size = (base[0] * factor, base[1] * factor)

    shape: list[int] = []

    def drawn() -> Iterator[np.ndarray]:
        for fr in tqdm(frames, unit="frame", disable=not progress):
            arr = load_frame(fr, base)
            if factor > 1:
                arr = np.asarray(Image.fromarray(arr).resize(size, Image.NEAREST))
            out_frame = annotate(arr, caption(fr, series))
            shape[:] = [out_frame.shape[1], out_frame.shape[0]]
            yield out_frame

    path = write_video(drawn(), out, fps=fps)
    return {"out": str(path), "frames": len(frames), "first_kimg": frames[0].kimg, "last_kimg": frames[-1].kimg,
            "metric": series.name if series else None, "size": shape}
