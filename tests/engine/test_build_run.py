"""The engine's RUN executor for builds: a process in a step's mounted rootfs (a real
overlayfs here, as the builder's), with Docker's defaults, the build networks, RUN mounts, and
nothing left behind."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from barque.build.executor import ExecutorError, RunMount, RunRequest
from barque.engine import build_run
from barque.engine.build_run import EngineExecutor
from barque.engine.context import Engine
from barque.engine.paths import Paths
from barque.network import config as netconfig
from barque.storage import overlay_diff, overlayfs
from tests.cli.conftest import Barque, until
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]


class Rootfs:
    """A step's filesystem as the builder makes it: the busybox rootfs under an overlay."""

    def __init__(self, base: str, lower: str) -> None:
        self.lower = lower
        self.upper = os.path.join(base, "upper")
        self.work = os.path.join(base, "work")
        self.merged = os.path.join(base, "merged")
        for d in (self.upper, self.work, self.merged):
            os.makedirs(d)
        overlayfs.mount_overlay([lower], self.upper, self.work, self.merged)

    def changes(self) -> list[str]:
        """What the run changed, as the layer will hold it (`docker diff` of the upper)."""
        return [f"{kind} {path}" for kind, path in overlay_diff.diff(self.upper, [self.lower])]


@pytest.fixture
def rootfs(tmp_path: os.PathLike, busybox_rootfs: str) -> Iterator[Rootfs]:
    fs = Rootfs(str(tmp_path), busybox_rootfs)
    yield fs
    overlayfs.unmount(fs.merged)


@pytest.fixture
def engine(barque: Barque) -> Iterator[Engine]:
    with Engine(Paths(barque.root, barque.runroot)) as e:
        yield e


class Output:
    def __init__(self) -> None:
        self.chunks: list[tuple[int, bytes]] = []

    def __call__(self, stream: int, data: bytes) -> None:
        self.chunks.append((stream, data))

    def text(self, stream: int) -> str:
        return b"".join(d for s, d in self.chunks if s == stream).decode()


def run(engine: Engine, rootfs: Rootfs, script: str, **kwargs: object) -> tuple[int, Output]:
    out = Output()
    request = RunRequest(rootfs=rootfs.merged, args=["/bin/sh", "-c", script],
                         env=list(kwargs.pop("env", [])),  # type: ignore[call-overload]
                         cwd=str(kwargs.pop("cwd", "/")), **kwargs)  # type: ignore[arg-type]
    with EngineExecutor(engine) as executor:
        code = executor.run(request, out)
    assert_nothing_left(engine, rootfs)
    return code, out


def _cgroups_named(prefix: str) -> list[str]:
    return glob.glob(f"/sys/fs/cgroup/barque/{prefix}*") + \
        glob.glob(f"/sys/fs/cgroup/*/barque/{prefix}*")


def _no_lasting_cgroups(prefix: str, timeout: float = 5.0) -> bool:
    """No build cgroup that stays: cgroups are machine-wide, and another process's build (a
    parallel test run, a benchmark) may hold one for its step's time; a leaked one stays."""
    seen = set(_cgroups_named(prefix))
    deadline = time.monotonic() + timeout
    while seen and time.monotonic() < deadline:
        time.sleep(0.1)
        seen &= set(_cgroups_named(prefix))
    return not seen


def assert_nothing_left(engine: Engine, rootfs: Rootfs) -> None:
    runroot = engine.paths.runroot
    assert os.listdir(build_run.runs_dir(engine)) == []
    runtime_root = engine.paths.runtime_root
    assert [n for n in os.listdir(runtime_root) if n.startswith(build_run.ID_PREFIX)] == [] \
        if os.path.isdir(runtime_root) else True
    netns = os.path.join(runroot, "netns")
    assert not os.path.isdir(netns) or os.listdir(netns) == []
    assert _no_lasting_cgroups(build_run.ID_PREFIX)
    rows = engine.records.conn.execute("SELECT container_id FROM endpoints").fetchall()
    assert rows == []
    with open("/proc/self/mountinfo") as f:
        below = [line.split()[4] for line in f if line.split()[4].startswith(rootfs.merged + "/")]
    assert below == []


# --- the process -------------------------------------------------------------------------------

def test_a_run_changes_the_rootfs_and_returns_its_exit_code(engine: Engine,
                                                            rootfs: Rootfs) -> None:
    code, out = run(engine, rootfs, "echo made > /made; echo out; echo err >&2; exit 3",
                    network="none")
    assert code == 3
    assert out.text(1) == "out\n"
    assert out.text(2) == "err\n"
    # The mount points the runtime made for /etc/hosts & co. are gone with the run.
    assert rootfs.changes() == ["A /made"]
    with open(os.path.join(rootfs.upper, "made")) as f:
        assert f.read() == "made\n"


def test_a_bare_rootfs_gets_no_mount_points_in_its_layer(engine: Engine,
                                                        tmp_path: os.PathLike,
                                                        busybox_rootfs: str) -> None:
    """FROM scratch + COPY busybox: the runtime needs /proc, /sys, /dev, /etc/hosts & co. as
    mount points; none of them may end up in the step's layer."""
    import shutil

    bare = os.path.join(str(tmp_path), "bare")
    os.makedirs(os.path.join(bare, "bin"))
    shutil.copy2(os.path.join(busybox_rootfs, "bin", "busybox"), os.path.join(bare, "bin"))
    os.symlink("busybox", os.path.join(bare, "bin", "sh"))
    fs = Rootfs(os.path.join(str(tmp_path), "fs"), bare)
    try:
        code, out = run(engine, fs, "/bin/busybox ls / > /bin/listing", network="none")
        assert code == 0, out.text(2)
        with open(os.path.join(fs.upper, "bin", "listing")) as f:
            assert sorted(f.read().split()) == ["bin", "dev", "etc", "proc", "sys"]
        assert fs.changes() == ["C /bin", "A /bin/listing"]
    finally:
        overlayfs.unmount(fs.merged)


def test_a_signal_is_128_plus_its_number(engine: Engine, rootfs: Rootfs) -> None:
    """(The container's init ignores signals sent from inside: the test kills it.)"""
    import secrets
    import threading

    seconds = str(100000 + secrets.randbelow(100000))
    needle = f"sleep\0{seconds}".encode()

    def kill_it() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for pid in os.listdir("/proc"):
                if pid.isdigit() and _cmdline(pid).startswith(needle):
                    os.kill(int(pid), 9)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_it)
    killer.start()
    code, _ = run(engine, rootfs, f"exec sleep {seconds}", network="none")
    killer.join()
    assert code == 137


def test_user_workdir_env_and_hostname(engine: Engine, rootfs: Rootfs) -> None:
    code, out = run(engine, rootfs, 'id -u; id -g; pwd; echo "$A $HOME"; hostname; '
                    'cat /etc/hostname', user="user", cwd="/new/dir", env=["A=b"],
                    network="none")
    assert code == 0, out.text(2)
    assert out.text(1).split("\n") == ["1000", "1000", "/new/dir", "b /home/user",
                                       "buildkitsandbox", "buildkitsandbox", ""]
    assert rootfs.changes() == ["A /new", "A /new/dir"]  # the workdir, made as BuildKit
    for made in ("new", "new/dir"):  # makes it: the user's
        st = os.stat(os.path.join(rootfs.upper, made))
        assert (st.st_uid, st.st_gid) == (1000, 1000)


def test_docker_defaults_apply(engine: Engine, rootfs: Rootfs) -> None:
    code, out = run(engine, rootfs, "grep -E '^(CapEff|Seccomp):' /proc/self/status; "
                    "cat /proc/kcore | wc -c; df /dev/shm | tail -1", network="none")
    assert code == 0
    lines = out.text(1).splitlines()
    assert lines[0].split() == ["CapEff:", "00000000a80425fb"]  # Docker's 14
    assert lines[1].split() == ["Seccomp:", "2"]
    assert lines[2] == "0"  # masked
    assert lines[3].split()[1] == "65536"  # 64 MiB /dev/shm


def test_security_insecure_is_privileged(engine: Engine, rootfs: Rootfs) -> None:
    code, out = run(engine, rootfs, "grep -E '^(CapEff|Seccomp):' /proc/self/status",
                    network="none", security="insecure")
    assert code == 0
    with open("/proc/self/status") as f:
        bounding = next(line for line in f if line.startswith("CapBnd:")).split()[1]
    assert out.text(1).split() == ["CapEff:", bounding, "Seccomp:", "0"]


def test_an_unknown_user_is_refused_and_nothing_is_left(engine: Engine,
                                                        rootfs: Rootfs) -> None:
    with pytest.raises(ExecutorError, match="unable to find user nobody2"):
        run(engine, rootfs, "true", user="nobody2", network="default")
    assert_nothing_left(engine, rootfs)
    assert rootfs.changes() == []


def test_a_missing_program_is_an_executor_error(engine: Engine, rootfs: Rootfs) -> None:
    request = RunRequest(rootfs=rootfs.merged, args=["/nope"], env=[], cwd="/",
                         network="none")
    out = Output()
    with pytest.raises(ExecutorError) as caught:
        EngineExecutor(engine).run(request, out)
    assert str(caught.value) == ("barque-runtime run failed: unable to start container "
                                 'process: exec: "/nope": stat /nope: no such file or directory')
    assert out.chunks == []  # the runtime's own words are the error's, not the output's
    assert_nothing_left(engine, rootfs)


# --- networks -----------------------------------------------------------------------------------

def test_network_none_has_only_loopback(engine: Engine, rootfs: Rootfs) -> None:
    code, out = run(engine, rootfs, "ls /sys/class/net", network="none")
    assert code == 0
    assert out.text(1).split() == ["lo"]


def test_network_host_sees_the_hosts_interfaces(engine: Engine, rootfs: Rootfs) -> None:
    code, out = run(engine, rootfs, "ls /sys/class/net", network="host")
    assert code == 0
    assert sorted(out.text(1).split()) == sorted(os.listdir("/sys/class/net"))


def test_network_default_is_on_the_default_bridge(engine: Engine, rootfs: Rootfs) -> None:
    settings = netconfig.load(engine.paths.root)
    gateway = settings.bip.split("/")[0]  # the test root's daemon.json sets it
    prefix = gateway.rsplit(".", 1)[0] + "."
    code, out = run(engine, rootfs, f"ip -4 -o addr show eth0; ping -c 1 -W 5 {gateway}; "
                    "cat /etc/hosts", network="default")
    assert code == 0, out.text(1) + out.text(2)
    address = out.text(1).split()[3]
    assert address.startswith(prefix) and address.endswith("/24")
    assert "1 packets received" in out.text(1)
    # BuildKit's /etc/hosts, whatever the network
    assert out.text(1).endswith("127.0.0.1\tlocalhost buildkitsandbox\n"
                                "::1\tlocalhost ip6-localhost ip6-loopback\n")
    # The veth goes with the namespace (the kernel ends it moments later).
    until(lambda: not any(name.startswith("veth") and _on_bridge(name, settings.bridge)
                          for name in os.listdir("/sys/class/net")), 10)


def _on_bridge(link: str, bridge: str) -> bool:
    return os.path.realpath(f"/sys/class/net/{link}/master").endswith("/" + bridge)


# --- mounts -------------------------------------------------------------------------------------

def test_bind_mounts_are_read_only_unless_rw(engine: Engine, rootfs: Rootfs,
                                             tmp_path: os.PathLike) -> None:
    src = os.path.join(str(tmp_path), "src")
    os.makedirs(src)
    with open(os.path.join(src, "in"), "w") as f:
        f.write("data\n")
    mounts = [RunMount("bind", "/ro", src, readonly=True),
              RunMount("bind", "deep", src, readonly=False)]  # relative: in the workdir
    code, out = run(engine, rootfs, "cat /ro/in; touch /ro/x || echo refused; "
                    "touch /rw/deep/y && echo written", mounts=mounts, network="none",
                    cwd="/rw")
    assert code == 0
    assert out.text(1) == "data\nrefused\nwritten\n"
    assert sorted(os.listdir(src)) == ["in", "y"]
    assert rootfs.changes() == ["A /rw"]  # the workdir; /ro and /rw/deep: mount points only


def test_a_cache_mount_keeps_its_files_between_runs(engine: Engine, rootfs: Rootfs,
                                                    tmp_path: os.PathLike) -> None:
    cache = os.path.join(str(tmp_path), "cache")
    os.makedirs(cache)
    mount = RunMount("cache", "/root/.cache", cache, options={"sharing": "locked"})
    assert run(engine, rootfs, "echo 1 >> /root/.cache/n", mounts=[mount],
               network="none")[0] == 0
    code, out = run(engine, rootfs, "echo 2 >> /root/.cache/n; cat /root/.cache/n",
                    mounts=[mount], network="none")
    assert code == 0 and out.text(1) == "1\n2\n"
    assert rootfs.changes() == []


def test_a_locked_cache_is_used_by_one_run_at_a_time(engine: Engine, barque: Barque,
                                                     tmp_path: os.PathLike,
                                                     busybox_rootfs: str) -> None:
    """Two steps of parallel stages (threads of one executor, both on the default bridge):
    the second waits for the first to release the cache."""
    import threading

    cache = os.path.join(str(tmp_path), "cache")
    os.makedirs(cache)
    executor = EngineExecutor(engine)
    results: list[int] = []
    filesystems = [Rootfs(os.path.join(str(tmp_path), f"fs{i}"), busybox_rootfs)
                   for i in range(2)]

    def step(fs: Rootfs) -> None:
        request = RunRequest(rootfs=fs.merged, args=["/bin/sh", "-c", "mkdir /c/busy || exit 9;"
                                                     " sleep 0.5; rmdir /c/busy"],
                             env=[], cwd="/", network="default",
                             mounts=[RunMount("cache", "/c", cache,
                                              options={"sharing": "locked"})])
        results.append(executor.run(request, Output()))

    try:
        threads = [threading.Thread(target=step, args=(fs,)) for fs in filesystems]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [0, 0]
        for fs in filesystems:
            assert_nothing_left(engine, fs)
    finally:
        for fs in filesystems:
            overlayfs.unmount(fs.merged)


def test_a_private_cache_in_use_is_a_fresh_one(engine: Engine, rootfs: Rootfs,
                                              tmp_path: os.PathLike) -> None:
    import threading

    cache = os.path.join(str(tmp_path), "cache")
    os.makedirs(cache)
    os.chmod(cache, 0o751)
    mount = RunMount("cache", "/c", cache, options={"sharing": "private"})
    executor = EngineExecutor(engine)
    first = threading.Thread(target=executor.run, args=(RunRequest(
        rootfs=rootfs.merged, args=["/bin/sh", "-c", "touch /c/a; sleep 2"], env=[], cwd="/",
        network="none", mounts=[mount]), Output()))
    first.start()
    try:
        until(lambda: os.path.exists(os.path.join(cache, "a")))
        out = Output()
        code = executor.run(RunRequest(rootfs=rootfs.merged, args=[
            "/bin/sh", "-c", "stat -c %a /c; ls /c; touch /c/b"], env=[], cwd="/",
            network="none", mounts=[mount]), out)
    finally:
        first.join()
    assert_nothing_left(engine, rootfs)
    assert code == 0 and out.text(1) == "751\n"  # empty, as the cache's mode
    assert os.listdir(cache) == ["a"]
    assert sorted(os.listdir(str(tmp_path))) == ["cache", "merged", "upper", "work"]


def test_a_tmpfs_mount_has_its_size_and_leaves_nothing(engine: Engine,
                                                       rootfs: Rootfs) -> None:
    mount = RunMount("tmpfs", "/scratch", options={"size": str(4 << 20)})
    code, out = run(engine, rootfs, "echo x > /scratch/f; df -k /scratch | tail -1; "
                    "cp /bin/busybox /scratch/ && /scratch/busybox echo ran",
                    mounts=[mount], network="none")
    assert code == 0, out.text(2)
    lines = out.text(1).splitlines()
    assert lines[0].split()[1] == "4096"
    assert lines[1] == "ran"  # not noexec, as BuildKit's
    assert rootfs.changes() == []


def _secret_file(tmp_path: os.PathLike, text: str) -> str:
    path = os.path.join(str(tmp_path), "secret")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_a_secret_has_its_mode_and_owner_and_stays_out_of_the_layer(
        engine: Engine, rootfs: Rootfs, tmp_path: os.PathLike) -> None:
    secret = _secret_file(tmp_path, "s3cret")
    mounts = [RunMount("secret", "/run/secrets/token", secret, readonly=True),
              RunMount("secret", "/etc/other", secret, readonly=True,
                       options={"mode": "0440", "uid": "1000", "gid": "1000"})]
    code, out = run(engine, rootfs, "cat /run/secrets/token; echo; "
                    "stat -c '%a %u %g' /run/secrets/token /etc/other; "
                    "echo x > /run/secrets/token || echo refused", mounts=mounts,
                    network="none")
    assert code == 0, out.text(2)
    assert out.text(1) == "s3cret\n400 0 0\n440 1000 1000\nrefused\n"
    assert rootfs.changes() == []


def test_a_secret_as_a_variable_and_an_optional_one_not_given(
        engine: Engine, rootfs: Rootfs, tmp_path: os.PathLike) -> None:
    secret = _secret_file(tmp_path, "s3cret")
    mounts = [RunMount("secret", "", secret, options={"id": "tok", "env": "TOKEN"}),
              RunMount("secret", "/run/secrets/absent", None, options={"id": "absent"})]
    code, out = run(engine, rootfs, 'echo "$TOKEN"; ls /run/secrets 2>&1 || echo none',
                    mounts=mounts, network="none")
    assert code == 0
    assert out.text(1) == "s3cret\nls: /run/secrets: No such file or directory\nnone\n"
    required = RunMount("secret", "/run/secrets/absent", None,
                        options={"id": "absent", "required": "true"})
    with pytest.raises(ExecutorError, match="secret absent: not found"):
        run(engine, rootfs, "true", mounts=[required], network="none")
    assert_nothing_left(engine, rootfs)
    assert rootfs.changes() == []


def test_mount_targets_through_a_symlink_stay_in_the_rootfs(engine: Engine, rootfs: Rootfs,
                                                            tmp_path: os.PathLike) -> None:
    """A layer made /run a symlink to a host path (absolute and by `..`): the mounts, and the
    stubs the runtime makes for them, land inside the rootfs, never on the host."""
    victim = os.path.join(str(tmp_path), "victim")
    os.makedirs(victim)
    os.symlink(victim, os.path.join(rootfs.merged, "run"))
    os.symlink("../../../../../../../../.." + victim, os.path.join(rootfs.merged, "cache"))
    src = os.path.join(str(tmp_path), "src")
    os.makedirs(src)
    mounts = [RunMount("tmpfs", "/run/t"), RunMount("bind", "/cache/b", src, readonly=False)]
    code, out = run(engine, rootfs, "touch /run/t/marker /cache/b/marker && echo ok",
                    mounts=mounts, network="none")
    assert code == 0, out.text(2)
    assert os.listdir(victim) == []
    assert os.listdir(src) == ["marker"]  # the bind's own source
    assert rootfs.changes() == ["A /cache", "A /run"]  # the symlinks only: the stubs are gone


# --- interruption and crashes -------------------------------------------------------------------

def test_an_interrupted_run_leaves_nothing(engine: Engine, rootfs: Rootfs) -> None:
    def interrupt(stream: int, data: bytes) -> None:
        raise KeyboardInterrupt

    request = RunRequest(rootfs=rootfs.merged, args=["/bin/sh", "-c", "echo go; sleep 60"],
                         env=[], cwd="/", network="default")
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        EngineExecutor(engine).run(request, interrupt)
    assert time.monotonic() - started < 30
    assert_nothing_left(engine, rootfs)


def test_an_interruption_while_preparing_leaves_nothing(engine: Engine, rootfs: Rootfs,
                                                       tmp_path: os.PathLike,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Interrupted after the network, a secret and a locked cache were set up, before the
    runtime ran: all of it is unmade."""
    from barque.engine import spec

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(spec, "make_spec", interrupted)
    secret = _secret_file(tmp_path, "s")
    cache = os.path.join(str(tmp_path), "cache")
    os.makedirs(cache)
    request = RunRequest(rootfs=rootfs.merged, args=["true"], env=[], cwd="/",
                         network="default",
                         mounts=[RunMount("secret", "/run/secrets/s", secret),
                                 RunMount("cache", "/c", cache, options={"sharing": "locked"})])
    with EngineExecutor(engine) as executor:
        with pytest.raises(KeyboardInterrupt):
            executor.run(request, Output())
    assert_nothing_left(engine, rootfs)
    import fcntl

    fd = os.open(cache, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released
    finally:
        os.close(fd)


_KILLED_BUILD = """
import sys
from barque.build.executor import RunRequest
from barque.engine.build_run import EngineExecutor
from barque.engine.context import Engine
from barque.engine.paths import Paths
root, runroot, rootfs = sys.argv[1:4]
with Engine(Paths(root, runroot)) as engine:
    EngineExecutor(engine).run(RunRequest(rootfs=rootfs, args=["/bin/sh", "-c",
        "touch /tmp/started; sleep 60"], env=[], cwd="/", network="default"),
        lambda s, d: None)
"""


def test_what_a_killed_build_left_is_reclaimed(engine: Engine, rootfs: Rootfs) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_BUILD, engine.paths.root,
                             engine.paths.runroot, rootfs.merged])
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(rootfs.merged, "tmp/started")):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    [left] = [n for n in os.listdir(build_run.runs_dir(engine)) if not n.endswith(".lock")]
    assert os.path.exists(os.path.join(engine.paths.runroot, "netns", left))
    EngineExecutor(engine)  # a new build's executor reclaims it
    # The killed build's runtime process may take a moment to see its container end.
    deadline = time.monotonic() + 10
    while any(left.encode() in _cmdline(pid) for pid in os.listdir("/proc") if pid.isdigit()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert_nothing_left(engine, rootfs)


def test_a_cgroup_left_without_runtime_state_is_reclaimed(engine: Engine,
                                                         rootfs: Rootfs) -> None:
    """A build killed while the runtime had made the cgroup but not yet its state: the
    dead run's cgroup (with a process in it) goes at the next executor's start."""
    from barque.cgroups import open_manager

    run_id = build_run.ID_PREFIX + "0" * 24
    run_dir = os.path.join(build_run.runs_dir(engine), run_id)
    os.makedirs(run_dir)
    with open(run_dir + ".lock", "w"):
        pass  # its claim's lock, which nobody holds: the run is dead
    manager = open_manager(f"/barque/{run_id}", run_id)
    manager.create()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        manager.add_pid(sleeper.pid)
        assert _cgroups_named(run_id)
        EngineExecutor(engine).close()
        assert sleeper.wait(timeout=10) == -9
    finally:
        sleeper.kill()
        sleeper.wait()
        if manager.exists():
            manager.destroy()
    assert_nothing_left(engine, rootfs)


def _cmdline(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""
