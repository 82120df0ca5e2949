"""Studio votes under load: 20 raters at once against a running studio (uvicorn on 127.0.0.1), 50 votes each.

For each database (an SQLite file, and a PostgreSQL server when ``--pg URL`` or ``GANFORGE_TEST_PG_URL`` names one: a
throwaway database is created on it and dropped afterwards) and each flow, prints one JSON line: latency percentiles of
the vote posts (and of the round requests), votes per second, and how many votes were stored, lost and duplicated.

- ``answer``: the rounds are issued beforehand (``VoteStore.new_round``), so only the vote posts load the server;
- ``round+answer``: each rater asks the server for a round (a generated and a real picture, PNG-encoded) and then
  answers it, as the page does; the rounds share one CPU-bound generator, so this measures the whole game.

The generator is the packaged ``digits`` model. Times depend on the machine's load; ``load_1m`` is printed beside.

    python benchmarks/studio_votes.py
    python benchmarks/studio_votes.py --pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres --flows answer
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from ganforge.studio.app import create_app
from ganforge.studio.catalog import ModelSet
from ganforge.studio.load import Request, background_server, rate_concurrently, temp_database
from ganforge.studio.votes import VoteStore

MODEL = "digits"


def percentiles_ms(done: list[Request], kind: str) -> dict[str, float]:
    t = np.array([r.seconds for r in done if r.kind == kind]) * 1000.0
    if not len(t):
        return {}
    p50, p95, p99 = np.percentile(t, [50, 95, 99])
    return {f"{kind}_p50_ms": round(float(p50), 2), f"{kind}_p95_ms": round(float(p95), 2),
            f"{kind}_p99_ms": round(float(p99), 2), f"{kind}_max_ms": round(float(t.max()), 2)}


def run(models: ModelSet, url: str, db: str, flow: str, raters: int, votes: int) -> dict:
    """One load run on a fresh store at ``url``; the record printed for it."""
    store = VoteStore(url)
    rounds = None
    if flow == "answer":
        rounds = [[store.new_round(MODEL, 1000 * r + i, 1.0, None, i, ("left", "right")[(r + i) % 2])
                   for i in range(votes)] for r in range(raters)]
    try:
        with background_server(create_app(models, store)) as server:
            t0 = time.perf_counter()
            done = rate_concurrently(server, MODEL, raters, votes, rounds)
            seconds = time.perf_counter() - t0
        stored = store.votes()
    finally:
        store.dispose()
    ok = [r for r in done if r.kind == "answer" and r.status == 200]
    tokens = [v["round_token"] for v in stored]
    return {"benchmark": "studio_votes", "db": db, "flow": flow, "raters": raters, "votes_each": votes,
            "answers_ok": len(ok), "errors": sum(r.status != 200 for r in done), "stored": len(stored),
            "lost": len({r.token for r in ok} - set(tokens)), "duplicates": len(tokens) - len(set(tokens)),
            **percentiles_ms(done, "answer"), **percentiles_ms(done, "round"),
            "votes_per_s": round(len(ok) / seconds, 1), "seconds": round(seconds, 2),
            "cpus": os.cpu_count(), "load_1m": round(os.getloadavg()[0], 2), "python": platform.python_version()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raters", type=int, default=20)
    ap.add_argument("--votes", type=int, default=50, help="votes per rater")
    ap.add_argument("--flows", default="answer,round+answer", help="comma-separated: answer, round+answer")
    ap.add_argument("--pg", default=os.environ.get("GANFORGE_TEST_PG_URL"),
                    help="PostgreSQL server URL (default: $GANFORGE_TEST_PG_URL; none: SQLite only)")
    args = ap.parse_args()
    flows = args.flows.split(",")
    if any(f not in ("answer", "round+answer") for f in flows):
        ap.error(f"--flows: each must be answer or round+answer, got {args.flows!r}")
    models = ModelSet.load([MODEL])
    models.preload_real().join()
    with tempfile.TemporaryDirectory() as tmp:
        for flow in flows:
            db = Path(tmp) / f"votes-{flow.replace('+', '-')}.sqlite"
            print(json.dumps(run(models, f"sqlite:///{db}", "sqlite", flow, args.raters, args.votes)), flush=True)
            if args.pg:
                with temp_database(args.pg, "ganforge_bench") as url:
                    print(json.dumps(run(models, url, "postgresql", flow, args.raters, args.votes)), flush=True)


if __name__ == "__main__":
    main()
