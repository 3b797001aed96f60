"""COPY/ADD --chmod: octal ("755") or chmod(1)'s symbolic modes ("u+x,go-w", as BuildKit
reads them with dchapes-mode), applied per file."""

from __future__ import annotations

import re

_WHO = {"u": 0o4700, "g": 0o2070, "o": 0o0007, "a": 0o7777}
_SYMBOLIC = re.compile(r"[ugoa]*([-+=]([rwxXst]*|[ugo]))+")


def chmod(text: str) -> int | str:
    """--chmod's value: an int for octal ("755"), the text for a symbolic mode ("u+x,go-w",
    applied per file with apply_chmod); ValueError with BuildKit's words otherwise."""
    octal_error = (f"invalid chmod parameter: '{text}'. it should be octal string and "
                   "between 0 and 07777")
    if re.fullmatch(r"[0-7]+", text):
        value = int(text, 8)
        if value > 0o7777:
            raise ValueError(octal_error)
        return value
    if text[:1].isdigit():
        raise ValueError(octal_error)
    if not all(_SYMBOLIC.fullmatch(clause) for clause in text.split(",")):
        raise ValueError("invalid syntax")
    return text


def apply_chmod(spec: int | str, mode: int, is_dir: bool) -> int:
    """The permission bits (07777) `spec` (from chmod()) gives a file whose bits are
    `mode`: chmod(1)'s symbolic rules, `X` = x only for directories or files with an x."""
    if isinstance(spec, int):
        return spec
    new = mode & 0o7777
    for clause in spec.split(","):
        i = 0
        who = 0
        while i < len(clause) and clause[i] in _WHO:
            who |= _WHO[clause[i]]
            i += 1
        if not who:
            who = 0o7777  # no who: all (umask 0, as BuildKit applies it)
        while i < len(clause):
            op = clause[i]
            i += 1
            j = i
            while j < len(clause) and clause[j] not in "+-=":
                j += 1
            perms, i = clause[i:j], j
            bits = _perm_bits(perms, new, mode, is_dir, op)
            mask = who | (0o1000 if "t" in perms and who & 0o7770 else 0)
            if op == "+":
                new |= bits & mask
            elif op == "-":
                new &= ~(bits & mask)
            else:
                new = (new & ~mask) | (bits & mask)
    return new


def _perm_bits(perms: str, current: int, original: int, is_dir: bool, op: str) -> int:
    if perms in ("u", "g", "o"):  # copy another class's bits to every class
        shift = {"u": 6, "g": 3, "o": 0}[perms]
        three = (current >> shift) & 7
        return three << 6 | three << 3 | three
    bits = 0
    for p in perms:
        if p == "r":
            bits |= 0o444
        elif p == "w":
            bits |= 0o222
        elif p == "x":
            bits |= 0o111
        elif p == "X" and (is_dir or original & 0o111 or op == "-"):
            bits |= 0o111
        elif p == "s":
            bits |= 0o6000
        elif p == "t":
            bits |= 0o1000
    return bits
