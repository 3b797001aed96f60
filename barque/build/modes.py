"""COPY/ADD --chmod: octal (`755`) or, as BuildKit since Dockerfile 1.14, chmod(1)'s symbolic
clauses (`+x`, `u=rwX,go=rX`, `g=u`), applied to each copied entry's own mode."""

from __future__ import annotations

import re

_OCTAL = re.compile(r"^[0-7]{1,4}$")
_CLAUSE = re.compile(r"^([ugoa]*)((?:[-+=](?:[rwxXst]*|[ugo]))+)$")
_ACTION = re.compile(r"([-+=])([rwxXst]*|[ugo])")
_WHO = {"u": 0o4700, "g": 0o2070, "o": 0o1007}  # the bits each class owns (set-id, sticky)


class ChmodError(ValueError):
    pass


class Chmod:
    """A parsed --chmod: `apply(mode, is_dir)` gives an entry's new permission bits."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.octal: int | None = int(text, 8) if _OCTAL.match(text) else None
        self.clauses: list[tuple[str, list[tuple[str, str]]]] = []
        if self.octal is None:
            for clause in text.split(","):
                m = _CLAUSE.match(clause)
                if m is None:
                    raise ChmodError(f"invalid chmod parameter: {text!r}")
                self.clauses.append((m.group(1), _ACTION.findall(m.group(2))))

    def apply(self, mode: int, is_dir: bool) -> int:
        if self.octal is not None:
            return self.octal
        mode &= 0o7777
        for who, actions in self.clauses:
            # No "who": as chmod(1), all classes (the umask is not consulted: BuildKit's).
            mask = 0
            for w in who.replace("a", "ugo") or "ugo":
                mask |= _WHO[w]
            for op, perms in actions:
                bits = _bits(perms, mode, is_dir) & mask
                if op == "+":
                    mode |= bits
                elif op == "-":
                    mode &= ~bits
                else:
                    mode = (mode & ~(mask & 0o0777 | mask & 0o7000)) | bits
        return mode


def _bits(perms: str, mode: int, is_dir: bool) -> int:
    if perms in ("u", "g", "o"):  # copy another class's rwx
        shift = {"u": 6, "g": 3, "o": 0}[perms]
        rwx = (mode >> shift) & 7
        return rwx << 6 | rwx << 3 | rwx
    out = 0
    for p in perms:
        if p == "r":
            out |= 0o444
        elif p == "w":
            out |= 0o222
        elif p == "x" or (p == "X" and (is_dir or mode & 0o111)):
            out |= 0o111
        elif p == "s":
            out |= 0o6000
        elif p == "t":
            out |= 0o1000
    return out


def parse(value: int | str | None) -> Chmod | None:
    if value is None:
        return None
    if isinstance(value, int):
        return Chmod(format(value, "o"))
    return Chmod(value)
