"""Many raters at once against a running studio: the driver of the load test and of ``benchmarks/studio_votes.py``.

``background_server`` serves the app with uvicorn in a thread of this process (real sockets, uvicorn's event loop and
FastAPI's worker threads, not an in-process test client); ``rate_concurrently`` starts one thread per rater, releases
them together, and each plays its rounds one after another over its own keep-alive HTTP connection, as a browser
would, timing every request.

    with background_server(app) as url:   # http://127.0.0.1:PORT, PORT free and chosen by the OS
        results = rate_concurrently(url, "my-model", raters=20, votes_each=50)
"""

from __future__ import annotations

import http.client
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def background_server(app: Any, host: str = "127.0.0.1", port: int | None = None, start_timeout: float = 30.0
                      ) -> Iterator[str]:
    """Serve ``app`` (an ASGI app) on ``host:port`` in a daemon thread; yields its base URL; stops it on exit.

    Raises ``RuntimeError`` if the server has not started within ``start_timeout`` seconds (or exited early: a port
    already taken, say).
    """
    import uvicorn

    port = free_port(host) if port is None else port
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name=f"studio-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the studio server on {host}:{port} did not start within {start_timeout} s")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass(frozen=True)
class Request:
    """One request a rater made: ``kind`` is ``round`` (ask for a pair) or ``answer`` (post a vote)."""

    kind: str
    rater: str
    token: str | None  # the round asked for or answered (None when asking failed)
    status: int
    seconds: float  # from sending the request to having read the whole reply


def _post(conn: http.client.HTTPConnection, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    t0 = time.perf_counter()
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    reply = conn.getresponse()
    data = reply.read()
    seconds = time.perf_counter() - t0
    return reply.status, (json.loads(data) if data else {}), seconds


def _rater(url: str, model: str, rater: str, rounds: list[str] | None, votes: int, start: threading.Barrier,
           out: list[Request], errors: list[BaseException]) -> None:
    """Ask for a round (unless ``rounds`` are given), answer it, ``votes`` times; alternates left and right."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        start.wait(timeout=60)
        for i in range(votes):
            token = rounds[i] if rounds is not None else None
            if token is None:
                status, data, s = _post(conn, f"/api/models/{model}/round", {})
                token = data.get("round") if status == 200 else None
                out.append(Request("round", rater, token, status, s))
                if token is None:
                    continue
            body = {"choice": ("left", "right")[i % 2], "response_ms": 500.0 + i, "rater": rater}
            status, _, s = _post(conn, f"/api/rounds/{token}/answer", body)
            out.append(Request("answer", rater, token, status, s))
    except Exception as e:  # reported by rate_concurrently once every rater has stopped
        errors.append(e)
    finally:
        conn.close()


def rate_concurrently(url: str, model: str, raters: int, votes_each: int,
                      rounds: list[list[str]] | None = None) -> list[Request]:
    """``raters`` threads (named ``rater-00`` ...) each cast ``votes_each`` votes on ``model`` at the same time.

    ``rounds[r]``: rounds already issued (``VoteStore.new_round``) for rater ``r`` to answer, so only votes are
    posted; without it each rater asks the server for every round first, as the page does. Returns every request made;
    ``RuntimeError`` if a rater could not go on (a connection refused or dropped, a reply that is not JSON).
    """
    if rounds is not None and (len(rounds) != raters or any(len(r) != votes_each for r in rounds)):
        raise ValueError(f"rounds must be {raters} lists of {votes_each} tokens")
    start = threading.Barrier(raters)
    outs: list[list[Request]] = [[] for _ in range(raters)]
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_rater, args=(url, model, f"rater-{r:02d}", rounds[r] if rounds else None,
                                                     votes_each, start, outs[r], errors), name=f"rater-{r:02d}")
               for r in range(raters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} rater(s) stopped early; first: {type(errors[0]).__name__}: {errors[0]}")
    return [req for out in outs for req in out]


@contextmanager
def temp_database(base_url: str, prefix: str = "ganforge_tmp") -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL server of ``base_url`` (whose user may create databases), yielded as
    a URL and dropped on exit, even when the body raises (load tests and benchmarks never touch a real database)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
