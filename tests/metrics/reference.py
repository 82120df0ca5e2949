"""Load single functions of torch-fidelity (installed with ``pip install --no-deps torch-fidelity``) for live
comparisons, without importing its package ``__init__`` (which needs torchvision, absent beside torch 2.13).

Only modules whose own imports are light are loaded: the TF1 resize (torch only) and the metric modules, whose
package-internal imports are satisfied by placeholders (the functions compared use none of them).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest


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
