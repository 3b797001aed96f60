"""containerd drives barque-runtime through its runc shim, as it drives runc."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from barque.image import default as default_image
from tests.conftest import RUN_PREFIX, runtime_binary
from tests.support.containerd import private_containerd

pytestmark = [pytest.mark.root, pytest.mark.containerd]

IMAGE = "docker.io/library/busybox:latest"


@pytest.fixture(scope="module")
def ctr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    work = tmp_path_factory.mktemp("ctr")
    layout = str(work / "layout")
    default_image.build_default_image(layout)
    archive = str(work / "busybox.tar")
    default_image.write_oci_archive(layout, archive)
    with private_containerd(RUN_PREFIX) as sock:
        # A namespace of this run's own: containerd puts cgroups under /<namespace>/<id>.
        cmd = ["ctr", "--address", sock, "--namespace", RUN_PREFIX]
        subprocess.run([*cmd, "images", "import", archive], check=True, capture_output=True)
        yield cmd


def ctr_run(ctr: list[str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*ctr, "run", "--rm", "--runtime", "io.containerd.runc.v2",
                           "--runc-binary", runtime_binary(), *args], capture_output=True,
                          timeout=timeout)


def test_ctr_run_echo_ok(ctr: list[str]) -> None:
    proc = ctr_run(ctr, IMAGE, f"{RUN_PREFIX}-echo", "echo", "ok")
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().strip() == "ok"


def test_ctr_run_exit_code_and_isolation(ctr: list[str]) -> None:
    proc = ctr_run(ctr, IMAGE, f"{RUN_PREFIX}-exit", "sh", "-c",
                   "echo $$; readlink /proc/self/ns/uts; readlink /proc/self/ns/pid; exit 3")
    assert proc.returncode == 3, proc.stderr.decode()
    pid, uts, pidns = proc.stdout.decode().split()
    assert pid == "1"
    assert uts != os.readlink("/proc/self/ns/uts") and pidns != os.readlink("/proc/self/ns/pid")


def test_ctr_task_lifecycle(ctr: list[str]) -> None:
    cid = f"{RUN_PREFIX}-task"
    subprocess.run([*ctr, "run", "-d", "--runtime", "io.containerd.runc.v2", "--runc-binary",
                    runtime_binary(), IMAGE, cid, "sleep", "60"], check=True,
                   capture_output=True, timeout=120)
    try:
        tasks = subprocess.run([*ctr, "tasks", "ls"], check=True, capture_output=True,
                               text=True).stdout
        assert cid in tasks and "RUNNING" in tasks
        out = subprocess.run([*ctr, "tasks", "exec", "--exec-id", "e1", cid, "echo", "inside"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout.strip() == "inside", out.stderr
        ps = subprocess.run([*ctr, "tasks", "ps", cid], check=True, capture_output=True,
                            text=True).stdout
        assert len(ps.strip().splitlines()) >= 2
        subprocess.run([*ctr, "tasks", "pause", cid], check=True, capture_output=True)
        assert "PAUSED" in subprocess.run([*ctr, "tasks", "ls"], capture_output=True,
                                          text=True).stdout
        subprocess.run([*ctr, "tasks", "resume", cid], check=True, capture_output=True)
        subprocess.run([*ctr, "tasks", "kill", "-s", "SIGKILL", cid], check=True,
                       capture_output=True)
    finally:
        subprocess.run([*ctr, "tasks", "rm", "-f", cid], capture_output=True, timeout=60)
        subprocess.run([*ctr, "containers", "rm", cid], capture_output=True, timeout=60)
    assert cid not in subprocess.run([*ctr, "containers", "ls", "-q"], capture_output=True,
                                     text=True).stdout.split()
    assert not os.path.exists(f"/sys/fs/cgroup/pids/{RUN_PREFIX}/{cid}")
