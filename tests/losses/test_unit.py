"""The UNIT loss: phases, validation, and that a short CPU training on a toy pair (B = inverted A) learns the cycle,
both with the loss and optimizers used directly and through ``ganforge.train``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.losses import Batch, build_loss
from ganforge.losses.unit import UnitLoss, cycle_error, d_loss, g_loss
from ganforge.models.unit import UnitDiscriminator, UnitGenerator
from tests.models.test_unit import blobs

pytestmark = pytest.mark.usefixtures("one_thread")


def _nets(width: int = 8) -> tuple[UnitGenerator, UnitDiscriminator]:
    G = UnitGenerator(1, 1, 16, width=width, n_downsample=2, n_res=0, n_shared=1)
    D = UnitDiscriminator(1, 1, 16, width=width, n_layers=2, num_scales=1)
    return G, D


def _batch(a: torch.Tensor, b: torch.Tensor) -> Batch:
    return Batch(real=a, real_c=None, z=torch.zeros(len(a), 1), gen_c=None, extra={"real_b": b})


def _train_on_toy_pair(loss: UnitLoss, A: torch.Tensor, B: torch.Tensor, steps: int) -> None:
    """``steps`` D-then-G steps of ``loss`` (Adam 1e-3, betas 0.5 / 0.999) on batches of 16 from ``A`` and ``B``."""
    G, D = loss.G, loss.D
    opts = {"D": torch.optim.Adam(D.parameters(), 1e-3, betas=(0.5, 0.999)),
            "G": torch.optim.Adam(G.parameters(), 1e-3, betas=(0.5, 0.999))}
    g = torch.Generator().manual_seed(3)
    for _ in range(steps):
        batch = _batch(A[torch.randint(0, len(A), (16,), generator=g)], B[torch.randint(0, len(B), (16,), generator=g)])
        for key, phase in (("D", "Dmain"), ("G", "Gmain")):
            G.requires_grad_(key == "G")
            D.requires_grad_(key == "D")
            opts[key].zero_grad(set_to_none=True)
            loss.accumulate_gradients(phase, batch, 1.0)
            opts[key].step()


def test_phases_registration_and_validation():
    G, D = _nets(4)
    loss = build_loss("unit", {"G": G, "D": D})
    assert isinstance(loss, UnitLoss)
    assert [(p.name, p.network) for p in loss.phases] == [("Dmain", "D"), ("Gmain", "G")]
    assert loss.w == {"gan_weight": 1.0, "recon_weight": 10.0, "kl_weight": 0.01, "cycle_weight": 10.0,
                      "kl_cycle_weight": 0.01, "identity_weight": 0.0}
    with pytest.raises(ValueError, match="extra\\['real_b'\\]"):
        loss.accumulate_gradients("Gmain", Batch(blobs(2), None, torch.zeros(2, 1), None), 1.0)
    with pytest.raises(ValueError, match="gan must be one of"):
        UnitLoss(G, D, gan="wgan")
    with pytest.raises(ValueError, match="cycle_weight must be >= 0"):
        UnitLoss(G, D, cycle_weight=-1.0)
    with pytest.raises(ValueError, match="needs a unit-g as G"):
        UnitLoss(torch.nn.Linear(1, 1), D)
    with pytest.raises(ValueError, match="unknown phase"):
        loss.accumulate_gradients("Greg", _batch(blobs(2), blobs(2)), 1.0)


def test_adversarial_terms_match_their_definitions():
    real, fake = [torch.tensor([[[[1.0, 0.5]]]])], [torch.tensor([[[[0.0, 1.0]]]])]
    assert d_loss(real, fake, "lsgan").item() == pytest.approx((0 + 0.25) / 2 + (0 + 1) / 2)
    assert g_loss(fake, "lsgan").item() == pytest.approx((1 + 0) / 2)
    two_scales = g_loss(fake + fake, "lsgan").item()
    assert two_scales == pytest.approx(2 * g_loss(fake, "lsgan").item())


def test_each_phase_only_produces_gradients_for_its_own_networks():
    G, D = _nets(4)
    loss = UnitLoss(G, D)
    batch = _batch(blobs(4), -blobs(4, seed=1))
    stats = loss.accumulate_gradients("Dmain", batch, 1.0)
    assert {"loss/D", "D/real", "D/fake"} <= set(stats)
    assert all(p.grad is None for p in G.parameters())
    assert all(p.grad is not None for p in D.parameters())
    D.zero_grad(set_to_none=True)
    D.requires_grad_(False)
    stats = loss.accumulate_gradients("Gmain", batch, 1.0)
    assert {"loss/G", "loss/recon", "loss/cycle", "loss/kl", "loss/kl_cycle"} <= set(stats)
    assert all(p.grad is not None for p in G.parameters())


def test_d_phase_trains_on_the_translations_of_the_last_g_phase_and_they_survive_a_resume():
    """One generator pass per step: after a G phase, the next D phase uses that phase's translations (x_ab for D_b,
    x_ba for D_a) and runs no generator layer; the very first D phase makes its own. They are loss state, so a
    resumed loss trains D on the same images."""
    torch.manual_seed(0)
    G, D = _nets(4)
    loss = UnitLoss(G, D)
    calls = []
    G.enc_a.register_forward_hook(lambda *_: calls.append(1))
    g_batch, d_batch = _batch(blobs(4), -blobs(4, seed=1)), _batch(blobs(4, seed=2), -blobs(4, seed=3))
    loss.accumulate_gradients("Dmain", d_batch, 1.0)
    assert calls, "a D phase with no G phase before it makes its own translations"
    assert loss.state_dict() == {"fakes_ab": [], "fakes_ba": [], "nimg": 0}
    loss.accumulate_gradients("Gmain", g_batch, 1.0)
    kept = loss.state_dict()
    assert [x.shape for x in kept["fakes_ab"]] == [(4, 1, 16, 16)] and len(kept["fakes_ba"]) == 1
    with torch.no_grad():  # D_a's loss on the kept x_ba
        expected = d_loss(D(d_batch.real, "a"), D(kept["fakes_ba"][0], "a"), "lsgan")
    resumed = UnitLoss(G, D)
    resumed.load_state_dict({k: [x.clone() for x in v] if isinstance(v, list) else v for k, v in kept.items()})
    calls.clear()
    D.zero_grad(set_to_none=True)
    stats = loss.accumulate_gradients("Dmain", d_batch, 1.0)
    grads = [p.grad.clone() for p in D.parameters()]
    assert not calls and stats["loss/D_a"] == pytest.approx(expected.item(), rel=1e-6)
    assert loss.state_dict() == {"fakes_ab": [], "fakes_ba": [], "nimg": 0}  # used once
    D.zero_grad(set_to_none=True)
    assert resumed.accumulate_gradients("Dmain", d_batch, 1.0) == stats and not calls
    assert all(torch.equal(p.grad, g) for p, g in zip(D.parameters(), grads, strict=True))
    resumed.load_state_dict({"fakes_ab": [], "fakes_ba": []})  # a checkpoint from before the identity term
    resumed.load_state_dict({})  # a checkpoint from before translations were kept
    with pytest.raises(ValueError, match="fakes_ab"):
        resumed.load_state_dict({"fakes": []})


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_batches_are_concatenated_only_for_per_sample_networks(norm):
    """Instance norm or none: D sees reals and fakes in one call and the generators both domains' codes at once.
    Batch norm: never, so reals, fakes and the two domains keep their own batch statistics."""
    G = UnitGenerator(1, 1, 16, width=4, n_res=0, norm=norm)
    D = UnitDiscriminator(1, 1, 16, width=4, n_layers=2, num_scales=1, norm=norm)
    assert G.per_sample == D.per_sample == (norm != "batch")
    sizes = {"D": [], "G": []}
    D.d_a.register_forward_hook(lambda m, args, out: sizes["D"].append(args[0].shape[0]))
    G.shared["dec"].register_forward_hook(lambda m, args, out: sizes["G"].append(args[0].shape[0]))
    loss, batch = UnitLoss(G, D), _batch(blobs(4), -blobs(4, seed=1))
    loss.accumulate_gradients("Dmain", batch, 1.0)
    loss.accumulate_gradients("Gmain", batch, 1.0)
    if norm == "batch":
        assert sizes == {"D": [4, 4, 4], "G": [4] * 4 + [4] * 6}  # D phase: real, fake; G phase: fake
    else:
        assert sizes == {"D": [8, 4], "G": [8, 8, 8]}


def test_diffaugment_reaches_every_d_input_in_both_phases_and_strength_0_is_the_plain_loss():
    """With ``augment="diffaugment"`` D sees augmented reals and translations (D and G phases alike) and G's
    gradient passes through the augmentation; at ``augment_p=0`` the loss is the plain one, bit for bit."""
    G, D = _nets(4)
    batch = _batch(blobs(4), -blobs(4, seed=1))
    seen: list[torch.Tensor] = []
    D.d_a.register_forward_hook(lambda m, args, out: seen.append(args[0].detach().clone()))
    loss = UnitLoss(G, D, augment="diffaugment", augment_policy="cutout")
    torch.manual_seed(0)
    loss.accumulate_gradients("Gmain", batch, 1.0)  # keeps its translations for the D phase
    x_ba = loss._fakes[-1][1]
    loss.accumulate_gradients("Dmain", batch, 1.0)
    g_input, d_input = seen
    for shown, plain in ((g_input, x_ba), (d_input, torch.cat([batch.real, x_ba]))):
        assert shown.shape == plain.shape and not torch.equal(shown, plain)
        assert ((shown == 0) | (shown == plain)).all()  # cutout: each pixel as it was or zeroed
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())

    stats = {}
    for kwargs in ({}, {"augment": "diffaugment", "augment_p": 0.0}):
        G2, D2 = _nets(4)
        G2.load_state_dict(G.state_dict())
        D2.load_state_dict(D.state_dict())
        torch.manual_seed(1)
        stats[len(kwargs)] = UnitLoss(G2, D2, **kwargs).accumulate_gradients("Gmain", batch, 1.0)
    assert stats[0] == stats[2]
    with pytest.raises(ValueError, match="augment must be one of"):
        UnitLoss(G, D, augment="ada")


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_identity_term_matches_its_definition_and_off_is_the_plain_loss(norm, monkeypatch):
    """``identity_weight``: each domain's images through the other domain's encoder and back to their own domain must
    come out unchanged (L1). With the sampling noise set to zero it equals ``G.translate`` computed by hand; at
    weight 0 the G phase is the plain loss, bit for bit, and has no identity statistic."""
    G = UnitGenerator(1, 1, 16, width=4, n_res=0, norm=norm)
    D = UnitDiscriminator(1, 1, 16, width=4, n_layers=2, num_scales=1, norm=norm)
    batch = _batch(blobs(4), -blobs(4, seed=1))
    stats = {}
    for weight in (0.0, 2.0):
        torch.manual_seed(0)
        stats[weight] = UnitLoss(G, D, identity_weight=weight).accumulate_gradients("Gmain", batch, 1.0)
    torch.manual_seed(0)
    assert UnitLoss(G, D).accumulate_gradients("Gmain", batch, 1.0) == stats[0.0]
    assert "loss/identity" not in stats[0.0] and stats[2.0]["loss/identity"] > 0
    monkeypatch.setattr(torch, "randn_like", torch.zeros_like)
    got = UnitLoss(G, D, identity_weight=2.0).accumulate_gradients("Gmain", batch, 1.0)["loss/identity"]
    x_a, x_b = batch.real, batch.extra["real_b"]
    with torch.no_grad():  # G_b(E_a(x_b)) is the A -> B translator applied to B
        expected = ((G.translate(x_b, "a2b") - x_b).abs().mean() + (G.translate(x_a, "b2a") - x_a).abs().mean())
    assert got == pytest.approx(expected.item(), rel=1e-5)


def test_identity_weight_falls_to_zero_over_identity_kimg_and_its_clock_survives_a_resume():
    """``identity_kimg``: the weight falls linearly with the images shown (``after_step``'s count) and is 0 from then
    on, when the G phase is the plain loss again; the count is loss state, so a resumed run goes on where it was."""
    G, D = _nets(4)
    batch = _batch(blobs(4), -blobs(4, seed=1))
    loss = UnitLoss(G, D, identity_weight=2.0, identity_kimg=1.0)
    seen = []
    for nimg in (0, 250, 500, 1000, 5000):
        seen.append(loss.after_step(1, nimg)["loss/identity_weight"])
    assert seen == pytest.approx([2.0, 1.5, 1.0, 0.0, 0.0])
    torch.manual_seed(0)
    late = loss.accumulate_gradients("Gmain", batch, 1.0)
    torch.manual_seed(0)
    assert late == UnitLoss(G, D).accumulate_gradients("Gmain", batch, 1.0)  # no identity statistic either
    loss.after_step(1, 500)
    resumed = UnitLoss(G, D, identity_weight=2.0, identity_kimg=1.0)
    resumed.load_state_dict(loss.state_dict())
    assert resumed.identity_weight_now() == pytest.approx(1.0)
    assert UnitLoss(G, D, identity_weight=2.0).after_step(1, 10**6) == {"loss/identity_weight": 2.0}  # constant
    assert UnitLoss(G, D).after_step(1, 0) == {}
    with pytest.raises(ValueError, match="identity_kimg must be >= 0"):
        UnitLoss(G, D, identity_weight=2.0, identity_kimg=-1.0)


def test_identity_term_needs_domains_of_one_channel_count():
    G = UnitGenerator(1, 3, 16, width=4, n_res=0)
    D = UnitDiscriminator(1, 3, 16, width=4, n_layers=2, num_scales=1)
    UnitLoss(G, D)  # fine without the term
    with pytest.raises(ValueError, match="identity_weight needs domains with the same number of channels, got 1"):
        UnitLoss(G, D, identity_weight=1.0)
    with pytest.raises(ValueError, match="identity_weight must be >= 0"):
        UnitLoss(*_nets(4), identity_weight=-1.0)


def test_identity_term_teaches_the_translators_to_leave_the_other_domain_alone():
    """A short training on the toy pair with the term leaves B images given to the A -> B translator closer to
    themselves than the same training without it (80 steps: 0.15 against 0.55 when written)."""
    A, B = blobs(256, seed=1), -blobs(256, seed=2)
    held_out = -blobs(64, seed=9)
    errors = {}
    for weight in (0.0, 10.0):
        torch.manual_seed(0)
        G, D = _nets()
        _train_on_toy_pair(UnitLoss(G, D, identity_weight=weight), A, B, steps=80)
        with torch.no_grad():
            errors[weight] = float((G.translate(held_out, "a2b") - held_out).abs().mean())
    assert errors[10.0] < 0.5 * errors[0.0], errors


def test_domains_of_different_batch_sizes_are_refused():
    G, D = _nets(4)
    with pytest.raises(ValueError, match="as many domain A as domain B images"):
        UnitLoss(G, D).accumulate_gradients("Gmain", _batch(blobs(4), blobs(3)), 1.0)


def test_cycle_error_falls_during_a_short_cpu_training_on_a_toy_pair():
    torch.manual_seed(0)
    A, B = blobs(256, seed=1), -blobs(256, seed=2)  # domain B: inverted discs
    held_out = blobs(64, seed=9)
    G, D = _nets()
    start = cycle_error(G, held_out, "a")
    _train_on_toy_pair(UnitLoss(G, D), A, B, steps=50)
    end = cycle_error(G, held_out, "a")
    assert end < 0.6 * start, (start, end)
    assert cycle_error(G, -held_out, "b") < 0.8 * start


def test_cycle_error_falls_when_trained_through_ganforge_train(tmp_path):
    from ganforge.train.config import TrainConfig
    from ganforge.train.loop import Trainer

    to_uint8 = lambda x: ((x[:, 0] + 1) * 127.5).round().to(torch.uint8).numpy()  # noqa: E731
    np.savez(tmp_path / "a.npz", images=to_uint8(blobs(256, seed=1)))
    np.savez(tmp_path / "b.npz", images=to_uint8(-blobs(256, seed=2)))
    cfg = TrainConfig(model="unit", data=str(tmp_path / "a.npz"), domain_b=str(tmp_path / "b.npz"), batch=16,
                      lr_g=1e-3, lr_d=1e-3, g_kwargs={"width": 8, "n_res": 0},
                      d_kwargs={"width": 8, "n_layers": 2, "num_scales": 1}, outdir=str(tmp_path / "runs"),
                      device="cpu", kimg=1.0)
    trainer = Trainer.from_config(cfg, progress=False, run_dir=tmp_path / "run")
    G = trainer.nets["G"]
    assert isinstance(G, UnitGenerator) and isinstance(trainer.loss, UnitLoss)
    held_out = blobs(64, seed=9)
    start = cycle_error(G, held_out, "a")
    for _ in range(50):
        stats = trainer.train_step()
    assert {"loss/G", "loss/D", "loss/cycle"} <= set(stats)
    assert trainer.nimg == 50 * 16
    assert cycle_error(G, held_out, "a") < 0.6 * start
    grid = trainer.preview_images()  # the family's preview hook: input / translated / cycled rows
    assert grid.shape == (36, 1, 16, 16) and torch.equal(grid[:6], trainer.source.preview_batches(6, cfg.seed)[0])
    ckpt = trainer.save()
    resumed = Trainer.from_config(cfg, resume=ckpt, progress=False)
    assert torch.equal(resumed.nets["G"].translate(held_out, "a2b"), G.translate(held_out, "a2b"))
    nxt, nxt_resumed = trainer.source.next(), resumed.source.next()
    assert torch.equal(nxt.real, nxt_resumed.real) and torch.equal(nxt.extra["real_b"], nxt_resumed.extra["real_b"])
