"""Fool rates and Wilson intervals; the vote store; the ``ganforge studio report`` command."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("sqlalchemy")

from ganforge.cli.main import cli  # noqa: E402
from ganforge.studio.report import fool_rates, format_table, wilson_interval  # noqa: E402
from ganforge.studio.votes import RoundError, VoteStore, database_url  # noqa: E402


@pytest.mark.parametrize("k,n,expect", [
    (0, 10, (0.0, 0.27753)),  # upper bound z^2 / (n + z^2)
    (5, 10, (0.23659, 0.76341)),
    (10, 10, (0.72247, 1.0)),
])
def test_wilson_interval_reference_values(k, n, expect):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(expect[0], abs=1e-4) and hi == pytest.approx(expect[1], abs=1e-4)


@pytest.mark.parametrize("k,n", [(81, 263), (1, 3), (17, 20), (0, 1)])
def test_wilson_interval_matches_scipy(k, n):
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_wilson_interval_covers_the_true_rate_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    p, n, trials = 0.3, 40, 4000
    ks = rng.binomial(n, p, trials)
    covered = sum(lo <= p <= hi for lo, hi in (wilson_interval(int(k), n) for k in ks))
    assert 0.93 <= covered / trials <= 0.97


@pytest.mark.parametrize("n", [1, 3, 7, 10, 263, 1000])
def test_wilson_interval_is_exact_at_the_ends_and_contains_the_rate(n):
    assert wilson_interval(0, n)[0] == 0.0 and wilson_interval(n, n)[1] == 1.0
    for k in range(0, n + 1, max(1, n // 7)):
        lo, hi = wilson_interval(k, n)
        assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_wilson_interval_validation():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    for k, n in ((3, 2), (-1, 5), (0, -1)):
        with pytest.raises(ValueError, match="0 <= k <= n"):
            wilson_interval(k, n)


def test_fool_rates_per_model_and_psi_with_pooled_row():
    votes = ([{"model": "a", "psi": 1.0, "fooled": f, "response_ms": 100 * i} for i, f in enumerate([1, 0, 0, 1])]
             + [{"model": "a", "psi": 0.5, "fooled": 1, "response_ms": None}] * 3
             + [{"model": "b", "psi": 1.0, "fooled": 0}] * 2)
    rows = {(r.model, r.psi): r for r in fool_rates(votes)}
    assert set(rows) == {("a", 0.5), ("a", 1.0), ("a", None), ("b", 1.0)}
    assert (rows[("a", 1.0)].n, rows[("a", 1.0)].fooled, rows[("a", 1.0)].fool_rate) == (4, 2, 0.5)
    assert rows[("a", 1.0)].median_response_ms == 150.0 and rows[("a", 0.5)].median_response_ms is None
    assert (rows[("a", None)].n, rows[("a", None)].fooled) == (7, 5)
    assert (rows[("a", 0.5)].ci_low, rows[("a", 0.5)].ci_high) == pytest.approx(wilson_interval(3, 3))
    table = format_table(list(rows.values()))
    assert "fool rate" in table and "all" in table and format_table([]) == "no votes yet\n"


def test_store_records_answers_once_and_persists(tmp_path):
    url = database_url(str(tmp_path / "sub" / "v.sqlite"), tmp_path)
    assert url == f"sqlite:///{tmp_path / 'sub' / 'v.sqlite'}"
    assert database_url(None, tmp_path) == f"sqlite:///{tmp_path / 'studio-votes.sqlite'}"
    with pytest.raises(ValueError, match="not a database URL"):
        database_url("nosuch://::", tmp_path)
    store = VoteStore(url)
    t1 = store.new_round("m", 7, 0.7, None, 12, "left")
    t2 = store.new_round("m", 8, 0.7, 3, 13, "right")
    assert t1 != t2 and len(t1) >= 16
    assert store.answer(t1, "left", 900.0, "r").correct is True
    assert store.answer(t2, "left", None).correct is False
    with pytest.raises(RoundError) as e:
        store.answer(t1, "right", 1.0)
    assert e.value.status == 409
    with pytest.raises(RoundError) as e:
        store.answer("x" * 32, "left", 1.0)
    assert e.value.status == 404
    with pytest.raises(ValueError, match="choice"):
        store.answer(t2, "up", 1.0)
    store.dispose()
    again = VoteStore(url)
    votes = again.votes()
    assert [(v["seed"], v["klass"], v["correct"], v["fooled"]) for v in votes] == [(7, None, True, False),
                                                                                  (8, 3, False, True)]
    again.dispose()
    rows = sqlite3.connect(tmp_path / "sub" / "v.sqlite").execute("SELECT model, psi, choice FROM votes").fetchall()
    assert rows == [("m", 0.7, "left"), ("m", 0.7, "left")]


def test_studio_report_command(tmp_path):
    db = tmp_path / "v.sqlite"
    store = VoteStore(f"sqlite:///{db}")
    for i, side in enumerate(["left", "right", "left"]):
        store.answer(store.new_round("run", i, 1.0, None, i, side), "left", 500.0)
    store.dispose()
    runner = CliRunner()
    r = runner.invoke(cli, ["studio", "report", str(db)])
    assert r.exit_code == 0, r.output
    assert "run" in r.output and "0.333" in r.output  # 1 of 3 fooled
    r = runner.invoke(cli, ["studio", "report", str(db), "--format", "json"])
    row = json.loads(r.output)[0]
    assert (row["n"], row["fooled"]) == (3, 1)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_interval(1, 3))
    r = runner.invoke(cli, ["studio", "report", str(db), "--format", "csv"])
    assert r.output.splitlines()[0].startswith("model,psi,n,fooled,fool_rate")
    r = runner.invoke(cli, ["studio", "report", str(tmp_path / "missing.sqlite")])
    assert r.exit_code != 0 and "no such database file" in r.output
    assert not (tmp_path / "missing.sqlite").exists()


def test_studio_group_runs_serve_by_default():
    runner = CliRunner()
    r = runner.invoke(cli, ["studio", "some-run", "--help"])
    assert r.exit_code == 0 and "Serve the studio for RUNs" in r.output and "--port" in r.output
    r = runner.invoke(cli, ["studio", "--help"])
    assert "report" in r.output and "serve" in r.output
    r = runner.invoke(cli, ["studio", "serve", "--port", "0", "digits"])
    assert r.exit_code != 0 and "0" in r.output  # port range validated before anything loads
