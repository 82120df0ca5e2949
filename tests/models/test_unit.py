"""UNIT networks: shared latent layers, shapes, validation, determinism, checkpoint round trip, preview grid."""

from __future__ import annotations

import json

import pytest
import torch

from ganforge.checkpoint import load_networks, save_checkpoint
from ganforge.models import network_class
from ganforge.models.unit import UnitDiscriminator, UnitGenerator, upsampler
from ganforge.train.recipes import get_recipe
from ganforge.train.recipes.unit import unit_preview

pytestmark = pytest.mark.usefixtures("one_thread")


def blobs(n: int, res: int = 16, seed: int = 0) -> torch.Tensor:
    """Toy domain: ``[n, 1, res, res]`` white discs of random centre and radius on black, in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(res), torch.arange(res), indexing="ij")
    c = torch.rand(n, 2, generator=g) * (res - 6) + 3
    r = torch.rand(n, 1, generator=g) * 3 + 2
    d = ((yy - c[:, 0, None, None]) ** 2 + (xx - c[:, 1, None, None]) ** 2).sqrt()
    return (d < r[:, :, None]).float()[:, None] * 2 - 1


def tiny_g(**kw) -> UnitGenerator:
    return UnitGenerator(**{"channels_a": 1, "channels_b": 3, "resolution": 16, "width": 4, "n_res": 1, **kw})


def tiny_d(**kw) -> UnitDiscriminator:
    return UnitDiscriminator(**{"channels_a": 1, "channels_b": 3, "resolution": 16, "width": 4, "n_layers": 2, **kw})


def test_shared_layers_are_the_same_parameters_in_both_branches():
    G = tiny_g(n_shared=2)
    enc_a, enc_b = G.encoder("a"), G.encoder("b")
    dec_a, dec_b = G.decoder("a"), G.decoder("b")
    assert enc_a[-1] is enc_b[-1] is G.shared["enc"]
    assert dec_a[0] is dec_b[0] is G.shared["dec"]
    common_enc = {id(p) for p in enc_a.parameters()} & {id(p) for p in enc_b.parameters()}
    common_dec = {id(p) for p in dec_a.parameters()} & {id(p) for p in dec_b.parameters()}
    assert common_enc == {id(p) for p in G.shared["enc"].parameters()} and common_enc
    assert common_dec == {id(p) for p in G.shared["dec"].parameters()} and common_dec
    # Private layers are not shared, and each parameter is stored (and saved) exactly once.
    assert not {id(p) for p in G.enc_a.parameters()} & {id(p) for p in G.enc_b.parameters()}
    params = list(G.parameters())
    assert len({id(p) for p in params}) == len(params) == len(G.state_dict())


def test_a_change_to_a_shared_layer_changes_both_branches_and_gradients_reach_it():
    G = tiny_g()
    xa, xb = blobs(2), blobs(2, seed=1).repeat(1, 3, 1, 1)
    before = G.encode(xa, "a"), G.encode(xb, "b")
    with torch.no_grad():
        next(G.shared["enc"].parameters()).add_(0.5)
    after = G.encode(xa, "a"), G.encode(xb, "b")
    assert not torch.allclose(before[0], after[0]) and not torch.allclose(before[1], after[1])
    G.translate(xa, "a2b").square().mean().backward()  # A branch only
    assert all(p.grad is not None for p in G.shared.parameters())
    assert all(p.grad is None for p in G.enc_b.parameters())


def test_private_and_shared_halves_compose_to_the_branches_and_batch_across_domains():
    """encode = shared(private) and decode = private(shared); the shared layers work per sample (instance norm), so
    running them once on both domains' codes gives what two separate calls give."""
    G = tiny_g(n_shared=2)
    xa, xb = blobs(3), torch.rand(3, 3, 16, 16) * 2 - 1
    mu_a, mu_b = G.encode(xa, "a"), G.encode(xb, "b")
    assert torch.equal(G.encode_shared(G.encode_private(xa, "a")), mu_a)
    both = G.encode_shared(torch.cat([G.encode_private(xa, "a"), G.encode_private(xb, "b")]))
    torch.testing.assert_close(both, torch.cat([mu_a, mu_b]), rtol=1e-5, atol=1e-6)
    s = G.decode_shared(torch.cat([mu_a, mu_b]))
    torch.testing.assert_close(G.decode_private(s, "b"), torch.cat([G.decode(mu_a, "b"), G.decode(mu_b, "b")]),
                               rtol=1e-5, atol=1e-6)
    assert torch.equal(G.decode_private(G.decode_shared(mu_a), "a"), G.decode(mu_a, "a"))
    with pytest.raises(ValueError, match=r"latent codes must be \[N, 16, h, w\]"):
        G.decode_shared(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match="domain must be 'a' or 'b'"):
        G.decode_private(mu_a, "c")


def test_shapes_for_domains_with_different_channels_and_non_square_sizes():
    G, D = tiny_g(), tiny_d(num_scales=2)
    xa = torch.randn(3, 1, 16, 24)
    h = G.encode(xa, "a")
    assert h.shape == (3, G.latent_channels, 4, 6)
    assert G.decode(h, "b").shape == (3, 3, 16, 24)
    assert G.translate(xa, "a2b").shape == (3, 3, 16, 24)
    assert G.translate(torch.randn(2, 3, 16, 16), "b2a").shape == (2, 1, 16, 16)
    ab = G.translate(xa, "a2b")
    assert ab.min() >= -1 and ab.max() <= 1
    outs = D(torch.randn(2, 3, 16, 16), "b")
    assert [tuple(o.shape) for o in outs] == [(2, 1, 4, 4), (2, 1, 2, 2)]


def test_bad_inputs_and_options_raise_clear_errors():
    G, D = tiny_g(), tiny_d()
    with pytest.raises(ValueError, match=r"domain B images must be \[N, 3, H, W\]"):
        G.encode(torch.randn(1, 1, 16, 16), "b")
    with pytest.raises(ValueError, match=r"must be a multiple of 4 \(2\*\*n_downsample\) and at least 8x8"):
        G.encode(torch.randn(1, 1, 18, 16), "a")
    with pytest.raises(ValueError, match="direction must be 'a2b' or 'b2a'"):
        G.translate(torch.randn(1, 1, 16, 16), "a2c")
    with pytest.raises(ValueError, match="domain must be 'a' or 'b'"):
        D(torch.randn(1, 1, 16, 16), "c")
    with pytest.raises(ValueError, match="multiple of 2\\*\\*n_downsample = 4 and >= 8"):
        tiny_g(resolution=18)
    with pytest.raises(ValueError, match="channels_b must be 1 or 3"):
        tiny_g(channels_b=2)
    with pytest.raises(ValueError, match="n_shared must be >= 1"):
        tiny_g(n_shared=0)
    with pytest.raises(ValueError, match="init must be one of"):
        tiny_g(init="xavier")
    with pytest.raises(ValueError, match="too small for n_layers=3, num_scales=3"):
        tiny_d(n_layers=3, num_scales=3)
    with pytest.raises(ValueError, match="norm='instance' needs more than one pixel.* is 1x1"):
        UnitDiscriminator(1, 1, 28, width=4, n_layers=3, num_scales=2, norm="instance")  # 28 -> 14 -> 7, 3, 1
    D = UnitDiscriminator(1, 1, 28, width=4, n_layers=3, num_scales=1, norm="instance")  # last normalised map 3x3
    assert [tuple(o.shape) for o in D(torch.randn(2, 1, 28, 28), "a")] == [(2, 1, 3, 3)]


def test_gaussian_init_draws_conv_weights_with_std_0_02_and_is_recorded():
    torch.manual_seed(0)
    G = UnitGenerator(1, 1, 16, width=16, n_res=1, init="gaussian")
    convs = [m.weight for m in G.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    std = torch.cat([w.flatten() for w in convs]).std().item()
    assert abs(std - 0.02) < 0.001 and G.config["init"] == "gaussian"
    torch.manual_seed(0)
    kaiming = UnitGenerator(1, 1, 16, width=16, n_res=1)  # fan-in scaled: far wider than 0.02 for these layers
    assert torch.cat([m.weight.flatten() for m in kaiming.modules() if isinstance(m, torch.nn.Conv2d)]).std() > 0.05


def test_translation_is_deterministic_and_the_config_is_json():
    G = tiny_g()
    x = blobs(4)
    assert torch.equal(G.translate(x, "a2b"), G.translate(x, "a2b"))
    assert torch.equal(G.eval().translate(x, "a2b"), G.train().translate(x, "a2b"))  # instance norm: no running stats
    assert torch.equal(G(x), G.translate(x, "a2b"))
    rebuilt = UnitGenerator(**json.loads(json.dumps(G.config)))
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(p.numel() for p in G.parameters())


def test_safetensors_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    G, D = tiny_g(norm="batch"), tiny_d(num_scales=2)
    x_a, x_b = blobs(3), torch.rand(3, 3, 16, 16) * 2 - 1
    G(x_a)  # move batch-norm running statistics away from their initial values
    G.eval()
    path = save_checkpoint(tmp_path / "ckpt", {"G": G, "D": D}, {"family": "unit"})
    loaded = load_networks(path)
    G2, D2 = loaded["G"], loaded["D"]
    assert type(G2) is UnitGenerator and type(D2) is UnitDiscriminator
    assert torch.equal(G2.translate(x_a, "a2b"), G.translate(x_a, "a2b"))
    assert torch.equal(G2.translate(x_b, "b2a"), G.translate(x_b, "b2a"))
    for o1, o2 in zip(D(x_b, "b"), D2(x_b, "b"), strict=True):
        assert torch.equal(o1, o2)
    assert G2.shared["enc"] is G2.encoder("b")[-1]  # sharing survives the round trip


def test_preview_rows_are_input_translated_cycled_for_both_directions():
    G = tiny_g()
    a, b = blobs(2), torch.rand(2, 3, 16, 16) * 2 - 1
    imgs = unit_preview(G, a, b)
    assert imgs.shape == (12, 3, 16, 16)
    assert torch.equal(imgs[0:2], a.expand(-1, 3, -1, -1))
    assert torch.equal(imgs[2:4], G.translate(a, "a2b"))
    assert torch.equal(imgs[4:6, :1], G.translate(G.translate(a, "a2b"), "b2a"))
    assert torch.equal(imgs[6:8], b)
    with pytest.raises(ValueError, match="same size"):
        unit_preview(G, a, b[:1])


def test_recipe_and_networks_are_registered():
    recipe = get_recipe("unit")
    assert recipe.loss == "unit" and recipe.build_networks is not None and recipe.make_source is not None
    assert network_class("unit-g") is UnitGenerator and network_class("unit-d") is UnitDiscriminator


def test_construction_is_deterministic_under_a_seed():
    """The contract suite's determinism check for UNIT (tests/models/test_contract.py, OWN_CONTRACT)."""
    x_a, x_b = blobs(3), torch.rand(3, 3, 16, 16) * 2 - 1
    torch.manual_seed(5)
    G1, D1 = tiny_g(), tiny_d()
    torch.manual_seed(5)
    G2, D2 = tiny_g(), tiny_d()
    torch.manual_seed(6)
    G3 = tiny_g()
    assert torch.equal(G1.translate(x_a, "a2b"), G2.translate(x_a, "a2b"))
    for o1, o2 in zip(D1(x_b, "b"), D2(x_b, "b"), strict=True):
        assert torch.equal(o1, o2)
    assert not torch.equal(G1.translate(x_a, "a2b"), G3.translate(x_a, "a2b"))


def test_one_step_changes_the_loss():
    """The contract suite's one-optimisation-step check for UNIT, with the recipe's loss."""
    from ganforge.losses import Batch, build_loss

    torch.manual_seed(0)
    G, D = tiny_g(), tiny_d()
    loss = build_loss(get_recipe("unit").loss, {"G": G, "D": D})
    batch = Batch(real=blobs(4), real_c=None, z=torch.zeros(4, 1), gen_c=None,
                  extra={"real_b": torch.rand(4, 3, 16, 16) * 2 - 1})
    for phase, net, key in (("Dmain", D, "loss/D"), ("Gmain", G, "loss/G")):
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        torch.manual_seed(0)
        before = loss.accumulate_gradients(phase, batch, 1.0)
        opt.step()
        opt.zero_grad()
        torch.manual_seed(0)
        after = loss.accumulate_gradients(phase, batch, 1.0)
        assert after[key] != pytest.approx(before[key], abs=1e-7), phase
        G.zero_grad(), D.zero_grad()


def test_resize_convolution_turns_a_flat_input_into_a_flat_output_where_a_transposed_conv_makes_a_pattern():
    """The ``nearest`` stage (Odena et al. 2016) cannot draw period-2 stripes from nothing; the paper's can."""
    torch.manual_seed(0)
    flat = torch.full((1, 8, 6, 6), 0.7)  # [N, C, h, w], one value everywhere
    for kind, patterned in (("transposed", True), ("nearest", False)):
        stage = torch.nn.Sequential(*upsampler(kind, 8))
        out = stage(flat)  # [1, 4, 12, 12]
        assert out.shape == (1, 4, 12, 12)
        inner = out[..., 2:-2, 2:-2]  # away from the border, where padding differs
        spread = (inner - inner.mean(dim=(-1, -2), keepdim=True)).abs().amax().item()
        assert (spread > 1e-3) is patterned, kind
    with pytest.raises(ValueError, match="upsample must be one of"):
        upsampler("bilinear", 8)


def test_nearest_upsampling_generator_translates_round_trips_and_old_configs_keep_transposed_convs(tmp_path):
    G = tiny_g(upsample="nearest")
    assert G.config["upsample"] == "nearest"
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules())
    x_a = blobs(3)
    assert G.translate(x_a, "a2b").shape == (3, 3, 16, 16)
    path = save_checkpoint(tmp_path / "ckpt", {"G": G}, {"family": "unit"})
    assert torch.equal(load_networks(path)["G"].translate(x_a, "a2b"), G.translate(x_a, "a2b"))
    old_G = tiny_g()
    old = save_checkpoint(tmp_path / "old", {"G": old_G}, {"family": "unit"})
    meta = json.loads((old / "config.json").read_text())
    del meta["networks"]["G"]["config"]["upsample"]  # as saved before the option existed
    (old / "config.json").write_text(json.dumps(meta))
    rebuilt = load_networks(old)["G"]
    assert rebuilt.config["upsample"] == "transposed"
    assert torch.equal(rebuilt.translate(x_a, "a2b"), old_G.translate(x_a, "a2b"))
    with pytest.raises(ValueError, match="upsample must be one of"):
        tiny_g(upsample="pixelshuffle")


def test_compile_parts_cover_every_generator_parameter_once_and_place_networks_compiles_them():
    """The UNIT loss calls the encoder and generator halves, never ``forward``: ``--compile`` must compile those."""
    from ganforge.train.build import place_networks
    from ganforge.train.config import TrainConfig
    from ganforge.train.distributed import DistInfo

    G, D = tiny_g(), tiny_d()
    owned = [id(p) for part in G.compile_parts() for p in part.parameters()]
    assert sorted(owned) == sorted(id(p) for p in G.parameters())  # every parameter, none twice
    assert D.compile_parts() == [D]  # D is called through forward
    keys = G.state_dict().keys()
    place_networks({"G": G, "D": D}, TrainConfig(model="unit", compile=True), torch.device("cpu"), DistInfo())
    assert all(part._compiled_call_impl is not None for part in G.compile_parts() + [D])  # compiled lazily, in place
    assert G.state_dict().keys() == keys
