"""Registries: names are validated at registration, lookups of unknown names list the known ones, keys are sorted."""

from __future__ import annotations

import pytest

from ganforge.registry import Registry


def _reg(*names: str) -> Registry[int]:
    reg: Registry[int] = Registry("widget")
    for i, name in enumerate(names):
        reg.register(name)(i)
    return reg


@pytest.mark.parametrize("name", ["a", "dcgan", "style-gan2", "fd_digits", "x9", "a-b_c-1"])
def test_well_formed_names_are_accepted(name):
    reg = _reg(name)
    assert reg.get(name) == 0
    assert reg.names() == [name]


@pytest.mark.parametrize("name", ["", "DCGAN", "Dcgan", "1gan", "-gan", "_gan", "style gan", "a.b", "a/b", "é", " a"])
def test_malformed_names_raise_naming_the_kind_and_the_name(name):
    reg: Registry[int] = Registry("widget")
    with pytest.raises(ValueError, match="widget") as e:
        reg.register(name)
    assert repr(name) in str(e.value)
    assert "malformed" in str(e.value)
    assert len(reg) == 0


@pytest.mark.parametrize("name", [None, 3, b"gan"])
def test_non_string_names_raise(name):
    reg: Registry[int] = Registry("widget")
    with pytest.raises(ValueError, match="malformed"):
        reg.register(name)  # type: ignore[arg-type]


def test_a_trailing_newline_is_malformed():
    with pytest.raises(ValueError, match="malformed"):
        _reg("gan\n")


def test_duplicate_name_raises_and_keeps_the_first():
    reg = _reg("gan")
    with pytest.raises(ValueError, match="widget 'gan' is already registered"):
        reg.register("gan")
    assert reg.get("gan") == 0
    assert len(reg) == 1


def test_duplicate_caught_when_both_decorators_are_created_first():
    reg: Registry[int] = Registry("widget")
    first, second = reg.register("gan"), reg.register("gan")
    first(1)
    with pytest.raises(ValueError, match="already registered"):
        second(2)


def test_decorator_returns_the_object_unchanged():
    reg: Registry[type] = Registry("widget")

    @reg.register("thing")
    class Thing:
        pass

    assert isinstance(Thing, type) and Thing.__name__ == "Thing"
    assert reg.get("thing") is Thing


def test_unknown_name_error_lists_every_known_name_sorted():
    reg = _reg("zeta", "alpha", "mid")
    with pytest.raises(ValueError) as e:
        reg.get("nope")
    assert str(e.value) == "unknown widget 'nope'; expected one of: alpha, mid, zeta"


def test_lookup_is_exact():
    reg = _reg("gan")
    for other in ("GAN", "gan ", "ga", "gans"):
        with pytest.raises(ValueError, match="unknown widget"):
            reg.get(other)


def test_iteration_and_names_are_sorted_not_insertion_order():
    reg = _reg("zeta", "alpha", "mid", "b-2", "b_1")
    assert reg.names() == ["alpha", "b-2", "b_1", "mid", "zeta"]
    assert list(reg) == reg.names()
    assert [reg.get(n) for n in reg] == [1, 3, 4, 2, 0]


def test_names_returns_a_copy():
    reg = _reg("gan")
    reg.names().append("dcgan")
    assert reg.names() == ["gan"]
    assert "dcgan" not in reg


def test_contains_and_len():
    reg = _reg()
    assert len(reg) == 0 and "gan" not in reg and list(reg) == []
    reg.register("gan")(0)
    reg.register("dcgan")(1)
    assert len(reg) == 2
    assert "gan" in reg and "dcgan" in reg
    assert "GAN" not in reg and "progan" not in reg and 3 not in reg and None not in reg


def test_registries_are_independent():
    a, b = _reg("gan"), _reg("dcgan")
    assert "dcgan" not in a and "gan" not in b
    b.register("gan")(5)  # the same name in another registry is no duplicate
    assert a.get("gan") == 0 and b.get("gan") == 5
