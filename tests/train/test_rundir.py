"""Run directories: numbered folders that never reuse a number, safe names, and the jsonl/json files written in them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.train.rundir import append_jsonl, new_run_dir, read_jsonl, truncate_jsonl, write_json


def test_first_run_is_00000_and_outdir_is_created(tmp_path):
    out = tmp_path / "a" / "runs"
    run = new_run_dir(out, "dcgan-digits")
    assert run == out / "00000-dcgan-digits"
    assert run.is_dir() and list(run.iterdir()) == []


def test_numbers_increase_and_same_desc_gets_a_new_folder(tmp_path):
    runs = [new_run_dir(tmp_path, "gan-mnist") for _ in range(3)]
    assert [r.name for r in runs] == ["00000-gan-mnist", "00001-gan-mnist", "00002-gan-mnist"]
    assert new_run_dir(tmp_path, "dcgan-faces").name == "00003-dcgan-faces"
    assert all(r.is_dir() for r in runs)


def test_next_number_follows_the_highest_and_keeps_gaps(tmp_path):
    (tmp_path / "00002-old").mkdir()
    (tmp_path / "00041-older").mkdir()
    (tmp_path / "00007-x").mkdir()
    assert new_run_dir(tmp_path, "new").name == "00042-new"


def test_a_numbered_file_also_reserves_its_number(tmp_path):
    (tmp_path / "00005-notes.txt").write_text("not a run, but its number is taken")
    assert new_run_dir(tmp_path, "new").name == "00006-new"


@pytest.mark.parametrize("name", ["runs", "1234-four-digits", "000001", "00003_underscore", "x00004-", ".00009-hidden"])
def test_names_without_a_five_digit_prefix_are_ignored(tmp_path, name):
    (tmp_path / name).mkdir()
    assert new_run_dir(tmp_path, "new").name == "00000-new"


@pytest.mark.parametrize(
    "desc,expected",
    [
        ("dcgan-digits", "dcgan-digits"),
        ("StyleGAN_v2.1", "StyleGAN_v2.1"),
        ("dcgan-my photos", "dcgan-my_photos"),
        ("gan-../../etc", "gan-.._.._etc"),
        ("a / b", "a_b"),
        ("é:ü*?", "_"),
    ],
)
def test_desc_is_made_safe(tmp_path, desc, expected):
    run = new_run_dir(tmp_path, desc)
    assert run.name == f"00000-{expected}"
    assert run.parent == tmp_path  # never a folder elsewhere


def test_a_taken_name_raises_instead_of_reusing_the_folder(tmp_path, monkeypatch):
    """Two runs starting at once may pick the same number: the second must fail, not write into the first's run."""
    taken = tmp_path / "00000-gan"
    taken.mkdir()
    (taken / "stats.jsonl").write_text('{"nimg": 1}\n')
    real_iterdir = Path.iterdir
    monkeypatch.setattr(Path, "iterdir", lambda self: iter([]) if self == tmp_path else real_iterdir(self))
    with pytest.raises(FileExistsError):
        new_run_dir(tmp_path, "gan")
    assert (taken / "stats.jsonl").read_text() == '{"nimg": 1}\n'


def test_write_json_replaces_whole_and_stringifies_paths(tmp_path):
    f = tmp_path / "config.json"
    f.write_text("old")
    write_json(f, {"data": tmp_path / "digits", "kimg": 2.5, "shape": [1, 2]})
    assert json.loads(f.read_text()) == {"data": str(tmp_path / "digits"), "kimg": 2.5, "shape": [1, 2]}
    assert f.read_text().startswith('{\n  "data"')  # indented for people
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]  # no temporary left


def test_append_and_read_jsonl(tmp_path):
    f = tmp_path / "stats.jsonl"
    append_jsonl(f, {"nimg": 32, "loss": torch.tensor(0.25)})
    append_jsonl(f, {"nimg": 64, "loss": np.float32(0.5)})
    lines = f.read_text().splitlines()
    assert lines == ['{"nimg": 32, "loss": 0.25}', '{"nimg": 64, "loss": 0.5}']
    assert read_jsonl(f) == [{"nimg": 32, "loss": 0.25}, {"nimg": 64, "loss": 0.5}]


def test_read_jsonl_missing_file_is_empty(tmp_path):
    assert read_jsonl(tmp_path / "metric-fid.jsonl") == []


def test_read_jsonl_skips_a_line_cut_by_a_kill_and_blank_lines(tmp_path):
    f = tmp_path / "stats.jsonl"
    f.write_text('{"nimg": 1}\n\n  \n{"nimg": 2}\n{"nimg": 3, "lo')
    assert read_jsonl(f) == [{"nimg": 1}, {"nimg": 2}]


def test_read_jsonl_keeps_records_after_a_cut_line(tmp_path):
    """A run resumed after a kill appends after the cut line: the records logged after it still count."""
    f = tmp_path / "stats.jsonl"
    f.write_text('{"nimg": 1}\n{"nimg": 2, "lo\n')
    append_jsonl(f, {"nimg": 2})
    append_jsonl(f, {"nimg": 3})
    assert read_jsonl(f) == [{"nimg": 1}, {"nimg": 2}, {"nimg": 3}]


def test_truncate_jsonl_drops_records_beyond_the_checkpoint(tmp_path):
    f = tmp_path / "stats.jsonl"
    for nimg in (100, 200, 300, 400):
        append_jsonl(f, {"nimg": nimg})
    append_jsonl(f, {"note": "no nimg"})
    truncate_jsonl(f, 200)
    assert read_jsonl(f) == [{"nimg": 100}, {"nimg": 200}, {"note": "no nimg"}]
    append_jsonl(f, {"nimg": 232})  # logging continues after the kept records
    assert [r.get("nimg") for r in read_jsonl(f)] == [100, 200, None, 232]


def test_truncate_jsonl_without_a_file_creates_none(tmp_path):
    truncate_jsonl(tmp_path / "stats.jsonl", 100)
    assert list(tmp_path.iterdir()) == []
