"""``ganforge studio RUN ...``: what it loads, where votes go, how it binds (uvicorn replaced by a recorder)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from fastapi.testclient import TestClient  # noqa: E402

from ganforge.cli.main import cli  # noqa: E402


@pytest.fixture
def served(monkeypatch):
    import uvicorn

    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    return calls


def test_serve_defaults_bind_loopback_and_store_votes_in_the_run(studio_runs, served):
    run = studio_runs["dcgan"]
    r = CliRunner().invoke(cli, ["studio", str(run), str(studio_runs["detector"])])
    assert r.exit_code == 0, r.output
    assert (served[0]["host"], served[0]["port"]) == ("127.0.0.1", 7860)
    assert "model 00000-dcgan-digits: generator" in r.output and "model det: detector" in r.output
    assert f"votes: sqlite:///{run / 'studio-votes.sqlite'}" in r.output
    assert (run / "studio-votes.sqlite").is_file()
    client = TestClient(served[0]["app"], base_url="http://127.0.0.1:7860")
    assert [m["name"] for m in client.get("/api/models").json()["models"]] == ["00000-dcgan-digits", "det"]
    assert client.get("/api/models", headers={"host": "example.com"}).status_code == 400


def test_serve_options(studio_runs, served, tmp_path):
    db = tmp_path / "elsewhere.sqlite"
    r = CliRunner().invoke(cli, ["studio", "serve", str(studio_runs["style"]), str(studio_runs["style"]),
                                 "--host", "0.0.0.0", "--port", "8123", "--db", str(db), "--max-upload-mb", "0.5"])
    assert r.exit_code == 0, r.output
    assert "warning: bound to 0.0.0.0" in r.output and db.is_file()
    assert "model 00002-stylegan-digits-2" in r.output  # the same run twice gets two names
    app = served[0]["app"]
    assert app.state.limits.max_upload_bytes == 512 * 1024
    assert TestClient(app, base_url="http://192.168.0.9:8123").get("/api/health").status_code == 200


def test_serve_refuses_what_it_cannot_show(tmp_path, served):
    r = CliRunner().invoke(cli, ["studio", str(tmp_path / "missing-run")])
    assert r.exit_code != 0 and "missing-run" in str(r.exception or r.output)
    assert served == []


def test_preload_loads_real_pictures_in_the_background(studio_runs):
    from ganforge.studio.catalog import ModelSet

    models = ModelSet.load([str(studio_runs["dcgan"]), str(studio_runs["unit"])])
    models.preload_real().join(timeout=120)
    m = models.models["00000-dcgan-digits"]
    assert m._real is not None and m._real.shape[1:] == (28, 28, 1) and len(m._real) == 400
