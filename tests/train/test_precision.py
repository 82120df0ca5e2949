"""Training precision: ``auto`` resolves per machine; bf16 autocast runs on the CPU, keeps fp32 weights, changes the
arithmetic (so it is really on) and resumes bitwise."""

from __future__ import annotations

import pytest
import torch

from ganforge.train import build as build_mod
from ganforge.train.build import resolve_precision
from ganforge.train.config import TrainConfig
from ganforge.train.loop import Trainer
from tests.train.test_resume import FAMILIES, _assert_bitwise_resume, tiny


@pytest.mark.parametrize(("amx", "avx512_bf16"), [(True, False), (False, True), (True, True), (False, False)])
def test_auto_is_bf16_only_on_a_cpu_with_native_bf16(monkeypatch, amx, avx512_bf16):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if amx or avx512_bf16 else "fp32")
    assert resolve_precision("auto", torch.device("cuda")) == "fp32"
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"


def test_auto_is_fp32_when_torch_cannot_tell(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    assert not build_mod.native_bf16_cpu()
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp16")


def _fastgan(tmp_path, **kw) -> TrainConfig:
    return tiny(tmp_path, **{**FAMILIES["fastgan"], "max_images": 64, **kw})


def test_bf16_on_cpu_trains_in_bf16_with_fp32_weights(tmp_path):
    runs = {}
    for precision in ("fp32", "bf16"):
        trainer = Trainer.from_config(_fastgan(tmp_path / precision, precision=precision, kimg=0.032),
                                      progress=False)
        assert trainer.precision == precision
        stats = trainer.train_step()
        assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
        assert all(p.dtype == torch.float32 for net in trainer.nets.values() for p in net.parameters())
        runs[precision] = torch.cat([p.detach().flatten() for p in trainer.nets["G"].parameters()])
    assert not torch.equal(runs["fp32"], runs["bf16"])  # the autocast really ran (same seed, same data)
    assert torch.allclose(runs["fp32"], runs["bf16"], atol=1e-2)  # ... and only the rounding differs


def test_bf16_resume_is_bitwise_identical(tmp_path):
    _assert_bitwise_resume(lambda sub, **kw: _fastgan(tmp_path / sub, precision="bf16", **kw))
