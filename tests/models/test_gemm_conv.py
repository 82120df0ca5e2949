"""GemmConv2d: the same convolution as nn.Conv2d, by GEMM on small output maps and by the ordinary path elsewhere."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.models.gemm_conv import GemmConv2d


def _pair(cin: int, cout: int, k: int, s: int, p: int, channels_last: bool) -> tuple[nn.Conv2d, GemmConv2d]:
    torch.manual_seed(0)
    ref = nn.Conv2d(cin, cout, k, s, p).double()
    gemm = GemmConv2d(cin, cout, k, s, p).double()
    gemm.load_state_dict(ref.state_dict())
    if channels_last:
        ref.to(memory_format=torch.channels_last)
        gemm.to(memory_format=torch.channels_last)
    return ref, gemm


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(("k", "s", "p", "size"), [(4, 2, 1, 4), (3, 1, 0, 3), (4, 2, 1, 3), (2, 2, 0, 3)])
def test_small_maps_match_conv2d_forward_and_backward(channels_last: bool, k: int, s: int, p: int, size: int) -> None:
    ref, gemm = _pair(5, 7, k, s, p, channels_last)
    x = torch.randn(3, 5, size, size, dtype=torch.double)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    xr, xg = x.clone().requires_grad_(), x.clone().requires_grad_()
    yr, yg = ref(xr), gemm(xg)
    h_out = (size + 2 * p - k) // s + 1
    assert h_out * h_out <= gemm.max_positions  # the GEMM path ran
    assert yg.shape == yr.shape
    torch.testing.assert_close(yg, yr)
    g = torch.randn_like(yr)
    yr.backward(g)
    yg.backward(g)
    torch.testing.assert_close(xg.grad, xr.grad)
    torch.testing.assert_close(gemm.weight.grad, ref.weight.grad)
    torch.testing.assert_close(gemm.bias.grad, ref.bias.grad)


def test_large_maps_take_the_ordinary_path(monkeypatch: pytest.MonkeyPatch) -> None:
    ref, gemm = _pair(3, 4, 4, 2, 1, channels_last=False)
    calls = []
    monkeypatch.setattr(F, "unfold", lambda *a, **k: calls.append(1))
    x = torch.randn(2, 3, 8, 8, dtype=torch.double)  # 4x4 out: 16 positions > 4
    torch.testing.assert_close(gemm(x), ref(x))
    assert not calls


def test_same_state_dict_as_conv2d_and_no_bias() -> None:
    gemm = GemmConv2d(2, 3, 4, 2, 1, bias=False)
    assert set(gemm.state_dict()) == set(nn.Conv2d(2, 3, 4, 2, 1, bias=False).state_dict()) == {"weight"}
    x = torch.randn(1, 2, 4, 4)
    torch.testing.assert_close(gemm(x), F.conv2d(x, gemm.weight, None, 2, 1))


def test_bf16_autocast_close_to_fp32() -> None:
    ref, gemm = _pair(64, 32, 4, 2, 1, channels_last=True)
    ref, gemm = ref.float(), gemm.float()
    x = torch.randn(4, 64, 4, 4).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = gemm(x)
    torch.testing.assert_close(y.float(), ref(x), atol=0.05, rtol=0.05)


def test_unsupported_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="one group"):
        GemmConv2d(4, 4, 3, groups=2)
    with pytest.raises(ValueError, match="one group"):
        GemmConv2d(4, 4, 3, padding=1, padding_mode="reflect")
    with pytest.raises(ValueError, match="max_positions"):
        GemmConv2d(4, 4, 3, max_positions=-1)
