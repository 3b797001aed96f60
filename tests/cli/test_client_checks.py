"""What the docker CLI checks itself, printed in its shapes and not as "Error response from
daemon" (issue 13): run's and create's flag checks (its reportError, or pflag's refusal of a
value), image references, the host files of cp and load; and its client's look-ups, "Error: No
such container|volume|network|image|container:path: X". Each expected text is what docker
20.10 printed for the same command line (tests/compat has the live comparisons)."""

from __future__ import annotations

import os

import pytest

from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]


def _says(b: Barque, *args: str) -> tuple[int, str, str]:
    result = b.run(*args)
    assert "Traceback" not in result.stderr
    return result.returncode, result.stdout, result.stderr


@pytest.mark.parametrize("flags, text", [
    # the docker CLI's own checks: "docker: X." and the help line
    (["--env-file", "/nonexistent/env"],
     "barque: open /nonexistent/env: no such file or directory.\n"),
    (["--security-opt", "bogus"], 'barque: Invalid --security-opt: "bogus".\n'),
    (["--restart", "always"], "barque: Conflicting options: --restart and --rm.\n"),
    (["-p", "bogus"], "barque: Invalid containerPort: bogus.\n"),
    (["--device", "a:b:c:d"], "barque: bad format for path: a:b:c:d.\n"),
    (["--device", "/dev/null:/x:q"], "barque: bad mode specified: q.\n"),
    (["--restart", "on-failure:1:2"], "barque: invalid restart policy format.\n"),
    # pflag's refusal of a value: no "docker: ", no full stop
    (["-m", "lots"], "invalid argument \"lots\" for \"-m, --memory\" flag: invalid size: "
                     "'lots'\n"),
    (["--sysctl", "bogus.key=1"], "invalid argument \"bogus.key=1\" for \"--sysctl\" flag: "
                                  "sysctl 'bogus.key=1' is not whitelisted\n"),
    (["--dns", "abc"], "invalid argument \"abc\" for \"--dns\" flag: abc is not an ip address\n"),
])
def test_run_and_create_report_their_own_checks(barque: Barque, flags: list[str],
                                                 text: str) -> None:
    # (Barque's create has no --rm: the conflict is run's alone here)
    for command in ("run", "create") if flags != ["--restart", "always"] else ("run",):
        auto_remove = ["--rm"] if command == "run" else []
        code, out, err = _says(barque, command, *auto_remove, "--network", "none", *flags,
                               "busybox", "true")
        assert (code, out, err) == (
            125, "", text.replace("barque run", f"barque {command}") +
            f"See 'barque {command} --help'.\n"), command
    assert barque.containers() == []  # nothing made


def test_bad_image_reference(barque: Barque) -> None:
    """run: its reportError; create: createContainer's error, bare, exit 1."""
    b = barque
    assert _says(b, "run", "--rm", "Busybox", "true") == (
        125, "", "barque: invalid reference format: repository name must be lowercase.\n"
                 "See 'barque run --help'.\n")
    assert _says(b, "run", "--rm", "bad@@ref") == (
        125, "", "barque: invalid reference format.\nSee 'barque run --help'.\n")
    assert _says(b, "create", "Busybox") == (
        1, "", "invalid reference format: repository name must be lowercase\n")
    assert b.containers() == []
    # a full image ID is a reference too (the docker CLI's ParseAnyReference)
    ok(b.run("image", "build-default"))
    image_id = ok(b.run("image", "inspect", "-f", "{{.Id}}", "busybox")).strip()
    ok(b.run("create", "--network", "none", "--name", "byid", image_id.split(":")[1]))


def test_lookups_in_the_clients_words(barque: Barque) -> None:
    b = barque
    for args in (["logs", "nosuch"], ["exec", "nosuch", "true"], ["port", "nosuch"],
                 ["attach", "nosuch"]):
        assert _says(b, *args) == (1, "", "Error: No such container: nosuch\n"), args
    assert _says(b, "volume", "inspect", "nosuch") == (1, "[]\n", "Error: No such volume: nosuch\n")
    assert _says(b, "volume", "rm", "nosuch") == (1, "", "Error: No such volume: nosuch\n")
    assert _says(b, "network", "inspect", "nosuch") == (
        1, "[]\n", "Error: No such network: nosuch\n")
    assert _says(b, "network", "rm", "nosuch") == (1, "", "Error: No such network: nosuch\n")
    assert _says(b, "rmi", "nosuch") == (1, "", "Error: No such image: nosuch\n")
    # what is not a look-up's 404 stays the daemon's
    ok(b.run("volume", "create", "used"))
    ok(b.run("create", "--network", "none", "--name", "user", "-v", "used:/v", "busybox"))
    code, _, err = _says(b, "volume", "rm", "used")
    assert code == 1 and err.startswith("Error response from daemon: remove used: volume is in "
                                        "use - ["), err


def test_attach_checks_the_state_itself(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "--network", "none", "--name", "done", "busybox", "true"))
    assert _says(b, "attach", "done") == (
        1, "", "You cannot attach to a stopped container, start it first\n")
    ok(b.run("run", "-d", "--network", "none", "--name", "held", "busybox", "sleep", "60"))
    ok(b.run("pause", "held"))
    assert _says(b, "attach", "held") == (
        1, "", "You cannot attach to a paused container, unpause it first\n")
    ok(b.run("rm", "-f", "held"))


def test_cp_in_the_clients_words(barque: Barque, tmp_path: str) -> None:
    b, tmp = barque, str(tmp_path)
    with open(os.path.join(tmp, "f"), "w") as f:
        f.write("data\n")
    missing = os.path.join(tmp, "nosuch")
    assert _says(b, "cp", missing, "nosuch:/x") == (
        1, "", f"lstat {missing}: no such file or directory\n")  # the host side first
    assert _says(b, "cp", os.path.join(tmp, "f"), "nosuch:/x") == (
        1, "", "Error: No such container:path: nosuch:/\n")
    assert _says(b, "cp", "nosuch:/x", os.path.join(tmp, "out")) == (
        1, "", "Error: No such container:path: nosuch:/x\n")
    ok(b.run("create", "--network", "none", "--name", "c1", "busybox"))
    assert _says(b, "cp", "c1:/nosuch", os.path.join(tmp, "out")) == (
        1, "", "Error: No such container:path: c1:/nosuch\n")
    assert _says(b, "cp", os.path.join(tmp, "f"), "c1:/nosuch/x") == (
        1, "", "Error: No such container:path: c1:/nosuch\n")
    assert not os.path.exists(os.path.join(tmp, "out"))


def test_commit_load_push_check_first(barque: Barque, tmp_path: str) -> None:
    b, tmp = barque, str(tmp_path)
    ok(b.run("create", "--network", "none", "--name", "c1", "busybox"))
    images = ok(b.run("images", "-q"))
    assert _says(b, "commit", "c1", "Img1") == (
        1, "", "invalid reference format: repository name must be lowercase\n")
    assert _says(b, "commit", "c1", "img1@sha256:" + "0" * 64) == (
        1, "", "refusing to create a tag with a digest reference\n")
    missing = os.path.join(tmp, "nosuch.tar")
    assert _says(b, "load", "-i", missing) == (
        1, "", f"open {missing}: no such file or directory\n")
    assert ok(b.run("images", "-q")) == images  # nothing committed or loaded
    # dockerd's stream names the repository before it looks for the image; the error that
    # follows in the stream is printed bare (port 1: nothing is contacted)
    assert _says(b, "push", "127.0.0.1:1/nosuch:1") == (
        1, "The push refers to repository [127.0.0.1:1/nosuch]\n",
        "An image does not exist locally with the tag: 127.0.0.1:1/nosuch\n")
