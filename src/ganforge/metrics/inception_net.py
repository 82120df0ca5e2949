"""The FID Inception-v3 network: Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", CVPR
2016, in the variant of the 2015-12-05 TensorFlow graph that FID (Heusel et al. 2017) is defined with.

This is the architecture pytorch-fid (``FIDInceptionA/C/E_1/E_2``) and torch-fidelity (``inception-v3-compat``) port
from that graph. It differs from torchvision's Inception-v3 in three places: the average pools inside the blocks do
not count the zero padding (TF semantics), the last block (``Mixed_7c``) pools with max instead of average, and the
classifier has 1008 classes. Module names follow torchvision (``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch1x1``,
``fc``), so the standard weight file ``pt_inception-2015-12-05-6726825d.pth`` loads with ``load_state_dict``.

Input: ``[N, 3, 299, 299]`` float32, pixel values already mapped to ``(x - 128) / 128``. Output: pool features
``[N, 2048]`` and, when the classifier weights are present, logits without the bias ``[N, 1008]`` (what the Inception
Score reads).

:func:`fold_for_inference` gives the same network for inference only: each convolution's batch norm folded into its
weights and bias, and on the CPU the ReLU run inside the oneDNN convolution (one pass over memory instead of three).
Its features equal the reference's to float32 rounding (~3e-6 relative; tests/metrics/test_inception.py checks 1e-3).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, TF's value), ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int | tuple[int, int], stride: int = 1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class FoldedConv2d(nn.Module):
    """A :class:`BasicConv2d` for inference: ``relu(conv(x, w * s) + (beta - mean * s))`` with the batch norm's
    ``s = gamma / sqrt(var + eps)`` folded into the weights ``[C_out, C_in, kh, kw]`` and bias ``[C_out]``.

    On CPU float32 tensors without autograd it runs as one oneDNN convolution with the ReLU as post-op (the primitive
    PyTorch's own compiler emits for conv + ReLU, ``mkldnn::_convolution_pointwise``); otherwise as conv2d then ReLU
    (so gradients still flow to the input, as a perceptual distance needs).
    """

    def __init__(self, layer: BasicConv2d) -> None:
        super().__init__()
        bn, conv = layer.bn, layer.conv
        scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()  # [C_out]
        self.register_buffer("weight", (conv.weight.detach() * scale[:, None, None, None]).contiguous())
        self.register_buffer("bias", (bn.bias.detach() - bn.running_mean * scale).contiguous())
        self.stride, self.padding = tuple(conv.stride), tuple(conv.padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        no_grad = not (torch.is_grad_enabled() and x.requires_grad)  # the fused operator has no backward
        if no_grad and x.device.type == "cpu" and x.dtype == torch.float32 and onednn_fusion_available():
            return torch.ops.mkldnn._convolution_pointwise(
                x, self.weight, self.bias, list(self.padding), list(self.stride), [1, 1], 1, "relu", [], ""
            )
        return F.relu(F.conv2d(x, self.weight, self.bias, self.stride, self.padding))


def onednn_fusion_available() -> bool:
    """Whether this PyTorch build has oneDNN and its fused convolution + pointwise operator."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        torch.ops.mkldnn._convolution_pointwise  # noqa: B018  (looked up, not called)
    except (AttributeError, RuntimeError):
        return False
    return True


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-1 average pool that ignores the zero padding, as TF's ``avg_pool`` with SAME padding."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, 1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_tf_avg_pool(x))], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    """Factorised 7x7 convolutions on the 17x17 grid."""

    def __init__(self, c_in: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            d = layer(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_tf_avg_pool(x))], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """Expanded filter bank on the 8x8 grid; ``max_pool=True`` is the FID graph's last block (a max pool branch)."""

    def __init__(self, c_in: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(c_in, 320, 1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_1(x)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(a), self.branch3x3_2b(a),
                self.branch3x3dbl_3a(b), self.branch3x3dbl_3b(b),
                self.branch_pool(pooled),
            ],
            1,
        )


class FIDInceptionV3(nn.Module):
    """``[N, 3, 299, 299]`` in ``(x - 128) / 128`` -> (pool ``[N, 2048]``, bias-free logits ``[N, 1008]`` or None)."""

    def __init__(self, with_classifier: bool = True) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008) if with_classifier else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # [N, 64, 147, 147]
        x = F.max_pool2d(x, 3, stride=2)  # [N, 64, 73, 73]
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))  # [N, 192, 71, 71]
        x = F.max_pool2d(x, 3, stride=2)  # [N, 192, 35, 35]
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)  # ... -> [N, 2048, 8, 8]
        pool = F.adaptive_avg_pool2d(x, 1).flatten(1)  # [N, 2048]
        logits = pool @ self.fc.weight.T if self.fc is not None else None  # [N, 1008], bias left out (see module doc)
        return pool, logits

    def conv_layers(self) -> list[BasicConv2d]:
        """Every BasicConv2d in registration order (the order of the TF graph's variables)."""
        return [m for m in self.modules() if isinstance(m, BasicConv2d)]


def fold_for_inference(net: FIDInceptionV3) -> FIDInceptionV3:
    """A copy of ``net`` with every :class:`BasicConv2d` replaced by its :class:`FoldedConv2d` (inference only)."""
    folded = copy.deepcopy(net).eval().requires_grad_(False)
    for parent in list(folded.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, BasicConv2d):
                setattr(parent, name, FoldedConv2d(child))
    return folded
