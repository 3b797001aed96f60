"""The functions of Docker's templates: Go's builtins (text/template funcs.go) and Docker's
templates.basicFunctions and HeaderFunctions (docker/cli templates/templates.go).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from barque.cli import gofmt


class _NoValue:
    """Go's invalid reflect.Value: what a missing map key evaluates to."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<no value>"

    def __bool__(self) -> bool:
        return False


NO_VALUE: Any = _NoValue()


class CallError(Exception):
    """An error returned by a template function: reported as "error calling NAME: ..."."""


@dataclass(frozen=True)
class Func:
    """A template function with Go's parameter types.

    Types: "value" (reflect.Value: a missing value passes through), "any" (interface{}:
    missing becomes None), "string", "int", "[]string"."""

    impl: Callable[..., Any]
    params: tuple[str, ...]
    variadic: str | None = None


def truth(value: Any) -> bool:
    """Go's template truth: false, 0, "", nil and empty collections are false."""
    if value is None or value is NO_VALUE:
        return False
    if isinstance(value, (bool, int, float, complex, str, bytes, list, tuple, dict, set)):
        return bool(value)
    if isinstance(value, Mapping):
        return len(value) > 0
    return True


def _basic_kind(value: Any) -> str | None:
    if value is None or value is NO_VALUE:
        return "invalid"
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("complex", complex),
                        ("string", str)):
        if isinstance(value, types):
            return kind
    return None


def _numbers(k1: str | None, k2: str | None) -> bool:
    # Go refuses int vs float64; mixing them is allowed here so JSON-ish data compares.
    return {k1, k2} == {"int", "float"}


def _eq(arg1: Any, *rest: Any) -> bool:
    if not rest:
        raise CallError("missing argument for comparison")
    k1 = _basic_kind(arg1)
    for arg in rest:
        k2 = _basic_kind(arg)
        if k1 != k2:
            if _numbers(k1, k2):
                same = arg1 == arg
            elif "invalid" in (k1, k2):
                same = False
            else:
                raise CallError("incompatible types for comparison")
        elif k1 == "invalid":
            same = True
        elif k1 is None and any(isinstance(a, (list, dict, set)) for a in (arg1, arg)):
            raise CallError(f"non-comparable type {gofmt.sprint_value(arg)}: {gofmt.go_type(arg)}")
        else:
            same = arg1 == arg
        if same:
            return True
    return False


def _ne(arg1: Any, arg2: Any) -> bool:
    return not _eq(arg1, arg2)


def _lt(arg1: Any, arg2: Any) -> bool:
    k1, k2 = _basic_kind(arg1), _basic_kind(arg2)
    if k1 in (None, "invalid") or k2 in (None, "invalid"):
        raise CallError("invalid type for comparison")
    if k1 != k2 and not _numbers(k1, k2):
        raise CallError("incompatible types for comparison")
    if k1 in ("bool", "complex"):
        raise CallError("invalid type for comparison")
    return bool(arg1 < arg2)


def _le(arg1: Any, arg2: Any) -> bool:
    return _lt(arg1, arg2) or _eq(arg1, arg2)


def _gt(arg1: Any, arg2: Any) -> bool:
    return not _le(arg1, arg2)


def _ge(arg1: Any, arg2: Any) -> bool:
    return not _lt(arg1, arg2)


def _not(arg: Any) -> bool:
    return not truth(arg)


def _len(item: Any) -> int:
    if item is NO_VALUE:
        raise CallError("len of untyped nil")
    if item is None:
        raise CallError("len of nil pointer")
    if isinstance(item, str):
        return len(item.encode("utf-8", "surrogateescape"))  # Go counts bytes
    if isinstance(item, (list, tuple, bytes, Mapping, set)):
        return len(item)
    raise CallError(f"len of type {gofmt.go_type(item)}")


def _index_arg(index: Any, cap: int) -> int:
    if index is None or index is NO_VALUE:
        raise CallError("cannot index slice/array with nil")
    if not isinstance(index, int) or isinstance(index, bool):
        raise CallError(f"cannot index slice/array with type {gofmt.go_type(index)}")
    if index < 0 or index > cap:
        raise CallError(f"index out of range: {index}")
    return index


def _zero_value(mapping: Mapping[Any, Any]) -> Any:
    """What Go's index returns for a missing key: the zero value of the map's element type.

    Python dicts carry no element type, so it is guessed from the values present; an
    empty map is taken as map[string]string, the type of Docker's Labels and Options."""
    values = list(mapping.values())
    if not values or all(isinstance(v, str) for v in values):
        return ""
    for kind, zero in ((bool, False), (int, 0), (float, 0.0)):
        if all(isinstance(v, kind) for v in values):
            return zero
    if all(isinstance(v, list) for v in values):
        return []
    return None


def _index(item: Any, *indexes: Any) -> Any:
    if item is None or item is NO_VALUE:
        raise CallError("index of untyped nil")
    for index in indexes:
        if item is None:
            raise CallError("index of nil pointer")
        if isinstance(item, (str, bytes)):
            data = item.encode("utf-8", "surrogateescape") if isinstance(item, str) else item
            x = _index_arg(index, len(data))
            if x == len(data):
                raise CallError(f"index out of range: {x}")
            item = data[x]
        elif isinstance(item, (list, tuple)):
            x = _index_arg(index, len(item))
            if x == len(item):
                raise CallError(f"index out of range: {x}")
            item = item[x]
        elif isinstance(item, Mapping):
            item = _map_index(item, index)
        else:
            raise CallError(f"can't index item of type {gofmt.go_type(item)}")
    return item


def _map_index(mapping: Mapping[Any, Any], key: Any) -> Any:
    if key is None or key is NO_VALUE:
        raise CallError("value is nil; should be of type string")
    try:
        if key in mapping:
            return mapping[key]
    except TypeError:  # an unhashable key
        raise CallError(f"value has type {gofmt.go_type(key)}; should be string") from None
    keys = list(mapping.keys())
    if keys and all(isinstance(k, str) for k in keys) and not isinstance(key, str):
        raise CallError(f"value has type {gofmt.go_type(key)}; should be string")
    return _zero_value(mapping)


def _slice(item: Any, *indexes: Any) -> Any:
    if item is None or item is NO_VALUE:
        raise CallError("slice of untyped nil")
    if len(indexes) > 3:
        raise CallError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise CallError("cannot 3-index slice a string")
        data: Any = item.encode("utf-8", "surrogateescape")
    elif isinstance(item, (list, tuple)):
        data = item
    else:
        raise CallError(f"can't slice item of type {gofmt.go_type(item)}")
    idx = [0, len(data), len(data)]
    for i, index in enumerate(indexes):
        idx[i] = _index_arg(index, len(data))
    if idx[0] > idx[1]:
        raise CallError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise CallError(f"invalid slice index: {idx[1]} > {idx[2]}")
    result = data[idx[0]:idx[1]]
    if isinstance(item, str):
        return result.decode("utf-8", "surrogateescape")
    return result


def _call(fn: Any, *args: Any) -> Any:
    if fn is None or fn is NO_VALUE:
        raise CallError("call of nil")
    if not callable(fn):
        raise CallError(f"non-function of type {gofmt.go_type(fn)}")
    args = tuple(None if a is NO_VALUE else a for a in args)
    check_arity(fn, len(args))
    return fn(*args)


def _eval_args(args: Sequence[Any]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return gofmt.sprint(*args)


def _html(*args: Any) -> str:
    table = {'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;",
             "\0": "\ufffd"}
    return "".join(table.get(ch, ch) for ch in _eval_args(args))


def _js(*args: Any) -> str:
    table = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E",
             "&": "\\u0026", "=": "\\u003D"}
    out = []
    for ch in _eval_args(args):
        if ch in table:
            out.append(table[ch])
        elif ch < " ":
            out.append(f"\\u{ord(ch):04X}")
        elif ch >= "\x80" and not ch.isprintable():
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def _urlquery(*args: Any) -> str:
    return quote_plus(_eval_args(args), safe="", errors="surrogateescape")


def _printf(fmt: str, *args: Any) -> str:
    return gofmt.sprintf(fmt, *args)


# Docker's templates.basicFunctions (docker/cli templates/templates.go).

def _per_rune(s: str, convert: Callable[[str], str]) -> str:
    """Go maps case rune by rune (unicode.ToUpper), never growing the string like ß→SS."""
    out = []
    for ch in s:
        mapped = convert(ch)
        out.append(mapped if len(mapped) == 1 else ch)
    return "".join(out)


def _is_title_separator(ch: str) -> bool:
    if ch <= "\x7f":
        return not (ch.isascii() and (ch.isalnum() or ch == "_"))
    if ch.isalpha() or ch.isdigit():
        return False
    return ch.isspace()


def _title(s: str) -> str:
    """strings.Title: upper-case the first letter of every word, leave the rest alone."""
    out = []
    prev = " "
    for ch in s:
        out.append(_per_rune(ch, str.title) if _is_title_separator(prev) else ch)
        prev = ch
    return "".join(out)


def _split(s: str, sep: str) -> list[str]:
    return list(s) if sep == "" else s.split(sep)


def _join(elems: list[str], sep: str) -> str:
    return sep.join(elems)


def _pad(source: str, prefix: int, suffix: int) -> str:
    if source == "":
        return source
    return " " * max(prefix, 0) + source + " " * max(suffix, 0)


def _truncate(source: str, length: int) -> str:
    data = source.encode("utf-8", "surrogateescape")
    if len(data) < length:
        return source
    # Go slices bytes; a rune cut in half is dropped rather than printed broken.
    return data[:max(length, 0)].decode("utf-8", "ignore")


def _json(value: Any) -> str:
    try:
        return gofmt.to_json(value)
    except gofmt.GoFmtError as e:
        raise CallError(str(e)) from None


BUILTINS: dict[str, Func] = {
    "and": Func(lambda *a: a[-1], ("value",), "value"),
    "or": Func(lambda *a: a[-1], ("value",), "value"),
    "not": Func(_not, ("value",)),
    "len": Func(_len, ("value",)),
    "index": Func(_index, ("value",), "value"),
    "slice": Func(_slice, ("value",), "value"),
    "print": Func(gofmt.sprint, (), "any"),
    "println": Func(gofmt.sprintln, (), "any"),
    "printf": Func(_printf, ("string",), "any"),
    "eq": Func(_eq, ("value",), "value"),
    "ne": Func(_ne, ("value", "value")),
    "lt": Func(_lt, ("value", "value")),
    "le": Func(_le, ("value", "value")),
    "gt": Func(_gt, ("value", "value")),
    "ge": Func(_ge, ("value", "value")),
    "html": Func(_html, (), "any"),
    "js": Func(_js, (), "any"),
    "urlquery": Func(_urlquery, (), "any"),
    "call": Func(_call, ("value",), "value"),
}

DOCKER_FUNCS: dict[str, Func] = {
    "json": Func(_json, ("any",)),
    "split": Func(_split, ("string", "string")),
    "join": Func(_join, ("[]string", "string")),
    "title": Func(_title, ("string",)),
    "lower": Func(lambda s: _per_rune(s, str.lower), ("string",)),
    "upper": Func(lambda s: _per_rune(s, str.upper), ("string",)),
    "pad": Func(_pad, ("string", "int", "int")),
    "truncate": Func(_truncate, ("string", "int")),
}

# docker/cli templates.HeaderFunctions: headers stay intact (pad is deliberately kept).
HEADER_FUNCS: dict[str, Func] = {
    "json": Func(lambda v: v, ("string",)),
    "split": Func(lambda v, _sep: v, ("string", "string")),
    "join": Func(lambda v, _sep: v, ("string", "string")),
    "title": Func(lambda v: v, ("string",)),
    "lower": Func(lambda v: v, ("string",)),
    "upper": Func(lambda v: v, ("string",)),
    "truncate": Func(lambda v, _n: v, ("string", "int")),
}


def check_arity(fn: Callable[..., Any], count: int, name: str = "call") -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(*([None] * count))
    except TypeError:
        want = sum(1 for p in sig.parameters.values()
                   if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
        raise CallError(f"wrong number of args for {name}: want {want} got {count}") from None
