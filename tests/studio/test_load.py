"""Load test: the studio served for real (uvicorn on 127.0.0.1, a free port), 20 raters posting 50 votes each at the
same time. Every vote is stored exactly once and none is lost, on SQLite and, when ``GANFORGE_TEST_PG_URL`` names a
server, on PostgreSQL. Latency is measured by ``benchmarks/studio_votes.py``, never asserted here.
"""

from __future__ import annotations

from collections import Counter

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from ganforge.studio.app import create_app  # noqa: E402
from ganforge.studio.catalog import ModelSet  # noqa: E402
from ganforge.studio.load import background_server, rate_concurrently  # noqa: E402
from ganforge.studio.votes import VoteStore  # noqa: E402

RATERS, VOTES = 20, 50
MODEL = "00000-dcgan-digits"


def _unanswered(store: VoteStore) -> int:
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from ganforge.studio.votes import Round

    with Session(store.engine) as s:
        return int(s.scalar(select(func.count()).select_from(Round).where(Round.answered.is_(False))) or 0)


@pytest.mark.slow
def test_concurrent_raters_lose_no_vote_and_store_none_twice(studio_runs, vote_url):
    models = ModelSet.load([str(studio_runs["dcgan"])])
    store = VoteStore(vote_url)
    rounds = [[store.new_round(MODEL, 100 * r + i, 1.0, None, i, ("left", "right")[(r + i) % 2]) for i in range(VOTES)]
              for r in range(RATERS)]
    try:
        with background_server(create_app(models, store)) as url:
            posted = rate_concurrently(url, MODEL, RATERS, VOTES, rounds)
            replayed = rate_concurrently(url, MODEL, RATERS, 3, [r[:3] for r in rounds])  # the same rounds again
        votes = store.votes()
        unanswered = _unanswered(store)
    finally:
        store.dispose()

    assert len(posted) == RATERS * VOTES and Counter(p.status for p in posted) == {200: RATERS * VOTES}
    assert Counter(p.status for p in replayed) == {409: RATERS * 3}  # answered rounds take no second vote
    assert len(votes) == RATERS * VOTES and unanswered == 0  # none lost ...
    assert len({v["id"] for v in votes}) == len(votes)  # ... none stored twice
    assert sorted(v["round_token"] for v in votes) == sorted(t for r in rounds for t in r)
    sent = {(p.token, p.rater) for p in posted}
    assert {(v["round_token"], v["rater"]) for v in votes} == sent  # each vote under the rater who cast it
    assert Counter(v["rater"] for v in votes) == {f"rater-{r:02d}": VOTES for r in range(RATERS)}
    by_token = {t: (r, i) for r, ts in enumerate(rounds) for i, t in enumerate(ts)}
    for v in votes:  # the choice and the page's time arrive intact; correctness is judged against the round
        r, i = by_token[v["round_token"]]
        assert v["choice"] == ("left", "right")[i % 2] and v["response_ms"] == 500.0 + i
        assert v["correct"] == (v["choice"] == ("left", "right")[(r + i) % 2]) and v["seed"] == 100 * r + i


def test_raters_who_ask_for_their_rounds_over_http(studio_runs, tmp_path):
    """The page's own flow under load (ask for a round, then answer it): every round issued is answered once."""
    models = ModelSet.load([str(studio_runs["dcgan"])])
    store = VoteStore(f"sqlite:///{tmp_path / 'votes.sqlite'}")
    try:
        with background_server(create_app(models, store)) as url:
            done = rate_concurrently(url, MODEL, raters=5, votes_each=4)
        votes = store.votes()
    finally:
        store.dispose()
    assert Counter((p.kind, p.status) for p in done) == {("round", 200): 20, ("answer", 200): 20}
    assert sorted(v["round_token"] for v in votes) == sorted(p.token for p in done if p.kind == "answer")
