"""Small words and output shapes as Debian's docker 20.10 (the compatibility suite's oracle)
prints them: checked here without dockerd, so they hold where tests/compat cannot run."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox

pytestmark = needs_busybox

NO_NET = ("--network", "none")


def test_run_reports_start_errors_without_the_help_line(cleanup: Barque) -> None:
    """What dockerd finds only at start (a network, a device, a user) is reported as docker
    run reports a failed start: no "See 'docker run --help'.", 127 for a missing file."""
    b = cleanup
    for args, words, code in (
        (["--network", "nosuchnet"], "network nosuchnet not found.", 125),
        ([*NO_NET, "--device", "/dev/nosuch"], "error gathering device information while "
         'adding custom device "/dev/nosuch": no such file or directory.', 127),
        ([*NO_NET, "-u", "nosuchuser"], "unable to find user nosuchuser: no matching entries "
         "in passwd file.", 125),
    ):
        result = b.run("run", "--rm", *args, "busybox", "true")
        assert (result.returncode, result.stderr) == (
            code, f"barque: Error response from daemon: {words}\n"), args
    # create-time checks keep the help line
    for args, words in (
        ([*NO_NET, "--cap-add", "bogus"], 'invalid CapAdd: unknown capability: "CAP_BOGUS".'),
        ([*NO_NET, "--cap-drop", "bogus"], 'invalid CapDrop: unknown capability: '
         '"CAP_BOGUS".'),
        ([*NO_NET, "-w", "rel"], "the working directory 'rel' is invalid, it needs to be an "
         "absolute path."),
    ):
        result = b.run("run", "--rm", *args, "busybox", "true")
        assert (result.returncode, result.stderr) == (
            125, f"barque: Error response from daemon: {words}\nSee 'barque run --help'.\n")
    assert ok(b.run("ps", "-aq")) == ""


def test_a_terminal_without_one_is_refused_before_anything_is_made(cleanup: Barque) -> None:
    b = cleanup
    result = b.run("run", "--rm", "-it", *NO_NET, "busybox", "true")  # stdin: /dev/null
    assert (result.returncode, result.stderr) == (1, "the input device is not a TTY\n")
    assert ok(b.run("ps", "-aq")) == ""
    assert ok(b.run("run", "--rm", "-t", *NO_NET, "busybox", "echo", "hi")).strip() == "hi"
    ok(b.run("run", "-d", "--name", "box", *NO_NET, "busybox", "sleep", "300"))
    result = b.run("exec", "-it", "box", "true")
    assert (result.returncode, result.stderr) == (1, "the input device is not a TTY\n")
    missing = b.run("exec", "-it", "nosuch", "true")  # the look-up's error comes first
    assert missing.returncode == 1 and "No such container: nosuch" in missing.stderr


def test_words_of_a_running_container(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "-d", "--name", "box", *NO_NET, "busybox", "sleep", "300"))
    port = b.run("port", "box", "80")
    assert (port.returncode, port.stderr) == (
        1, "Error: No public port '80/tcp' published for box\n")
    ok(b.run("pause", "box"))
    paused = b.run("exec", "box", "true")
    assert (paused.returncode, paused.stderr) == (
        1, "Error response from daemon: Container box is paused, unpause the container "
        "before exec\n")
    ok(b.run("unpause", "box"))
    for data, words in (("not a tar\n", "unexpected EOF"),
                        ("x" * 2048, "archive/tar: invalid tar header")):
        result = b.run("cp", "-", "box:/tmp", input=data)
        assert (result.returncode, result.stderr) == (
            1, f"Error response from daemon: Error processing tar file(exit status 1): "
            f"{words}\n")
    assert ok(b.run("cp", "-", "box:/tmp", input="")) == ""  # an empty archive


def test_inspect_output(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("create", "--name", "c1", *NO_NET, "--health-cmd", "true", "--health-interval",
             "5s", "-l", "a=b", "-v", "/tmp:/h:ro", "busybox"))
    # {{json}} of a struct: Docker's field order, not sorted keys; of a map: sorted
    assert ok(b.run("inspect", "-f", "{{json .Config.Healthcheck}}", "c1")) == \
        '{"Test":["CMD-SHELL","true"],"Interval":5000000000}\n'
    mounts = ok(b.run("inspect", "-f", "{{json .Mounts}}", "c1"))
    assert mounts.startswith('[{"Type":"bind","Source":"/tmp","Destination":"/h","Mode":"ro",')
    assert ok(b.run("inspect", "-f", "{{.SizeRw}}", "c1")) == "<nil>\n"
    assert ok(b.run("inspect", "-s", "-f", "{{.SizeRw}}", "c1")) == "0\n"
    sized = json.loads(ok(b.run("inspect", "-s", "c1")))[0]
    keys = list(sized)
    assert keys[keys.index("GraphDriver") + 1:][:3] == ["SizeRw", "SizeRootFs", "Mounts"]
    assert sized["SizeRootFs"] > 0
    assert ok(b.run("ps", "-a", "--format", '{{.Labels}}|{{.Label "a"}}|{{.Label "z"}}')) == \
        "a=b|b|\n"
    no_arg = b.run("ps", "-a", "--format", "{{.Label}}")
    assert no_arg.returncode == 1 and "wrong number of args for Label: want 1 got 0" in \
        no_arg.stderr
    for flt, words in (("bogus=1", "Invalid filter 'bogus'"),
                       ("status=bogus", "Invalid filter 'status=bogus'")):
        result = b.run("ps", "--filter", flt)
        assert (result.returncode, result.stderr, result.stdout) == (
            1, f"Error response from daemon: {words}\n", "")


def test_volume_maps_and_image_references(cleanup: Barque, tmp_path: Path) -> None:
    b = cleanup
    ok(b.run("volume", "create", "v1"))
    ok(b.run("create", "--name", "c1", *NO_NET, "-v", "v2:/data", "busybox"))
    fmt = "{{json .Labels}} {{json .Options}}"
    assert ok(b.run("volume", "inspect", "-f", fmt, "v1")) == "{} {}\n"  # volume create's
    assert ok(b.run("volume", "inspect", "-f", fmt, "v2")) == "null null\n"  # a mount's
    refused = b.run("rmi", "busybox")
    assert refused.returncode == 1 and \
        'unable to remove repository reference "busybox" (must force)' in refused.stderr
    out = os.path.join(str(tmp_path), "x.tar")
    for name, words in (("nosuch", "No such image: nosuch"),
                        ("nosuch:1", "reference does not exist")):
        result = b.run("save", "-o", out, name)
        assert (result.returncode, result.stderr) == (
            1, f"Error response from daemon: {words}\n")
    not_tar = os.path.join(str(tmp_path), "f")
    with open(not_tar, "w") as f:
        f.write("not a tar\n")
    result = b.run("load", "-i", not_tar)  # dockerd's stream error: printed bare
    assert (result.returncode, result.stderr) == (
        1, "Error processing tar file(exit status 1): unexpected EOF\n")
    ok(b.run("rm", "-v", "c1"))
    ok(b.run("volume", "rm", "v1"))
