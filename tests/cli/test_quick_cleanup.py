"""The monitor's exit command with nothing to do (barque/cli/quick_cleanup.py): answered by
the launcher without the CLI, and only then; anything else goes to the full command."""

from __future__ import annotations

import os
import subprocess

from barque.cli.quick_cleanup import nothing_to_do
from tests.cli.conftest import _barque

CID = "ab" * 32


def exit_command(root: str, runroot: str, run_id: str = "r1", cid: str = CID) -> list[str]:
    return ["--root", root, "--runroot", runroot, "container", "cleanup", "--run-id", run_id,
            cid]


def make_container(root: str, runroot: str, run_id: str | None) -> None:
    os.makedirs(os.path.join(root, "containers", CID))
    mdir = os.path.join(runroot, "containers", CID)
    os.makedirs(mdir)
    if run_id is not None:
        with open(os.path.join(mdir, "run-id"), "w") as f:
            f.write(run_id)


def test_nothing_to_do_only_when_removed_or_restarted(tmp_path: str) -> None:
    root, runroot = os.path.join(tmp_path, "root"), os.path.join(tmp_path, "run")
    assert nothing_to_do(exit_command(root, runroot))  # no container dir: removed
    make_container(root, runroot, "r1")
    assert not nothing_to_do(exit_command(root, runroot))  # its own run: work to do
    assert nothing_to_do(exit_command(root, runroot, run_id="r0"))  # a later start's files
    os.remove(os.path.join(runroot, "containers", CID, "run-id"))
    assert not nothing_to_do(exit_command(root, runroot, run_id="r0"))  # unknown: the CLI's
    # any other command line is the CLI's
    argv = exit_command(root + "/x", runroot)
    for other in (argv[:-1], argv + ["more"], ["--root", root, "container", "cleanup", CID],
                  exit_command(root, runroot, cid="../x"), exit_command(root, runroot, cid="")):
        assert not nothing_to_do(other), other


def test_launcher_answers_a_moot_exit_command_without_making_the_root(tmp_path: str) -> None:
    root, runroot = os.path.join(tmp_path, "root"), os.path.join(tmp_path, "run")
    proc = subprocess.run([*_barque(), *exit_command(root, runroot)], capture_output=True,
                          timeout=30)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")
    assert not os.path.exists(root) and not os.path.exists(runroot)
