"""One compatibility case: a command line run against both engines after the same set-up,
then optional checks (more command lines, or host commands) whose output is compared too."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

# Words in a case's command lines that say it may leave more than containers behind.
_KINDS = {"volume": ("volume", "-v", "--mount"), "network": ("network",),
          "image": ("commit", "tag", "pull", "load", "import", "image", "rmi", "build")}


@dataclass(frozen=True)
class Case:
    id: str
    cmd: str
    setup: tuple[str, ...] = ()
    # a line starting with "!" is a host shell command, {cli} in it the engine's CLI
    check: tuple[str, ...] = ()
    stdin: str | None = None
    names: bool = False  # normalise generated names (adjective_surname)
    extra: tuple[tuple[str, str], ...] = ()  # more (regex, placeholder) normalisations
    # Why stdout's lines are compared as a sorted list: only where Docker's own order varies
    # from run to run (say which code of Docker's makes it so); empty = order compared.
    unordered: str = ""

    def argv(self, line: str, subst: dict[str, str]) -> list[str]:
        return [_fill(word, subst) for word in shlex.split(line)]

    def kinds(self) -> set[str]:
        words = set()
        for line in (self.cmd, *self.setup, *self.check):
            words.update(shlex.split(line.lstrip("!")))
        return {kind for kind, marks in _KINDS.items() if words & set(marks)}


def _fill(word: str, subst: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: subst.get(m.group(1), m.group(0)), word)


def fill(line: str, subst: dict[str, str]) -> str:
    return _fill(line, subst)
