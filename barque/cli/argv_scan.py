"""Which subcommands' arguments to define: only those named on the command line.

Defining every command's parser and arguments costs ~30 ms (run and create alone have ~70
flags each, twice over with the `container` group); a command line names one or two.
"""

from __future__ import annotations

WANTED: set[str] | None = None  # None: define them all (help, tests)


def scan(argv: list[str]) -> None:
    """Every word of argv that is not an option may be a command name."""
    global WANTED
    words = {word for word in argv if not word.startswith("-")}
    WANTED = words or None  # `barque` alone, `barque --help`: every command, for the help


def wanted(name: str) -> bool:
    return WANTED is None or name in WANTED
