"""The studio's "Which face is real?" with the packaged ``faces`` generator against a folder of photos (``ganforge
studio faces --real DIR``)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.usefixtures("one_thread")


def test_face_game_against_a_folder_of_photos(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from ganforge.studio.app import create_app
    from ganforge.studio.catalog import ModelSet
    from ganforge.studio.reals import folder_source
    from ganforge.studio.votes import VoteStore
    from tests.studio.test_app import picture

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):  # odd sizes: the game brings each to the generator's 64 px
        Image.fromarray(rng.integers(0, 255, (90 + i, 110, 3), dtype=np.uint8)).save(photos / f"{i}.jpg")
    models = ModelSet.load(["faces"], real=folder_source(photos))
    client = TestClient(create_app(models, VoteStore(f"sqlite:///{tmp_path / 'v.sqlite'}")), base_url="http://127.0.0.1")
    d = client.post("/api/models/faces/round", json={}).json()
    left, right = picture(d["left"]), picture(d["right"])
    assert left.shape == right.shape == (64, 64, 3)
