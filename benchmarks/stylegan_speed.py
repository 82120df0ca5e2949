"""StyleGAN2 speed and the 32x32 digits check (issue 4). One JSON line per measurement on stdout.

``speed``: training throughput of the full StyleGAN2 step (Gmain every step, Greg every 4, Dmain every step, Dreg
every 16, with ADA at a fixed p) and generation throughput, per resolution, plus peak CUDA memory on a GPU. The
measured loop is the one the trainer runs (one optimizer per network, lazy regularisation with lr/beta rescaling).

    python benchmarks/stylegan_speed.py speed --resolutions 32 --batch 16 --channel-base 2048 --channel-max 64
    python benchmarks/stylegan_speed.py speed --device cuda --precision bf16 --channels-last --resolutions 64,128,256

``digits``: train a 32x32 style model on the built-in digits (28x28 zero-padded to 32x32) with ganforge's trainer and
report time and the digits quality bar (share of 1000 samples the digits classifier labels with confidence >= 0.9
and the classes among them; the bar is >= 90 % and 10/10), when the ``digits`` extractor is installed.

    flock /tmp/ganforge-cpu.lock python benchmarks/stylegan_speed.py digits --kimg 40 --outdir /tmp/sg-digits
    python benchmarks/stylegan_speed.py digits --evaluate /tmp/sg-digits/runs/00000-stylegan-digits32.npz
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge.losses import Batch, build_loss
from ganforge.models.stylegan import StyleDiscriminator, StyleGenerator


def _machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def speed(args: argparse.Namespace) -> None:
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    for res in (int(r) for r in args.resolutions.split(",")):
        print(json.dumps(measure(res, args, device)), flush=True)


def _autocast(args: argparse.Namespace, device: torch.device):
    if args.precision == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


def build(res: int, args: argparse.Namespace, device: torch.device) -> tuple[dict[str, nn.Module], Any, dict]:
    """``{"G": G, "D": D}``, the stylegan2 loss and one Adam per network (lazy-regularisation rescaled) for one
    resolution."""
    torch.manual_seed(0)
    kw = {"channel_base": args.channel_base, "channel_max": args.channel_max}
    G = StyleGenerator(z_dim=args.z_dim, resolution=res, channels=3, w_dim=args.z_dim,
                       mapping_layers=args.mapping_layers, **kw).to(device)
    D = StyleDiscriminator(resolution=res, channels=3, **kw).to(device)
    if args.channels_last:
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    loss = build_loss("stylegan2", {"G": G, "D": D}, augment="fixed", augment_p=args.augment_p)
    if args.compile:
        G.synthesis = torch.compile(G.synthesis)  # type: ignore[method-assign]
        D.forward = torch.compile(D.forward)  # type: ignore[method-assign]
    nets = {"G": G, "D": D}
    opts = {}
    for key, net in nets.items():
        ratio = loss.reg_interval(key) / (loss.reg_interval(key) + 1)  # lazy regularisation rescaling
        opts[key] = torch.optim.Adam(net.parameters(), lr=0.0025 * ratio, betas=(0.0, 0.99**ratio), eps=1e-8)
    return nets, loss, opts


def generation_seconds(G: nn.Module, args: argparse.Namespace, device: torch.device) -> float:
    """Seconds for ``args.steps`` batches of constant-noise generation, after one warm-up batch."""
    G.eval()
    with torch.no_grad(), _autocast(args, device):
        z = torch.randn(args.batch, args.z_dim, device=device)
        G(z)
        _sync(device)
        t = time.perf_counter()
        for _ in range(args.steps):
            G(z, noise_mode="const")
        _sync(device)
        return time.perf_counter() - t


def measure(res: int, args: argparse.Namespace, device: torch.device) -> dict:
    """Training and generation images/s (and peak CUDA memory) of one resolution."""
    nets, loss, opts = build(res, args, device)
    G, D = nets["G"], nets["D"]
    real = torch.rand(args.batch, 3, res, res, device=device) * 2 - 1
    if args.channels_last:
        real = real.contiguous(memory_format=torch.channels_last)

    def step(i: int) -> None:
        for phase in loss.phases:
            if i % phase.interval:
                continue
            for key, net in nets.items():
                net.requires_grad_(key == phase.network)
            opts[phase.network].zero_grad(set_to_none=True)
            batch = Batch(real, None, torch.randn(args.batch, args.z_dim, device=device), None)
            with _autocast(args, device):
                loss.accumulate_gradients(phase.name, batch, float(phase.interval))
            opts[phase.network].step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(args.warmup):
        step(i)
    _sync(device)
    t = time.perf_counter()
    for i in range(args.steps):
        step(i)  # the phases follow their lazy intervals (i = 0 runs all four)
    _sync(device)
    train_s = time.perf_counter() - t
    gen_s = generation_seconds(G, args, device)
    rec = {
        "benchmark": "stylegan_speed", "resolution": res, "batch": args.batch, "device": str(device),
        "machine": _machine(device), "precision": args.precision, "channels_last": args.channels_last,
        "compile": args.compile, "channel_base": args.channel_base, "channel_max": args.channel_max,
        "params_G": sum(p.numel() for p in G.parameters()), "params_D": sum(p.numel() for p in D.parameters()),
        "steps": args.steps, "train_img_per_s": round(args.steps * args.batch / train_s, 2),
        "generate_img_per_s": round(args.steps * args.batch / gen_s, 2), "torch": torch.__version__,
    }
    if device.type == "cuda":
        rec["peak_mem_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return rec


def quality_bar(G: torch.nn.Module, n: int) -> dict:
    """Share of ``n`` samples classified with confidence >= 0.9 and the classes among them (or why not measured)."""
    from ganforge.sampling import generate

    try:
        from ganforge.metrics import get_extractor

        extractor = get_extractor("digits")
    except Exception as e:  # the classifier may not be installed: say so, do not guess
        return {"quality": f"not measured: digits extractor unavailable ({type(e).__name__}: {e})"}
    imgs = generate(G, list(range(n)), None, noise_mode="const")[:, :, 2:30, 2:30]  # undo the padding
    prob = torch.as_tensor(extractor(imgs).logits).softmax(dim=1)
    conf, label = prob.max(dim=1)
    confident = conf >= 0.9
    return {"confident_share": round(float(confident.float().mean()), 4),
            "classes_confident": int(label[confident].unique().numel()),
            "classes_argmax": int(label.unique().numel()), "n_eval": n}


def digits(args: argparse.Namespace) -> None:
    from progan_digits import padded_digits  # the sibling script: the same 32x32 digits as the ProGAN benchmark

    from ganforge.sampling import load_generator
    from ganforge.train.config import TrainConfig
    from ganforge.train.loop import Trainer

    torch.set_num_threads(args.threads)
    common = {"benchmark": "stylegan_digits", "machine": _machine(torch.device("cpu")), "torch": torch.__version__}
    if args.evaluate:
        G, _ = load_generator(args.evaluate)
        print(json.dumps(common | {"evaluate": args.evaluate, **quality_bar(G, args.n_eval)}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.outdir or tmp)
        out.mkdir(parents=True, exist_ok=True)
        data = padded_digits(out / "digits32.npz")
        net = {"channel_base": args.channel_base, "channel_max": args.channel_max}
        cfg = TrainConfig(
            model="stylegan", data=str(data), batch=args.batch, z_dim=args.z_dim, kimg=args.kimg, seed=args.seed,
            g_kwargs={"w_dim": args.z_dim, "mapping_layers": args.mapping_layers, **net},
            d_kwargs={**net, **json.loads(args.d_kwargs)},
            loss_kwargs={"augment": args.augment, **json.loads(args.loss_kwargs)}, lr_g=args.lr, lr_d=args.lr,
            betas=tuple(args.betas),
            ema_kimg=args.ema_kimg, ema_rampup=0.05, device="cpu", threads=args.threads,
            outdir=str(out / "runs"), grid_kimg=max(1.0, args.kimg / 10), snapshot_kimg=max(1.0, args.kimg / 4),
            log_every=20,
        )
        t = time.perf_counter()
        trainer = Trainer.from_config(cfg, progress=True)
        run = trainer.run()
        secs = time.perf_counter() - t
        G = trainer.generator_for_samples().eval()
        stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
        last = stats[-1] if stats else {}
        print(json.dumps(common | {
            "kimg": trainer.nimg / 1000, "seconds": round(secs, 1), "img_per_s": round(trainer.nimg / secs, 1),
            "batch": args.batch, "channel_base": args.channel_base, "channel_max": args.channel_max, "lr": args.lr,
            "betas": list(args.betas),
            "loss_kwargs": cfg.loss_kwargs, "d_kwargs": cfg.d_kwargs, "ema_kimg": args.ema_kimg,
            "params_G": sum(p.numel() for p in G.parameters()),
            "augment_p": last.get("augment/p"),
            "last_stats": {k: last[k] for k in last if k.startswith(("loss/", "D/"))},
            **quality_bar(G, args.n_eval), "run": str(run) if args.outdir else None,
        }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("speed", help="training and generation images/s per resolution")
    s.add_argument("--resolutions", default="32")
    s.add_argument("--batch", type=int, default=16)
    s.add_argument("--steps", type=int, default=16)
    s.add_argument("--warmup", type=int, default=2)
    s.add_argument("--z-dim", type=int, default=512)
    s.add_argument("--mapping-layers", type=int, default=8)
    s.add_argument("--channel-base", type=int, default=16384)
    s.add_argument("--channel-max", type=int, default=512)
    s.add_argument("--augment-p", type=float, default=0.2)
    s.add_argument("--device", default="auto")
    s.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    s.add_argument("--channels-last", action="store_true")
    s.add_argument("--compile", action="store_true")
    d = sub.add_parser("digits", help="train on 32x32 digits with the trainer, then the quality bar")
    d.add_argument("--kimg", type=float, default=40.0)
    d.add_argument("--batch", type=int, default=32)
    d.add_argument("--z-dim", type=int, default=128)
    d.add_argument("--mapping-layers", type=int, default=2)
    d.add_argument("--channel-base", type=int, default=2048)
    d.add_argument("--channel-max", type=int, default=128)
    d.add_argument("--lr", type=float, default=0.0025)
    d.add_argument("--ema-kimg", type=float, default=10.0)
    d.add_argument("--betas", type=float, nargs=2, default=[0.0, 0.99], help="Adam betas.")
    d.add_argument("--augment", choices=["ada", "fixed", "none"], default="ada")
    d.add_argument("--loss-kwargs", default="{}", help='More loss options as JSON, e.g. \'{"pl_weight": 0}\'.')
    d.add_argument("--d-kwargs", default="{}", help='More discriminator options as JSON, e.g. \'{"mbstd_group": 32}\'.')
    d.add_argument("--n-eval", type=int, default=1000)
    d.add_argument("--threads", type=int, default=2)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--outdir", help="Keep the run here (default: a temporary folder).")
    d.add_argument("--evaluate", metavar="RUN_OR_CKPT", help="Only measure the quality bar of a saved run.")
    args = ap.parse_args()
    (speed if args.mode == "speed" else digits)(args)


if __name__ == "__main__":
    main()
