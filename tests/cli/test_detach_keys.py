"""Detach keys on the `barque` CLI, typed on a pseudo-terminal as a Docker user would:
ctrl-p ctrl-q (or --detach-keys, or the docker CLI config's detachKeys) leaves an attached
`run -it`, `start -ai` or `attach` and the container running, with the docker CLI's exit
status and words; a partial sequence reaches the container."""

from __future__ import annotations

import json
import os

import pytest

from tests.cli.conftest import Barque, inspect_container, ok, until
from tests.support.marks import needs_busybox
from tests.support.ptys import Step, run_in_pty

pytestmark = [pytest.mark.root, needs_busybox]

# Reads one line, shows its bytes in hex, then stays: what a partial sequence let through.
SHOW_LINE = "read -r l; printf %s \"$l\" | od -An -tx1; echo shown; sleep 300"


def _pty(b: Barque, argv: list[str], steps: list[Step], config: dict | None = None,
         tmp: str = "") -> tuple[bytes, int]:
    env = dict(os.environ)
    env["DOCKER_CONFIG"] = tmp  # never the user's own ~/.docker/config.json
    if config is not None:
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(config, f)
    return run_in_pty(b.argv(*argv), steps, env=env, timeout=30)


def _running(b: Barque, name: str) -> bool:
    return bool(inspect_container(b, name)["State"]["Running"])


def test_run_it_detaches_and_leaves_it_running(cleanup: Barque, tmp_path) -> None:
    b = cleanup
    output, code = _pty(b, ["run", "-it", "--rm", "--name", "dk", "busybox", "sh"],
                        [(b"#", b"\x10\x11")], tmp=str(tmp_path))
    # docker run returns nil on term.EscapeError: no words, status 0
    assert code == 0 and b"read escape sequence" not in output, output
    assert _running(b, "dk")
    assert ok(b.run("exec", "dk", "echo", "still")) == "still\n"
    # --rm still holds once it ends: removed by its monitor's clean-up
    ok(b.run("kill", "dk"))
    until(lambda: "dk" not in b.run("ps", "-a", "--format", "{{.Names}}").stdout.split())


def test_attach_detaches_with_the_docker_cli_words(cleanup: Barque, tmp_path) -> None:
    b = cleanup
    ok(b.run("run", "-dit", "--name", "dk", "busybox", "sh"))
    output, code = _pty(b, ["attach", "dk"], [(b"", b"\r"), (b"#", b"\x10\x11")],
                        tmp=str(tmp_path))
    # docker attach returns term.EscapeError itself: printed, status 1
    assert (code, output.endswith(b"read escape sequence\r\n")) == (1, True), output
    assert _running(b, "dk")
    # again: the container still takes an attach
    output, code = _pty(b, ["attach", "dk"], [(b"", b"\r"), (b"#", b"\x10\x11")],
                        tmp=str(tmp_path))
    assert code == 1 and _running(b, "dk")


def test_partial_sequence_reaches_the_container(cleanup: Barque, tmp_path) -> None:
    b = cleanup
    output, code = _pty(b, ["run", "-it", "--name", "dk", "busybox", "sh", "-c", SHOW_LINE],
                        [(b"", b"a\x10x\x10\x10b\r"), (b"shown", b"\x10\x11")],
                        tmp=str(tmp_path))
    assert code == 0, output
    # ctrl-p then x: both; ctrl-p ctrl-p b: both ctrl-p's, as typed
    assert b"61 10 78 10 10 62" in output, output
    assert _running(b, "dk")


def test_custom_detach_keys(cleanup: Barque, tmp_path) -> None:
    b = cleanup
    output, code = _pty(b, ["run", "-it", "--detach-keys", "ctrl-a,x", "--name", "dk",
                            "busybox", "sh", "-c", SHOW_LINE],
                        [(b"", b"\x10q\x01y\r"), (b"shown", b"\x01x")], tmp=str(tmp_path))
    assert code == 0, output
    assert b"10 71 01 79" in output, output  # ctrl-p is a plain key now
    assert _running(b, "dk")
    ok(b.run("kill", "dk"))
    ok(b.run("rm", "dk"))
    # start -ai with its own keys
    ok(b.run("create", "-it", "--name", "dk", "busybox", "sh"))
    output, code = _pty(b, ["start", "-ai", "--detach-keys", "z", "dk"],
                        [(b"#", b"z")], tmp=str(tmp_path))
    assert code == 0 and b"read escape sequence" not in output, output
    assert _running(b, "dk")


def test_config_file_detach_keys(cleanup: Barque, tmp_path) -> None:
    b = cleanup
    ok(b.run("run", "-dit", "--name", "dk", "busybox", "sh"))
    output, code = _pty(b, ["attach", "dk"], [(b"", b"\r"), (b"#", b"\x10\x11echo n''o\r"),
                                              (b"no", b"\x1d")],
                        config={"detachKeys": "ctrl-]"}, tmp=str(tmp_path))
    assert code == 1 and output.endswith(b"read escape sequence\r\n"), output
    assert _running(b, "dk")
    # the flag wins over the file
    output, code = _pty(b, ["attach", "--detach-keys", "ctrl-p,ctrl-q", "dk"],
                        [(b"", b"\r"), (b"#", b"\x10\x11")],
                        config={"detachKeys": "ctrl-]"}, tmp=str(tmp_path))
    assert code == 1 and _running(b, "dk")


def test_bad_detach_keys_in_dockerd_words(cleanup: Barque, tmp_path) -> None:
    b = cleanup
    ok(b.run("run", "-dit", "--name", "dk", "busybox", "sh"))
    out = b.run("attach", "--detach-keys", "ctrl-1", "dk")
    assert (out.returncode, out.stderr) == (
        1, "Error response from daemon: Invalid detach keys (ctrl-1) provided\n")
    out = b.run("exec", "--detach-keys", "ctrl-1", "dk", "true")  # checked for every exec
    assert (out.returncode, out.stderr) == (
        1, "Error response from daemon: Invalid escape keys (ctrl-1) provided\n")
    before = b.containers()
    out = b.run("run", "-it", "--detach-keys", "ctrl-p,meta-q", "busybox", "sh")
    assert out.returncode == 125
    assert "Invalid detach keys (ctrl-p,meta-q) provided" in out.stderr
    assert b.containers() == before  # nothing made


def test_exec_it_detaches_and_the_process_runs_on(cleanup: Barque, tmp_path) -> None:
    b = cleanup
    ok(b.run("run", "-d", "--name", "dk", "busybox", "sleep", "300"))
    script = "read -r l; printf %s \"$l\" | od -An -tx1; echo shown; exec sleep 301"
    output, code = _pty(b, ["exec", "-it", "--detach-keys", "ctrl-a,x", "dk", "sh", "-c",
                            script], [(b"", b"\x01y\r"), (b"shown", b"\x01x")],
                        tmp=str(tmp_path))
    # the docker CLI's exec returns term.EscapeError: printed, status 1
    assert (code, output.endswith(b"read escape sequence\r\n")) == (1, True), output
    assert b"01 79" in output, output
    top = ok(b.run("top", "dk"))
    assert "sleep 301" in top, top  # the exec's process runs on
    # the default keys; the terminal still works as before
    output, code = _pty(b, ["exec", "-it", "dk", "sh"],
                        [(b"#", b"stty size\r"), (b"24 80", b"\x10\x11")], tmp=str(tmp_path))
    assert code == 1 and output.endswith(b"read escape sequence\r\n"), output
