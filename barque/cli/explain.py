"""`barque explain CONTAINER`: print what isolates a running container (the engine gathers
the facts: barque/engine/explain.py) as a terminal view, JSON, or a self-contained HTML page."""

from __future__ import annotations

import argparse
import json
import os
import sys

from barque.engine.context import Engine

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("--format", choices=["table", "json"], default="table",
                   help="output: the terminal view (table, default) or json")
    p.add_argument("--html", metavar="FILE",
                   help="also write a self-contained HTML page with a diagram to FILE")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                   help="how long to sample CPU use (default 1)")


def cmd_explain(ns: argparse.Namespace, engine: Engine) -> int:
    from barque.cli.containers import CommandError
    from barque.engine.explain import explain

    if not 0 < ns.interval <= 60:
        raise CommandError(f'invalid argument "{ns.interval:g}" for "--interval" flag: '
                           "must be more than 0 and at most 60 seconds")
    facts = explain(engine, ns.container, ns.interval)
    if ns.html:
        _write_html(ns.html, facts)
    if ns.format == "json":
        sys.stdout.write(json.dumps(facts, indent=2) + "\n")
    else:
        print_view(facts)
    return 0


def _write_html(path: str, facts: dict[str, Any]) -> None:
    from barque.cli.containers import CommandError
    from barque.cli.explain_html import render

    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(render(facts))
        os.replace(tmp, path)
    except OSError as e:
        # Client-side file errors in Go's words, as `docker save -o`: nothing left behind.
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise CommandError(f"open {path}: {(e.strerror or str(e)).lower()}") from None


def print_view(facts: dict[str, Any], width: int | None = None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from barque.cli import explain_view as view

    console = Console(width=width or (None if sys.stdout.isatty() else 110),
                      highlight=False, soft_wrap=False)
    c = facts["container"]
    # Text, never markup: names, commands and file names come from the container.
    console.print(Text(printable(f"{c['name']} ({c['id'][:12]}, {c['image']}): PID "
                                 f"{c['pid']} on the host, running {' '.join(c['command'])}")))
    for section in view.sections(facts):
        table = Table(title=Text(f"{section.title}: {section.intro}"), title_justify="left",
                      title_style="bold", show_header=False, expand=False, box=None,
                      padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        table.add_column(style="dim", overflow="fold")
        for row in section.rows:
            table.add_row(*(Text(printable(cell)) for cell in row))
        console.print()
        console.print(table)


def printable(text: str) -> str:
    """Control characters (a terminal escape in a file name the container chose) as \\xNN."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
