"""DCGAN's per-dataset defaults: Stacked MNIST trains the relativistic pairing loss with R1 + R2 unless the user names
a loss, with G and D one 3x3 layer deeper per resolution; options given add to it; other data and other families keep
their own defaults."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ganforge.cli.train import resolve_config, train
from ganforge.train.recipes.dcgan import DATA_DEFAULTS


def test_stacked_mnist_resolves_the_pairing_loss_with_both_penalties():
    cfg = resolve_config({"data": "stacked-mnist"}, None, None)
    assert cfg.model == "dcgan" and cfg.loss == "relativistic"
    assert cfg.loss_kwargs == {"r1_gamma": 0.1, "r2_gamma": 0.1, "reg_interval": 16}  # lazy: every 16 steps
    assert cfg.kimg == DATA_DEFAULTS["stacked-mnist"]["kimg"] and cfg.cond is False
    assert cfg.g_kwargs == {"blocks": 1} and cfg.d_kwargs == {"blocks": 2}


def test_naming_a_loss_keeps_the_stacked_depth_and_network_options_add_to_it():
    cfg = resolve_config({"data": "stacked-mnist", "loss": "non-saturating", "d_kwargs": {"pack": 2}}, None, None)
    assert cfg.g_kwargs == {"blocks": 1} and cfg.d_kwargs == {"blocks": 2, "pack": 2}
    paper = resolve_config({"data": "stacked-mnist", "g_kwargs": {"blocks": 0}, "d_kwargs": {"blocks": 0}}, None, None)
    assert paper.g_kwargs == {"blocks": 0} and paper.d_kwargs == {"blocks": 0} and paper.loss == "relativistic"


def test_options_given_add_to_or_replace_the_stacked_defaults():
    one = resolve_config({"data": "stacked-mnist", "loss_kwargs": {"r1_gamma": 0.5}, "kimg": 10.0}, None, None)
    assert one.loss == "relativistic" and one.kimg == 10.0
    assert one.loss_kwargs == {"r1_gamma": 0.5, "r2_gamma": 0.1, "reg_interval": 16}
    eager = resolve_config({"data": "stacked-mnist", "loss_kwargs": {"reg_interval": 1}}, None, None)
    assert eager.loss_kwargs == {"r1_gamma": 0.1, "r2_gamma": 0.1, "reg_interval": 1}  # the penalties every step
    plain = resolve_config({"data": "stacked-mnist", "loss": "non-saturating"}, None, None)
    assert plain.loss == "non-saturating" and plain.loss_kwargs == {}  # no preset penalties


def test_a_config_file_naming_a_loss_counts_as_given(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"data": "stacked-mnist", "loss": "hinge"}))
    cfg = resolve_config({}, str(path), None)
    assert cfg.loss == "hinge" and cfg.loss_kwargs == {}


def test_other_data_and_families_keep_their_defaults():
    for given in ({"data": "mnist"}, {}, {"data": "stacked-mnist", "model": "gan"}):
        cfg = resolve_config(given, None, None)
        assert cfg.loss is None and cfg.loss_kwargs == {}, given  # None: the family's own loss
        assert cfg.g_kwargs == {} and cfg.d_kwargs == {}, given


def test_dry_run_shows_the_stacked_recipe():
    res = CliRunner().invoke(train, ["--data", "stacked-mnist", "--dry-run"])
    assert res.exit_code == 0, res.output
    cfg = json.loads(res.output)
    assert cfg["loss"] == "relativistic"
    assert cfg["loss_kwargs"] == {"r1_gamma": 0.1, "r2_gamma": 0.1, "reg_interval": 16}


def test_turning_both_stacked_penalties_off_asks_for_reg_interval_1():
    res = CliRunner().invoke(train, ["--data", "stacked-mnist", "--r1-gamma", "0", "--r2-gamma", "0", "--dry-run"])
    assert res.exit_code != 0 and "reg_interval" in res.output + str(res.exception)
    res = CliRunner().invoke(train, ["--data", "stacked-mnist", "--r1-gamma", "0", "--r2-gamma", "0",
                                     "--reg-interval", "1", "--dry-run"])
    assert res.exit_code == 0, res.output


def test_a_recipe_refuses_data_defaults_that_are_not_config_keys():
    from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
    from ganforge.train.recipes.base import Recipe

    with pytest.raises(ValueError, match=r"stacked-mnist has unknown TrainConfig key\(s\) \['r1'\]"):
        Recipe(name="probe", description="-", loss="non-saturating", generator=DCGANGenerator,
               discriminator=DCGANDiscriminator, data_defaults={"stacked-mnist": {"r1": 0.1}})


def test_defaults_for_puts_the_data_entry_over_the_family_defaults():
    from ganforge.train.recipes import get_recipe

    recipe = get_recipe("dcgan")
    assert recipe.defaults_for("mnist", {"data"}) == recipe.defaults
    stacked = recipe.defaults_for("stacked-mnist", {"data", "kimg"})
    assert stacked == {**recipe.defaults, **DATA_DEFAULTS["stacked-mnist"]}
    named = recipe.defaults_for("stacked-mnist", {"data", "loss"})
    assert "loss" not in named and "loss_kwargs" not in named and named["kimg"] == 800.0
    assert named["lr_rampdown"] == 0.5  # the length and its ramp stay with a named loss


def test_the_bare_run_applies_only_when_neither_data_nor_cond_is_set():
    from ganforge.train.recipes import get_recipe
    from ganforge.train.recipes.dcgan import BARE_RUN

    recipe = get_recipe("dcgan")
    assert recipe.defaults_for("digits", {"kimg"}) == {**recipe.defaults, **BARE_RUN}
    assert recipe.defaults_for("digits", {"data"}) == recipe.defaults
    assert recipe.defaults_for("digits", {"cond"}) == recipe.defaults
    bare = resolve_config({}, None, None)
    assert bare.data == "digits" and bare.cond and bare.lr_g == 4e-4
    named = resolve_config({"data": "digits"}, None, None)
    assert not named.cond and named.lr_g == 2e-4
