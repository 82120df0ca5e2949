"""Periodic work between training steps, as events registered on the Trainer (``Trainer.events``).

The loop calls, for every event in order: ``start`` once before the first step of a run, ``due`` and then ``fire``
after every step, and ``finish`` when the run reaches its length. ``fire`` may return a reason to stop training; the
events after it in the list see ``stopping=True`` in ``due`` (so the snapshot event saves the stopped state).
:func:`default_events` builds the built-in list: progress grids, diagnostics, metrics, snapshots. An event of one's
own (a subclass of :class:`Event`) is added with ``Trainer.add_event``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from ganforge.checkpoint import save_checkpoint
from ganforge.data import GanDataset
from ganforge.train.config import TrainConfig
from ganforge.train.distributed import DistInfo
from ganforge.train.rundir import append_jsonl


class Trainer(Protocol):
    """What an event may use of the run (``ganforge.train.loop.Trainer`` provides it)."""

    cfg: TrainConfig
    dist: DistInfo
    device: torch.device
    dataset: GanDataset
    heldout: GanDataset | None
    loss_name: str
    nets: dict[str, nn.Module]
    monitor: Any
    nimg: int
    recent: dict[str, float]  # the last logged interval's mean stats
    resumed_from: Path | None
    last_good: Path | None
    tb: Any

    def save(self, tag: str | None = None) -> Path | None: ...

    def write_grid(self) -> Path | None: ...

    def latest_checkpoint(self) -> Path | None: ...

    def ensure_run_dir(self) -> Path: ...

    def generator_for_samples(self) -> nn.Module: ...

    def refresh_ema_statistics(self) -> None: ...

    def checkpoint_config(self) -> dict[str, Any]: ...

    def echo(self, msg: str, err: bool = False) -> None: ...


class Every:
    """Due each time ``nimg`` reaches the next multiple of ``kimg`` thousand images (at most once per check)."""

    def __init__(self, kimg: float) -> None:
        self.images = int(kimg * 1000)
        if self.images < 1:
            raise ValueError(f"an event interval must be at least 1 image, got {kimg} kimg")
        self.next_at = self.images

    def restart(self, nimg: int) -> None:
        self.next_at = (nimg // self.images + 1) * self.images

    def due(self, nimg: int) -> bool:
        return nimg >= self.next_at

    def advance(self) -> None:
        self.next_at += self.images


class Event:
    """One kind of periodic work. Subclasses override what they need; the defaults do nothing."""

    name = "event"

    def start(self, trainer: Trainer) -> None:
        """Before the first step of this run (fresh or resumed)."""

    def due(self, trainer: Trainer, stopping: bool) -> bool:
        return False

    def fire(self, trainer: Trainer) -> str | None:
        """Do the work; return a reason to stop training, or None."""
        return None

    def finish(self, trainer: Trainer) -> None:
        """After the last step of a run that reached its length."""


class PeriodicEvent(Event):
    """Fires every ``kimg``; with ``at_ends``, also at the start of a fresh run and when the run completes."""

    def __init__(self, kimg: float, at_ends: bool = True) -> None:
        self.every, self.at_ends = Every(kimg), at_ends

    def start(self, trainer: Trainer) -> None:
        self.every.restart(trainer.nimg)
        if self.at_ends and trainer.resumed_from is None:
            self.work(trainer)

    def due(self, trainer: Trainer, stopping: bool) -> bool:
        return self.every.due(trainer.nimg)

    def fire(self, trainer: Trainer) -> str | None:
        self.every.advance()
        return self.work(trainer)

    def finish(self, trainer: Trainer) -> None:
        if self.at_ends:
            self.work(trainer)

    def work(self, trainer: Trainer) -> str | None:
        raise NotImplementedError


class GridEvent(PeriodicEvent):
    """``fakes<kimg>.png`` (and its TensorBoard image) every ``grid_kimg``: ``Trainer.write_grid``."""

    name = "grid"

    def work(self, trainer: Trainer) -> None:
        trainer.write_grid()


class SnapshotEvent(PeriodicEvent):
    """A checkpoint every ``snapshot_kimg`` and whenever training stops early; it is the rollback target."""

    name = "snapshot"

    def start(self, trainer: Trainer) -> None:
        super().start(trainer)  # a fresh run saves first: a known-good state to roll back to
        trainer.last_good = trainer.latest_checkpoint()

    def due(self, trainer: Trainer, stopping: bool) -> bool:
        return stopping or super().due(trainer, stopping)

    def work(self, trainer: Trainer) -> None:
        trainer.save()
        trainer.last_good = trainer.latest_checkpoint()


class DiagnosticsEvent(PeriodicEvent):
    """Coverage, overfitting and saturation checks with every grid (rank 0): ``diagnostics.jsonl``, TensorBoard,
    warnings on stderr. ``diagnostics`` is a ``ganforge.train.diagnostics.Diagnostics``."""

    name = "diagnostics"

    def __init__(self, kimg: float, diagnostics: Any) -> None:
        super().__init__(kimg)
        self.diagnostics = diagnostics

    def work(self, trainer: Trainer) -> None:
        with forked_rng(trainer.device):  # resume stays exact
            values, messages = self.diagnostics.run(
                trainer.generator_for_samples(), trainer.nets.get("D"), trainer.recent, warn=trainer.nimg > 0
            )
        run = trainer.ensure_run_dir()
        append_jsonl(run / "diagnostics.jsonl", {"nimg": trainer.nimg, "kimg": trainer.nimg / 1000, **values})
        if trainer.tb:
            scalars = self.diagnostics.scalars(values)
            trainer.tb.scalars({f"diagnostics/{k}": v for k, v in scalars.items()}, trainer.nimg)
        for msg in messages:
            trainer.echo(msg, err=True)


class MetricsEvent(Event):
    """Metrics on the monitor's cadence (``metric-<name>.jsonl``, a ``best-<name>`` checkpoint, TensorBoard); the
    monitor's stopping rule ends training. ``monitor`` is a ``ganforge.train.monitor.MetricMonitor``."""

    name = "metrics"

    def __init__(self, monitor: Any) -> None:
        self.monitor = monitor

    def due(self, trainer: Trainer, stopping: bool) -> bool:
        return bool(self.monitor.due(trainer.nimg))

    def fire(self, trainer: Trainer) -> str | None:
        trainer.refresh_ema_statistics()  # measured (and maybe saved as best) with statistics of its own weights
        results = self.monitor.run(trainer.generator_for_samples(), trainer.nimg)
        if trainer.dist.is_main:
            self._record(trainer, results)
        stop, why = self.monitor.should_stop()
        return why if stop else None

    def _record(self, trainer: Trainer, results: dict[str, float]) -> None:
        run = trainer.ensure_run_dir()
        for name, value in results.items():
            root = name.split("/")[0]
            record: dict[str, Any] = {"nimg": trainer.nimg, "kimg": trainer.nimg / 1000, name: value}
            if root in self.monitor.notes:  # what the number was measured against, as `ganforge evaluate` says it
                record["notes"] = self.monitor.notes[root]
            append_jsonl(run / f"metric-{root}.jsonl", record)
            if self.monitor.is_best(name):
                best = run / "checkpoints" / f"best-{name.replace('/', '_')}"
                save_checkpoint(best, trainer.nets, trainer.checkpoint_config(), None)
        if trainer.tb:
            trainer.tb.scalars({f"metrics/{k}": v for k, v in results.items()}, trainer.nimg)


def default_events(trainer: Trainer) -> list[Event]:
    """Grids, diagnostics (rank 0, ``cfg.diagnostics``), metrics (``cfg.metrics``), snapshots."""
    cfg = trainer.cfg
    events: list[Event] = [GridEvent(cfg.grid_kimg)]
    if cfg.diagnostics and trainer.dist.is_main:  # Diagnostics measures what applies to the data (images, points)
        from ganforge.train.diagnostics import Diagnostics  # imported late: it pulls in the metrics stack

        diag = Diagnostics(trainer.dataset, trainer.heldout, trainer.loss_name, trainer.device, seed=cfg.seed)
        events.append(DiagnosticsEvent(cfg.grid_kimg, diag))
    if trainer.monitor is not None:
        events.append(MetricsEvent(trainer.monitor))
    events.append(SnapshotEvent(cfg.snapshot_kimg))
    return events


def forked_rng(device: torch.device) -> Any:
    """A context in which the global RNG (and the CUDA one on a CUDA device) is restored afterwards."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])
