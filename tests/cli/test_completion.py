"""`barque completion bash|zsh`: the scripts, sourced by the real shells, complete commands,
flags, flag values and the names of a root's containers; and `--help` lists every subcommand
and flag of the argparse tree the candidates come from."""

from __future__ import annotations

import argparse
import os
import re
import select
import subprocess
import sys
import tempfile
import time

import pytest

from barque.cli import argv_scan
from barque.cli.completion import _Node, candidates
from barque.cli.main import build_parser
from tests.cli.conftest import Barque, ok
from tests.support.tools import require

BINDIR = os.path.dirname(sys.executable)  # the barque under test, first on the shells' PATH


def _words(completions: list[str]) -> list[str]:
    return [c.split("\t")[0] for c in completions]


def _tree() -> list[tuple[list[str], _Node]]:
    argv_scan.scan([])
    found: list[tuple[list[str], _Node]] = []

    def walk(node: _Node, path: list[str]) -> None:
        found.append((path, node))
        for name, (parser, _) in node.subs.items():
            walk(_Node(parser), [*path, name])

    walk(_Node(build_parser()), [])
    return found


def test_candidates_follow_the_parser() -> None:
    assert _words(candidates(["netw"])) == ["network"]
    assert set(_words(candidates(["network", "c"]))) == {"create", "connect"}
    assert "--restart" in _words(candidates(["run", "--rest"]))
    assert _words(candidates(["run", "--pull", ""])) == ["always", "missing", "never"]
    assert _words(candidates(["run", "--pull=n"])) == ["--pull=never"]
    assert _words(candidates(["completion", ""])) == ["bash", "zsh"]
    # The container's command line is its own: no barque flags after the image.
    assert candidates(["run", "-it", "busybox", "-"]) == []
    assert candidates(["exec", "c1", "ls", "-"]) == []
    # Every command and subcommand of the tree, with its help text.
    for path, node in _tree():
        if node.subs:
            got = dict(c.split("\t", 1) for c in candidates([*path, ""]))
            assert got == {name: text for name, (_, text) in node.subs.items()}, path


def test_completion_rejects_other_shells(barque: Barque) -> None:
    proc = barque.run("completion", "fish")
    assert (proc.returncode, proc.stderr) == (1, 'invalid argument "fish" for "barque '
                                                 "completion\"\nSee 'barque completion --help'.\n")


def _bash_complete(line: str) -> list[str]:
    script = ('source <(barque completion bash) && COMP_LINE="$1" && COMP_POINT=${#1} && '
              '_barque && for r in "${COMPREPLY[@]}"; do echo "$r"; done && complete -p barque')
    env = dict(os.environ, PATH=f"{BINDIR}:{os.environ['PATH']}")
    proc = subprocess.run(["bash", "--norc", "-c", script, "bash", line], env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    *replies, spec = proc.stdout.splitlines()
    assert spec == "complete -o bashdefault -o default -F _barque barque"
    return replies


def test_bash_script_completes_commands_flags_values_and_names(barque: Barque) -> None:
    ok(barque.run("create", "--name", "compl-web", "--network", "none", "busybox", "true"))
    assert _bash_complete("barque netw") == ["network"]
    assert sorted(_bash_complete("barque network c")) == ["connect", "create"]
    assert _bash_complete("barque run --pull=ne") == ["never"]  # bash replaces after the =
    assert _bash_complete("barque run --rm busybox:la") == ["latest"]  # and after the :
    roots = f"barque --root {barque.root} --runroot {barque.runroot}"
    assert _bash_complete(f"{roots} start compl-") == ["compl-web"]
    assert _bash_complete(f"{roots} rmi busy") == ["busybox:latest"]
    # A root that does not exist gives no names, and is not made.
    missing = os.path.join(barque.root, "nope")
    assert _bash_complete(f"barque --root {missing} start ") == []
    assert not os.path.exists(missing)


def _read_until(fd: int, pattern: str, timeout: float = 30) -> str:
    seen, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            seen += chunk
            text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", seen.decode(errors="replace"))
            if re.search(pattern, text):
                return text
    raise AssertionError(f"no {pattern!r} in {seen!r}")


def test_zsh_script_completes_in_an_interactive_zsh() -> None:
    require("zsh")
    home = tempfile.mkdtemp(prefix="barque-zsh-")
    env = {"PATH": f"{BINDIR}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": home, "ZDOTDIR": home,
           "TERM": "dumb", "PS1": "%% "}
    main, sub = os.openpty()
    proc = subprocess.Popen(["zsh", "-f", "-i"], stdin=sub, stdout=sub, stderr=sub, env=env,
                            start_new_session=True, cwd=home)
    os.close(sub)
    try:
        os.write(main, b"autoload -U compinit && compinit -u -D && "
                       b"source <(barque completion zsh) && echo READY-$((6*7))\n")
        _read_until(main, r"READY-42")
        os.write(main, b"barque netw\t")
        _read_until(main, r"barque network ")
        os.write(main, b"\x15barque system \t")  # ^U: a new line; a list with descriptions
        _read_until(main, r"prune\s+-- remove unused data")
    finally:
        proc.kill()
        proc.wait(timeout=10)
        os.close(main)
        subprocess.run(["rm", "-rf", home], check=False)


@pytest.mark.parametrize("path", [p for p, _ in _tree()], ids=lambda p: " ".join(p) or "barque")
def test_help_lists_every_flag_and_subcommand(path: list[str]) -> None:
    """`barque PATH --help` as the CLI builds it (only the parsers the words name)."""
    node = dict((tuple(p), n) for p, n in _tree())[tuple(path)]
    argv_scan.scan([*path, "--help"])
    parser = build_parser()
    for word in path:
        parser = _Node(parser).subs[word][0]
    text = parser.format_help()
    # Each flag under its first long name, as pflag lists it (`--network`, not `--net` too);
    # the help flag is not listed, as Docker's.
    shown = {_shown(a) for a in node.options.values() if not isinstance(a, argparse._HelpAction)}
    assert [o for o in shown if not re.search(rf"(^|[\s,]){re.escape(o)}\b", text)] == []
    listed = set(re.findall(r"^  (\S+)", text.split("Commands:", 1)[-1], re.M))
    # An alias (`network list` for `ls`) has no help words of its own: docker's group helps
    # list each command once, under its first name.
    missing = [s for s in node.subs if s not in listed and node.subs[s][1]]
    assert missing == []


def _shown(action: argparse.Action) -> str:
    longs = [o for o in action.option_strings if o.startswith("--")]
    return longs[0] if longs else action.option_strings[0]
