"""`barque run` end to end: a real container from the default image, through the OCI runtime.

The runtime is BARQUE_RUNTIME if set (e.g. BARQUE_RUNTIME=runc), else barque-runtime.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from barque.image import default as default_image
from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox

pytestmark = [
    pytest.mark.root,
    needs_busybox,
]


def test_echo_hello(barque: Barque) -> None:
    result = barque.run("run", "--rm", "busybox", "echo", "hello")
    assert (result.returncode, result.stdout) == (0, "hello\n"), result.stderr


def test_the_containers_exit_code_is_barques(barque: Barque) -> None:
    assert barque.run("run", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3
    assert barque.run("run", "--rm", "busybox:latest", "false").returncode == 1


def test_a_missing_command_exits_127(barque: Barque) -> None:
    result = barque.run("run", "--rm", "busybox", "no-such-command")
    assert result.returncode == 127, result.stderr
    # Docker's one line (runc's "runc create failed" is the runtime's own name for itself,
    # here in its `run --detach`); never the runtime's line from the container's stderr
    assert (result.stdout, result.stderr) == ("", (
        "barque: Error response from daemon: failed to create shim task: OCI runtime create "
        "failed: barque-runtime run failed: unable to start container process: exec: "
        '"no-such-command": executable file not found in $PATH: unknown.\n'))
    assert barque.containers() == []


def test_a_failed_start_leaves_no_runtime_words_in_the_log(barque: Barque) -> None:
    """What the runtime wrote on the container's stderr as its start failed is its own, not
    the container's output (dockerd's shim never copies it): neither attached nor logged."""
    result = barque.run("run", "--name", "nostart", "busybox", "/etc")
    assert result.returncode == 126 and result.stderr.count("\n") == 1, result.stderr
    logs = barque.run("logs", "nostart")
    assert (logs.returncode, logs.stdout, logs.stderr) == (0, "", "")
    started = barque.run("start", "-a", "nostart")
    # docker start -a exits 1 (the daemon's error), as the compat case start_attached_failing
    assert started.returncode == 1 and started.stderr.count("\n") == 1, started.stderr
    assert ok(barque.run("logs", "nostart")) == ""
    state = ok(barque.run("inspect", "-f", "{{.State.ExitCode}} {{.State.Error}}", "nostart"))
    assert state == ("126 failed to create shim task: OCI runtime create failed: barque-runtime "
                     'run failed: unable to start container process: exec: "/etc": permission '
                     "denied: unknown\n")
    ok(barque.run("rm", "nostart"))


def test_a_start_that_failed_leaves_a_new_container_created(barque: Barque) -> None:
    """As Docker's: the container never ran, so it stays `created` (with the exit code and
    error of the start), is started again as such and removed without -f."""
    ok(barque.run("create", "--name", "never", "busybox", "no-such-command"))
    for _ in range(2):
        started = barque.run("start", "never")
        assert started.returncode == 1 and started.stderr.endswith(
            "Error: failed to start containers: never\n"), started.stderr
        state = ok(barque.run("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} "
                              "{{.State.StartedAt}}", "never"))
        assert state == "created 127 0001-01-01T00:00:00Z\n"
    ok(barque.run("rm", "never"))


def test_a_command_that_cannot_be_invoked_exits_126(barque: Barque) -> None:
    assert barque.run("run", "--rm", "busybox", "/etc").returncode == 126
    assert barque.run("run", "--rm", "busybox", "/etc/passwd").returncode == 126


def test_rm_removes_the_bundle_and_no_rm_keeps_it(barque: Barque) -> None:
    assert barque.run("run", "--rm", "busybox", "true").returncode == 0
    assert barque.containers() == []
    assert barque.run("run", "busybox", "true").returncode == 0
    [cid] = barque.containers()
    bundle = os.path.join(barque.root, "containers", cid)
    assert len(cid) == 64
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    # The rootfs is an overlay snapshot, unmounted once the container exited. Its own
    # /etc/hostname, hosts and resolv.conf are files of its directory bind-mounted over the
    # image's (as Docker does), so a container that wrote nothing has an empty upper dir.
    assert spec["root"]["path"] == os.path.join(bundle, "snapshot", "merged")
    upper = os.path.join(bundle, "snapshot", "upper")
    assert os.listdir(upper) == []
    assert open(os.path.join(bundle, "hostname")).read() == cid[:12] + "\n"
    assert not os.path.ismount(os.path.join(bundle, "snapshot", "merged"))
    assert spec["hostname"] == cid[:12]
    assert spec["linux"]["cgroupsPath"] == f"/barque/{cid}"
    assert spec["process"]["terminal"] is False and spec["root"]["readonly"] is False
    assert len(spec["process"]["capabilities"]["bounding"]) == 14
    # The default bridge's namespace, made by the engine before the runtime joins it.
    assert {"type": "network", "path": os.path.join(barque.runroot, "netns", cid)} in \
        spec["linux"]["namespaces"]


def test_default_environment_hostname_and_options(barque: Barque) -> None:
    script = 'echo "$(hostname) $A $B $HOME $PWD $(id -u)"; cat /etc/hostname; env'
    result = barque.run(
        "run", "--rm", "-e", "A=1", "--env", "B=two words", "-h", "box", "-w", "/work/dir",
        "busybox", "sh", "-c", script,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "box 1 two words /root /work/dir 0"
    assert lines[1] == "box"
    env = lines[2:]
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in env
    assert "HOSTNAME=box" in env


def test_docker_capabilities_and_the_default_bridge(barque: Barque) -> None:
    result = barque.run(
        "run", "--rm", "busybox", "sh", "-c", "grep CapEff /proc/self/status; ls /sys/class/net"
    )
    assert result.returncode == 0, result.stderr
    cap_line, *interfaces = result.stdout.split()[1:]
    assert int(cap_line, 16) == 0xA80425FB  # docker's 14 default capabilities
    assert interfaces == ["eth0", "lo"]  # Docker's default: the bridge network
    none = ok(barque.run("run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net"))
    assert none.split() == ["lo"]


def test_user_option(barque: Barque) -> None:
    result = barque.run("run", "--rm", "-u", "nobody", "busybox", "id")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("uid=65534(nobody) gid=65534(nogroup)")


def test_barque_errors_exit_125(barque: Barque) -> None:
    # An unknown flag is cobra's: "unknown flag: --x" and the help hint, no "docker: " before
    # it (the compat suite's run_bad_flag compares it with Docker's); the rest are run's.
    result = barque.run("run", "--no-such-flag", "busybox")
    assert result.returncode == 125, result.stderr
    assert result.stderr.splitlines()[:2] == ["unknown flag: --no-such-flag",
                                               "See 'barque run --help'."], result.stderr
    for args in (
        ["run", "--rm", "127.0.0.1:9/no-such-image"],  # a closed port: the pull fails
        ["run", "--rm", "-w", "relative", "busybox", "true"],
        ["run", "--rm", "-u", "ghost", "busybox", "true"],
    ):
        result = barque.run(*args)
        assert result.returncode == 125, (args, result.stderr)
        assert any(line.startswith("barque: ") for line in result.stderr.splitlines()), \
            result.stderr
    assert barque.containers() == []


def test_names_are_unique(barque: Barque) -> None:
    assert barque.run("run", "--name", "web", "busybox", "true").returncode == 0
    result = barque.run("run", "--name", "web", "busybox", "true")
    assert result.returncode == 125 and "already in use" in result.stderr


def test_a_loaded_oci_archive_runs(barque: Barque, tmp_path: str) -> None:
    layout = os.path.join(str(tmp_path), "layout")
    default_image.build_default_image(layout, "v1")
    archive = os.path.join(str(tmp_path), "image.tar")
    default_image.write_oci_archive(layout, archive)
    loaded = barque.run("load", "-i", archive)
    assert loaded.returncode == 0, loaded.stderr
    result = barque.run("run", "--rm", "busybox:v1", "echo", "from archive")
    assert (result.returncode, result.stdout) == (0, "from archive\n"), result.stderr


def test_a_missing_image_is_pulled_and_fails_clearly(barque: Barque) -> None:
    # Nothing listens on this port: the pull fails, Docker's way, and nothing is left.
    result = barque.run("run", "--rm", "127.0.0.1:9/nothere", "true")
    assert result.returncode == 125
    assert "Unable to find image '127.0.0.1:9/nothere:latest' locally" in result.stderr
    assert barque.containers() == []


def test_sigterm_to_barque_reaches_the_container(barque: Barque) -> None:
    script = "trap 'exit 7' TERM; echo ready; while :; do sleep 0.1; done"
    proc = subprocess.Popen(
        barque.argv("run", "--rm", "busybox", "sh", "-c", script),
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 7
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert barque.containers() == []


def test_stdin_is_attached_only_with_i(barque: Barque) -> None:
    for flags, expected in (([], ""), (["-i"], "piped\n")):
        result = subprocess.run(
            barque.argv("run", "--rm", *flags, "busybox", "cat"),
            input="piped\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (result.returncode, result.stdout) == (0, expected), result.stderr


def test_image_commands(barque: Barque, tmp_path: str) -> None:
    built = barque.run("image", "build-default")
    assert built.returncode == 0, built.stderr
    layout = os.path.join(str(tmp_path), "layout")
    default_image.build_default_image(layout)
    assert built.stdout.strip() == default_image.image_id(layout)  # deterministic
    archive = os.path.join(str(tmp_path), "busybox.tar")
    saved = barque.run("image", "save-default", "--output", archive)
    assert saved.returncode == 0, saved.stderr
    assert os.path.getsize(archive) > 500_000
    version = barque.run("version")
    assert version.returncode == 0 and version.stdout.startswith("barque version ")
