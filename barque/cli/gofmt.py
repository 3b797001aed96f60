"""Go's fmt, strconv.Quote and encoding/json output for Python values.

Docker's `--format` templates print values the way Go's fmt package does (`{{.X}}` is
fmt.Fprint, `printf` is fmt.Sprintf, `json` is encoding/json without HTML escaping), so
this module reproduces those rules for JSON-like Python data: dicts are Go maps (printed
with sorted keys), lists are slices, None is a nil value, other objects are structs.
"""

from __future__ import annotations

import dataclasses
import math
import unicodedata
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from barque.structs import fields_of

_LOWER_HEX = "0123456789abcdef"


class GoFmtError(ValueError):
    """A value Go's encoders refuse (e.g. NaN in JSON)."""


# --- type names and struct-like objects ---------------------------------------------------

class GoStruct(dict[str, Any]):
    """A dict that stands for a Go struct of Docker's CLI (`*formatter.ContainerContext`):
    printed as a map (Docker's contexts marshal to maps), but a field it lacks is an error
    naming the type, as Go's text/template reports it. `optional`: fields the struct has
    that its JSON may leave out (omitempty), with the Go zero value a template sees.
    `ordered`: a real struct of Docker's API types (inspect's), which encoding/json marshals
    in field declaration order: `fields` carries that order."""

    def __init__(self, fields: Mapping[str, Any], go_name: str,
                 optional: Mapping[str, Any] | None = None, ordered: bool = False) -> None:
        super().__init__(fields)
        self.go_name = go_name
        self.optional = optional or {}
        self.ordered = ordered

    # Names of the Go methods a subclass defines (called with the template's arguments, as
    # `{{.Label "a"}}` calls ContainerContext.Label), never found among the fields.
    METHODS: frozenset[str] = frozenset()


def go_type(value: Any) -> str:
    """The Go type name a value would have after encoding/json decoding (for messages)."""
    named = getattr(value, "go_name", None)  # a GoStruct, or a row class naming its Go type
    if isinstance(named, str):
        return named
    if value is None:
        return "interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, complex):
        return "complex128"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (bytes, bytearray)):
        return "[]uint8"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    return type(value).__name__


def struct_fields(value: Any) -> list[tuple[str, Any]] | None:
    """The (name, value) fields of a struct-like object, in declaration order, or None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    names = fields_of(value)  # barque.structs' light dataclasses
    if names is not None:
        return [(name, getattr(value, name)) for name in names]
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict):
        return [(k, v) for k, v in attrs.items() if not k.startswith("_")]
    return None


def _has_own_str(value: Any) -> bool:
    """Python's stand-in for Go's Stringer: a class that defines its own __str__."""
    return type(value).__str__ is not object.__str__


def sorted_items(mapping: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    """Map entries in Go's fmtsort order: numbers numerically, strings byte-wise."""
    def key(item: tuple[Any, Any]) -> tuple[int, Any]:
        k = item[0]
        if isinstance(k, bool):
            return (0, int(k))
        if isinstance(k, (int, float)):
            return (1, k)
        return (2, str(k))
    return sorted(mapping.items(), key=key)


# --- floats ------------------------------------------------------------------------------

def _shortest_digits(f: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of abs(f) > 0 and the decimal point position."""
    _, digits, exp = Decimal(repr(abs(f))).as_tuple()
    text = "".join(map(str, digits)).rstrip("0")
    assert isinstance(exp, int)
    dp = len(digits) + exp
    stripped = text.lstrip("0")
    dp -= len(text) - len(stripped)
    return stripped or "0", dp


def _fmt_e(digits: str, dp: int, frac: int, upper: bool = False) -> str:
    mant = digits[0] + ("." + digits[1:frac + 1].ljust(frac, "0") if frac > 0 else "")
    exp = dp - 1 if digits != "0" else 0
    sign = "-" if exp < 0 else "+"
    return f"{mant}{'E' if upper else 'e'}{sign}{abs(exp):02d}"


def _fmt_f(digits: str, dp: int, frac: int) -> str:
    if dp > 0:
        whole = digits[:dp].ljust(dp, "0")
    else:
        whole = "0"
    if frac <= 0:
        return whole
    fraction = "".join(digits[dp + i] if 0 <= dp + i < len(digits) else "0" for i in range(frac))
    return whole + "." + fraction


def _special_float(f: float) -> str | None:
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    return None


def format_float(f: float, verb: str = "g", prec: int = -1) -> str:
    """strconv.FormatFloat(f, verb, prec, 64); prec -1 means the shortest exact form."""
    special = _special_float(f)
    if special is not None:
        return special
    if prec >= 0:
        if verb in "gG":
            return ("%." + str(prec) + verb) % f
        return ("%." + str(prec) + ("f" if verb in "fF" else verb)) % f
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    if f == 0:
        return sign + ("0e+00" if verb in "eE" else "0")
    digits, dp = _shortest_digits(f)
    if verb in "eE":
        return sign + _fmt_e(digits, dp, len(digits) - 1, verb == "E")
    if verb in "fF":
        return sign + _fmt_f(digits, dp, max(len(digits) - dp, 0))
    exp = dp - 1
    if exp < -4 or exp >= 6:  # Go uses precision 6 for the %e decision of shortest %g
        return sign + _fmt_e(digits, dp, len(digits) - 1, verb == "G")
    return sign + _fmt_f(digits, dp, max(len(digits) - dp, 0))


def _format_complex(c: complex, verb: str = "g", prec: int = -1) -> str:
    real = format_float(c.real, verb, prec)
    imag = format_float(c.imag, verb, prec)
    if not imag.startswith(("-", "+")):
        imag = "+" + imag
    return f"({real}{imag}i)"


# --- strconv.Quote -------------------------------------------------------------------------

def _escape_rune(ch: str, quote: str, ascii_only: bool) -> str:
    code = ord(ch)
    if ch == quote or ch == "\\":
        return "\\" + ch
    if 0xDC80 <= code <= 0xDCFF:  # a byte smuggled in by surrogateescape: invalid UTF-8
        return "\\x" + format(code - 0xDC00, "02x")
    printable = ch.isprintable()
    if printable and (not ascii_only or code < 0x80):
        return ch
    named = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
             "\v": "\\v"}
    if ch in named:
        return named[ch]
    if code < 0x20 or code == 0x7F:
        return "\\x" + format(code, "02x")
    if 0xD800 <= code <= 0xDFFF:
        code = 0xFFFD
    if code < 0x10000:
        return "\\u" + format(code, "04x")
    return "\\U" + format(code, "08x")


def quote(s: str, ascii_only: bool = False) -> str:
    """strconv.Quote: a double-quoted Go string literal."""
    return '"' + "".join(_escape_rune(ch, '"', ascii_only) for ch in s) + '"'


def quote_rune(code: int, ascii_only: bool = False) -> str:
    """strconv.QuoteRune: a single-quoted Go character literal."""
    if code < 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        code = 0xFFFD
    return "'" + _escape_rune(chr(code), "'", ascii_only) + "'"


def _can_backquote(s: str) -> bool:
    return all(ch == "\t" or (ch >= " " and ch not in "`\x7f\ufeff") for ch in s)


# --- %v printing ---------------------------------------------------------------------------

def sprint_value(value: Any) -> str:
    """fmt.Sprint of one value (what `{{.X}}` prints)."""
    return _Printer(_Spec(), "v").value(value)


def sprint(*args: Any) -> str:
    """fmt.Sprint: spaces between operands when neither side is a string."""
    out: list[str] = []
    prev_string = False
    for i, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(sprint_value(arg))
        prev_string = is_string
    return "".join(out)


def sprintln(*args: Any) -> str:
    """fmt.Sprintln: operands always separated by spaces, newline appended."""
    return " ".join(sprint_value(a) for a in args) + "\n"


@dataclasses.dataclass
class _Spec:
    minus: bool = False
    plus: bool = False
    sharp: bool = False
    space: bool = False
    zero: bool = False
    plus_v: bool = False  # %+v: field names in structs (the + is not a sign flag then)
    width: int | None = None
    prec: int | None = None


class _Printer:
    """Formats one operand for one verb with the flags, width and precision of a %-spec."""

    def __init__(self, spec: _Spec, verb: str) -> None:
        self.spec = spec
        self.verb = verb

    def pad(self, s: str, zero_ok: bool = True) -> str:
        width = self.spec.width
        if width is None or len(s) >= width:
            return s
        fill = width - len(s)
        if self.spec.minus:
            return s + " " * fill
        return ("0" if self.spec.zero and zero_ok else " ") * fill + s

    def bad_verb(self, value: Any) -> str:
        if value is None:
            return f"%!{self.verb}(<nil>)"
        return f"%!{self.verb}({go_type(value)}={_Printer(self.spec, 'v').value(value)})"

    def value(self, value: Any) -> str:
        verb = self.verb
        if verb == "T":
            return self.pad("<nil>" if value is None else go_type(value), False)
        if value is None:
            return self.pad("<nil>", False) if verb == "v" else self.bad_verb(value)
        if isinstance(value, bool):
            return self.pad("true" if value else "false") if verb in "tv" else \
                self.bad_verb(value)
        if isinstance(value, int):
            return self.integer(value)
        if isinstance(value, float):
            return self.float(value)
        if isinstance(value, complex):
            return self.pad(_format_complex(value, "g" if verb == "v" else verb,
                                            -1 if self.spec.prec is None else self.spec.prec))
        if isinstance(value, str):
            return self.string(value)
        if isinstance(value, (bytes, bytearray)):
            return self.byte_slice(bytes(value))
        if isinstance(value, Mapping):
            return self.mapping(value)
        if isinstance(value, (list, tuple)):
            return "[" + " ".join(self.value(v) for v in value) + "]"
        return self.struct(value)

    def integer(self, n: int) -> str:
        verb, spec = self.verb, self.spec
        if verb == "c":
            return self.pad(chr(n) if 0 <= n <= 0x10FFFF else "\ufffd", False)
        if verb == "q":
            return self.pad(quote_rune(n, spec.plus), False)
        if verb == "U":
            text = f"U+{n:04X}"
            if spec.sharp and 0 <= n <= 0x10FFFF and chr(n).isprintable():
                text += f" '{chr(n)}'"
            return self.pad(text, False)
        bases = {"v": (10, ""), "d": (10, ""), "b": (2, "0b"), "o": (8, "0"), "O": (8, "0o"),
                 "x": (16, "0x"), "X": (16, "0X")}
        if verb not in bases:
            return self.bad_verb(n)
        base, prefix = bases[verb]
        digits = {10: "d", 2: "b", 8: "o", 16: "x"}[base]
        body = format(abs(n), digits)
        if verb == "X":
            body = body.upper()
        if spec.prec is not None:
            if spec.prec == 0 and n == 0:
                body = ""
            body = body.rjust(spec.prec, "0")
        elif spec.zero and spec.width is not None and not spec.minus:
            room = spec.width - (1 if n < 0 or spec.plus or spec.space else 0)
            body = body.rjust(room, "0")
        if verb == "O" or (spec.sharp and verb in "boxX"):
            if not (verb == "o" and body.startswith("0")):
                body = prefix + body
        sign = "-" if n < 0 else "+" if spec.plus else " " if spec.space else ""
        return self.pad(sign + body, False)

    def float(self, f: float) -> str:
        verb, spec = self.verb, self.spec
        if verb == "v":
            verb, prec = "g", -1
        elif verb in "gG":
            prec = -1
        elif verb in "eEfF":
            prec = 6
        else:
            return self.bad_verb(f)
        if spec.prec is not None:
            prec = spec.prec
        num = format_float(f, verb, prec)
        if not num.startswith(("-", "+")):
            num = ("+" if spec.plus else " " if spec.space else "") + num
        if num.lstrip("+- ") in ("Inf", "NaN"):
            return self.pad(num, False)
        if spec.zero and not spec.minus and spec.width is not None and num[:1] in "+- " \
                and num[:1] and spec.width > len(num):
            return num[0] + num[1:].rjust(spec.width - 1, "0")
        return self.pad(num)

    def string(self, s: str) -> str:
        verb, spec = self.verb, self.spec
        if spec.prec is not None:
            s = s[:spec.prec]
        if verb in "vs":
            return self.pad(s, False)
        if verb == "q":
            if spec.sharp and _can_backquote(s):
                return self.pad("`" + s + "`", False)
            return self.pad(quote(s, spec.plus), False)
        if verb in "xX":
            return self.pad(self.hex_bytes(s.encode("utf-8", "surrogateescape")), False)
        return self.bad_verb(s)

    def hex_bytes(self, data: bytes) -> str:
        digits = data.hex() if self.verb == "x" else data.hex().upper()
        prefix = ("0x" if self.verb == "x" else "0X") if self.spec.sharp else ""
        if self.spec.space:
            return " ".join(prefix + digits[i:i + 2] for i in range(0, len(digits), 2))
        return prefix + digits

    def byte_slice(self, data: bytes) -> str:
        if self.verb == "s":
            return self.string(data.decode("utf-8", "replace"))
        if self.verb in "xXq":
            return self.string(data.decode("utf-8", "surrogateescape"))
        return "[" + " ".join(self.value(b) for b in data) + "]"

    def mapping(self, m: Mapping[Any, Any]) -> str:
        items = sorted_items(m)
        return "map[" + " ".join(f"{self.value(k)}:{self.value(v)}" for k, v in items) + "]"

    def struct(self, value: Any) -> str:
        if _has_own_str(value) and self.verb in "vsqxX":
            return self.string(str(value))
        fields = struct_fields(value)
        if fields is None:
            return self.string(str(value)) if self.verb in "vs" else self.bad_verb(value)
        if self.verb == "v" and self.spec.plus_v:
            return "{" + " ".join(f"{k}:{self.value(v)}" for k, v in fields) + "}"
        return "{" + " ".join(self.value(v) for _, v in fields) + "}"


# --- Sprintf -----------------------------------------------------------------------------

def _parse_number(fmt: str, i: int) -> tuple[int | None, int]:
    start = i
    while i < len(fmt) and fmt[i].isdigit():
        i += 1
    return (int(fmt[start:i]) if i > start else None), i


def _star_arg(args: Sequence[Any], argnum: int) -> tuple[int | None, int]:
    """A `*` width or precision: the next operand, if it is an int."""
    if argnum >= len(args):
        return None, argnum
    value = args[argnum]
    if isinstance(value, int) and not isinstance(value, bool):
        return value, argnum + 1
    return None, argnum + 1


def sprintf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf with Go's verbs, flags, widths and error annotations (%!d(string=x))."""
    out: list[str] = []
    argnum = 0
    i, n = 0, len(fmt)
    while i < n:
        pct = fmt.find("%", i)
        if pct < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:pct])
        i = pct + 1
        spec = _Spec()
        while i < n and fmt[i] in "#0+- ":
            flag = fmt[i]
            if flag == "#":
                spec.sharp = True
            elif flag == "0":
                spec.zero = not spec.minus  # only allow zero padding to the left
            elif flag == "+":
                spec.plus = True
            elif flag == "-":
                spec.minus, spec.zero = True, False
            else:
                spec.space = True
            i += 1
        if i < n and fmt[i] == "*":
            spec.width, argnum = _star_arg(args, argnum)
            i += 1
            if spec.width is None:
                out.append("%!(BADWIDTH)")
            elif spec.width < 0:
                spec.width, spec.minus, spec.zero = -spec.width, True, False
        else:
            spec.width, i = _parse_number(fmt, i)
        if i < n and fmt[i] == ".":
            i += 1
            if i < n and fmt[i] == "*":
                spec.prec, argnum = _star_arg(args, argnum)
                i += 1
                if spec.prec is None or spec.prec < 0:
                    spec.prec = None
                    out.append("%!(BADPREC)")
            else:
                prec, i = _parse_number(fmt, i)
                spec.prec = prec or 0
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
        elif argnum >= len(args):
            out.append(f"%!{verb}(MISSING)")
        elif verb == "v" and (spec.plus or spec.sharp):
            spec.plus_v, spec.plus, spec.sharp = spec.plus, False, False
            out.append(_Printer(spec, verb).value(args[argnum]))
            argnum += 1
        else:
            out.append(_Printer(spec, verb).value(args[argnum]))
            argnum += 1
    if argnum < len(args):
        extra = ", ".join("<nil>" if a is None else f"{go_type(a)}={sprint_value(a)}"
                          for a in args[argnum:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


# --- encoding/json -------------------------------------------------------------------------

def _json_string(s: str) -> str:
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch in "\b\f\n\r\t":
            out.append({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif code < 0x20:
            out.append("\\u00" + _LOWER_HEX[code >> 4] + _LOWER_HEX[code & 0xF])
        elif code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")  # invalid UTF-8 becomes U+FFFD, as Go does
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _json_float(f: float) -> str:
    if math.isnan(f) or math.isinf(f):
        raise GoFmtError(f"json: unsupported value: {format_float(f)}")
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        text = format_float(f, "e", -1)
        head, _, exp = text.partition("e")
        if exp.startswith("-0"):
            exp = "-" + exp[2:]  # Go cleans up e-09 to e-9
        return head + "e" + exp
    return format_float(f, "f", -1)


def to_json(value: Any) -> str:
    """encoding/json.Marshal without HTML escaping: maps sorted, structs (and ordered
    GoStructs) in field order."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, (bytes, bytearray)):
        import base64
        return '"' + base64.b64encode(bytes(value)).decode() + '"'
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
        if not getattr(value, "ordered", False):  # a Go map: its keys sorted
            items.sort(key=lambda kv: kv[0])
        return "{" + ",".join(f"{_json_string(k)}:{to_json(v)}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    fields = struct_fields(value)
    if fields is None:
        return _json_string(str(value))
    return "{" + ",".join(f"{_json_string(k)}:{to_json(v)}" for k, v in fields) + "}"


# --- display width -------------------------------------------------------------------------

def display_width(s: str) -> int:
    """Terminal cells taken by s, as go-runewidth counts them (wide East Asian = 2)."""
    width = 0
    for ch in s:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width
