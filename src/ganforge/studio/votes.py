"""The "Which one is real?" store: issued rounds and the answers to them, in SQL through SQLAlchemy.

SQLite is the embedded default (one file, by default in the run directory); any SQLAlchemy URL works, e.g.
``postgresql+psycopg://user@host/studio`` for a server that many raters share (the studio extra brings the psycopg
driver; the suite tests this path against a real PostgreSQL server when ``GANFORGE_TEST_PG_URL`` names one).

A round is issued by the server, which alone knows on which side the real picture is; the page sends back only the
round's token, the side picked and the response time it measured. Each round can be answered once. The server keeps
its own clock too: ``issued_at`` and ``answered_at`` (UTC) and their difference ``server_ms``, so a page that reports
a wrong time can be spotted.
"""

from __future__ import annotations

import secrets
import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, DateTime, Float, Integer, String, create_engine, event, func, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

SIDES = ("left", "right")
DEFAULT_DB_NAME = "studio-votes.sqlite"
SQLITE_BUSY_S = 30.0  # how long an SQLite connection waits for another process's write before it gives up


class Base(DeclarativeBase):
    pass


class Round(Base):
    """A pair shown to a rater: which model/seed/psi made the fake, which real picture, and its side."""

    __tablename__ = "rounds"
    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(64), index=True)
    seed: Mapped[int] = mapped_column(Integer)
    psi: Mapped[float] = mapped_column(Float)
    klass: Mapped[int | None] = mapped_column(Integer, nullable=True)
    real_index: Mapped[int] = mapped_column(Integer)
    real_side: Mapped[str] = mapped_column(String(5))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    answered: Mapped[bool] = mapped_column(Boolean, default=False)


class Vote(Base):
    """One answer: the round it answers (copied, so the table reads on its own), the side picked, and times."""

    __tablename__ = "votes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    round_token: Mapped[str] = mapped_column(String(64), unique=True)
    model: Mapped[str] = mapped_column(String(64), index=True)
    seed: Mapped[int] = mapped_column(Integer)
    psi: Mapped[float] = mapped_column(Float)
    klass: Mapped[int | None] = mapped_column(Integer, nullable=True)
    real_index: Mapped[int] = mapped_column(Integer)
    real_side: Mapped[str] = mapped_column(String(5))
    choice: Mapped[str] = mapped_column(String(5))
    correct: Mapped[bool] = mapped_column(Boolean)
    fooled: Mapped[bool] = mapped_column(Boolean)
    response_ms: Mapped[float | None] = mapped_column(Float, nullable=True)  # measured in the page
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # server clock
    answered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # server clock
    server_ms: Mapped[float] = mapped_column(Float)
    rater: Mapped[str | None] = mapped_column(String(64), nullable=True)


class RoundError(LookupError):
    """An answer that cannot be recorded; ``status`` is 404 (no such round) or 409 (already answered)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Answer:
    correct: bool
    real_side: str
    vote_id: int


def database_url(db: str | None, default_dir: Path) -> str:
    """``db`` as an SQLAlchemy URL: ``None`` -> SQLite file in ``default_dir``; a plain path -> SQLite at that path."""
    if db is None:
        return f"sqlite:///{(default_dir / DEFAULT_DB_NAME).resolve()}"
    if "://" not in db:
        return f"sqlite:///{Path(db).expanduser().resolve()}"
    try:
        make_url(db)
    except (ArgumentError, ValueError) as e:
        raise ValueError(f"--db {db!r} is not a database URL (e.g. sqlite:///votes.sqlite, "
                         f"postgresql+psycopg://user@host/db): {e}") from None
    return db


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(t: datetime) -> datetime:
    """SQLite returns naive datetimes even for ``timezone=True`` columns; they were written in UTC."""
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def _sqlite_wal(dbapi_conn: Any, _record: Any) -> None:
    """Write-ahead log: readers (the results table, ``studio report``) and the writer never block one another."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


class VoteStore:
    """Issue rounds and record answers; tables are created on first use.

    SQLite takes one writer at a time: concurrent requests would otherwise wait on its file lock in a sleep-and-retry
    loop and fail with "database is locked" under load (20 raters at once lost votes that way), so the store
    serialises its own writes with a lock and opens the file in WAL mode. Server databases lock rows themselves.
    """

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError) as e:
            raise ValueError(f"{url!r} is not a database URL: {e}") from None
        kwargs: dict[str, Any] = {}
        sqlite = parsed.get_backend_name() == "sqlite"
        self._writes: AbstractContextManager[Any] = threading.Lock() if sqlite else nullcontext()
        if sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": SQLITE_BUSY_S}
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine: Engine = create_engine(url, **kwargs)
        except (NoSuchModuleError, ModuleNotFoundError, ImportError) as e:
            raise ValueError(f"cannot open {parsed.render_as_string(hide_password=True)}: database driver missing "
                             f"({e}); for PostgreSQL: pip install \"ganforge[studio]\" (psycopg)") from None
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_wal)
        Base.metadata.create_all(self.engine)
        self.url = parsed.render_as_string(hide_password=True)

    def new_round(self, model: str, seed: int, psi: float, klass: int | None, real_index: int, real_side: str) -> str:
        """Record an issued round and return its unguessable token."""
        if real_side not in SIDES:
            raise ValueError(f"real_side must be one of {SIDES}, got {real_side!r}")
        token = secrets.token_urlsafe(24)
        with self._writes, Session(self.engine) as s, s.begin():
            s.add(Round(token=token, model=model, seed=seed, psi=float(psi), klass=klass, real_index=real_index,
                        real_side=real_side, issued_at=_now(), answered=False))
        return token

    def answer(self, token: str, choice: str, response_ms: float | None, rater: str | None = None) -> Answer:
        """Record the side picked for round ``token``; ``RoundError`` for an unknown or already answered round."""
        if choice not in SIDES:
            raise ValueError(f"choice must be one of {SIDES}, got {choice!r}")
        now = _now()
        try:
            with self._writes, Session(self.engine) as s, s.begin():
                r = s.get(Round, token, with_for_update=True)
                if r is None:
                    raise RoundError("unknown round (it was never issued by this server)", 404)
                if r.answered:
                    raise RoundError("this round was already answered", 409)
                r.answered = True
                correct = choice == r.real_side
                vote = Vote(round_token=token, model=r.model, seed=r.seed, psi=r.psi, klass=r.klass,
                            real_index=r.real_index, real_side=r.real_side, choice=choice, correct=correct,
                            fooled=not correct, response_ms=response_ms, issued_at=r.issued_at, answered_at=now,
                            server_ms=(now - _aware(r.issued_at)).total_seconds() * 1000.0, rater=rater)
                s.add(vote)
                s.flush()
                vote_id, real_side = vote.id, r.real_side
        except IntegrityError:  # a concurrent answer to the same round won the race
            raise RoundError("this round was already answered", 409) from None
        return Answer(correct=correct, real_side=real_side, vote_id=vote_id)

    def votes(self) -> list[dict[str, Any]]:
        """Every vote as a plain dict, oldest first."""
        cols = [c.name for c in Vote.__table__.columns]
        with Session(self.engine) as s:
            rows = s.scalars(select(Vote).order_by(Vote.id)).all()
            return [{c: getattr(v, c) for c in cols} for v in rows]

    def count(self) -> int:
        with Session(self.engine) as s:
            return int(s.scalar(select(func.count()).select_from(Vote)) or 0)

    def dispose(self) -> None:
        self.engine.dispose()
