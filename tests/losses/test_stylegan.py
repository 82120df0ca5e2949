"""The StyleGAN2 loss: phases and lazy intervals, R1 against finite differences, path-length regularisation,
style mixing, augmentation of everything D sees, and ADA's p rising on an overfitting D and surviving a resume."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganforge.losses import Batch, build_loss, loss_names
from ganforge.losses.stylegan import StyleGAN2Loss, r1_penalty
from ganforge.models.dcgan import DCGANGenerator
from ganforge.models.stylegan import StyleDiscriminator, StyleGenerator

TINY_G = {"w_dim": 16, "mapping_layers": 2, "channel_base": 64, "channel_max": 8}
TINY_D = {"channel_base": 64, "channel_max": 8}

pytestmark = pytest.mark.usefixtures("one_thread")



def nets(resolution: int = 8, channels: int = 1, seed: int = 0, c_dim: int = 0):
    torch.manual_seed(seed)
    G = StyleGenerator(z_dim=8, c_dim=c_dim, resolution=resolution, channels=channels, **TINY_G)
    D = StyleDiscriminator(c_dim=c_dim, resolution=resolution, channels=channels, **TINY_D)
    return G, D


def batch(n: int = 8, resolution: int = 8, channels: int = 1, seed: int = 1) -> Batch:
    g = torch.Generator().manual_seed(seed)
    real = torch.rand(n, channels, resolution, resolution, generator=g) * 2 - 1
    return Batch(real=real, real_c=None, z=torch.randn(n, 8, generator=g), gen_c=None)


def test_registered_with_phases_and_lazy_intervals():
    assert "stylegan2" in loss_names()
    G, D = nets()
    loss = build_loss("stylegan2", {"G": G, "D": D})
    assert [(p.name, p.network, p.interval) for p in loss.phases] == [
        ("Gmain", "G", 1), ("Greg", "G", 4), ("Dmain", "D", 1), ("Dreg", "D", 16)]
    assert loss.reg_interval("G") == 4 and loss.reg_interval("D") == 16
    no_reg = build_loss("stylegan2", {"G": G, "D": D}, r1_gamma=0.0, pl_weight=0.0)
    assert [p.name for p in no_reg.phases] == ["Gmain", "Dmain"]


def test_validation():
    G, D = nets()
    with pytest.raises(ValueError, match="augment must be one of"):
        build_loss("stylegan2", {"G": G, "D": D}, augment="sometimes")
    with pytest.raises(ValueError, match="augment='none' with augment_p"):
        build_loss("stylegan2", {"G": G, "D": D}, augment="none", augment_p=0.3)
    with pytest.raises(ValueError, match="style-based generator"):
        build_loss("stylegan2", {"G": DCGANGenerator(resolution=8), "D": D})
    with pytest.raises(ValueError, match="bad options"):
        build_loss("stylegan2", {"G": G, "D": D}, d_steps=2)
    with pytest.raises(ValueError, match="unknown phase"):
        build_loss("stylegan2", {"G": G, "D": D}).accumulate_gradients("Gboth", batch(), 1.0)


def test_r1_equals_finite_differences():
    _, D = nets()
    D = D.double()
    x = (torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1).double().requires_grad_(True)
    penalty = r1_penalty(D(x), x)  # [2]
    eps = 1e-6
    grad = torch.zeros_like(x)
    with torch.no_grad():
        flat = x.detach().clone().flatten()
        for j in range(flat.numel()):  # d sum_i D(x)_i / d x_j (minibatch stddev couples the samples, as in R1)
            hi, lo = flat.clone(), flat.clone()
            hi[j] += eps
            lo[j] -= eps
            grad.view(-1)[j] = (D(hi.view_as(x)).sum() - D(lo.view_as(x)).sum()) / (2 * eps)
    assert torch.allclose(penalty, grad.square().sum(dim=[1, 2, 3]), rtol=1e-5)


def test_r1_phase_gradient_matches_finite_differences_in_the_weights():
    """Double backward through D (and the augment pipe at p = 0) gives d/dtheta of gamma/2 * gain * mean R1."""
    G, D = nets()
    G, D = G.double(), D.double()
    b = batch()
    b = Batch(b.real.double(), None, b.z.double(), None)
    loss = StyleGAN2Loss(G, D, r1_gamma=0.5, augment="ada")
    loss.accumulate_gradients("Dreg", b, gain=16.0)
    param = D.epilogue.fc.weight
    analytic = param.grad[0, 0].item()

    def objective() -> float:
        x = b.real.clone().requires_grad_(True)
        return float(r1_penalty(D(x), x).detach().mean()) * 0.5 / 2 * 16.0

    eps = 1e-5
    with torch.no_grad():
        param[0, 0] += eps
    up = objective()
    with torch.no_grad():
        param[0, 0] -= 2 * eps
    down = objective()
    assert analytic == pytest.approx((up - down) / (2 * eps), rel=1e-4)


def test_gamma_heuristic():
    G, D = nets()
    loss = StyleGAN2Loss(G, D)
    stats = loss.accumulate_gradients("Dreg", batch(n=4), 1.0)
    assert stats["loss/r1_gamma"] == pytest.approx(0.0002 * 64 / 4)


def test_path_length_regularisation_tracks_its_mean():
    G, D = nets()
    loss = StyleGAN2Loss(G, D, augment="none", pl_decay=0.5)
    assert float(loss.pl_mean) == 0.0
    s1 = loss.accumulate_gradients("Greg", batch(), 4.0)
    assert s1["loss/pl_mean"] > 0 and s1["loss/pl_penalty"] > 0
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in G.parameters())
    s2 = loss.accumulate_gradients("Greg", batch(seed=2), 4.0)
    assert s2["loss/pl_mean"] != s1["loss/pl_mean"]
    state = loss.state_dict()
    other = StyleGAN2Loss(G, D, augment="none")
    other.load_state_dict(state)
    assert float(other.pl_mean) == pytest.approx(s2["loss/pl_mean"])


def test_style_mixing_probability():
    G, D = nets(resolution=16)
    z = torch.randn(4, 8)
    never = StyleGAN2Loss(G, D, style_mixing_prob=0.0)
    _, ws = never.run_G(z, None)
    assert torch.equal(ws, ws[:, :1].expand_as(ws))
    always = StyleGAN2Loss(G, D, style_mixing_prob=1.0)
    for _ in range(5):
        _, ws = always.run_G(z, None)
        assert not torch.equal(ws, ws[:, :1].expand_as(ws))  # two latents: some layers differ from layer 0
        assert torch.equal(ws[:, 0], G.mapping(z)[:, 0])  # layer 0 always comes from z


class SpyD(torch.nn.Module):
    """Records what D sees."""

    def __init__(self, D: torch.nn.Module) -> None:
        super().__init__()
        self.D, self.seen = D, []

    def forward(self, img, c=None):
        self.seen.append(img.detach().clone())
        return self.D(img, c)


def test_everything_d_sees_is_augmented():
    G, D = nets()
    spy = SpyD(D)
    loss = StyleGAN2Loss(G, spy, augment="fixed", augment_p=1.0, augment_ops="brightness", style_mixing_prob=0.0)
    b = batch()
    loss.accumulate_gradients("Dmain", b, 1.0)
    _, real_seen = spy.seen
    shift = real_seen - b.real  # brightness adds one random constant per sample
    assert float(shift.abs().amin()) > 0
    assert torch.allclose(shift, shift.mean(dim=[1, 2, 3], keepdim=True).expand_as(shift), atol=1e-5)
    spy.seen.clear()
    loss.accumulate_gradients("Dreg", b, 1.0)
    assert not torch.allclose(spy.seen[0], b.real)
    spy.seen.clear()
    torch.manual_seed(5)
    loss.accumulate_gradients("Gmain", b, 1.0)
    torch.manual_seed(5)
    plain = G.synthesis(G.mapping(b.z))
    assert not torch.allclose(spy.seen[0], plain)


def test_ada_p_rises_when_d_overfits_and_is_restored(tmp_path):
    """A D trained alone on 4 images overfits (sign(D(real)) -> 1 > 0.6): p must rise; state_dict restores it."""
    G, D = nets()
    loss = StyleGAN2Loss(G, D, augment="ada", ada_kimg=0.5, ada_interval=2, r1_gamma=0.0, style_mixing_prob=0.0)
    opt = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.0, 0.99))
    G.requires_grad_(False)
    real = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    nimg, ps, rts = 0, [], []
    for step in range(60):
        b = Batch(real=real, real_c=None, z=torch.randn(4, 8), gen_c=None)
        opt.zero_grad(set_to_none=True)
        loss.accumulate_gradients("Dmain", b, 1.0)
        opt.step()
        nimg += 4
        stats = loss.after_step(step, nimg)
        ps.append(stats["augment/p"])
        if "augment/rt" in stats:
            rts.append(stats["augment/rt"])
    assert rts[-1] > 0.6
    assert ps[-1] > 0.1 and ps[-1] == max(ps)
    state = loss.state_dict()
    torch.save(state, tmp_path / "state.pt")
    restored = StyleGAN2Loss(*nets(), augment="ada", ada_kimg=0.5, ada_interval=2, r1_gamma=0.0)
    assert restored.pipe.p == 0.0
    restored.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert restored.pipe.p == ps[-1]
    with pytest.raises(ValueError, match="augment mode"):
        StyleGAN2Loss(*nets(), augment="none").load_state_dict(state)


def test_conditional_loss_runs_all_phases():
    G, D = nets(c_dim=3)
    loss = StyleGAN2Loss(G, D, augment="fixed", augment_p=0.5)
    c = F.one_hot(torch.arange(4) % 3, 3).float()
    b = Batch(real=torch.rand(4, 1, 8, 8) * 2 - 1, real_c=c, z=torch.randn(4, 8), gen_c=c)
    for p in loss.phases:
        stats = loss.accumulate_gradients(p.name, b, float(p.interval))
        assert all(torch.isfinite(torch.tensor(v)) for v in stats.values()), p.name
