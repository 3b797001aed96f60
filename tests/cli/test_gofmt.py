"""Go's fmt, strconv.Quote and encoding/json output; expected strings are what Go prints
(most come from Go's src/fmt/fmt_test.go, strconv/quote_test.go and encoding/json tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from barque.cli import gofmt

SPRINTF_CASES: list[tuple[str, tuple[Any, ...], str]] = [
    # integers
    ("%d", (12345,), "12345"), ("%v", (12345,), "12345"), ("%d", (-12345,), "-12345"),
    ("%+d", (12345,), "+12345"), ("% d", (12345,), " 12345"), ("%08d", (-12345,), "-0012345"),
    ("%-8d|", (12345,), "12345   |"), ("%.3d", (7,), "007"), ("%.0d", (0,), ""),
    ("%5.0d", (0,), "     "), ("%o", (0o1234,), "1234"), ("%#o", (0o1234,), "01234"),
    ("%O", (0o1234,), "0o1234"), ("%b", (7,), "111"), ("%#b", (7,), "0b111"),
    ("%x", (0x1234ABC,), "1234abc"), ("%X", (0x1234ABC,), "1234ABC"),
    ("%#X", (0x1234ABC,), "0X1234ABC"), ("%x", (-1,), "-1"), ("%04x", (127,), "007f"),
    ("%c", (ord("x"),), "x"), ("%q", (ord("x"),), "'x'"), ("%U", (0x263A,), "U+263A"),
    ("%#U", (0x2318,), "U+2318 '⌘'"), ("%q", (0x263A,), "'☺'"), ("%+q", (0x263A,), "'\\u263a'"),
    # floats
    ("%e", (1.0,), "1.000000e+00"), ("%f", (1.0,), "1.000000"), ("%g", (1.0,), "1"),
    ("%v", (1.0,), "1"), ("%.3f", (-1.0,), "-1.000"), ("%+.3e", (1.0,), "+1.000e+00"),
    ("%08.3f", (-1.0,), "-001.000"), ("% .3E", (-1.0,), "-1.000E+00"),
    ("%g", (123456789.0,), "1.23456789e+08"), ("%v", (1e-7,), "1e-07"),
    ("%v", (100000.0,), "100000"), ("%v", (1e6,), "1e+06"), ("%.2f", (2.675,), "2.67"),
    ("%6.2f%%", (12.345,), " 12.35%"), ("%.3g", (1234.0,), "1.23e+03"),
    ("%v", (float("inf"),), "+Inf"), ("%f", (float("-inf"),), "-Inf"),
    ("%v", (float("nan"),), "NaN"), ("%010f", (float("inf"),), "      +Inf"),
    ("%f", (1,), "%!f(int=1)"),
    # strings
    ("%s", ("abc",), "abc"), ("%5s", ("abc",), "  abc"), ("%-5s|", ("abc",), "abc  |"),
    ("%.2s", ("abc",), "ab"), ("%.5s", ("日本語日本語",), "日本語日本"), ("%x", ("xyz",), "78797a"),
    ("%X", ("xyz",), "78797A"), ("% x", ("xyz",), "78 79 7a"), ("%#x", ("xyz",), "0x78797a"),
    ("%# x", ("xyz",), "0x78 0x79 0x7a"), ("%q", ('"',), '"\\""'), ("%#q", ("abc",), "`abc`"),
    ("%#q", ("a`b",), '"a`b"'), ("%q", ("☺",), '"☺"'), ("%+q", ("☺",), '"\\u263a"'),
    ("%q", ("\x07",), '"\\a"'), ("%-10s|%5d|", ("ab", 42), "ab        |   42|"),
    # booleans, nil, collections, structs
    ("%t", (True,), "true"), ("%v", (False,), "false"), ("%d", (True,), "%!d(bool=true)"),
    ("%v", (None,), "<nil>"), ("%s", (None,), "%!s(<nil>)"), ("%d", (None,), "%!d(<nil>)"),
    ("%v", ([1, 2],), "[1 2]"), ("%d", ([1, 2],), "[1 2]"), ("%x", ([10, 11],), "[a b]"),
    ("%q", (["a", "b"],), '["a" "b"]'), ("%v", ({"b": 2, "a": 1},), "map[a:1 b:2]"),
    ("%v", ({2: "x", 10: "y"},), "map[2:x 10:y]"), ("%v", ([],), "[]"), ("%v", ({},), "map[]"),
    ("%T", (1,), "int"), ("%T", ("s",), "string"), ("%T", (None,), "<nil>"),
    ("%T", ([1],), "[]interface {}"),
    # errors and specials
    ("%d", (), "%!d(MISSING)"), ("%d", (1, 2), "1%!(EXTRA int=2)"),
    ("%d %d", (1, "a", None), "1 %!d(string=a)%!(EXTRA <nil>)"),
    ("%z", (1,), "%!z(int=1)"), ("%", (), "%!(NOVERB)"), ("100%%", (), "100%"),
    ("%*d", (5, 42), "   42"), ("%-*d|", (5, 42), "42   |"), ("%.*f", (2, 3.14159), "3.14"),
    ("%*d", ("x", 42), "%!(BADWIDTH)42"), ("%5d", ("hi",), "%!d(string=   hi)"),
]


@pytest.mark.parametrize("fmt,args,expected", SPRINTF_CASES)
def test_sprintf_like_go(fmt: str, args: tuple[Any, ...], expected: str) -> None:
    assert gofmt.sprintf(fmt, *args) == expected


def test_sprint_spacing_rules() -> None:
    assert gofmt.sprint("a", 1, 2, "b", 3.0) == "a1 2b3"
    assert gofmt.sprint(1, 2) == "1 2"
    assert gofmt.sprint("a", "b") == "ab"
    assert gofmt.sprint(None, None) == "<nil> <nil>"
    assert gofmt.sprintln("a", 1) == "a 1\n"


@dataclass
class Point:
    X: int
    Name: str


class Stringer:
    def __str__(self) -> str:
        return "stringer!"


def test_struct_and_stringer_printing() -> None:
    assert gofmt.sprint_value(Point(1, "a")) == "{1 a}"
    assert gofmt.sprintf("%+v", Point(-1, "a")) == "{X:-1 Name:a}"
    assert gofmt.sprint_value(Stringer()) == "stringer!"
    assert gofmt.sprintf("%q", Stringer()) == '"stringer!"'
    assert gofmt.sprint_value(b"hi") == "[104 105]"
    assert gofmt.sprintf("%s", b"hi") == "hi"


@pytest.mark.parametrize("text,expected", [
    ("abc", '"abc"'), ("☺\x00\n\"\\", '"☺\\x00\\n\\"\\\\"'), ("\u00a0", '"\\u00a0"'),
    ("\x7f", '"\\x7f"'), ("\U0010ffff", '"\\U0010ffff"'), ("\ufeff", '"\\ufeff"'),
    ("tab\there", '"tab\\there"'), ("\udcff", '"\\xff"'),
])
def test_quote_like_strconv(text: str, expected: str) -> None:
    assert gofmt.quote(text) == expected


@pytest.mark.parametrize("value,expected", [
    (1.0, "1"), (1.5, "1.5"), (1e20, "100000000000000000000"), (1e21, "1e+21"),
    (1e-7, "1e-7"), (0.000001, "0.000001"), (123456789.0, "123456789"), (-0.5, "-0.5"),
    (0.0, "0"), (10, "10"), (True, "true"), (None, "null"),
])
def test_json_numbers_like_encoding_json(value: Any, expected: str) -> None:
    assert gofmt.to_json(value) == expected


def test_json_strings_objects_and_structs() -> None:
    assert gofmt.to_json("\t\b\f\x1f\u2028é<&>") == '"\\t\\b\\f\\u001f\\u2028é<&>"'
    assert gofmt.to_json({"b": 1, "a": [True, None, "x"]}) == '{"a":[true,null,"x"],"b":1}'
    assert gofmt.to_json(Point(1, "n")) == '{"X":1,"Name":"n"}'
    assert gofmt.to_json(b"hi") == '"aGk="'
    assert gofmt.to_json({1: "a", 10: "b", 2: "c"}) == '{"1":"a","10":"b","2":"c"}'
    # a formatter context (a map to Docker's JSON) sorted; an API struct in field order
    assert gofmt.to_json(gofmt.GoStruct({"b": 1, "a": 2}, "T")) == '{"a":2,"b":1}'
    assert gofmt.to_json(gofmt.GoStruct({"b": 1, "a": {"y": 1, "x": 2}}, "T", ordered=True)) \
        == '{"b":1,"a":{"x":2,"y":1}}'
    with pytest.raises(gofmt.GoFmtError, match="unsupported value: NaN"):
        gofmt.to_json(float("nan"))


@pytest.mark.parametrize("text,width", [("abc", 3), ("日本", 4), ("é", 1), ("e\u0301", 1),
                                         ("", 0)])
def test_display_width_counts_terminal_cells(text: str, width: int) -> None:
    assert gofmt.display_width(text) == width
