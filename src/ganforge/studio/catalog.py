"""The models a studio serves: loaded once at start from the runs given on the command line, addressed by name.

Each entry is one of three kinds, decided from its checkpoint's ``config.json``:

- ``generator`` (any family with ``G``/``G_ema``): sample grids from seeds, latent sliders, interpolation strips, the
  truncation trick and style mixing when the generator supports them (style-based families), and "Which one is
  real?" rounds against a folder of photos (``--real DIR``) or else the run's own training data, reloaded from the
  config's ``train`` section (``studio.reals``);
- ``translator`` (a UNIT checkpoint, network class ``unit-g``): translate an uploaded picture to the other domain;
- ``detector`` (``kind: detector``): the calibrated probability that an uploaded picture is generated.

Any run also has a training timeline when its folder holds fixed-noise grids. A feature is offered only when the
model supports it; ``capabilities`` says which, and ``notes`` why one is missing.

Generation is deterministic per seed: image ``i`` comes from seed ``i`` alone (``ganforge.sampling.latents``) and
style-based generators run with constant noise (``noise_mode="const"``), so the same request gives the same picture.
"""

from __future__ import annotations

import base64
import io
import math
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ganforge.checkpoint import PACKAGED, CheckpointError, load_networks, read_config, resolve_checkpoint
from ganforge.media import make_grid, to_uint8
from ganforge.sampling import generator_classes, latents
from ganforge.studio.reals import RealPictures, RealSource, training_source
from ganforge.timelapse import Frame, MetricSeries, caption, find_run_dir, metric_series, timeline_frames

KINDS = ("generator", "translator", "detector")


# ----------------------------------------------------------------------------------------------- pictures
def png_bytes(arr: np.ndarray) -> bytes:
    """uint8 ``[H, W, C]`` (C = 1 or 3) -> PNG file bytes."""
    buf = io.BytesIO()
    Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(buf, format="PNG")
    return buf.getvalue()


def data_url(arr: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(arr)).decode("ascii")


# ----------------------------------------------------------------------------------------------- entries
@dataclass
class StudioModel:
    """One model the studio serves. ``source`` is what was given at start; requests only ever name ``name``."""

    name: str
    source: str
    kind: str
    ckpt: Path
    meta: dict[str, Any]
    run_dir: Path | None
    notes: list[str] = field(default_factory=list)
    _frames: list[Frame] = field(default_factory=list, repr=False)

    @property
    def family(self) -> str | None:
        return self.meta.get("family")

    def capabilities(self) -> dict[str, bool]:
        return {"timeline": bool(self.frames(refresh=False))}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "family": self.family, "source": self.source,
                "capabilities": self.capabilities(), "notes": list(self.notes)}

    # timeline -------------------------------------------------------------------------------------------------
    def frames(self, refresh: bool = True) -> list[Frame]:
        """The run's fixed-noise grids (re-scanned on ``refresh``: a run may still be training)."""
        if self.run_dir is None:
            return []
        if refresh or not self._frames:
            self._frames = timeline_frames(self.run_dir)
        return self._frames

    def timeline(self) -> dict[str, Any]:
        frames = self.frames()
        series: MetricSeries | None = None
        if self.run_dir is not None:
            try:
                series = metric_series(self.run_dir)
            except ValueError:
                series = None
        return {"frames": [{"index": i, "kimg": f.kimg, "caption": caption(f, series),
                            "metric": series.value_at(f.kimg) if series else None} for i, f in enumerate(frames)],
                "metric": series.name if series else None}

    def frame_png(self, index: int) -> bytes:
        frames = self.frames(refresh=False)
        if not 0 <= index < len(frames):
            frames = self.frames()
        if not 0 <= index < len(frames):
            raise IndexError(f"{self.name} has {len(frames)} timeline frame(s); no frame {index}")
        return frames[index].path.read_bytes()


class GeneratorModel(StudioModel):
    """A generator and, lazily, the real pictures it is pitted against (``reals``): ``--real DIR`` or its training
    data."""

    def __init__(self, *args: Any, G: nn.Module, real: RealSource | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.G = G
        self.z_dim = int(G.z_dim)
        self.c_dim = int(getattr(G, "c_dim", 0))
        self.channels = int(getattr(G, "channels", 0))
        self.resolution = int(getattr(G, "resolution", 0))
        self.truncation = bool(getattr(G, "supports_truncation", False))
        self.mixing = self.truncation and all(hasattr(G, a) for a in ("mapping", "synthesis", "num_ws"))
        self.images = self.channels in (1, 3) and self.resolution > 1
        if not self.images:
            self.notes.append(f"{self.channels}-channel {self.resolution}px output is not a picture: nothing to show")
        if not self.truncation:
            self.notes.append("no truncation trick (psi): style-based families only")
        self.reals = RealPictures(real if real is not None else training_source(self.meta), self.resolution,
                                  self.channels, use_labels=self.c_dim > 0)
        if self.images and self.reals.error is not None:
            self.notes.append(f"'Which one is real?' unavailable: {self.reals.error}")

    def capabilities(self) -> dict[str, bool]:
        return {**super().capabilities(), "sample": self.images, "interpolate": self.images,
                "truncation": self.images and self.truncation, "mixing": self.images and self.mixing,
                "real": self.images and self.reals.error is None}

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(z_dim=self.z_dim, c_dim=self.c_dim, channels=self.channels, resolution=self.resolution)
        if self.mixing:
            from ganforge.models.stylegan import style_layer_groups

            info["style_groups"] = {k: v for k, v in style_layer_groups(int(self.G.num_ws)).items() if v}
        return info

    # generation ------------------------------------------------------------------------------------------------
    def _check(self, psi: float, klass: int | None) -> None:
        if not self.images:
            raise ValueError(f"{self.name}: its samples are not pictures")
        if not math.isfinite(psi) or not 0.0 <= psi <= 2.0:
            raise ValueError(f"psi must be in [0, 2], got {psi}")
        if psi != 1.0 and not self.truncation:
            raise ValueError(f"{self.name} has no truncation trick; psi must be 1")
        if self.c_dim == 0 and klass is not None:
            raise ValueError(f"{self.name} is unconditional; do not pass a class")
        if self.c_dim and klass is not None and not 0 <= klass < self.c_dim:
            raise ValueError(f"{self.name} is conditional: class must be in [0, {self.c_dim}), got {klass}")

    def _display(self, imgs: torch.Tensor) -> torch.Tensor:
        if imgs.shape[-1] < self.resolution:  # progressive models mid-growth: show at the target size
            imgs = F.interpolate(imgs, size=(self.resolution, self.resolution), mode="nearest")
        return imgs.clamp(-1, 1)  # [N, C, R, R]

    @torch.no_grad()
    def _run(self, z: torch.Tensor, klass: int | None, psi: float, seeds: list[int]) -> torch.Tensor:
        """Conditional models without a class draw class ``seed mod classes`` (a self-conditioned one: a cluster
        from its prior), as ``ganforge sample``."""
        c = generator_classes(self.G, klass, len(z), seeds)
        kwargs = {"truncation_psi": psi, "noise_mode": "const"} if self.truncation else {}
        out = [self.G(z[i : i + 16], None if c is None else c[i : i + 16], **kwargs).float()
               for i in range(0, len(z), 16)]
        return self._display(torch.cat(out))

    def _z(self, seeds: list[int], offsets: list[float]) -> torch.Tensor:
        z = latents(seeds, self.z_dim)  # [N, z_dim]
        if len(offsets) > self.z_dim:
            raise ValueError(f"{len(offsets)} latent sliders for a {self.z_dim}-dimensional latent")
        if offsets:
            z[:, : len(offsets)] += torch.tensor(offsets, dtype=z.dtype)
        return z

    def sample(self, seed: int, n: int, psi: float, klass: int | None, offsets: list[float]) -> np.ndarray:
        """Grid (uint8 ``[H, W, C]``) of seeds ``seed .. seed + n - 1``; ``offsets[i]`` is added to z coordinate i."""
        self._check(psi, klass)
        seeds = list(range(seed, seed + n))
        imgs = self._run(self._z(seeds, offsets), klass, psi, seeds)
        return make_grid(imgs, nrow=int(math.ceil(math.sqrt(n))))

    def interpolate(self, seed_a: int, seed_b: int, steps: int, psi: float, klass: int | None) -> np.ndarray:
        """A strip of ``steps`` pictures from seed A to seed B (``ganforge.latent.walk``): linear in w for
        style-based generators (where the truncation is applied; Karras et al. 2019, sec. 4.2), spherical in z
        otherwise."""
        from ganforge.latent import walk

        self._check(psi, klass)
        if steps < 2:
            raise ValueError(f"an interpolation strip needs at least 2 steps, got {steps}")
        # without a class, a conditional model walks from seed A's class to seed B's (seed mod classes)
        c = generator_classes(self.G, klass, 2, [seed_a, seed_b])
        mode = "w-lerp" if self.mixing else "z-slerp"
        imgs = torch.cat(list(walk(self.G, [seed_a, seed_b], steps - 1, mode, c=c, truncation_psi=psi)))
        return make_grid(self._display(imgs), nrow=steps)

    def mix(self, row_seeds: list[int], col_seeds: list[int], styles: str, psi: float, klass: int | None
            ) -> tuple[np.ndarray, list[int]]:
        """Style-mixing grid (``ganforge.latent.mixing_grid``; Karras et al. 2019, sec. 3.1, fig. 3): the top row
        shows the column seeds, the left column the row seeds; cell (i, j) is row seed i with its ``styles`` layers
        (``coarse``, ``middle``, ``fine`` or indices like ``0-3``) taken from column seed j."""
        from ganforge.latent import mixing_grid, parse_style_layers

        self._check(psi, klass)
        if not self.mixing:
            raise ValueError(f"{self.name} is not style-based: no style mixing")
        layers = parse_style_layers(styles, int(self.G.num_ws))
        if self.c_dim and klass is None:
            raise ValueError(f"{self.name} is conditional: choose a class for the mixing grid")
        imgs = mixing_grid(self.G, list(row_seeds), list(col_seeds), layers, generator_classes(self.G, klass, 1),
                           psi, "const")
        return make_grid(self._display(imgs), nrow=len(col_seeds) + 1), layers

    def fake_picture(self, seed: int, psi: float, klass: int | None) -> np.ndarray:
        self._check(psi, klass)
        return to_uint8(self._run(latents([seed], self.z_dim), klass, psi, [seed]))[0]

    # real pictures ---------------------------------------------------------------------------------------------
    def real_count(self) -> int:
        """Load the real pictures on first use (``RuntimeError`` with the reason if they cannot be)."""
        try:
            return self.reals.count()
        except RuntimeError as e:
            message = f"{self.name}: {e}"
            if str(e) not in self.notes:
                self.notes.append(str(e))
            raise RuntimeError(message) from None

    def real_picture(self, index: int) -> tuple[np.ndarray, int | None]:
        """Real picture ``index`` at the generator's size and channels, and its class (conditional models)."""
        return self.reals.picture(index, self.c_dim)


class TranslatorModel(StudioModel):
    """A UNIT generator: uploads are brought to the training resolution (centre crop), then translated."""

    def __init__(self, *args: Any, G: nn.Module, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.G = G
        train = self.meta.get("train") or {}
        self.domains = {"a": str(train.get("data") or "A"), "b": str(train.get("domain_b") or "B")}

    def capabilities(self) -> dict[str, bool]:
        return {**super().capabilities(), "translate": True}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "domains": self.domains, "resolution": int(self.G.resolution),
                "channels": dict(self.G.channels)}

    def translate(self, arr: np.ndarray, direction: str) -> tuple[np.ndarray, np.ndarray]:
        """uint8 ``[H, W, C]`` -> (the model's view of it, its translation), both ``[R, R, C]``."""
        from ganforge.data.transforms import convert_channels, resize
        from ganforge.translate import Options, translate_arrays

        if direction not in ("a2b", "b2a"):
            raise ValueError(f"direction must be 'a2b' or 'b2a', got {direction!r}")
        src = direction[0]
        view = resize(convert_channels(arr, self.G.channels[src], "upload"), int(self.G.resolution), "center-crop",
                      "upload")
        out = translate_arrays(self.G, view[None], direction, Options(), "upload")[0]
        return view, out


class DetectorModel(StudioModel):
    """A calibrated detector of generated pictures (``ganforge.detection``)."""

    def __init__(self, *args: Any, net: nn.Module, distance: nn.Module | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.net, self.distance = net, distance
        self.view = (self.meta.get("preprocess") or {}).get("view", "center-crop")

    def capabilities(self) -> dict[str, bool]:
        return {**super().capabilities(), "detect": True}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "crop": int(self.net.crop), "channels": int(self.net.channels),
                "view": self.view, "temperature": float(self.net.temperature),
                "stages": ["trace"] + (["distance"] if self.distance is not None else [])}

    def detect(self, arr: np.ndarray) -> dict[str, Any]:
        """Calibrated probability that the picture is generated (the larger of the stages'), with the crop the
        trace stage saw and each stage's probability."""
        from scipy.special import expit

        from ganforge.detection.data import inference_view
        from ganforge.detection.predict import stage_logits

        view = inference_view(arr, int(self.net.crop), int(self.net.channels), self.view, "upload")
        logits, _ = stage_logits(self.net, [arr], self.view, distance=self.distance)
        t = float(self.net.temperature)
        probs = {k: float(expit(float(v[0]))) for k, v in logits.items()}
        p = probs.pop("combined")
        return {"p_fake": p, "logit": float(logits["trace"][0]) * t, "temperature": t,
                "label": "fake" if p >= 0.5 else "real", "view": view, "by_stage": probs}


# ----------------------------------------------------------------------------------------------- loading
def _name_for(spec: str, ckpt: Path, run_dir: Path | None) -> str:
    if spec in PACKAGED and not Path(spec).exists():
        base = spec
    elif run_dir is not None and run_dir.resolve() != ckpt.resolve():
        base = run_dir.name if Path(spec).resolve() == run_dir.resolve() else f"{run_dir.name}.{ckpt.name}"
    else:
        base = Path(spec).resolve().name
    base = re.sub(r"[^A-Za-z0-9_.\-]+", "_", base).lstrip("._-")[:60]
    return base or "model"


def _run_dir_of(spec: str, ckpt: Path) -> Path | None:
    if spec in PACKAGED and not Path(spec).exists():
        return None
    p = Path(spec)
    try:
        run = find_run_dir(p)
    except FileNotFoundError:
        return None
    return run if (run / "checkpoints").is_dir() or timeline_frames(run) else None


def load_model(spec: str, name: str, device: str | torch.device = "cpu", real: RealSource | None = None
               ) -> StudioModel:
    """Load one run/checkpoint/packaged model as a studio entry of the right kind.

    ``real``: the pictures a generator is pitted against in "Which one is real?" (default: its training data).
    """
    ckpt = resolve_checkpoint(spec)
    meta = read_config(ckpt)
    nets = meta.get("networks", {})
    run_dir = _run_dir_of(spec, ckpt)
    common = {"name": name, "source": spec, "ckpt": ckpt, "meta": meta, "run_dir": run_dir}
    if meta.get("kind") == "detector" or "detector" in nets:
        from ganforge.detection.predict import load_detector, load_distance

        net, _ = load_detector(ckpt, device)
        return DetectorModel(kind="detector", net=net.eval(), distance=load_distance(ckpt, device), **common)
    gname = "G_ema" if "G_ema" in nets else "G" if "G" in nets else None
    if gname is None:
        raise CheckpointError(f"{ckpt}: nothing the studio can show (networks: {sorted(nets)}); expected a "
                              "generator (G/G_ema), a UNIT translator or a detector")
    G = load_networks(ckpt, [gname], device=device)[gname].eval().requires_grad_(False)
    if nets[gname]["class"] == "unit-g":
        return TranslatorModel(kind="translator", G=G, **common)
    return GeneratorModel(kind="generator", G=G, real=real, **common)


class ModelSet:
    """The models given at start, by unique name, and one lock that serialises their (CPU-heavy) work."""

    def __init__(self, models: list[StudioModel]) -> None:
        if not models:
            raise ValueError("the studio needs at least one model")
        self.models = {m.name: m for m in models}
        if len(self.models) != len(models):
            raise ValueError(f"duplicate model names: {[m.name for m in models]}")
        self.lock = threading.Lock()

    @classmethod
    def load(cls, specs: list[str], device: str | torch.device = "cpu", real: RealSource | None = None) -> ModelSet:
        """Load ``specs`` (run dirs, checkpoint dirs, packaged names), naming each after its run (made unique).

        ``real`` (``--real DIR``) replaces every generator's training data as the real side of "Which one is real?".
        """
        models: list[StudioModel] = []
        used: set[str] = set()
        for spec in specs:
            ckpt = resolve_checkpoint(spec)
            base = _name_for(spec, ckpt, _run_dir_of(spec, ckpt))
            name, k = base, 2
            while name in used:
                name, k = f"{base}-{k}", k + 1
            used.add(name)
            models.append(load_model(spec, name, device, real))
        return cls(models)

    def names(self) -> list[str]:
        return list(self.models)

    def preload_real(self) -> threading.Thread:
        """Load every generator's real pictures in a background thread, so the first round does not wait."""

        def work() -> None:
            for m in self.models.values():
                if isinstance(m, GeneratorModel) and m.capabilities()["real"]:
                    try:
                        m.real_count()
                    except RuntimeError:
                        pass  # recorded in the model's notes; its rounds answer 503 with the reason

        thread = threading.Thread(target=work, name="studio-preload", daemon=True)
        thread.start()
        return thread

    def get(self, name: str) -> StudioModel:
        from ganforge.studio.security import check_name

        return self.models[check_name(name, self.names())]

    def default_db_dir(self) -> Path:
        """Where the SQLite votes go by default: the first model's run directory, else the current directory."""
        for m in self.models.values():
            if m.run_dir is not None:
                return m.run_dir
        return Path.cwd()
