"""The command line's own errors and help, as the docker CLI's (cobra's): unknown flags, bad flag
values, argument counts, unknown subcommands, group help. Debian's docker 20.10 client reports
all of these before it talks to a daemon, so it is the oracle here (pointed at a socket that
does not exist); outputs are compared after the compat suite's normalisation."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from tests.cli.conftest import Barque
from tests.compat.engines import DOCKER_CLI
from tests.compat.normalise import normalise
from tests.support.tools import require

LINES = [
    # unknown flags (pflag's words), exit 125
    "run --bogus busybox", "run -z busybox", "run --bogus=1 busybox", "run -itz busybox",
    "ps -a -z", "stats -z", "events --bogus", "volume ls --bogus",
    # flag values
    "run -m", "run --memory", "ps -n x", "stop -t x a", "run --rm=x busybox",
    "inspect --type bogus c1",
    # argument counts (cli/required.go): at least, exactly, at most, a range, none
    "run", "create", "logs", "logs a b", "port", "rename a", "cp a b c", "exec c1", "ps x",
    "stop", "kill", "wait", "top", "diff", "commit", "tag a", "rmi", "history", "pull", "push",
    "save", "network inspect", "network create", "network connect a", "volume create a b",
    "volume rm", "image inspect", "inspect", "attach", "start", "update", "info x",
    "version x", "images a b", "load x", "export", "container export", "container port",
    "system df x", "system prune x", "build", "build a b",
    # groups: help (on stderr without a command, as docker's ShowHelp), unknown subcommands
    "network", "network --help", "system --help", "container bogus", "network bogus",
    "system bogus",
]


def _normalised(argv: list[str]) -> tuple[str, str, int]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    return normalise(proc.stdout), normalise(proc.stderr), proc.returncode


@pytest.mark.parametrize("line", LINES)
def test_same_words_as_the_docker_cli(barque: Barque, line: str) -> None:
    require(DOCKER_CLI)
    docker = _normalised([DOCKER_CLI, "-H", "unix:///nonexistent/docker.sock",
                          *shlex.split(line)])
    assert _normalised(barque.argv(*shlex.split(line))) == docker


def test_argument_count_error_shape(barque: Barque) -> None:
    proc = barque.run("logs")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == ('"barque logs" requires exactly 1 argument.\n'
                           "See 'barque logs --help'.\n\n"
                           "Usage:  barque logs [OPTIONS] CONTAINER\n\n"
                           "Fetch the logs of a container\n")


def test_group_help_layout(barque: Barque) -> None:
    proc = barque.run("volume", "--help")
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("\nUsage:  barque volume COMMAND\n\nManage volumes\n\n"
                                  "Commands:\n  create      Create a volume\n")
    assert proc.stdout.endswith("\n\nRun 'barque volume COMMAND --help' for more information "
                                "on a command.\n")


def test_command_help_lists_aliases_and_options(barque: Barque) -> None:
    text = barque.run("container", "ls", "--help").stdout
    assert text.startswith("\nUsage:  barque container ls [OPTIONS]\n\nList containers\n\n"
                           "Aliases:\n  ls, ps, list\n\nOptions:\n")
    assert "  -a, --all " in text and "  -n, --last int " in text
    assert "--help" not in text  # as Docker's: the help flag is not listed


def test_root_help_groups_management_commands(barque: Barque) -> None:
    text = barque.run("--help").stdout
    management = text.split("Management Commands:\n", 1)[1].split("\n\n", 1)[0]
    assert [line.split()[0] for line in management.splitlines()] == \
        ["builder", "container", "image", "network", "system", "volume"]
    assert "\nCommands:\n  attach " in text and "      --root string " in text
