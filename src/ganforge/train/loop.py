"""The family-agnostic training loop: ``Trainer(build(cfg)).run()``.

The Trainer receives built parts (``ganforge.train.build``: networks, optimisers, a loss, a data source, an optional
schedule, the family's recipe) and runs the loss's phases, one optimiser per network (STYLE.md rule 1). Around that
it owns what every run needs: the G EMA, stats (``stats.jsonl`` + TensorBoard), exact resume, Ctrl-C = save and stop,
rollback on NaN/inf, and data parallelism over ``torchrun`` ranks. Periodic work (progress grids, diagnostics,
metrics, checkpoints) runs as registered events (``ganforge.train.events``).
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from ganforge.checkpoint import (
    list_checkpoints,
    load_networks,
    load_state,
    read_config,
    resolve_checkpoint,
    save_checkpoint,
)
from ganforge.losses import Batch, Phase
from ganforge.train import distributed as ddp
from ganforge.train.build import TrainParts, build, resolve_precision
from ganforge.train.config import TrainConfig
from ganforge.train.ema import quasi_normal, recalibrate_batch_norm, update_ema
from ganforge.train.events import Event, default_events, forked_rng
from ganforge.train.lr import rampdown_factor, scale_learning_rates
from ganforge.train.recipes.base import sampling_generator
from ganforge.train.rundir import append_jsonl, new_run_dir, truncate_jsonl, write_json
from ganforge.train.state import rng_state, set_rng_state
from ganforge.train.tensorboard import TensorBoard

MAX_ROLLBACKS = 3


class NonFiniteError(RuntimeError):
    """A loss or gradient became NaN/inf and rolling back did not help."""


class Trainer:
    """One training run over ``parts``; ``run()`` trains and returns the run directory.

    ``resume`` (a run directory or checkpoint) continues exactly where that checkpoint stopped: weights, optimizer
    states, EMA, step/kimg counters, data order and every RNG state; the run directory is then the checkpoint's.
    ``run_dir``: where a fresh run writes (default: a new numbered folder under ``cfg.outdir``).
    """

    def __init__(
        self, parts: TrainParts, resume: str | Path | None = None, progress: bool = True,
        run_dir: str | Path | None = None,
    ) -> None:
        self.parts, self.progress = parts, progress
        self.cfg, self.recipe, self.device, self.dist = parts.cfg, parts.recipe, parts.device, parts.dist
        self.dataset, self.heldout, self.source = parts.dataset, parts.heldout, parts.source
        self.nets, self.loss, self.loss_name = parts.nets, parts.loss, parts.loss_name
        self.opts, self.schedule = parts.opts, parts.schedule
        self.precision = resolve_precision(self.cfg.precision, self.device)  # what "auto" means on this machine
        # what each optimiser trains: only these parameters have requires_grad toggled between phases
        self.trainable = {k: [p for g in o.param_groups for p in g["params"]] for k, o in self.opts.items()}
        self._grad_norms: dict[str, float] = {}  # total gradient 2-norm per optimiser, from its last phase
        self.step, self.nimg, self.rollbacks = 0, 0, 0
        self.monitor = make_monitor(self.cfg, self.dataset, self.device)
        self.recent: dict[str, float] = {}  # the last logged interval's mean stats
        self.resumed_from: Path | None = None
        self.last_good: Path | None = None  # the checkpoint a non-finite step rolls back to
        self._ema_bn_step: int | None = None  # the step at which G_ema's batch-norm statistics were last re-estimated
        self.tb: TensorBoard | None = None
        self.run_dir = Path(run_dir) if run_dir else None  # created lazily on rank 0
        if resume is not None:
            self.run_dir = Path(resume) if (Path(resume) / "checkpoints").is_dir() else Path(resume).parent.parent
            self._restore(resume)
        elif self.schedule is not None:  # first stage (e.g. 4x4) before the first checkpoint/grid
            self.schedule.update(self.nimg, self.nets, self.source)
        self.events: list[Event] = default_events(self)

    @classmethod
    def from_config(
        cls, cfg: TrainConfig, resume: str | Path | None = None, progress: bool = True,
        run_dir: str | Path | None = None,
    ) -> Trainer:
        """Shorthand for ``Trainer(build(cfg), resume, progress, run_dir)``."""
        return cls(build(cfg), resume, progress, run_dir)

    def add_event(self, event: Event) -> None:
        """Register periodic work of one's own; it runs after the built-in events."""
        self.events.append(event)

    # ---------------------------------------------------------------- checkpoint state
    def checkpoint_config(self) -> dict[str, Any]:
        return {
            "kind": "gan",
            "family": self.cfg.model,
            "loss": self.loss_name,
            "train": self.cfg.to_dict(),
            "dataset": self.dataset.info | {"num_classes": self.dataset.num_classes},
            "nimg": self.nimg,
            "step": self.step,
        }

    def training_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "step": self.step,
            "nimg": self.nimg,
            "optimizers": {k: o.state_dict() for k, o in self.opts.items()},
            "rng": rng_state(),
            "source": self.source.state_dict(),
            "loss": self.loss.state_dict(),
        }
        if self.schedule is not None:
            state["schedule"] = self.schedule.state_dict()
        if self.monitor is not None:
            state["monitor"] = self.monitor.state_dict()
        return state

    def save(self, tag: str | None = None) -> Path | None:
        """Write ``checkpoints/ckpt-<nimg>`` (rank 0 only) and prune old ones; returns its path."""
        self.refresh_ema_statistics()
        state = self.training_state()  # every rank: keeps collective calls (if any) in step
        if not self.dist.is_main:
            return None
        path = self.ensure_run_dir() / "checkpoints" / (tag or f"ckpt-{self.nimg:012d}")
        save_checkpoint(path, self.nets, self.checkpoint_config(), state)
        for old in list_checkpoints(self.run_dir)[: -self.cfg.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return path

    def _restore(self, path: str | Path) -> None:
        ckpt = resolve_checkpoint(path)
        meta = read_config(ckpt)
        if meta.get("family") != self.cfg.model:
            raise ValueError(
                f"{ckpt}: checkpoint is a {meta.get('family')!r} run, the config asks for {self.cfg.model!r}"
            )
        loaded = load_networks(ckpt, list(self.nets), device=self.device)
        for k, net in self.nets.items():
            net.load_state_dict(loaded[k].state_dict())
        st = load_state(ckpt)
        for k, opt in self.opts.items():
            opt.load_state_dict(st["optimizers"][k])
        self.step, self.nimg = int(st["step"]), int(st["nimg"])
        set_rng_state(st["rng"])
        self.source.load_state_dict(st["source"])
        self.loss.load_state_dict(st["loss"])
        if self.schedule is not None and "schedule" in st:
            self.schedule.load_state_dict(st["schedule"])
        if self.monitor is not None and "monitor" in st:
            self.monitor.load_state_dict(st["monitor"])
        self.resumed_from, self._ema_bn_step = ckpt, None

    def ensure_run_dir(self) -> Path:
        if self.run_dir is None:
            self.run_dir = new_run_dir(self.cfg.outdir, f"{self.cfg.model}-{Path(str(self.cfg.data)).name}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return self.run_dir

    def latest_checkpoint(self) -> Path | None:
        if self.run_dir is None:
            return None
        ckpts = list_checkpoints(self.run_dir)
        return ckpts[-1] if ckpts else None

    # ---------------------------------------------------------------- one step
    def train_step(self) -> dict[str, float]:
        """All phases of one step (with their intervals and repeats), then EMA and per-step hooks."""
        stats: dict[str, float] = {}
        if self.schedule is not None:
            stats.update(self.schedule.update(self.nimg, self.nets, self.source))
        if self.cfg.lr_rampdown:
            stats["lr/factor"] = rampdown_factor(self.nimg, int(self.cfg.kimg * 1000), self.cfg.lr_rampdown)
            scale_learning_rates(self.opts, stats["lr/factor"])
        for phase in self.loss.phases:
            if self.step % phase.interval != 0:
                continue
            for _ in range(phase.repeat):
                stats.update(self._run_phase(phase))
        if not any(p.counts_images for p in self.loss.phases):
            self.nimg += self.cfg.batch
        if self.dist.enabled:  # batch-norm statistics are per rank: average them so every rank holds one model
            for key in self.opts:
                _sync_buffers(self.nets[key], self.dist)
        if "G_ema" in self.nets:
            stats["ema/beta"] = update_ema(
                self.nets["G_ema"], self.nets["G"], self.cfg.batch, self.nimg, self.cfg.ema_kimg, self.cfg.ema_rampup
            )
        stats.update(self.loss.after_step(self.step, self.nimg))
        stats.update({f"grad_norm/{k}": v for k, v in self._grad_norms.items()})
        self.step += 1
        return stats

    def _run_phase(self, phase: Phase) -> dict[str, float]:
        """One phase on a fresh batch: gradients (micro-batched), all-reduced, checked finite, one optimiser step."""
        batch = self.source.next()
        self._set_requires_grad(phase.network)
        opt = self.opts[phase.network]
        opt.zero_grad(set_to_none=True)
        stats: dict[str, float] = {}
        chunks = _split(batch, self.cfg.batch_gpu // self.dist.world_size if self.cfg.batch_gpu else None)
        for chunk in chunks:
            with self._autocast():
                s = self.loss.accumulate_gradients(phase.name, chunk, float(phase.interval) / len(chunks))
            for k, v in s.items():
                stats[k] = stats.get(k, 0.0) + v / len(chunks)
        ddp.all_reduce_grads(self.nets[phase.network], self.dist)
        if not self._finite(stats, phase.network):
            raise _NonFinite(f"phase {phase.name}: non-finite loss or gradient ({stats})")
        opt.step()
        if phase.counts_images:  # the real batch size (a schedule may set it per resolution)
            self.nimg += batch.real.shape[0] * self.dist.world_size
        return stats

    def _set_requires_grad(self, key: str) -> None:
        """Gradients for the parameters optimiser ``key`` trains, none for the other optimisers' parameters;
        parameters no optimiser trains (a frozen sub-network) are left as they are."""
        for name, params in self.trainable.items():
            for p in params:
                p.requires_grad_(name == key)

    def _finite(self, stats: dict[str, float], key: str) -> bool:
        """Whether the stats and every gradient of ``key``'s parameters are finite, on all ranks.

        One pass over the gradients: their total 2-norm is kept for the step's stats (``grad_norm/<key>``) and is
        finite exactly when every gradient is, unless squaring overflowed, which the element-wise check then tells
        apart. Checking every element each step took ~8 % of a small network's step on a CPU.
        """
        finite = all(math.isfinite(v) for v in stats.values())
        grads = [p.grad for p in self.trainable[key] if p.grad is not None]
        if grads:
            norm = self._grad_norms[key] = float(torch.nn.utils.get_total_norm(grads))
            if finite and not math.isfinite(norm):
                finite = bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())
        return ddp.all_reduce_mean(float(finite), self.dist, self.device) == 1.0

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return torch.autocast(self.device.type, enabled=False)

    # ---------------------------------------------------------------- outputs
    def generator_for_samples(self) -> nn.Module:
        return sampling_generator(self.nets)

    def refresh_ema_statistics(self) -> None:
        """Re-estimate G_ema's batch-norm statistics for its own weights (:func:`recalibrate_batch_norm`) over
        ``cfg.ema_bn_images`` latents in training-size batches, at most once per step: before G_ema is saved or
        measured by the metrics (the next EMA update copies G's statistics back). Progress grids and diagnostics,
        which come every few kimg, use the copied statistics: 4,096 forward passes of G there would take a large
        share of the training time. The latents' ``z`` are quasi-random (:func:`quasi_normal`), which makes the
        estimate about as steady as one over 16x as many random latents; ``z``'s scrambling and order and the labels
        come from a seed made of the run seed and the step, the same on every rank, so the global RNG and exact
        resume are untouched."""
        G, n = self.nets.get("G_ema"), self.cfg.ema_bn_images
        latents = getattr(self.source, "latents", None)
        if G is None or n == 0 or latents is None or self._ema_bn_step == self.step:
            return
        size = min(n, max(self.cfg.batch // self.dist.world_size, 1))
        seed = self.cfg.seed * 1_000_003 + self.step

        def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
            # lazy: a G without batch norm consumes nothing, so the quasi-random draw is never made for it
            g = torch.Generator().manual_seed(seed)
            for chunk in quasi_normal(max(n // size, 1) * size, self.source.z_dim, seed).split(size):
                yield latents(size, g, chunk)

        recalibrate_batch_norm(G, batches())
        self._ema_bn_step = self.step

    @torch.no_grad()
    def preview_images(self) -> torch.Tensor:
        """The progress-grid images from the recipe's preview (networks in eval mode, global RNG untouched)."""
        modes = {k: net.training for k, net in self.nets.items()}
        with forked_rng(self.device):
            try:
                for net in self.nets.values():
                    net.eval()
                return self.recipe.preview_images(self.nets, self.source, self.cfg.grid_size, self.cfg.seed)
            finally:
                for k, net in self.nets.items():
                    net.train(modes[k])

    def write_grid(self) -> Path | None:
        """Write ``fakes<kimg>.png`` (and the TensorBoard image) from ``preview_images`` on rank 0."""
        if not self.dist.is_main:
            return None
        imgs = self.preview_images()
        path = self.ensure_run_dir() / f"fakes{self.nimg // 1000:06d}.png"
        shown = self.recipe.save_preview(imgs, path, self.dataset)
        if self.tb and shown is not None:
            self.tb.image("samples/fixed_noise", shown, self.nimg)
        return path

    def echo(self, msg: str, err: bool = False) -> None:
        tqdm.write(msg, file=sys.stderr if err else sys.stdout)

    # ---------------------------------------------------------------- the run
    def run(self) -> Path:
        """Train to ``cfg.kimg`` (or until a metric's stopping rule holds); Ctrl-C saves, says how to resume, and
        re-raises ``KeyboardInterrupt``."""
        total = int(self.cfg.kimg * 1000)
        bar = None
        try:  # from here on Ctrl-C saves and says how to resume (the run's opening lines and tqdm's start included:
            self._open_run()  # a Ctrl-C right after "data: ..." is printed must not escape unsaved)
            log = _StatsLog(self)
            bar = tqdm(total=total, initial=self.nimg, unit="img", unit_scale=True, dynamic_ncols=True,
                       disable=not (self.dist.is_main and self.progress), smoothing=0.1)
            for event in self.events:
                event.start(self)
            if self._train_until(total, bar, log) is None:
                for event in self.events:
                    event.finish(self)
            log.flush()  # the last, partial logging interval
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
            path = self.save()
            if self.dist.is_main:
                self.echo(f"\ninterrupted: saved {path}; continue with: ganforge train --resume {self.run_dir}")
            raise
        finally:
            if bar is not None:
                bar.close()
            if self.tb:
                self.tb.close()
        ddp.barrier(self.dist)
        return self.ensure_run_dir() if self.dist.is_main else Path(".")

    def _open_run(self) -> None:
        """Rank 0: the run directory, its ``config.json``, logs cut back to a resumed checkpoint, TensorBoard."""
        if not self.dist.is_main:
            return
        run = self.ensure_run_dir()
        write_json(run / "config.json", self.checkpoint_config() | {"world_size": self.dist.world_size})
        if self.resumed_from is not None:
            for log in ("stats.jsonl", "diagnostics.jsonl", *(p.name for p in run.glob("metric-*.jsonl"))):
                truncate_jsonl(run / log, self.nimg)
        self.tb = TensorBoard(run)
        self.echo(f"run directory: {run}")
        self.echo(f"data: {self.dataset.info}")
        if self.cfg.cond:
            self.echo(f"class-conditional on {self.dataset.num_classes} classes (--no-cond trains without labels)")
        elif self.cfg.clusters:
            self.echo(f"self-conditioned on {self.cfg.clusters} k-means clusters of the data (no labels used)")

    def _train_until(self, total: int, bar: tqdm, log: _StatsLog) -> str | None:
        """Steps and events until ``total`` images; returns the reason training stopped early, or None."""
        while self.nimg < total:
            before = self.nimg
            try:
                stats = self.train_step()
            except _NonFinite as e:
                self._rollback(str(e))
                bar.n = self.nimg
                continue
            bar.update(self.nimg - before)
            log.add(stats, bar)
            stop = self._fire_events()
            if stop:
                self.echo(f"stopping: {stop}")
                return stop
        return None

    def _fire_events(self) -> str | None:
        stop = None
        for event in self.events:
            if event.due(self, stopping=stop is not None):
                stop = event.fire(self) or stop
        return stop

    def _rollback(self, why: str) -> None:
        """Back to the last good checkpoint, with the source re-seeded so the same step does not come back."""
        self.rollbacks += 1
        if self.last_good is None or self.rollbacks > MAX_ROLLBACKS:
            raise NonFiniteError(
                f"{why}; rolled back {self.rollbacks - 1} time(s) without success. Lower the learning rates "
                f"(--lr-g/--lr-d) or use --precision fp32; the last good checkpoint is {self.last_good}"
            )
        if self.dist.is_main:
            self.echo(f"warning: {why}. Rolling back to {self.last_good} (attempt {self.rollbacks}/{MAX_ROLLBACKS}).",
                      err=True)
        self._restore(self.last_good)
        self.source.reseed(self.rollbacks)


class _StatsLog:
    """Means of the step stats over every ``cfg.log_every`` steps: ``stats.jsonl`` and TensorBoard (rank 0)."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.acc: dict[str, list[float]] = defaultdict(list)
        self.t0, self.n0 = time.time(), trainer.nimg

    def add(self, stats: dict[str, float], bar: tqdm) -> None:
        for k, v in stats.items():
            self.acc[k].append(v)
        if self.trainer.step % self.trainer.cfg.log_every == 0:
            means = self.flush()
            shown = {k: v for k, v in means.items() if k.startswith(("loss/", "D/real", "D/fake"))}
            bar.set_postfix({k.split("/")[-1] if k.startswith("loss/") else k: f"{v:.3f}" for k, v in shown.items()})

    def flush(self) -> dict[str, float]:
        if not self.acc:
            return {}
        t = self.trainer
        means = {k: sum(v) / len(v) for k, v in self.acc.items()}
        self.acc.clear()
        elapsed = time.time() - self.t0
        rec = {"step": t.step, "nimg": t.nimg, "kimg": t.nimg / 1000, "time": round(elapsed, 3),
               "img_per_s": (t.nimg - self.n0) / max(elapsed, 1e-9), **means}
        t.recent = means
        if t.dist.is_main:
            append_jsonl(t.ensure_run_dir() / "stats.jsonl", rec)
            if t.tb:
                t.tb.scalars(means, t.nimg)
        return means


class _NonFinite(Exception):
    pass


def make_monitor(cfg: Any, dataset: Any, device: torch.device) -> Any:
    """The metric monitor of ``cfg.metrics`` (None without metrics); its state is saved with the checkpoints."""
    if not cfg.metrics:
        return None
    from ganforge.train.monitor import MetricMonitor  # imported late: it pulls in the metrics stack

    return MetricMonitor(cfg.metrics, cfg.metrics_every_kimg, cfg.metrics_n, cfg.stop_when, cfg.patience, dataset,
                         device)


def _split(batch: Batch, size: int | None) -> list[Batch]:
    """Micro-batches for gradient accumulation (``--batch-gpu``)."""
    n = batch.real.shape[0]
    if size is None or size >= n:
        return [batch]

    def part(t: Any, i: int) -> Any:
        return t[i : i + size] if isinstance(t, torch.Tensor) else t

    return [
        Batch(part(batch.real, i), part(batch.real_c, i), part(batch.z, i), part(batch.gen_c, i),
              {k: part(v, i) for k, v in batch.extra.items()})
        for i in range(0, n, size)
    ]


def _sync_buffers(net: nn.Module, info: ddp.DistInfo) -> None:
    """Average floating-point buffers (batch-norm statistics) so every rank holds the same model."""
    import torch.distributed as dist

    for b in net.buffers():
        if b.is_floating_point():
            dist.all_reduce(b)
            b /= info.world_size
