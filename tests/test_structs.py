"""barque.structs' light dataclass behaves as the standard library's for what Barque uses."""

from __future__ import annotations

import dataclasses

import pytest

from barque import structs
from barque.cli.gofmt import struct_fields


def _pair(frozen: bool) -> tuple[type, type]:
    made = []
    for deco, fld in ((dataclasses.dataclass, dataclasses.field),
                      (structs.dataclass, structs.field)):
        class Thing:
            a: int
            b: str = "x"
            c: list[int] = fld(default_factory=list)

            def total(self) -> int:
                return self.a + len(self.c)

        made.append(deco(frozen=frozen)(Thing) if frozen else deco(Thing))
    return made[0], made[1]


@pytest.mark.parametrize("frozen", [False, True])
def test_same_as_dataclasses(frozen: bool) -> None:
    std, lite = _pair(frozen)
    for cls in (std, lite):
        one, two = cls(1), cls(1, "x", [])
        assert (one.a, one.b, one.c) == (1, "x", [])
        assert one == two and one is not two
        assert one != cls(2) and one.total() == 1
        assert cls(a=3, c=[1]).c == [1] and cls(1).c is not cls(1).c
        assert cls.b == "x" and not hasattr(cls, "c")
        assert cls.__match_args__ == ("a", "b", "c")
        if frozen:
            assert hash(cls(1, "y", ())) == hash(cls(1, "y", ()))  # type: ignore[arg-type]
            with pytest.raises(AttributeError):
                one.a = 2
            with pytest.raises(AttributeError):
                del one.a
        else:
            assert cls.__hash__ is None
            one.a = 5
            assert one.a == 5
        with pytest.raises(TypeError):
            cls()
        with pytest.raises(TypeError):
            cls(1, nope=2)
        with pytest.raises(TypeError):
            cls(1, a=1)
        with pytest.raises(TypeError):
            cls(1, "x", [], 4)
    assert repr(std(1)).split("(", 1)[1] == repr(lite(1)).split("(", 1)[1]
    assert lite(1) != std(1)


def test_fields_and_gofmt() -> None:
    std, lite = _pair(False)
    assert structs.fields_of(lite(1)) == ("a", "b", "c")
    assert structs.fields_of(lite) is None and structs.fields_of(std(1)) is None
    assert struct_fields(lite(1, "y")) == struct_fields(std(1, "y")) == \
        [("a", 1), ("b", "y"), ("c", [])]


def test_own_methods_kept_and_order_checked() -> None:
    @structs.dataclass
    class Own:
        a: int

        def __repr__(self) -> str:
            return "own"

    assert repr(Own(1)) == "own"
    with pytest.raises(ValueError):  # as dataclasses: a shared mutable default
        @structs.dataclass
        class Shared:
            a: list[int] = []  # noqa: RUF012
    with pytest.raises(TypeError):
        @structs.dataclass
        class Bad:
            a: int = 1
            b: int  # type: ignore[misc]
