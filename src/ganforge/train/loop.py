"""The family-agnostic training loop.

It receives built objects (networks, a loss, a data source, an optional schedule) and runs the loss's phases, one
optimizer per network (STYLE.md rule 1). Around that it owns what every run needs: the G EMA, fixed-noise progress
grids, stats (``stats.jsonl`` + TensorBoard), periodic atomic checkpoints, exact resume, Ctrl-C = save and stop,
rollback on NaN/inf, and data parallelism over ``torchrun`` ranks.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from ganforge.checkpoint import list_checkpoints, load_state, read_config, save_checkpoint
from ganforge.data import GanDataset, load_dataset
from ganforge.losses import Batch, Loss, build_loss
from ganforge.media import save_grid
from ganforge.train import distributed as ddp
from ganforge.train.config import TrainConfig
from ganforge.train.ema import update_ema
from ganforge.train.recipes import Recipe, get_recipe
from ganforge.train.rundir import append_jsonl, new_run_dir, truncate_jsonl, write_json
from ganforge.train.state import rng_state, seed_all, set_rng_state
from ganforge.train.tensorboard import TensorBoard

MAX_ROLLBACKS = 3


class NonFiniteError(RuntimeError):
    """A loss or gradient became NaN/inf and rolling back did not help."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA device is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("--device mps was asked for but MPS is not available")
    return torch.device(name)


def load_training_data(cfg: TrainConfig) -> GanDataset:
    return load_dataset(cfg.data, cfg.resolution, cfg.channels, cfg.resize, cfg.data_dir, cfg.on_error, cfg.max_images)


def build_networks(recipe: Recipe, cfg: TrainConfig, dataset: GanDataset, source: Any) -> dict[str, nn.Module]:
    """The recipe's networks (G and D), plus G_ema when an EMA is configured."""
    nets = recipe.networks(cfg, dataset, source)
    if cfg.ema_kimg > 0 and "G" in nets:
        nets["G_ema"] = copy.deepcopy(nets["G"]).eval().requires_grad_(False)
    return nets


class Trainer:
    """One training run. ``Trainer(cfg).run()`` trains and returns the run directory.

    ``resume`` (a run directory or checkpoint) continues exactly where that checkpoint stopped: weights, optimizer
    states, EMA, step/kimg counters, data order and every RNG state.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        resume: str | Path | None = None,
        progress: bool = True,
        run_dir: str | Path | None = None,
    ) -> None:
        self.cfg, self.progress = cfg, progress
        self.device = resolve_device(cfg.device)
        self.dist = ddp.init_from_env(self.device)
        if self.device.type == "cuda" and self.dist.enabled:
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        seed_all(cfg.seed)
        self.recipe = get_recipe(cfg.model)
        self.dataset = load_training_data(cfg)
        self.heldout: GanDataset | None = None
        if cfg.heldout:
            from ganforge.train.monitor import heldout_split

            if cfg.heldout >= len(self.dataset):
                raise ValueError(f"--heldout {cfg.heldout} leaves no training data ({len(self.dataset)} images)")
            self.dataset, self.heldout = heldout_split(self.dataset, cfg.heldout, cfg.seed)
        self.source = self.recipe.source(cfg, self.dataset, self.device, self.dist.rank, self.dist.world_size)
        self.nets = build_networks(self.recipe, cfg, self.dataset, self.source)
        for net in self.nets.values():
            net.to(self.device)
            if cfg.channels_last:
                net.to(memory_format=torch.channels_last)
        for net in self.nets.values():
            ddp.broadcast_module(net, self.dist)
        if cfg.compile:  # in place: same module objects, same state_dict keys, so checkpoints are unaffected
            for key in ("G", "D"):
                if key in self.nets:
                    self.nets[key].compile()
        loss_kwargs = dict(cfg.loss_kwargs)
        if cfg.d_steps != 1:
            loss_kwargs["d_steps"] = cfg.d_steps
        self.loss_name = cfg.loss or self.recipe.loss
        self.loss: Loss = build_loss(self.loss_name, self.nets, **loss_kwargs)
        self.opts = self._make_optimizers()
        self.schedule = self.recipe.schedule(cfg, self.dataset)
        self.step, self.nimg, self.rollbacks = 0, 0, 0
        self.monitor = self._make_monitor()
        self.diagnostics = self._make_diagnostics()
        self.recent: dict[str, float] = {}  # the last logged interval's mean stats
        self.resumed_from: Path | None = None
        if resume is not None:
            self.run_dir = Path(resume) if (Path(resume) / "checkpoints").is_dir() else Path(resume).parent.parent
            self._restore(resume)
        else:
            self.run_dir = Path(run_dir) if run_dir else None  # created lazily on rank 0
        if self.schedule is not None and resume is None:  # first stage (e.g. 4x4) before the first checkpoint/grid
            self.schedule.update(self.nimg, self.nets, self.source)
        self.tb: TensorBoard | None = None

    # ---------------------------------------------------------------- construction helpers
    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam per network; lazy regularisation rescales lr and betas by I/(I+1) (StyleGAN2 appendix B)."""
        opts = {}
        for key in sorted({p.network for p in self.loss.phases}):
            lr = self.cfg.lr_g if key.startswith("G") else self.cfg.lr_d
            b1, b2 = self.cfg.betas
            interval = self.loss.reg_interval(key)
            if interval:
                ratio = interval / (interval + 1)
                lr, b1, b2 = lr * ratio, b1**ratio, b2**ratio
            params = [p for p in self.nets[key].parameters() if p.requires_grad]
            opts[key] = torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=1e-8)
        return opts

    def _make_monitor(self) -> Any:
        if not self.cfg.metrics:
            return None
        from ganforge.train.monitor import MetricMonitor

        return MetricMonitor(
            self.cfg.metrics,
            self.cfg.metrics_every_kimg,
            self.cfg.metrics_n,
            self.cfg.stop_when,
            self.cfg.patience,
            self.dataset,
            self.device,
        )

    def _make_diagnostics(self) -> Any:
        if not (self.cfg.diagnostics and self.dist.is_main and self.dataset.is_image):
            return None
        from ganforge.train.diagnostics import Diagnostics

        return Diagnostics(self.dataset, self.heldout, self.loss_name, self.device, seed=self.cfg.seed)

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
        state = self.training_state()  # every rank: keeps collective calls (if any) in step
        if not self.dist.is_main:
            return None
        root = self._ensure_run_dir() / "checkpoints"
        path = root / (tag or f"ckpt-{self.nimg:012d}")
        save_checkpoint(path, self.nets, self.checkpoint_config(), state)
        for old in list_checkpoints(self.run_dir)[: -self.cfg.keep_checkpoints]:
            import shutil

            shutil.rmtree(old, ignore_errors=True)
        return path

    def _restore(self, path: str | Path) -> None:
        from ganforge.checkpoint import load_networks, resolve_checkpoint

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
        self.resumed_from = ckpt

    def _ensure_run_dir(self) -> Path:
        if self.run_dir is None:
            self.run_dir = new_run_dir(self.cfg.outdir, f"{self.cfg.model}-{Path(str(self.cfg.data)).name}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return self.run_dir

    # ---------------------------------------------------------------- one step
    def _set_requires_grad(self, key: str) -> None:
        for name in self.opts:
            self.nets[name].requires_grad_(name == key)

    def _run_phase(self, phase_name: str, key: str, gain: float) -> dict[str, float]:
        opt = self.opts[key]
        batch = self.source.next()
        self._set_requires_grad(key)
        opt.zero_grad(set_to_none=True)
        stats: dict[str, float] = {}
        chunks = _split(batch, self.cfg.batch_gpu // self.dist.world_size if self.cfg.batch_gpu else None)
        for chunk in chunks:
            with self._autocast():
                s = self.loss.accumulate_gradients(phase_name, chunk, gain / len(chunks))
            for k, v in s.items():
                stats[k] = stats.get(k, 0.0) + v / len(chunks)
        net = self.nets[key]
        ddp.all_reduce_grads(net, self.dist)
        finite = all(math.isfinite(v) for v in stats.values()) and all(
            p.grad is None or bool(torch.isfinite(p.grad).all()) for p in net.parameters()
        )
        finite = ddp.all_reduce_mean(float(finite), self.dist, self.device) == 1.0
        if not finite:
            raise _NonFinite(f"phase {phase_name}: non-finite loss or gradient ({stats})")
        opt.step()
        if phase_name == "Dmain":  # the real batch size (a schedule may set it per resolution)
            self.nimg += batch.real.shape[0] * self.dist.world_size
        return stats

    def _autocast(self):
        if self.cfg.precision == "bf16" and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast(self.device.type, enabled=False)

    def train_step(self) -> dict[str, float]:
        """All phases of one step (with their intervals and repeats), then EMA and per-step hooks."""
        stats: dict[str, float] = {}
        if self.schedule is not None:
            stats.update(self.schedule.update(self.nimg, self.nets, self.source))
        has_dmain = any(p.name == "Dmain" for p in self.loss.phases)
        for phase in self.loss.phases:
            if self.step % phase.interval != 0:
                continue
            for _ in range(phase.repeat):
                stats.update(self._run_phase(phase.name, phase.network, float(phase.interval)))
        if not has_dmain:
            self.nimg += self.cfg.batch
        if self.dist.enabled:  # batch-norm statistics are per rank: average them so every rank holds one model
            for key in self.opts:
                _sync_buffers(self.nets[key], self.dist)
        if "G_ema" in self.nets:
            stats["ema/beta"] = update_ema(
                self.nets["G_ema"], self.nets["G"], self.cfg.batch, self.nimg, self.cfg.ema_kimg, self.cfg.ema_rampup
            )
        stats.update(self.loss.after_step(self.step, self.nimg))
        stats.update(_grad_norms(self.nets, self.opts))
        self.step += 1
        return stats

    # ---------------------------------------------------------------- outputs
    def generator_for_samples(self) -> nn.Module:
        return self.nets.get("G_ema", self.nets["G"])

    @torch.no_grad()
    def preview_images(self) -> torch.Tensor:
        """The progress-grid images from the recipe's preview (networks in eval mode, global RNG untouched)."""
        modes = {k: net.training for k, net in self.nets.items()}
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
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
        run = self._ensure_run_dir()
        if not self.dataset.is_image:  # point sets (toy data): a scatter plot over the true modes
            return self._write_points(imgs, run)
        path = save_grid(imgs, run / f"fakes{self.nimg // 1000:06d}.png", nrow=int(math.sqrt(len(imgs))) or None)
        if self.tb:
            self.tb.image("samples/fixed_noise", imgs, self.nimg)
        self._run_diagnostics(run)
        return path

    def _run_diagnostics(self, run: Path) -> None:
        """Coverage, overfitting and saturation checks (rank 0): ``diagnostics.jsonl``, TensorBoard, warnings."""
        if self.diagnostics is None:
            return
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):  # resume stays exact
            values, messages = self.diagnostics.run(
                self.generator_for_samples(), self.nets.get("D"), self.recent, warn=self.nimg > 0
            )
        append_jsonl(run / "diagnostics.jsonl", {"nimg": self.nimg, "kimg": self.nimg / 1000, **values})
        if self.tb:
            self.tb.scalars({f"diagnostics/{k}": v for k, v in self.diagnostics.scalars(values).items()}, self.nimg)
        for msg in messages:
            _print(msg, err=True)

    def _write_points(self, samples: torch.Tensor, run: Path) -> Path | None:
        try:
            from ganforge.metrics.toy import save_scatter  # provided by the metrics module for 2-D toy data
        except ImportError:
            return None
        return save_scatter(samples.flatten(1).cpu(), self.dataset, run / f"fakes{self.nimg // 1000:06d}.png")

    def _log(self, stats: dict[str, float], t0: float, n0: int) -> None:
        elapsed = time.time() - t0
        rec = {
            "step": self.step,
            "nimg": self.nimg,
            "kimg": self.nimg / 1000,
            "time": round(elapsed, 3),
            "img_per_s": (self.nimg - n0) / max(elapsed, 1e-9),
            **stats,
        }
        self.recent = stats
        if self.dist.is_main:
            append_jsonl(self._ensure_run_dir() / "stats.jsonl", rec)
            if self.tb:
                self.tb.scalars(stats, self.nimg)

    # ---------------------------------------------------------------- the run
    def run(self) -> Path:
        cfg = self.cfg
        total = int(cfg.kimg * 1000)
        main = self.dist.is_main
        if main:
            run = self._ensure_run_dir()
            write_json(run / "config.json", self.checkpoint_config() | {"world_size": self.dist.world_size})
            if self.resumed_from is not None:
                for log in ("stats.jsonl", "diagnostics.jsonl", *(p.name for p in run.glob("metric-*.jsonl"))):
                    truncate_jsonl(run / log, self.nimg)
            self.tb = TensorBoard(run)
            _print(f"run directory: {run}")
            _print(f"data: {self.dataset.info}")
            if self.cfg.cond:
                _print(f"class-conditional on {self.dataset.num_classes} classes (--no-cond trains without labels)")
        next_grid = (self.nimg // int(cfg.grid_kimg * 1000) + 1) * int(cfg.grid_kimg * 1000)
        next_snap = (self.nimg // int(cfg.snapshot_kimg * 1000) + 1) * int(cfg.snapshot_kimg * 1000)
        acc: dict[str, list[float]] = defaultdict(list)
        t0, n0 = time.time(), self.nimg
        stop_reason = None
        bar = None
        try:  # from here on Ctrl-C saves and says how to resume (tqdm's start and the first checkpoint included)
            bar = tqdm(
                total=total,
                initial=self.nimg,
                unit="img",
                unit_scale=True,
                disable=not (main and self.progress),
                dynamic_ncols=True,
                smoothing=0.1,
            )
            if self.resumed_from is None:
                self.save()  # a known-good state to roll back to
                self.write_grid()
            last_good = self._latest_state()
            while self.nimg < total:
                before = self.nimg
                try:
                    stats = self.train_step()
                except _NonFinite as e:
                    last_good = self._rollback(last_good, str(e))
                    bar.n = self.nimg
                    continue
                for k, v in stats.items():
                    acc[k].append(v)
                bar.update(self.nimg - before)
                if self.step % cfg.log_every == 0:
                    means = {k: sum(v) / len(v) for k, v in acc.items()}
                    acc.clear()
                    self._log(means, t0, n0)
                    bar.set_postfix(
                        {
                            k.split("/")[-1] if k.startswith("loss/") else k: f"{v:.3f}"
                            for k, v in means.items()
                            if k.startswith(("loss/", "D/real", "D/fake"))
                        }
                    )
                if self.nimg >= next_grid:
                    self.write_grid()
                    next_grid += int(cfg.grid_kimg * 1000)
                if self.monitor is not None and self.monitor.due(self.nimg):
                    stop_reason = self._run_metrics()
                if self.nimg >= next_snap or stop_reason:
                    self.save()
                    last_good = self._latest_state()
                    next_snap += int(cfg.snapshot_kimg * 1000)
                if stop_reason:
                    _print(f"stopping: {stop_reason}")
                    break
            else:
                self.save()
                self.write_grid()
            if acc:  # the last, partial logging interval
                self._log({k: sum(v) / len(v) for k, v in acc.items()}, t0, n0)
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
            path = self.save()
            if main:
                _print(f"\ninterrupted: saved {path}; continue with: ganforge train --resume {self.run_dir}")
            raise
        finally:
            if bar is not None:
                bar.close()
            if self.tb:
                self.tb.close()
        ddp.barrier(self.dist)
        return self._ensure_run_dir() if main else Path(".")

    def _run_metrics(self) -> str | None:
        results = self.monitor.run(self.generator_for_samples(), self.nimg)
        if self.dist.is_main:
            run = self._ensure_run_dir()
            for name, value in results.items():
                append_jsonl(
                    run / f"metric-{name.split('/')[0]}.jsonl",
                    {"nimg": self.nimg, "kimg": self.nimg / 1000, name: value},
                )
                if self.monitor.is_best(name):
                    save_checkpoint(
                        run / "checkpoints" / f"best-{name.replace('/', '_')}",
                        self.nets,
                        self.checkpoint_config(),
                        None,
                    )
            if self.tb:
                self.tb.scalars({f"metrics/{k}": v for k, v in results.items()}, self.nimg)
        stop, why = self.monitor.should_stop()
        return why if stop else None

    def _latest_state(self) -> Path | None:
        if self.run_dir is None:
            return None
        ckpts = list_checkpoints(self.run_dir)
        return ckpts[-1] if ckpts else None

    def _rollback(self, last_good: Path | None, why: str) -> Path | None:
        self.rollbacks += 1
        if last_good is None or self.rollbacks > MAX_ROLLBACKS:
            raise NonFiniteError(
                f"{why}; rolled back {self.rollbacks - 1} time(s) without success. Lower the learning rates "
                f"(--lr-g/--lr-d) or use --precision fp32; the last good checkpoint is {last_good}"
            )
        if self.dist.is_main:
            _print(f"warning: {why}. Rolling back to {last_good} (attempt {self.rollbacks}/{MAX_ROLLBACKS}).", err=True)
        self._restore(last_good)
        # Different batches after the rollback, or the same NaN would come back deterministically.
        reseed = getattr(self.source, "gen", None)
        if isinstance(reseed, torch.Generator):
            reseed.manual_seed(self.cfg.seed * 7919 + 1 + self.dist.rank + 1_000_000 * self.rollbacks)
        return last_good


class _NonFinite(Exception):
    pass


def _split(batch: Batch, size: int | None) -> list[Batch]:
    """Micro-batches for gradient accumulation (``--batch-gpu``)."""
    n = batch.real.shape[0]
    if size is None or size >= n:
        return [batch]

    def part(t: Any, i: int) -> Any:
        return t[i : i + size] if isinstance(t, torch.Tensor) else t

    return [
        Batch(
            part(batch.real, i),
            part(batch.real_c, i),
            part(batch.z, i),
            part(batch.gen_c, i),
            {k: part(v, i) for k, v in batch.extra.items()},
        )
        for i in range(0, n, size)
    ]


@torch.no_grad()
def _grad_norms(nets: dict[str, nn.Module], opts: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
    out = {}
    for key in opts:
        grads = [p.grad.norm() for p in nets[key].parameters() if p.grad is not None]
        if grads:
            out[f"grad_norm/{key}"] = float(torch.stack(grads).norm())
    return out


def _sync_buffers(net: nn.Module, info: ddp.DistInfo) -> None:
    """Average floating-point buffers (batch-norm statistics) so every rank holds the same model."""
    import torch.distributed as dist

    for b in net.buffers():
        if b.is_floating_point():
            dist.all_reduce(b)
            b /= info.world_size


def _print(msg: str, err: bool = False) -> None:
    tqdm.write(msg, file=sys.stderr if err else sys.stdout)
