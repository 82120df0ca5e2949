"""``ganforge studio RUN ...``: what it loads, where votes go, how it binds (uvicorn replaced by a recorder)."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from fastapi.testclient import TestClient  # noqa: E402

from ganforge.cli.main import cli  # noqa: E402

from .conftest import make_photos  # noqa: E402


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
    assert m.reals.loaded is not None and m.reals.loaded.shape[1:] == (28, 28, 1) and len(m.reals.loaded) == 400


# ------------------------------------------------------------------------------------------------ --real DIR
def _round(app, model: str) -> tuple[dict, object]:
    """Play one round through the app; returns the response and the stored round (which side is real)."""
    from sqlalchemy.orm import Session

    from ganforge.studio.votes import Round

    client = TestClient(app, base_url="http://127.0.0.1:7860")
    r = client.post(f"/api/models/{model}/round", json={})
    assert r.status_code == 200, r.text
    d = r.json()
    with Session(app.state.store.engine) as s:
        rd = s.get(Round, d["round"])
    return d, rd


def _picture(url: str):
    import base64
    import io

    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        arr = np.asarray(im)
    return arr[:, :, None] if arr.ndim == 2 else arr


def test_real_folder_pits_a_run_without_training_data_against_photos(colour_run, studio_runs, photos, served,
                                                                      tmp_path):
    import numpy as np

    from ganforge.data import load_dataset

    r = CliRunner().invoke(cli, ["studio", str(colour_run), str(studio_runs["dcgan"]), "--real", str(photos),
                                 "--db", str(tmp_path / "v.sqlite")])
    assert r.exit_code == 0, r.output
    assert "unavailable" not in r.output and "00010-dcgan-photos: generator" in r.output
    assert f"real pictures: --real {photos} (at 16 px, 3 channel(s))" in r.output
    app = served[0]["app"]
    for name, res, ch in (("00010-dcgan-photos", 16, 3), ("00000-dcgan-digits", 28, 1)):  # colour, and grey
        m = app.state.models.models[name]
        assert m.capabilities()["real"]
        expected = load_dataset(str(photos), res, ch, "center-crop").data.permute(0, 2, 3, 1).numpy()
        d, rd = _round(app, name)
        left, right = _picture(d["left"]), _picture(d["right"])
        real, fake = (left, right) if rd.real_side == "left" else (right, left)
        assert real.shape == fake.shape == (res, res, ch)
        np.testing.assert_array_equal(real, expected[rd.real_index])  # the photo, prepared as training prepares it
        np.testing.assert_array_equal(fake, m.fake_picture(rd.seed, 1.0, None))


def test_without_real_a_run_whose_data_is_unknown_says_to_pass_it(colour_run, served):
    r = CliRunner().invoke(cli, ["studio", str(colour_run)])
    assert r.exit_code == 0, r.output
    assert "note: 'Which one is real?' unavailable: the checkpoint names no training data; pass --real DIR" in r.output
    client = TestClient(served[0]["app"], base_url="http://127.0.0.1:7860")
    got = client.post("/api/models/00010-dcgan-photos/round", json={})
    assert got.status_code == 400 and "pass --real DIR" in got.json()["detail"]


def test_real_must_be_a_folder_of_pictures(colour_run, studio_runs, served, tmp_path):
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(cli, ["studio", str(colour_run), "--real", str(tmp_path / "empty")])
    assert r.exit_code == 2 and "no image files found" in r.output and "--real" in r.output
    r = CliRunner().invoke(cli, ["studio", str(colour_run), "--real", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "does not exist" in r.output
    make_photos(tmp_path / "p")
    r = CliRunner().invoke(cli, ["studio", str(studio_runs["detector"]), "--real", str(tmp_path / "p")])
    assert r.exit_code == 2 and "none of the RUNs is a generator" in r.output
    assert served == []


# ------------------------------------------------------------------------------------------------ optional extra
@pytest.mark.parametrize(("argv", "missing"), [(["studio", "RUN"], "uvicorn"), (["studio", "RUN"], "fastapi"),
                                               (["studio", "report", "votes.sqlite"], "sqlalchemy")])
def test_without_the_studio_extra_one_line_says_what_to_install(monkeypatch, studio_runs, served, argv, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # `import <missing>` now fails as if it were not installed
    argv = [str(studio_runs["dcgan"]) if a == "RUN" else a for a in argv]
    r = CliRunner().invoke(cli, argv)
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit)
    assert r.output == f'Error: the studio needs {missing}, which is not installed: pip install "ganforge[studio]"\n'
    assert served == []
