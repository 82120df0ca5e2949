"""The Trainer built from parts: only what the optimisers train is toggled, phases declare image counting, events
run on their cadence and can stop training, the source re-seeds itself for a rollback."""

from __future__ import annotations

import copy

import pytest
import torch

from ganforge.checkpoint import list_checkpoints
from ganforge.losses import Phase
from ganforge.train.build import build, make_optimizers
from ganforge.train.events import Event
from ganforge.train.loop import Trainer
from tests.train.test_resume import tiny, weights


def test_a_frozen_sub_network_stays_frozen_and_unchanged(tmp_path):
    parts = build(tiny(tmp_path, kimg=0.064))
    frozen = parts.nets["D"].body[0]  # e.g. a pretrained feature extractor inside D
    frozen.requires_grad_(False)
    parts.opts = make_optimizers(parts.cfg, parts.loss, parts.nets)  # D's optimiser trains the rest of D
    before = {k: v.clone() for k, v in parts.nets["D"].state_dict().items()}
    t = Trainer(parts, progress=False)
    for _ in range(3):
        t.train_step()
    assert all(not p.requires_grad for p in frozen.parameters())
    after = parts.nets["D"].state_dict()
    assert all(torch.equal(before[f"body.0.{k}"], v) for k, v in frozen.state_dict().items())
    assert any(not torch.equal(before[k], after[k]) for k in before if not k.startswith("body.0."))  # the rest trains


def test_optimisers_train_only_parameters_that_want_gradients(tmp_path):
    parts = build(tiny(tmp_path, kimg=0.064))
    for key, opt in parts.opts.items():
        params = [p for g in opt.param_groups for p in g["params"]]
        assert len(params) == len(list(parts.nets[key].parameters()))
    assert set(parts.opts) == {"G", "D"} and "G_ema" in parts.nets


def test_phases_that_count_images_set_the_training_length(tmp_path):
    t = Trainer.from_config(tiny(tmp_path, d_steps=3, kimg=0.064), progress=False)
    assert [p.counts_images for p in t.loss.phases] == [True, False]
    t.train_step()
    assert t.nimg == 3 * 16  # every D batch counts, the G batch does not
    t.loss.phases = [Phase("Dmain", "D"), Phase("Gmain", "G")]  # a loss with no counting phase
    t.train_step()
    assert t.nimg == 3 * 16 + 16  # one batch per step


def test_gradient_norms_are_those_of_each_optimisers_last_phase(tmp_path):
    t = Trainer.from_config(tiny(tmp_path, kimg=0.064), progress=False)
    stats = t.train_step()
    for key in ("G", "D"):  # the gradients stay in place after the step until the next phase zeroes them
        grads = [p.grad.flatten() for p in t.trainable[key] if p.grad is not None]
        assert stats[f"grad_norm/{key}"] == pytest.approx(float(torch.cat(grads).norm()), rel=1e-5)


class _StopAfter(Event):
    name = "stop-after"

    def __init__(self, nimg: int) -> None:
        self.nimg, self.fired = nimg, []

    def due(self, trainer, stopping):
        return trainer.nimg >= self.nimg

    def fire(self, trainer):
        self.fired.append(trainer.nimg)
        return f"enough at {trainer.nimg}"


def test_a_registered_event_can_stop_training_and_the_snapshot_event_saves_it(tmp_path, capsys):
    t = Trainer.from_config(tiny(tmp_path, snapshot_kimg=10.0, grid_kimg=10.0), progress=False)
    assert [e.name for e in t.events] == ["grid", "diagnostics", "snapshot"]
    stop = _StopAfter(48)
    t.events.insert(0, stop)  # before the snapshot event, which then saves the stopped state
    run = t.run()
    assert stop.fired == [48] and t.nimg == 48
    assert "stopping: enough at 48" in capsys.readouterr().out
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == [f"ckpt-{0:012d}", f"ckpt-{48:012d}"]  # the start and the stop; no end-of-run snapshot
    assert len(list(run.glob("fakes*.png"))) == 1


def test_periodic_events_follow_their_cadence_across_a_resume(tmp_path):
    run = Trainer.from_config(tiny(tmp_path, kimg=0.048, snapshot_kimg=0.032), progress=False).run()
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == [f"ckpt-{n:012d}" for n in (0, 32, 48)]  # start, every 32 images, end
    t = Trainer.from_config(tiny(tmp_path, kimg=0.08, snapshot_kimg=0.032), resume=run, progress=False)
    t.run()
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == [f"ckpt-{n:012d}" for n in (48, 64, 80)]  # keep_checkpoints = 3; the cadence is kept


def test_the_source_reseeds_itself_for_a_rollback(tmp_path):
    parts = build(tiny(tmp_path, kimg=0.064))
    src = parts.source
    state = src.state_dict()
    first = src.next()
    src.load_state_dict(state)
    src.reseed(1)
    again = src.next()
    def pixels(x):  # flip-invariant: the sorted pixel values of each image
        return x.flatten(1).sort(dim=1).values

    assert torch.equal(pixels(first.real), pixels(again.real))  # same images (maybe flipped): the data order is kept
    assert not torch.equal(first.z, again.z)  # new latents
    src.load_state_dict(state)
    src.reseed(1)
    assert torch.equal(src.next().z, again.z)  # a pure function of the seed and the attempt


def test_point_sets_are_no_special_case_grids_are_scatter_plots_and_diagnostics_count_modes(tmp_path):
    import json

    cfg = tiny(tmp_path, model="gan", data="ring8", max_images=512, g_kwargs={"hidden": 16, "layers": 1},
               d_kwargs={"hidden": 16, "layers": 1}, xflip=False, kimg=0.064, grid_kimg=0.032)
    t = Trainer.from_config(cfg, progress=False)
    assert "diagnostics" in [e.name for e in t.events]
    run = t.run()
    assert (run / "fakes000000.png").is_file()  # the recipe's preview writer: a scatter plot over the true modes
    records = [json.loads(line) for line in (run / "diagnostics.jsonl").read_text().splitlines()]
    assert [r["nimg"] for r in records] == [0, 32, 64, 64] and all(r["modes/total"] == 8 for r in records)


def _bn_buffers(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items() if "running_" in k}


def test_g_ema_gets_batch_norm_statistics_of_its_own_weights_before_it_is_used(tmp_path):
    """Copied statistics are G's; before G_ema is saved or measured they are re-estimated for its own weights from
    the source's latents (seeded by run seed and step), once per step, without touching the global RNG."""
    from ganforge.train.ema import quasi_normal, recalibrate_batch_norm

    t = Trainer.from_config(tiny(tmp_path, kimg=0.064, ema_bn_images=64), progress=False)
    for _ in range(3):
        t.train_step()
    G, G_ema = t.nets["G"], t.nets["G_ema"]
    assert all(torch.equal(a, _bn_buffers(G)[k]) for k, a in _bn_buffers(G_ema).items())  # copied by the EMA
    rng = torch.get_rng_state()
    t.save()
    assert torch.equal(torch.get_rng_state(), rng)
    own = _bn_buffers(G_ema)
    assert any(not torch.equal(a, _bn_buffers(G)[k]) for k, a in own.items())
    expected = copy.deepcopy(G_ema)
    seed = t.cfg.seed * 1_000_003 + t.step
    g, z = torch.Generator().manual_seed(seed), quasi_normal(64, t.source.z_dim, seed)
    recalibrate_batch_norm(expected, [t.source.latents(16, g, zi) for zi in z.split(16)])  # 64 latents, batches of 16
    assert all(torch.equal(a, _bn_buffers(expected)[k]) for k, a in own.items())
    saved = weights(list_checkpoints(t.run_dir)[-1])["G_ema"]
    assert all(torch.equal(a, saved[k]) for k, a in own.items())  # what the checkpoint holds
    t.refresh_ema_statistics()  # same step: not re-estimated again
    assert all(torch.equal(a, own[k]) for k, a in _bn_buffers(G_ema).items())
    t.train_step()
    assert all(torch.equal(a, _bn_buffers(G)[k]) for k, a in _bn_buffers(G_ema).items())  # the next update copies


def test_ema_bn_images_zero_keeps_the_copied_statistics(tmp_path):
    t = Trainer.from_config(tiny(tmp_path, kimg=0.064, ema_bn_images=0), progress=False)
    t.train_step()
    t.save()
    assert all(torch.equal(a, _bn_buffers(t.nets["G"])[k]) for k, a in _bn_buffers(t.nets["G_ema"]).items())


def test_a_g_without_batch_norm_makes_no_quasi_random_draw(tmp_path, monkeypatch):
    import ganforge.train.loop as loop

    def refuse(*args, **kwargs):
        raise AssertionError("quasi_normal drawn for a G without batch norm")

    monkeypatch.setattr(loop, "quasi_normal", refuse)
    cfg = tiny(tmp_path, model="gan", data="ring8", max_images=512, g_kwargs={"hidden": 16, "layers": 1},
               d_kwargs={"hidden": 16, "layers": 1}, xflip=False, kimg=0.064)
    t = Trainer.from_config(cfg, progress=False)
    t.train_step()
    t.save()  # re-estimates G_ema's (absent) batch-norm statistics
    assert "G_ema" in t.nets


def test_source_latents_follow_the_label_frequencies_and_leave_the_source_alone(tmp_path):
    parts = build(tiny(tmp_path, kimg=0.064, cond=True))
    src = parts.source
    state = src.state_dict()
    z, c = src.latents(4000, torch.Generator().manual_seed(0))
    assert z.shape == (4000, 8) and c is not None and c.shape == (4000, 10) and torch.equal(c.sum(1), torch.ones(4000))
    data = torch.bincount(src.dataset.labels, minlength=10).double() / len(src.dataset)
    assert torch.allclose(c.double().mean(0), data, atol=0.03)
    assert torch.equal(src.state_dict()["gen"], state["gen"])
    given = torch.zeros(6, 8)
    z2, c2 = src.latents(6, torch.Generator().manual_seed(0), given)  # z given, labels still drawn from the generator
    assert torch.equal(z2, given) and c2 is not None and torch.equal(c2.sum(1), torch.ones(6))
    with pytest.raises(ValueError, match=r"z must have shape \[6, 8\]"):
        src.latents(6, torch.Generator().manual_seed(0), torch.zeros(6, 4))
