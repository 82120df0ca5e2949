"""API tests of the studio (FastAPI TestClient): every endpoint, for every kind of model, and hostile inputs."""

from __future__ import annotations

import base64
import io
import json
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from ganforge.studio.app import create_app  # noqa: E402
from ganforge.studio.catalog import ModelSet  # noqa: E402
from ganforge.studio.security import Limits  # noqa: E402
from ganforge.studio.votes import VoteStore  # noqa: E402

from .conftest import TRAIN_DIGITS, make_generator_run  # noqa: E402

LIMITS = Limits(max_upload_bytes=200_000, max_upload_pixels=1_000_000)


@pytest.fixture(scope="module")
def models(studio_runs, tmp_path_factory) -> ModelSet:
    from ganforge.models.dcgan import DCGANGenerator

    broken = make_generator_run(tmp_path_factory.mktemp("broken"), "00009-dcgan-nodata",
                                DCGANGenerator(z_dim=16, resolution=28, channels=1, width=8), "dcgan",
                                train={**TRAIN_DIGITS, "data": "/nonexistent/folder"}, frames=(), metric=False)
    return ModelSet.load([str(p) for p in studio_runs.values()] + [str(broken)])


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> VoteStore:
    return VoteStore(f"sqlite:///{tmp_path_factory.mktemp('db') / 'votes.sqlite'}")


@pytest.fixture(scope="module")
def client(models, store) -> TestClient:
    return TestClient(create_app(models, store, LIMITS), base_url="http://127.0.0.1")


def picture(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        assert im.format == "PNG"
        arr = np.asarray(im)
    return arr[:, :, None] if arr.ndim == 2 else arr


def tiles(grid: np.ndarray, size: int, count: int, pad: int = 2) -> list[np.ndarray]:
    """Cut a make_grid picture (row-major, ``pad`` px padding) back into its ``count`` tiles."""
    ncol = (grid.shape[1] - pad) // (size + pad)
    out = []
    for i in range(count):
        r, c = divmod(i, ncol)
        y, x = pad + r * (size + pad), pad + c * (size + pad)
        out.append(grid[y : y + size, x : x + size])
    return out


def png(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def sample(client: TestClient, model: str, **body) -> np.ndarray:
    r = client.post(f"/api/models/{model}/sample", json=body)
    assert r.status_code == 200, r.text
    return picture(r.json()["image"])


# ------------------------------------------------------------------------------------------------ page and listing
def test_page_and_assets_with_security_headers(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script src="/app.js"' in r.text and 'id="sample-img"' in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    assert client.get("/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/style.css").headers["content-type"].startswith("text/css")
    assert client.get("/docs").status_code == 404  # no API docs pulling scripts from a CDN
    assert client.get("/static/../../etc/passwd").status_code == 404


def test_models_lists_kinds_and_capabilities(client):
    assert client.get("/api/health").json() == {"ok": True, "models": 7}
    data = client.get("/api/models").json()
    by = {m["name"]: m for m in data["models"]}
    assert by["00000-dcgan-digits"]["kind"] == "generator"
    assert by["00000-dcgan-digits"]["capabilities"] == {"timeline": True, "sample": True, "interpolate": True,
                                                        "truncation": False, "mixing": False, "real": True}
    assert by["00002-stylegan-digits"]["capabilities"]["mixing"] is True
    assert by["00002-stylegan-digits"]["style_groups"] == {"coarse": [0, 1], "middle": [2, 3], "fine": [4, 5]}
    assert by["unit-ckpt"]["kind"] == "translator" and by["unit-ckpt"]["capabilities"]["translate"]
    assert by["det"]["kind"] == "detector" and by["det"]["temperature"] == pytest.approx(1.5)
    assert data["limits"]["max_grid"] == LIMITS.max_grid


# ------------------------------------------------------------------------------------------------ generation
def test_sample_is_deterministic_per_seed_and_seed_changes_it(client):
    a = sample(client, "00000-dcgan-digits", seed=3, n=4)
    assert a.shape == (2 * 30 + 2, 2 * 30 + 2, 1)
    assert np.array_equal(a, sample(client, "00000-dcgan-digits", seed=3, n=4))
    b = sample(client, "00000-dcgan-digits", seed=4, n=4)
    assert not np.array_equal(a, b)
    # image i depends on seed i alone: seed 4's picture is the second tile of the grid starting at 3
    assert np.array_equal(tiles(a, 28, 4)[1], tiles(b, 28, 4)[0])


def test_sample_matches_the_library_sampler(client, models):
    from ganforge.media import make_grid
    from ganforge.sampling import generate

    G = models.models["00000-dcgan-digits"].G
    assert np.array_equal(sample(client, "00000-dcgan-digits", seed=10, n=9),
                          make_grid(generate(G, list(range(10, 19))), nrow=3))


def test_latent_sliders_move_the_picture(client):
    base = sample(client, "00000-dcgan-digits", seed=0, n=1)
    moved = sample(client, "00000-dcgan-digits", seed=0, n=1, latent=[0, 0, 3.0])
    assert not np.array_equal(base, moved)
    assert np.array_equal(base, sample(client, "00000-dcgan-digits", seed=0, n=1, latent=[0, 0, 0]))


def test_conditional_model_takes_a_valid_class_or_seed_mod_classes(client):
    one = sample(client, "00001-dcgan-cond", seed=0, n=1, **{"class": 3})
    assert not np.array_equal(one, sample(client, "00001-dcgan-cond", seed=0, n=1, **{"class": 4}))
    # without a class: class = seed mod classes, as `ganforge sample`
    assert np.array_equal(sample(client, "00001-dcgan-cond", seed=3, n=1, **{"class": 3}),
                          sample(client, "00001-dcgan-cond", seed=3, n=1))
    r = client.post("/api/models/00001-dcgan-cond/sample", json={"seed": 0, "class": 10})
    assert r.status_code == 400 and "class must be in [0, 10)" in r.json()["detail"]
    assert client.post("/api/models/00000-dcgan-digits/sample", json={"class": 1}).status_code == 400


def test_progressive_model_is_shown_at_its_target_size(client):
    pic = sample(client, "00003-progan-digits", seed=0, n=1)[2:-2, 2:-2]  # the 8x8 stage, nearest-upsampled
    assert pic.shape == (16, 16, 1)
    assert np.array_equal(pic, np.repeat(np.repeat(pic[::2, ::2], 2, axis=0), 2, axis=1))


def test_truncation_psi_zero_gives_the_average_picture_for_every_seed(client):
    grid = sample(client, "00002-stylegan-digits", seed=0, n=4, psi=0.0)
    t = tiles(grid, 16, 4)
    assert all(np.array_equal(t[0], x) for x in t[1:])
    full = tiles(sample(client, "00002-stylegan-digits", seed=0, n=4, psi=1.0), 16, 4)
    assert not np.array_equal(full[0], full[1])
    r = client.post("/api/models/00000-dcgan-digits/sample", json={"psi": 0.5})
    assert r.status_code == 400 and "truncation" in r.json()["detail"]


@pytest.mark.parametrize("model", ["00000-dcgan-digits", "00002-stylegan-digits"])
def test_interpolation_strip_runs_from_seed_a_to_seed_b(client, model):
    size = 28 if "dcgan" in model else 16
    r = client.post(f"/api/models/{model}/interpolate", json={"seed_a": 5, "seed_b": 9, "steps": 5, "psi": 1.0})
    assert r.status_code == 200, r.text
    strip = picture(r.json()["image"])
    assert strip.shape[:2] == (size + 4, 5 * (size + 2) + 2)
    t = tiles(strip, size, 5)
    # the ends are the two seeds' own pictures (up to float rounding of the path)
    assert np.abs(t[0].astype(int) - sample(client, model, seed=5, n=1)[2:-2, 2:-2]).max() <= 1
    assert np.abs(t[-1].astype(int) - sample(client, model, seed=9, n=1)[2:-2, 2:-2]).max() <= 1
    assert not np.array_equal(t[2], t[0])


def test_style_mixing_grid(client):
    r = client.post("/api/models/00002-stylegan-digits/mix",
                    json={"row_seeds": [1, 2], "col_seeds": [3, 4, 5], "styles": "fine"})
    assert r.status_code == 200, r.text
    assert r.json()["layers"] == [4, 5]
    grid = picture(r.json()["image"])
    assert grid.shape[:2] == (3 * 18 + 2, 4 * 18 + 2)
    t = tiles(grid, 16, 12)
    col3 = sample(client, "00002-stylegan-digits", seed=3, n=1)[2:-2, 2:-2]
    row1 = sample(client, "00002-stylegan-digits", seed=1, n=1)[2:-2, 2:-2]
    assert np.array_equal(t[1], col3) and np.array_equal(t[4], row1)
    assert not np.array_equal(t[5], row1)  # row seed 1 with column seed 3's fine styles differs from seed 1 alone
    body = {"row_seeds": [1, 2], "col_seeds": [3, 4, 5], "styles": "coarse"}
    coarse = picture(client.post("/api/models/00002-stylegan-digits/mix", json=body).json()["image"])
    assert not np.array_equal(tiles(coarse, 16, 12)[5], t[5])
    r = client.post("/api/models/00002-stylegan-digits/mix", json={"row_seeds": [1], "col_seeds": [3], "styles": "0,5"})
    assert r.json()["layers"] == [0, 5]
    bad = client.post("/api/models/00002-stylegan-digits/mix", json={"styles": "ultra"})
    assert bad.status_code == 400 and "coarse" in bad.json()["detail"]
    assert client.post("/api/models/00000-dcgan-digits/mix", json={}).status_code == 400


# ------------------------------------------------------------------------------------------------ bounded work
@pytest.mark.parametrize("path,body", [
    ("sample", {"n": 100_000}),
    ("sample", {"n": 0}),
    ("sample", {"seed": -1}),
    ("sample", {"seed": 2**31 - 1, "n": 2}),
    ("sample", {"latent": [0.5] * 17}),
    ("sample", {"latent": [1e9]}),
    ("sample", {"latent": [0.0] * 1000}),
    ("sample", {"n": 1, "unexpected": 1}),
    ("sample", {"n": "many"}),
    ("interpolate", {"steps": 10_000}),
    ("interpolate", {"steps": 1}),
])
def test_requests_beyond_the_limits_are_refused(client, path, body):
    r = client.post(f"/api/models/00000-dcgan-digits/{path}", json=body)
    assert r.status_code == 422, r.text


def test_mixing_grid_size_is_bounded(client):
    r = client.post("/api/models/00002-stylegan-digits/mix", json={"row_seeds": list(range(7)), "col_seeds": [1]})
    assert r.status_code == 422 and "row seeds" in r.json()["detail"]


@pytest.mark.parametrize("name", ["nope", "..", "...", "%2e%2e", "..%2F..%2Fetc%2Fpasswd", "00000-dcgan-digits.bak",
                                  "%00", "a" * 300, "/etc/passwd"])
def test_unknown_and_path_like_model_names_are_404(client, name):
    r = client.post(f"/api/models/{name}/sample", json={})
    assert r.status_code in (404, 405), r.text  # 405: the name swallowed the route (e.g. a path with slashes)
    assert client.get(f"/api/models/{name}/timeline").status_code == 404


# ------------------------------------------------------------------------------------------------ uploads
def upload(client: TestClient, model: str, kind: str, data: bytes, **form):
    return client.post(f"/api/models/{model}/{kind}", files={"file": ("x.png", data, "image/png")}, data=form)


def test_translation_of_an_uploaded_picture(client, models):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (24, 20), dtype=np.uint8)
    r = upload(client, "unit-ckpt", "translate", png(arr), direction="a2b")
    assert r.status_code == 200, r.text
    view, out = picture(r.json()["input"]), picture(r.json()["output"])
    assert view.shape == (16, 16, 1) and out.shape == (16, 16, 3)  # centre crop to 16 px; domain B is RGB
    from ganforge.media import from_uint8, to_uint8

    G = models.models["unit-ckpt"].G
    import torch

    with torch.no_grad():
        expect = to_uint8(G.translate(from_uint8(view[None]), "a2b").clamp(-1, 1))[0]
    assert np.abs(out.astype(int) - expect.astype(int)).max() <= 1
    back = upload(client, "unit-ckpt", "translate", png(np.zeros((16, 16, 3), np.uint8)), direction="b2a")
    assert back.status_code == 200 and picture(back.json()["output"]).shape == (16, 16, 1)
    assert upload(client, "unit-ckpt", "translate", png(arr), direction="c2d").status_code == 422
    assert upload(client, "00000-dcgan-digits", "translate", png(arr)).status_code == 400


def test_detection_gives_the_calibrated_probability(client, models):
    arr = np.random.default_rng(1).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    r = upload(client, "det", "detect", png(arr, "JPEG"))
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["temperature"] == pytest.approx(1.5)
    assert d["p_fake"] == pytest.approx(1 / (1 + math.exp(-d["logit"] / 1.5)))
    assert d["label"] == ("fake" if d["p_fake"] >= 0.5 else "real")
    assert d["by_stage"] == {"trace": pytest.approx(d["p_fake"])}  # a detector without a distance stage
    assert picture(d["view"]).shape == (16, 16, 1) and (d["width"], d["height"]) == (40, 30)
    from ganforge.detection.predict import score_arrays

    jpeg = np.asarray(Image.open(io.BytesIO(png(arr, "JPEG"))))
    assert d["logit"] == pytest.approx(float(score_arrays(models.models["det"].net, [jpeg])[0]), abs=1e-5)
    assert upload(client, "00000-dcgan-digits", "detect", png(arr)).status_code == 400


def crafted_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width x height`` (its data would decode to that many pixels)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("kind,model", [("detect", "det"), ("translate", "unit-ckpt")])
def test_hostile_uploads_are_refused(client, kind, model):
    # a decompression bomb: 1.5 kB of PNG that decodes to 3000 x 3000 pixels (the limit here is 1 Mpx)
    bomb = png(np.zeros((3000, 3000), np.uint8))
    assert len(bomb) < 20_000
    r = upload(client, model, kind, bomb)
    assert r.status_code == 413 and "pixels" in r.json()["detail"]
    r = upload(client, model, kind, crafted_png(100_000, 100_000))
    assert r.status_code == 413, r.text
    # not a picture at all, an empty file, a truncated picture, a format outside the accepted ones
    assert upload(client, model, kind, b"#!/bin/sh\nrm -rf /\n").status_code == 415
    assert upload(client, model, kind, b"").status_code == 400
    good = png(np.random.default_rng(2).integers(0, 255, (32, 32), dtype=np.uint8))
    assert upload(client, model, kind, good[: len(good) // 2]).status_code == 415
    assert upload(client, model, kind, png(np.zeros((8, 8, 3), np.uint8), "TIFF")).status_code == 415
    # more bytes than the upload limit (a valid picture: the size alone refuses it)
    noise = np.random.default_rng(3).integers(0, 255, (280, 280, 3), dtype=np.uint8)
    big = png(noise)
    assert LIMITS.max_upload_bytes < len(big) < LIMITS.max_upload_bytes + 64 * 1024
    r = upload(client, model, kind, big)
    assert r.status_code == 413 and "too large" in r.json()["detail"]
    # far beyond the request body cap: refused before the multipart parser sees it
    r = upload(client, model, kind, b"\0" * (LIMITS.max_upload_bytes + 200_000))
    assert r.status_code == 413


def test_streamed_body_without_length_is_capped(client):
    def chunks():
        for _ in range(40):
            yield b"x" * 10_000

    r = client.post("/api/models/det/detect", content=chunks(),
                    headers={"content-type": "multipart/form-data; boundary=zzz"})
    assert r.status_code == 413


# ------------------------------------------------------------------------------------------------ host and origin
def test_foreign_host_and_cross_origin_posts_are_refused(client):
    assert client.get("/api/models", headers={"host": "evil.example"}).status_code == 400
    r = client.post("/api/models/00000-dcgan-digits/sample", json={}, headers={"origin": "https://evil.example"})
    assert r.status_code == 403
    ok = client.post("/api/models/00000-dcgan-digits/sample", json={}, headers={"origin": "http://127.0.0.1"})
    assert ok.status_code == 200


# ------------------------------------------------------------------------------------------------ which one is real?
def test_round_shows_one_real_and_one_generated_picture(client, models, store):
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ganforge.studio.votes import Round

    m = models.models["00000-dcgan-digits"]
    sides = set()
    for i in range(40):  # the side comes from OS entropy (players must not predict it): the test cannot seed it
        if i >= 6 and sides == {"left", "right"}:
            break
        r = client.post("/api/models/00000-dcgan-digits/round", json={"psi": 1.0})
        assert r.status_code == 200, r.text
        d = r.json()
        assert set(d) == {"round", "model", "psi", "left", "right"}  # nothing tells which side is real
        with Session(store.engine) as s:
            rd = s.scalars(select(Round).where(Round.token == d["round"])).one()
        real, _ = m.real_picture(rd.real_index)
        fake = m.fake_picture(rd.seed, 1.0, None)
        left, right = picture(d["left"]), picture(d["right"])
        expect = (real, fake) if rd.real_side == "left" else (fake, real)
        assert np.array_equal(left, expect[0]) and np.array_equal(right, expect[1])
        sides.add(rd.real_side)
    assert sides == {"left", "right"}  # all 40 rounds on one side: probability 2 ** -39


def test_conditional_round_uses_the_real_pictures_class(client, models, store):
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ganforge.studio.votes import Round

    d = client.post("/api/models/00001-dcgan-cond/round", json={}).json()
    with Session(store.engine) as s:
        rd = s.scalars(select(Round).where(Round.token == d["round"])).one()
    _, label = models.models["00001-dcgan-cond"].real_picture(rd.real_index)
    assert rd.klass == label is not None


def test_answers_are_recorded_once_with_times(client, store):
    before = store.count()
    d = client.post("/api/models/00002-stylegan-digits/round", json={"psi": 0.7}).json()
    r = client.post(f"/api/rounds/{d['round']}/answer", json={"choice": "left", "response_ms": 812.5, "rater": "r1"})
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["correct"] == (res["real_side"] == "left") and res["fooled"] == (not res["correct"])
    assert store.count() == before + 1
    again = client.post(f"/api/rounds/{d['round']}/answer", json={"choice": "right"})
    assert again.status_code == 409
    vote = store.votes()[-1]
    assert (vote["model"], vote["psi"], vote["choice"], vote["response_ms"], vote["rater"]) == (
        "00002-stylegan-digits", 0.7, "left", 812.5, "r1")
    assert vote["answered_at"] >= vote["issued_at"] and vote["server_ms"] >= 0


@pytest.mark.parametrize("token,body,status", [
    ("A" * 32, {"choice": "left"}, 404),
    ("..%2F..%2Fetc", {"choice": "left"}, 404),
    ("short", {"choice": "left"}, 404),
])
def test_bad_answers(client, token, body, status):
    assert client.post(f"/api/rounds/{token}/answer", json=body).status_code == status


def test_bad_answer_values_are_422(client):
    d = client.post("/api/models/00000-dcgan-digits/round", json={}).json()
    url = f"/api/rounds/{d['round']}/answer"
    assert client.post(url, json={"choice": "middle"}).status_code == 422
    assert client.post(url, json={"choice": "left", "response_ms": -5}).status_code == 422
    assert client.post(url, json={"choice": "left", "rater": "<script>"}).status_code == 422
    assert client.post(url, json={"choice": "left"}).status_code == 200


def test_round_refusals(client):
    assert client.post("/api/models/00000-dcgan-digits/round", json={"psi": 0.5}).status_code == 400
    assert client.post("/api/models/det/round", json={}).status_code == 400
    r = client.post("/api/models/00009-dcgan-nodata/round", json={})
    assert r.status_code == 503 and "/nonexistent/folder" in r.json()["detail"]


def test_results_give_fool_rate_and_wilson_interval(client, store):
    for _ in range(3):
        d = client.post("/api/models/00003-progan-digits/round", json={}).json()
        client.post(f"/api/rounds/{d['round']}/answer", json={"choice": "left", "response_ms": 500})
    data = client.get("/api/results").json()
    assert data["votes"] == store.count()
    row = next(r for r in data["rows"] if r["model"] == "00003-progan-digits")
    fooled = sum(v["fooled"] for v in store.votes() if v["model"] == "00003-progan-digits")
    assert row["n"] == 3 and row["fooled"] == fooled and row["fool_rate"] == pytest.approx(fooled / 3)
    assert 0 <= row["ci_low"] <= row["fool_rate"] <= row["ci_high"] <= 1 and row["median_response_ms"] == 500


# ------------------------------------------------------------------------------------------------ timeline
def test_timeline_lists_frames_with_kimg_and_metric(client, studio_runs):
    data = client.get("/api/models/00000-dcgan-digits/timeline").json()
    assert [f["kimg"] for f in data["frames"]] == [0, 4, 8] and data["metric"] == "fid_400"
    assert data["frames"][0]["metric"] is None and data["frames"][2]["metric"] == 42.25
    assert data["frames"][2]["caption"] == "8 kimg    fid_400 42.25"
    r = client.get("/api/models/00000-dcgan-digits/timeline/1")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content == (Path(studio_runs["dcgan"]) / "fakes000004.png").read_bytes()
    assert client.get("/api/models/00000-dcgan-digits/timeline/3").status_code == 404
    assert client.get("/api/models/00000-dcgan-digits/timeline/-1").status_code == 404
    assert client.get("/api/models/00000-dcgan-digits/timeline/..%2Fconfig.json").status_code == 404
    assert client.get("/api/models/00000-dcgan-digits/timeline/config.json").status_code == 422
    assert client.get("/api/models/det/timeline").json()["frames"] == []


def test_packaged_digits_model_when_present(tmp_path):
    from ganforge.checkpoint import CheckpointError, resolve_checkpoint

    try:
        ckpt = resolve_checkpoint("digits")
    except CheckpointError:
        ckpt = None
    if ckpt is None or not (ckpt / "config.json").is_file():
        pytest.skip("the packaged 'digits' model is not in this checkout yet (src/ganforge/pretrained/digits)")
    models = ModelSet.load(["digits"])
    assert models.names() == ["digits"] and models.default_db_dir() == Path.cwd()
    client = TestClient(create_app(models, VoteStore(f"sqlite:///{tmp_path / 'v.sqlite'}")), base_url="http://127.0.0.1")
    info = client.get("/api/models").json()["models"][0]
    assert info["kind"] == "generator" and info["capabilities"]["sample"], json.dumps(info)
    a = sample(client, "digits", seed=0, n=4)
    assert not np.array_equal(a, sample(client, "digits", seed=1, n=4))
    if info["capabilities"]["real"]:
        d = client.post("/api/models/digits/round", json={}).json()
        assert picture(d["left"]).shape == picture(d["right"]).shape
