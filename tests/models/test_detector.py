"""The detector network: shapes for any input size and 1/3 channels, loud validation, determinism, safetensors round
trip with identical outputs (temperature and spectrum statistics included), one optimisation step lowers the loss,
and the spectrum features see a generator-style periodic artefact where theory puts it."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from ganforge.checkpoint import load_networks, save_checkpoint
from ganforge.models import network_class
from ganforge.models.detector import (
    SAT_BINS,
    Detector,
    ProcessingStep,
    cell_index,
    dct_matrix,
    log_spectrum,
    npr_residual,
    parse_branches,
    parse_processing,
    saturation_features,
)

TINY = {"width": 4, "depth": 2, "spectrum_size": 8, "hidden": 8}


def _net(channels: int = 3, seed: int = 0, **kw) -> Detector:
    torch.manual_seed(seed)
    return Detector(channels=channels, crop=16, **{**TINY, **kw}).eval()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(16, 16), (28, 28), (37, 53), (64, 48)])
def test_any_input_size_gives_one_logit_per_image(channels, size):
    net = _net(channels)
    x = torch.rand(3, channels, *size) * 2 - 1
    out = net(x)
    assert out.shape == (3,)
    assert torch.isfinite(out).all()
    p = net.predict_proba(x)
    assert p.shape == (3,) and ((p > 0) & (p < 1)).all()


def test_wrong_channels_and_too_small_inputs_are_refused_with_what_was_expected():
    net = _net(3)
    with pytest.raises(ValueError, match=r"expects images \[N, 3, H, W\].*convert channels"):
        net(torch.zeros(2, 1, 16, 16))
    with pytest.raises(ValueError, match="smaller than the spectrum grid"):
        net(torch.zeros(2, 3, 7, 30))


@pytest.mark.parametrize("kwargs,match", [
    ({"channels": 2}, "channels must be 1 or 3"),
    ({"spectrum": "wavelet"}, "spectrum must be one of"),
    ({"branches": "neither"}, "branches must be distinct names"),
    ({"branches": "pixel+pixel"}, "branches must be distinct names"),
    ({"pixel_input": "edges"}, "pixel_input must be one of"),
    ({"processing": "sharpen"}, "processing must be"),
    ({"processing": "jpeg+jpeg"}, "processing must be"),
    ({"processing": ""}, "processing '' .*removed"),
    ({"spectrum_channels": "rgb"}, "spectrum_channels"),
    ({"spectrum_size": 32, "crop": 16}, "spectrum_size must be in"),
])
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Detector(**{**TINY, **kwargs})


def test_registered_and_config_rebuilds_the_same_architecture():
    net = _net(1, spectrum="dct", branches="spectrum")
    assert network_class("detector") is Detector
    clone = Detector(**net.config)
    assert clone.config == net.config
    assert [k for k in clone.state_dict()] == [k for k in net.state_dict()]


def test_seeded_construction_is_deterministic_and_seeds_differ():
    x = torch.rand(4, 3, 20, 20)
    assert torch.equal(_net(seed=3)(x), _net(seed=3)(x))
    assert not torch.equal(_net(seed=3)(x), _net(seed=4)(x))


@pytest.mark.parametrize("kw", [{}, {"spectrum": "dct", "spectrum_channels": "each"}, {"branches": "pixel"},
                                {"branches": "spectrum"}, {"branches": "both", "pixel_input": "image"},
                                {"branches": "saturation"}, {"pixel_input": "image+npr"},
                                {"processing": "blur+jpeg+resize"}, {"processing": "resize"}])
def test_safetensors_round_trip_gives_identical_outputs(tmp_path, kw):
    net = _net(3, **kw)
    shape = net.spec_mean.shape
    net.set_spectrum_stats(torch.randn(shape), torch.rand(shape) + 0.5)
    net.set_temperature(2.5)
    net.set_processing_thresholds(torch.randn(net.proc_thresholds.shape))
    save_checkpoint(tmp_path / "det", {"detector": net}, {"kind": "detector"})
    back = load_networks(tmp_path / "det", ["detector"])["detector"]
    x = torch.rand(5, 3, 24, 31) * 2 - 1
    assert isinstance(back, Detector)
    assert float(back.temperature) == 2.5
    assert torch.equal(back(x), net(x))
    assert torch.equal(back.predict_proba(x), net.predict_proba(x))


def test_predict_proba_divides_the_logit_by_the_temperature():
    net = _net(1)
    x = torch.rand(6, 1, 16, 16)
    net.set_temperature(3.0)
    assert torch.allclose(net.predict_proba(x), torch.sigmoid(net(x) / 3.0))
    with pytest.raises(ValueError, match="positive finite"):
        net.set_temperature(0.0)


def test_spectrum_stats_are_validated():
    net = _net(3)
    with pytest.raises(ValueError, match="shape"):
        net.set_spectrum_stats(torch.zeros(3), torch.ones(3))
    shape = net.spec_mean.shape
    with pytest.raises(ValueError, match="std must be > 0"):
        net.set_spectrum_stats(torch.zeros(shape), torch.zeros(shape))


def test_one_optimisation_step_lowers_the_loss():
    net = _net(3).train()
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    y = torch.tensor([0.0, 1.0] * 4)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    before = F.binary_cross_entropy_with_logits(net(x), y)
    opt.zero_grad()
    before.backward()
    opt.step()
    after = F.binary_cross_entropy_with_logits(net(x), y)
    assert after.item() < before.item()


def test_dct_matrix_is_orthonormal():
    d = dct_matrix(12, dtype=torch.float64)
    assert torch.allclose(d @ d.T, torch.eye(12, dtype=torch.float64), atol=1e-10)


def test_log_spectrum_shows_the_replicas_of_4x_zero_insertion_upsampling_at_quarter_frequencies():
    """Zero insertion (the first step of a transposed convolution) replicates the spectrum: values on a sparse
    4x4 grid put the DC replicas at multiples of 1/4 cycles/pixel, i.e. at (H/2 + H/4, W/2 + W/4) after fftshift,
    far above the neighbouring bins."""
    n = 32
    x = torch.zeros(1, 1, n, n)
    x[..., ::4, ::4] = torch.rand(n // 4, n // 4) + 0.5
    spec = log_spectrum(x, "fft")[0, 0]
    peak = spec[n // 2 + n // 4, n // 2 + n // 4]
    off_grid = spec[n // 2 + n // 4 + 1, n // 2 + n // 4 + 2]
    assert float(peak) > float(off_grid) + math.log(10)
    assert log_spectrum(x, "dct").shape == x.shape
    with pytest.raises(ValueError, match="spectrum must be one of"):
        log_spectrum(x, "wavelet")


def test_branch_names_parse_and_the_old_name_still_loads():
    assert parse_branches("both") == ("pixel", "spectrum")
    assert parse_branches("spectrum+saturation") == ("spectrum", "saturation")
    net = _net(1, branches="both", pixel_input="image")  # the configuration detectors were saved with before
    assert net.sat_head is None and net.pixel is not None and net.spec_head is not None


def test_npr_residual_vanishes_on_nearest_upsampled_images_and_keeps_the_shape():
    """Tan et al. 2024: nearest 2x upsampling makes every 2x2 cell constant, so its residual is exactly zero."""
    small = torch.randn(2, 3, 8, 9)
    up = F.interpolate(small, scale_factor=2, mode="nearest")  # [2, 3, 16, 18]
    assert torch.equal(npr_residual(up), torch.zeros_like(up))
    odd = torch.randn(1, 1, 7, 5)
    r = npr_residual(odd)
    assert r.shape == odd.shape
    assert r[0, 0, 0, 0] == 0 and r[0, 0, 1, 1] == odd[0, 0, 1, 1] - odd[0, 0, 0, 0]
    assert r[0, 0, 6, 4] == 0  # the last odd row/column is its own cell's anchor


def test_saturation_features_count_clipped_pixels_and_the_histogram():
    img = torch.full((1, 1, 10, 10), -1.0)
    img[..., :2, :] = 1.0  # 20 % white
    img[..., 2:3, :] = 0.0  # 10 % mid-grey
    img[..., 3, 0] = -1.0 + 2.0 / 255.0  # one pixel one uint8 step above black: not clipped
    f = saturation_features(img)
    assert f.shape == (1, 2 + SAT_BINS)
    assert torch.allclose(f[0, :2].exp() - 1e-3, torch.tensor([0.69, 0.20]))
    hist = f[0, 2:]
    assert torch.isclose(hist.sum(), torch.tensor(1.0))
    assert torch.isclose(hist[0], torch.tensor(0.70)) and torch.isclose(hist[-1], torch.tensor(0.20))
    assert torch.isclose(hist[SAT_BINS // 2], torch.tensor(0.10))
    assert saturation_features(torch.zeros(3, 3, 8, 8)).shape == (3, 3 * (2 + SAT_BINS))


def _saved_without(net: Detector, key: str, tmp_path) -> Detector:
    """Save ``net``, delete ``key`` from its saved config (as a checkpoint from before that argument existed would
    lack it) and load it back."""
    save_checkpoint(tmp_path / "det", {"detector": net}, {"kind": "detector"})
    cfg_file = tmp_path / "det" / "config.json"
    meta = json.loads(cfg_file.read_text())
    del meta["networks"]["detector"]["config"][key]
    cfg_file.write_text(json.dumps(meta))
    return load_networks(tmp_path / "det", ["detector"])["detector"]


def test_a_detector_saved_before_pixel_input_existed_still_sees_the_image(tmp_path):
    """Older checkpoints record ``branches: "both"`` and no ``pixel_input``; rebuilding them with today's default
    (NPR) would feed their image-trained pixel CNN the wrong input. ``legacy_defaults`` keeps them as they were."""
    old = _net(1, branches="both", pixel_input="image")
    back = _saved_without(old, "pixel_input", tmp_path)
    assert back.pixel_input == "image"
    x = torch.rand(3, 1, 20, 20) * 2 - 1
    assert torch.equal(back(x), old(x))
    assert Detector().pixel_input == "npr"  # new detectors keep the new default


def test_the_threshold_is_the_one_expected_for_the_predicted_processing():
    """forward = score - sum over cells of P(cell) * threshold(cell), the cells being every on/off combination of
    the processing steps (assumed independent); a confident head picks its cell's threshold."""
    net = _net(1, processing="jpeg+resize")
    assert parse_processing("jpeg+resize") == ("jpeg", "resize")
    assert parse_processing("resize+jpeg") == (ProcessingStep.RESIZE, ProcessingStep.JPEG)
    assert [cell_index(c) for c in ([False, False], [True, False], [False, True], [True, True])] == [0, 1, 2, 3]
    thr = torch.tensor([-5.0, 1.0, 2.0, 4.0])
    net.set_processing_thresholds(thr)
    x = torch.rand(6, 1, 16, 16) * 2 - 1
    score, proc = net.forward_parts(x)
    cells = net.cell_probs(proc)
    assert cells.shape == (6, 4) and torch.allclose(cells.sum(dim=1), torch.ones(6))
    p = torch.sigmoid(proc)
    assert torch.allclose(cells[:, 3], p[:, 0] * p[:, 1]) and torch.allclose(cells[:, 1], p[:, 0] * (1 - p[:, 1]))
    assert torch.allclose(net(x), score - cells @ thr)
    sure = net.cell_probs(torch.tensor([[50.0, -50.0]]))  # surely JPEG'd, surely not resized: cell 1
    assert torch.allclose(sure, torch.tensor([[0.0, 1.0, 0.0, 0.0]])) and float(sure @ thr) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="4 finite numbers"):
        net.set_processing_thresholds(torch.zeros(3))


@pytest.mark.parametrize("processing", ["jpeg+resize", "blur+jpeg+resize", "jpeg", "resize"])
def test_the_parts_have_one_shape_whatever_is_asked(processing):
    """forward_parts always gives every step's logit; training_parts always the probed steps' (never JPEG's)."""
    net = _net(1, processing=processing)
    x = torch.rand(5, 1, 16, 16) * 2 - 1
    score, proc = net.forward_parts(x)
    assert score.shape == (5,) and proc.shape == (5, len(net.proc_steps))
    t_score, probed = net.training_parts(x)
    assert torch.equal(t_score, score) and probed.shape == (5, len(net.proc_head.learned))
    assert ProcessingStep.JPEG not in net.proc_head.learned
    for j, step in enumerate(net.proc_steps):  # the probed columns are the same logits forward_parts gives
        if step in net.proc_head.learned:
            assert torch.equal(proc[:, j], probed[:, net.proc_head.learned.index(step)])


def test_processing_steps_are_one_enum_equal_to_their_names():
    assert [str(s) for s in ProcessingStep] == ["blur", "jpeg", "resize"]
    assert ProcessingStep.JPEG == "jpeg" and {"jpeg": 1}[ProcessingStep.JPEG] == 1
    assert f"{ProcessingStep.JPEG}" == "jpeg" and ProcessingStep("resize") is ProcessingStep.RESIZE


def test_a_detector_saved_without_a_processing_head_is_refused_naming_the_mode(tmp_path):
    """Detectors from before the processing head (their config lacks it, or says processing '') carried one global
    threshold in the head's bias, a mode that was removed; loading one says so instead of rebuilding it."""
    with pytest.raises(ValueError, match=r"saved with processing ''.*one global threshold.*removed"):
        _saved_without(_net(1), "processing", tmp_path)
