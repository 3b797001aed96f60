"""JSON through the interpreter's C accelerator (_json), without importing the json package.

`import json` pulls in re and enum: about 6 ms of barque-runtime's start-up, which the
benchmark against runc counts. The C scanner and encoder are what json itself uses, so the
results are identical; errors still raise json's JSONDecodeError (a ValueError).
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False  # not typing's: see barque/linux/libc.py
if TYPE_CHECKING:
    from typing import Any


def _constant(name: str) -> float:
    raise ValueError(f"JSON constant {name} is not allowed")


class _Context:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_constant)
    memo: dict = {}


_scan = _json.make_scanner(_Context())  # type: ignore[arg-type]  # duck-typed context


def _unserialisable(obj: object) -> object:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_encode = _json.make_encoder(
    None, _unserialisable, _json.encode_basestring_ascii, None, ": ", ", ", False, False, False
)
_WHITESPACE = " \t\n\r"

# Go's encoding/json (runc's output): compact, UTF-8 kept, HTML characters and the JS line
# separators escaped. Those characters only ever occur inside strings, so replacing them in
# the encoded text is exact.
_go_encode = _json.make_encoder(
    None, _unserialisable, _json.encode_basestring, None, ":", ",", False, False, False
)
_GO_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
               ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def loads(data: str | bytes) -> Any:
    text = data.decode() if isinstance(data, bytes) else data
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        obj, end = _scan(text, start)
        if not text[end:].strip(_WHITESPACE):
            return obj
    except (StopIteration, ValueError, SystemError, RecursionError):
        # The C scanner reports errors through json.decoder, which is not loaded here.
        pass
    import json

    try:
        return json.loads(text)  # raises json's own JSONDecodeError, with line and column
    except RecursionError:  # "[[[[…": an error in the input, not in the runtime
        raise ValueError("JSON nested too deeply") from None


def dumps(obj: object, indent: int | str | None = None) -> str:
    if indent is None:
        return "".join(_encode(obj, 0))
    return _pretty(obj, " " * indent if isinstance(indent, int) else indent, 0)


def go_dumps(obj: object, indent: str = "") -> str:
    """JSON as runc's Go prints it: json.Marshal (compact) or MarshalIndent("", indent)."""
    text = "".join(_go_encode(obj, 0)) if not indent else _pretty(obj, indent, 0, _go_scalar)
    for char, escape in _GO_ESCAPES:
        if char in text:
            text = text.replace(char, escape)
    return text


def _go_scalar(obj: object) -> str:
    return "".join(_go_encode(obj, 0))


def _pretty(obj: object, indent: str, level: int, scalar: Any = None) -> str:
    """The layout of json.dumps(obj, indent=...) (and of Go's MarshalIndent)."""
    scalar = scalar or dumps
    pad, inner = indent * level, indent * (level + 1)
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{scalar(str(k))}: {_pretty(v, indent, level + 1, scalar)}"
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj:
        items = [inner + _pretty(v, indent, level + 1, scalar) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return str(scalar(obj))
