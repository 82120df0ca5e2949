"""The studio in a real browser: Playwright drives Debian's Chromium against a server this test starts.

Loads the page, changes the seed and sees a new picture, answers three "Which one is real?" rounds, finds the three
votes in the SQLite file and takes a screenshot (under the test's tmp path); then checks that replies which arrive
after a switch to another model are dropped. Never downloads a browser: it skips, saying why, when
``/usr/bin/chromium`` or the ``playwright`` package is missing.

The README's picture ``docs/studio.png`` is regenerated only on request, never as a side effect of the suite:

    GANFORGE_STUDIO_SCREENSHOT=docs/studio.png python -m pytest -q tests/studio/test_browser.py
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT_ENV = "GANFORGE_STUDIO_SCREENSHOT"  # where to save the README's screenshot too (unset: tmp path only)
STYLE = "00002-stylegan-digits"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(page, js: str, arg=None, timeout: float = 60.0) -> None:
    """Poll ``js`` (a function of ``arg``) with ``page.evaluate`` until it is truthy.

    ``page.wait_for_function`` evaluates its predicate with ``eval`` inside the page, which the studio's Content
    Security Policy forbids (as it should); ``page.evaluate`` goes through the DevTools protocol instead.
    """
    deadline = time.monotonic() + timeout
    while not page.evaluate(js, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {js}")
        time.sleep(0.1)


def _packaged_digits() -> str | None:
    from ganforge.checkpoint import CheckpointError, resolve_checkpoint

    try:
        return "digits" if (resolve_checkpoint("digits") / "config.json").is_file() else None
    except CheckpointError:
        return None


@pytest.fixture
def server(studio_runs, tmp_path):
    """``ganforge studio`` in a subprocess on a free loopback port; yields (url, db file, first model's name)."""
    pytest.importorskip("uvicorn")
    first = _packaged_digits() or str(studio_runs["dcgan"])
    db = tmp_path / "votes.sqlite"
    port = _free_port()
    log = open(tmp_path / "server.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ganforge", "studio", first, str(studio_runs["style"]), str(studio_runs["detector"]),
         "--port", str(port),
         "--db", f"sqlite:///{db}"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"studio server exited with {proc.returncode}:\n{log.read()}")
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("studio server did not answer within 180 s")
            time.sleep(0.5)
        yield url, db, ("digits" if first == "digits" else "00000-dcgan-digits")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def browser():
    """Debian's Chromium through Playwright (skips when either is missing)."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is absent (Debian's chromium package; CI installs it with apt-get)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-background-networking"])
        try:
            yield b
        finally:
            b.close()


def open_page(browser, url: str, model: str, problems: list[str]):
    """The studio page, loaded, with its first model selected; console errors go to ``problems``."""
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url)
    wait_until(page, "() => document.getElementById('model').value !== ''")  # the list loads asynchronously
    assert page.input_value("#model") == model
    return page


def test_page_in_chromium(server, browser, tmp_path):
    url, db, model = server
    problems: list[str] = []
    screenshot = tmp_path / "studio.png"
    page = open_page(browser, url, model, problems)

    # a sample grid appears, and a new seed gives a new picture
    wait_until(page, "() => document.getElementById('sample-img').src.startsWith('data:image/png')")
    before = page.get_attribute("#sample-img", "src")
    page.fill("#seed-num", "17")
    page.dispatch_event("#seed-num", "change")
    wait_until(page, "(prev) => { const i = document.getElementById('sample-img');"
               " return i.dataset.seed === '17' && i.src !== prev; }", before)
    assert page.text_content("#sample-status").startswith("seeds 17")

    # three rounds of "Which one is real?"
    tokens = []
    for i in range(3):
        wait_until(page, "(seen) => { const b = document.getElementById('real-left');"
                   " const t = document.getElementById('real-pair').dataset.round;"
                   " return !b.disabled && t && !seen.includes(t); }", tokens)
        tokens.append(page.get_attribute("#real-pair", "data-round"))
        page.click("#real-left" if i % 2 == 0 else "#real-right")
        wait_until(page, "(n) => document.getElementById('real-count').textContent === String(n)",
                   i + 1)
    assert page.text_content("#real-status").split(",")[0] in ("Last round: right", "Last round: fooled")
    # each answer reloads the table; the third answer's reload may land after the counter moved, so wait for it
    wait_until(page, "(m) => { const r = document.querySelector('#results-table tbody tr');"
               " return r !== null && r.cells[0].textContent === m && r.cells[2].textContent === '3'; }", model)

    wait_until(page, "() => document.getElementById('real-pair').dataset.round !== ''"
               " && !document.getElementById('real-left').disabled")
    page.screenshot(path=str(screenshot), full_page=True)
    if os.environ.get(SCREENSHOT_ENV):  # asked for explicitly: the README's picture
        page.screenshot(path=os.environ[SCREENSHOT_ENV], full_page=True)

    # a style-based model shows the truncation slider and the style-mixing card
    assert page.is_hidden("#card-mix")
    page.select_option("#model", STYLE)
    page.wait_for_selector("#card-mix", state="visible")
    assert page.is_visible("#psi")
    page.click("#mix-go")
    wait_until(page, "() => document.getElementById('mix-img').src.startsWith('data:image/png')")
    assert not problems, f"errors in the page's console: {problems}"

    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT round_token, model, seed, psi, choice, response_ms, server_ms, issued_at, "
                           "answered_at FROM votes ORDER BY id").fetchall()
    finally:
        con.close()
    assert [r[0] for r in rows] == tokens
    assert [r[1] for r in rows] == [model] * 3 and [r[4] for r in rows] == ["left", "right", "left"]
    for _, _, seed, psi, _, response_ms, server_ms, issued, answered in rows:
        assert seed >= 0 and psi == 1.0 and response_ms > 0 and server_ms > 0 and answered > issued
    assert screenshot.stat().st_size > 10_000


# What a reply can change on the page: every picture, the round's token, the timeline and every status line.
SHOWN = """() => {
  const g = (id) => document.getElementById(id);
  const out = {};
  for (const id of ["sample-img", "interp-img", "mix-img", "timeline-img"]) out[id] = g(id).getAttribute("src");
  for (const b of ["real-left", "real-right"]) out[b] = g(b).querySelector("img").getAttribute("src");
  out.round = g("real-pair").dataset.round;
  out.timeline = g("timeline-slider").max;
  for (const el of document.querySelectorAll(".status, #timeline-caption")) out[el.id] = el.textContent;
  return out;
}"""


def test_replies_for_the_previous_model_are_dropped(server, browser):
    """Switch to the style-based model while its replies are held back, switch back, then let them arrive: the page
    keeps showing the first model's sample, interpolation, mixing grid, round and timeline."""
    url, _, model = server
    problems: list[str] = []
    page = open_page(browser, url, model, problems)
    ready = ("() => { const g = (id) => document.getElementById(id);"
             " return g('sample-status').textContent.startsWith('seeds')"
             " && g('interp-status').textContent.includes('steps') && !g('real-left').disabled; }")
    wait_until(page, ready)

    held, done = [], []
    page.route(f"**/api/models/{STYLE}/**", lambda route: held.append(route))  # held back, unanswered
    page.on("requestfinished", lambda r: done.append(r.url) if f"/{STYLE}/" in r.url else None)
    page.select_option("#model", STYLE)  # asks for its sample, interpolation, mixing grid, round and timeline
    deadline = time.monotonic() + 30
    while len(held) < 5:  # route handlers run while Playwright waits
        assert time.monotonic() < deadline, f"held only {[r.request.url for r in held]}"
        page.wait_for_timeout(100)
    assert sorted(r.request.url.rsplit("/", 1)[1] for r in held) == ["interpolate", "mix", "round", "sample",
                                                                     "timeline"]
    page.select_option("#model", model)
    wait_until(page, ready)
    before = page.evaluate(SHOWN)

    for r in held:
        r.continue_()
    deadline = time.monotonic() + 60
    while len(done) < len(held):
        assert time.monotonic() < deadline, f"only {done} finished"
        page.wait_for_timeout(100)
    page.wait_for_timeout(500)  # the page has the replies; give its handlers time to (wrongly) show them
    assert page.evaluate(SHOWN) == before
    assert page.input_value("#model") == model
    assert not problems, f"errors in the page's console: {problems}"


def test_detect_card_gives_the_answer_and_each_stage(server, browser, tmp_path):
    """Upload a picture to a detector: the page shows P(generated), the label and each stage's probability."""
    import numpy as np
    from PIL import Image

    url, _, model = server
    problems: list[str] = []
    page = open_page(browser, url, model, problems)
    page.select_option("#model", "det")
    page.wait_for_selector("#card-detect", state="visible")
    picture = tmp_path / "upload.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 40), dtype=np.uint8)).save(picture)
    page.set_input_files("#detect-file", str(picture))
    wait_until(page, "() => document.getElementById('detect-result').textContent.startsWith('P(generated)')")
    text = page.text_content("#detect-result")
    assert ("→  fake" in text or "→  real" in text) and "stages: trace " in text and "40×30 px" in text
    assert page.get_attribute("#detect-view", "src").startswith("data:image/png")
    assert not problems, f"errors in the page's console: {problems}"
