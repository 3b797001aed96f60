"""A small command-line parser with runc's (urfave/cli's) conventions.

argparse costs ~10 ms to import, a third of runc's whole start-to-exit time, so barque-runtime
parses its few flags itself: `--flag value`, `--flag=value`, `-f value`, repeated flags,
and options ending at the first positional argument (as urfave/cli does).
"""

from __future__ import annotations

from barque.runtime.errors import RuntimeFailure

TYPE_CHECKING = False  # not typing's: importing typing costs ~10 ms of start-up
if TYPE_CHECKING:
    from typing import Any


class Flag:
    __slots__ = ("names", "takes_value", "repeat", "default", "help")

    def __init__(self, names: str, takes_value: bool = False, repeat: bool = False,
                 default: object = None, help: str = "") -> None:
        self.names = names.split(",")
        self.takes_value = takes_value
        self.repeat = repeat
        self.default = [] if repeat else (default if takes_value else False)
        self.help = help

    @property
    def key(self) -> str:
        return self.names[0].lstrip("-").replace("-", "_")


class Parsed:
    def __init__(self, values: dict[str, Any], args: list[str]) -> None:
        self.values = values
        self.args = args

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def _flag_name(tok: str) -> str:
    name = tok.partition("=")[0]
    if name.startswith("-") and not name.startswith("--") and len(name) > 2:
        name = "--" + name[1:]  # urfave/cli accepts -flag like --flag
    return name


def reorder(argv: list[str], flags: list[Flag]) -> list[str]:
    """urfave/cli v1's reorderArgs, which runc 1.1 applies to every command but exec and ps:
    a known flag after a positional argument moves to the front, with the next token as its
    value unless it is a flag itself (even for a boolean flag, where it then ends the flags,
    as in runc). Unknown flags stay where they are, as positional arguments."""
    names = {n for f in flags for n in f.names}
    moved: list[str] = []
    rest: list[str] = []
    value_may_follow = False
    for i, tok in enumerate(argv):
        if tok == "--":
            rest.extend(argv[i:])
            break
        if value_may_follow and (tok == "-" or not tok.startswith("-")):  # `-r -` is stdin
            value_may_follow = False
            moved.append(tok)
        elif tok != "-" and tok.startswith("-") and _flag_name(tok) in names:
            moved.append(tok)
            value_may_follow = "=" not in tok
        else:
            rest.append(tok)
    return moved + rest


def parse(argv: list[str], flags: list[Flag], stop_at_positional: bool = True,
          reorder_args: bool = True) -> Parsed:
    if reorder_args:
        argv = reorder(argv, flags)
    by_name = {n: f for f in flags for n in f.names}
    values: dict[str, Any] = {f.key: (list(f.default) if f.repeat else f.default)  # type: ignore[call-overload]
                              for f in flags}
    args: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        i += 1
        if tok == "--":
            args.extend(argv[i:])
            break
        if not tok.startswith("-") or tok == "-":
            args.append(tok)
            if stop_at_positional:
                args.extend(argv[i:])
                break
            continue
        _, eq, inline = tok.partition("=")
        name = _flag_name(tok)
        flag = by_name.get(name)
        if flag is None:
            raise RuntimeFailure(f"flag provided but not defined: {name}")
        if flag.takes_value:
            if eq:
                value = inline
            elif i < len(argv):
                value = argv[i]
                i += 1
            else:
                raise RuntimeFailure(f"flag needs an argument: {name}")
            if flag.repeat:
                values[flag.key].append(value)
            else:
                values[flag.key] = value
        else:
            values[flag.key] = inline.lower() not in ("false", "0") if eq else True
    return Parsed(values, args)
