"""Dockerfile objects for the builder's tests, made from simple one-line instructions (no
continuations, heredocs or parser directives): the builder is tested on its own here, the
parser in test_dockerfile_parser.py."""

from __future__ import annotations

import json
import re

from barque.build.dockerfile.instructions import Dockerfile, Heredoc, Instruction, Stage

_FLAG = re.compile(r"--([a-z-]+)(?:=(\S*))?\s+")


def _args(keyword: str, rest: str) -> tuple[list[str], bool]:
    if rest.startswith("["):
        try:
            value = json.loads(rest)
            if isinstance(value, list):
                return value, True
        except ValueError:
            pass
    if keyword in ("RUN", "CMD", "ENTRYPOINT", "USER", "WORKDIR", "STOPSIGNAL", "MAINTAINER"):
        return [rest], False
    if keyword in ("ENV", "LABEL") and "=" not in rest.split()[0]:
        return rest.split(None, 1), False
    return rest.split(), False


def parse(text: str, heredocs: dict[int, list[Heredoc]] | None = None) -> Dockerfile:
    df = Dockerfile("Dockerfile")
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        flags: dict[str, list[str]] = {}
        while m := _FLAG.match(rest):
            flags.setdefault(m.group(1), []).append(m.group(2) or "")
            rest = rest[m.end():]
        if keyword == "FROM":
            words = rest.split()
            name = words[2].lower() if len(words) == 3 else None
            df.stages.append(Stage(len(df.stages), name, words[0],
                                   (flags.get("platform") or [None])[0], n, line))
            continue
        args, json_form = _args(keyword, rest)
        instr = Instruction(keyword, n, n, line, flags, args, json_form,
                            (heredocs or {}).get(n, []))
        if df.stages:
            df.stages[-1].instructions.append(instr)
        else:
            df.meta_args.append(instr)
    return df
