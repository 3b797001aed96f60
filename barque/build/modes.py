"""COPY/ADD --chmod: octal (`755`) or, as BuildKit since Dockerfile 1.14, chmod(1)'s symbolic
clauses (`+x`, `u=rwX,go=rX`, `g=u`), applied to each copied entry's own mode.

Symbolic modes follow BuildKit's reader (dchapes-mode, BSD's setmode): each clause compiles
to a few bit commands applied in order; `X` looks at the entry's mode before the change;
`s` and `t` need a class other than o (or none); `=` with no class keeps the sticky bit;
no umask."""

from __future__ import annotations

import re

_OCTAL = re.compile(r"^[0-7]+$")
_STANDARD = 0o6777                   # set-id bits and rwx for all: `a`, and `=`'s default
_STICKY = 0o1000
_WHO = {"a": _STANDARD, "u": 0o4700, "g": 0o2070, "o": 0o0007}
_PERMS = {"r": 0o444, "w": 0o222, "x": 0o111}
_COPY = "ugo"                        # `g=u`: another class's rwx


class ChmodError(ValueError):
    pass


class Chmod:
    """A parsed --chmod: `apply(mode, is_dir)` gives an entry's new permission bits."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.octal: int | None = None
        # (command, who, bits, copy-op): command in + - X (bits) or u g o (copy a class)
        self.cmds: list[tuple[str, int, int, str]] = []
        if _OCTAL.match(text) and int(text, 8) <= 0o7777:
            self.octal = int(text, 8)
        else:
            try:
                self._compile(text)
            except (IndexError, KeyError):
                raise ChmodError(f"invalid chmod parameter: {text!r}") from None

    def _add(self, op: str, who: int, arg: int) -> None:
        if op == "=":  # clear the class's bits, then add
            self.cmds.append(("-", who, who or _STANDARD, ""))
            op = "+"
        self.cmds.append((op, who, (who or 0o7777) & arg, ""))

    def _compile(self, s: str) -> None:
        if not s or s[0].isdigit():
            raise IndexError
        while True:
            who = 0
            while s and s[0] in _WHO:
                who |= _WHO[s[0]]
                s = s[1:]
            while True:  # one or more operations for these classes
                op, s = s[0], s[1:]
                if op not in "+-=":
                    raise IndexError
                who &= ~_STICKY
                s, who = self._perms(op, s, who)
                if not s:
                    return
                if s[0] == ",":
                    s = s[1:]
                    break

    def _perms(self, op: str, s: str, who: int) -> tuple[str, int]:
        perm = perm_x = 0
        equal_done = False
        while True:
            ch = s[0] if s else ""
            if ch and ch in _PERMS:
                perm |= _PERMS[ch]
            elif ch == "s" and (not who or who & ~0o0007):
                perm |= 0o6000
            elif ch == "t" and (not who or who & ~0o0007):
                who |= _STICKY
                perm |= _STICKY
            elif ch in ("s", "t"):
                pass
            elif ch == "X":
                if op == "-":
                    perm |= 0o111
                else:
                    perm_x = 0o111
            elif ch and ch in _COPY:
                if perm:
                    self._add(op, who, perm)
                    perm = 0
                equal_done = equal_done or op == "="
                if perm_x:
                    self.cmds.append(("X", who, (who or 0o7777) & perm_x, ""))
                    perm_x = 0
                self.cmds.append((ch, who, -1 if who else 0o7777, op))
            else:
                if perm or (op == "=" and not equal_done):
                    self._add(op, who, perm)
                if perm_x:
                    self.cmds.append(("X", who, (who or 0o7777) & perm_x, ""))
                return s, who
            s = s[1:]

    def apply(self, mode: int, is_dir: bool) -> int:
        if self.octal is not None:
            return self.octal
        original = new = mode & 0o7777
        for cmd, who, bits, copy_op in self.cmds:
            if cmd == "+":
                new |= bits
            elif cmd == "-":
                new &= ~bits
            elif cmd == "X":
                if original & 0o111 or is_dir:
                    new |= bits
            else:
                new = _copy(new, cmd, who, bits, copy_op)
        return new & 0o7777


def _copy(mode: int, source: str, who: int, bits: int, op: str) -> int:
    """`<who><op><source>`: the source class's rwx (as it is now) to the `who` classes."""
    value = (mode >> {"u": 6, "g": 3, "o": 0}[source]) & 7
    shifts = [shift for shift, cls in ((6, 0o400), (3, 0o040), (0, 0o004))
              if not who or who & cls]
    clear = 7 if op == "=" else value
    for shift in shifts:
        if op in "-=":
            mode &= ~((clear << shift) & bits)
        if op in "+=":
            mode |= (value << shift) & bits
    return mode


def parse(value: int | str | None) -> Chmod | None:
    if value is None:
        return None
    if isinstance(value, int):
        return Chmod(format(value, "o"))
    return Chmod(value)
