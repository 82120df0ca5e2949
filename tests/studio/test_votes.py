"""The vote store on SQLite and on a real PostgreSQL server (``GANFORGE_TEST_PG_URL``; skipped without one)."""

from __future__ import annotations

import threading
from datetime import timezone

import pytest

pytest.importorskip("sqlalchemy")

from ganforge.studio.votes import RoundError, VoteStore, _aware  # noqa: E402


@pytest.fixture
def store(vote_url):
    s = VoteStore(vote_url)
    yield s
    s.dispose()


def test_votes_round_trip(store, vote_url):
    assert store.url.split(":", 1)[0] == vote_url.split(":", 1)[0] and store.count() == 0
    a = store.new_round("m1", seed=7, psi=0.7, klass=None, real_index=3, real_side="left")
    b = store.new_round("m2", seed=2**31 - 1, psi=1.0, klass=4, real_index=0, real_side="right")
    got_a = store.answer(a, "right", 812.5, "rater-1")
    got_b = store.answer(b, "right", None)
    assert (got_a.correct, got_a.real_side, got_b.correct) == (False, "left", True)
    assert got_b.vote_id > got_a.vote_id and store.count() == 2
    va, vb = store.votes()
    assert (va["round_token"], va["model"], va["seed"], va["psi"], va["klass"], va["real_index"]) == (a, "m1", 7, 0.7,
                                                                                                    None, 3)
    assert (va["choice"], va["correct"], va["fooled"], va["response_ms"], va["rater"]) == ("right", False, True, 812.5,
                                                                                           "rater-1")
    assert (vb["seed"], vb["klass"], vb["response_ms"], vb["rater"], vb["fooled"]) == (2**31 - 1, 4, None, None, False)
    for v in (va, vb):
        issued, answered = _aware(v["issued_at"]), _aware(v["answered_at"])
        assert issued.utcoffset() == answered.utcoffset() == timezone.utc.utcoffset(None)
        assert answered >= issued and v["server_ms"] == pytest.approx((answered - issued).total_seconds() * 1000)


def test_a_round_is_answered_once_and_only_if_issued(store):
    token = store.new_round("m", 0, 1.0, None, 0, "left")
    store.answer(token, "left", 1.0)
    with pytest.raises(RoundError) as e:
        store.answer(token, "right", 1.0)
    assert e.value.status == 409
    with pytest.raises(RoundError) as e:
        store.answer("never-issued-token-0000", "left", 1.0)
    assert e.value.status == 404
    with pytest.raises(ValueError, match="choice"):
        store.answer(store.new_round("m", 0, 1.0, None, 0, "left"), "middle", 1.0)
    assert store.count() == 1


def test_racing_answers_to_one_round_store_one_vote(store):
    """Eight threads answer the same round at once: one vote is stored, the seven others are told 409."""
    token = store.new_round("m", 0, 1.0, None, 0, "left")
    start, outcomes = threading.Barrier(8), []

    def answer(i: int) -> None:
        start.wait()
        try:
            store.answer(token, ("left", "right")[i % 2], float(i), f"r{i}")
            outcomes.append("stored")
        except RoundError as e:
            outcomes.append(e.status)

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes, key=str) == [409] * 7 + ["stored"]
    assert store.count() == 1 and store.votes()[0]["round_token"] == token


def test_report_reads_postgresql(pg_url):
    """``ganforge studio report URL`` on the server the studio wrote to."""
    import json

    from click.testing import CliRunner

    from ganforge.cli.main import cli

    store = VoteStore(pg_url)
    for side in ("left", "right", "right"):
        store.answer(store.new_round("m", 0, 1.0, None, 0, "left"), side, 100.0)
    store.dispose()
    r = CliRunner().invoke(cli, ["studio", "report", pg_url, "--format", "json"])
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.output)
    assert (row["model"], row["n"], row["fooled"]) == ("m", 3, 2)
