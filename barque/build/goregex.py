"""Go's regular expressions (RE2 syntax, as regexp.Compile reads them) in Python's `re`, for
the expressions moby/patternmatcher builds from .dockerignore patterns.

patternmatcher copies a pattern's `[...]` classes and `\\x` escapes into its expression as
written, so what they mean is what Go's regexp makes of them, not what filepath.Match
would: `\\d` is a digit, `\\z` the end of the text, `[[:alpha:]]` a POSIX class, `\\Q...\\E`
quotes the rest (even the `$` appended after it). Those differ from Python's (or Python has
none), so the expression is translated rather than handed to `re` as it is: escapes and
classes become explicit character ranges, with Go's ASCII-only Perl and POSIX classes. Only
Unicode classes (`\\pL`) are refused, where Go accepts them.
"""

from __future__ import annotations

import re

_MAX_RUNE = 0x10FFFF
Ranges = list[tuple[int, int]]

_PERL: dict[str, Ranges] = {
    "d": [(0x30, 0x39)],
    "s": [(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)],
    "w": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
}
_POSIX: dict[str, Ranges] = {
    "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "ascii": [(0x00, 0x7F)],
    "blank": [(0x09, 0x09), (0x20, 0x20)],
    "cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "digit": [(0x30, 0x39)],
    "graph": [(0x21, 0x7E)],
    "lower": [(0x61, 0x7A)],
    "print": [(0x20, 0x7E)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "space": [(0x09, 0x0D), (0x20, 0x20)],
    "upper": [(0x41, 0x5A)],
    "word": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
}
_C_ESCAPES = {"a": 0x07, "f": 0x0C, "n": 0x0A, "r": 0x0D, "t": 0x09, "v": 0x0B}
_HEX = "0123456789abcdefABCDEF"


class GoRegexError(ValueError):
    """Go's regexp would refuse the expression (or it uses what is not translated)."""


def _negate(ranges: Ranges) -> Ranges:
    out, low = [], 0
    for lo, hi in sorted(ranges):
        if lo > low:
            out.append((low, lo - 1))
        low = max(low, hi + 1)
    if low <= _MAX_RUNE:
        out.append((low, _MAX_RUNE))
    return out


def _char(code: int) -> str:
    return re.escape(chr(code))


def _class_text(ranges: Ranges, negated: bool) -> str:
    if not ranges:
        return "[^\\x00-\\U0010ffff]" if not negated else "[\\x00-\\U0010ffff]"
    body = "".join(_char(lo) if lo == hi else f"{_char(lo)}-{_char(hi)}" for lo, hi in ranges)
    return f"[{'^' if negated else ''}{body}]"


def _check_char(c: str) -> None:
    if "\udc80" <= c <= "\udcff":  # an undecodable byte (surrogateescape): invalid UTF-8
        raise GoRegexError("invalid UTF-8")


def _escape(t: str, i: int) -> tuple[int, int]:
    """Go's parseEscape at t[i] == "\\": (the character's code, the index after it)."""
    if i + 1 >= len(t):
        raise GoRegexError("trailing backslash at end of expression")
    c = t[i + 1]
    j = i + 2
    if c in "1234567" and not (j < len(t) and t[j] in "01234567"):
        raise GoRegexError("invalid escape sequence")  # a back-reference
    if c in "01234567":
        code = int(c)
        for _ in range(2):
            if j < len(t) and t[j] in "01234567":
                code, j = code * 8 + int(t[j]), j + 1
        return code, j
    if c == "x":
        return _hex_escape(t, j)
    if c in _C_ESCAPES:
        return _C_ESCAPES[c], j
    if c < "\x80" and not c.isalnum():
        return ord(c), j
    raise GoRegexError("invalid escape sequence")


def _hex_escape(t: str, j: int) -> tuple[int, int]:
    if j < len(t) and t[j] == "{":
        end = t.find("}", j)
        digits = t[j + 1:end] if end > 0 else ""
        if not digits or not all(d in _HEX for d in digits) or int(digits, 16) > _MAX_RUNE:
            raise GoRegexError("invalid escape sequence")
        return int(digits, 16), end + 1
    pair = t[j:j + 2]
    if len(pair) < 2 or not all(d in _HEX for d in pair):
        raise GoRegexError("invalid escape sequence")
    return int(pair, 16), j + 2


def _perl(t: str, i: int) -> Ranges | None:
    """A Perl class escape (\\d \\D \\s \\S \\w \\W) at t[i], as ranges; else None."""
    if t[i] != "\\" or i + 1 >= len(t) or t[i + 1].lower() not in _PERL:
        return None
    ranges = _PERL[t[i + 1].lower()]
    return _negate(ranges) if t[i + 1].isupper() else ranges


def _posix(t: str, i: int) -> tuple[Ranges, int] | None:
    """A POSIX class ([:alpha:], [:^alpha:]) at t[i] in a class; None if there is none."""
    if not t.startswith("[:", i):
        return None
    end = t.find(":]", i + 2)
    if end < 0:
        return None
    name = t[i + 2:end]
    negated = name.startswith("^")
    ranges = _POSIX.get(name[1:] if negated else name)
    if ranges is None:
        raise GoRegexError("invalid character class range")
    return (_negate(ranges) if negated else ranges), end + 2


def _class(t: str, i: int) -> tuple[str, int]:
    """Go's parseClass at t[i] == "[": (Python's class, the index after it)."""
    j = i + 1
    negated = j < len(t) and t[j] == "^"
    if negated:
        j += 1
    ranges: Ranges = []
    first = True
    while j >= len(t) or t[j] != "]" or first:
        if j >= len(t):
            raise GoRegexError("missing closing ]")
        first = False
        named = _posix(t, j)
        if named is not None:
            ranges += named[0]
            j = named[1]
            continue
        if t.startswith(("\\p", "\\P"), j):
            raise GoRegexError("Unicode classes are not supported")
        perl = _perl(t, j)
        if perl is not None:
            ranges += perl
            j += 2
            continue
        lo, j = _class_char(t, j)
        hi = lo
        if j + 1 < len(t) and t[j] == "-" and t[j + 1] != "]":
            hi, j = _class_char(t, j + 1)
            if hi < lo:
                raise GoRegexError("invalid character class range")
        ranges.append((lo, hi))
    return _class_text(sorted(ranges), negated), j + 1


def _class_char(t: str, j: int) -> tuple[int, int]:
    if j >= len(t):
        raise GoRegexError("missing closing ]")
    if t[j] == "\\":
        return _escape(t, j)
    _check_char(t[j])
    return ord(t[j]), j + 1


def _repeat(t: str, i: int) -> tuple[str, int] | None:
    """Go's parseRepeat at t[i] == "{": ({n}, {n,} or {n,m}, the index after it), or None
    when it is not one (then "{" is a literal)."""
    end = t.find("}", i)
    if end < 0:
        return None
    low, comma, high = t[i + 1:end].partition(",")
    if not low.isdigit() or not low.isascii() or (high and not (high.isdigit()
                                                                and high.isascii())):
        return None
    if int(low) > 1000 or (high and (int(high) > 1000 or int(low) > int(high))):
        raise GoRegexError("invalid repeat count")
    return t[i:end + 1], end + 1


def translate(t: str) -> str:
    """Python's expression for Go's `t` (the subset patternmatcher writes: literals, escapes,
    classes, `^`, `$`, `.`, `*`, `?`, `|`, `{n,m}`, groups)."""
    out: list[str] = []
    last = "start"  # what the last token was: start, atom, assert, alt, open, repeat
    i = 0
    while i < len(t):
        c = t[i]
        kind = "atom"
        if c == "\\":
            text, i, kind = _outside_escape(t, i)
            if not text:
                continue  # an empty \Q\E: nothing
        elif c == "[":
            text, i = _class(t, i)
        elif c == "{" and (rep := _repeat(t, i)) is not None:
            if last in ("start", "alt", "open", "repeat"):
                raise GoRegexError("missing argument to repetition operator")
            if last == "assert":  # Go repeats an assertion, Python only a group of one
                out[-1] = f"(?:{out[-1]})"
            text, i = rep
            kind = "repeat"
        else:
            text, kind = _SPECIAL.get(c, ("", "atom"))
            if not text:
                _check_char(c)
                text = re.escape(c)
            i += 1
        out.append(text)
        last = kind
    return "".join(out)


# Python's \B (before 3.14) never matches the empty string, Go's does: spelled out.
_NOT_BOUNDARY = r"(?:(?<=\w)(?=\w)|(?<!\w)(?!\w))"

_SPECIAL = {"$": (r"\Z", "assert"), "^": ("^", "assert"), ".": (".", "atom"),
            "*": ("*", "repeat"), "?": ("?", "repeat"), "(": ("(", "open"),
            ")": (")", "atom"), "|": ("|", "alt")}


def _outside_escape(t: str, i: int) -> tuple[str, int, str]:
    """(Python's text, the index after it, its kind) for the escape at t[i]."""
    nxt = t[i + 1] if i + 1 < len(t) else ""
    assertion = {"A": r"\A", "b": r"\b", "B": _NOT_BOUNDARY, "z": r"\Z"}.get(nxt)
    if assertion is not None:
        return assertion, i + 2, "assert"
    if nxt == "C":
        raise GoRegexError("invalid escape sequence")
    if nxt == "Q":  # literal up to \E, or to the end
        end = t.find("\\E", i + 2)
        literal = t[i + 2:] if end < 0 else t[i + 2:end]
        for ch in literal:
            _check_char(ch)
        return re.escape(literal), (len(t) if end < 0 else end + 2), "atom"
    if nxt in ("p", "P"):
        raise GoRegexError("Unicode classes are not supported")
    perl = _perl(t, i)
    if perl is not None:
        return _class_text(perl, False), i + 2, "atom"
    code, j = _escape(t, i)
    return _char(code), j, "atom"


def compile_go(t: str) -> re.Pattern[str]:
    """re.compile of Go's expression `t`; use .search, as Go's MatchString does. ASCII:
    Go's \\b is an ASCII word boundary."""
    try:
        return re.compile(translate(t), re.ASCII)
    except re.error as e:
        raise GoRegexError(str(e)) from None
