"""runc 1.1's set-up order, namespaces and devices (issue 12), with runc as the oracle: each
test runs the same bundle under barque-runtime and under runc (own state roots, ids with the
run prefix) and expects runc's behaviour of both."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest

from tests.support.bundles import Runtime

pytestmark = pytest.mark.root

PURE_V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
ENXIO = 6


def _run(rt: Runtime, spec: dict, bundle: str | None = None) -> subprocess.CompletedProcess:
    return rt.cmd("run", "--bundle", bundle or rt.bundle(spec), rt.new_id(), timeout=60)


def _error(proc: subprocess.CompletedProcess) -> str:
    """The error's own words: runc's msg="..." or barque-runtime's line, after their "runc run
    failed: " or "barque-runtime run failed: " and "unable to start container process: "."""
    err = proc.stderr.decode()
    found = re.search(r'msg="(.*)"', err)
    text = found.group(1).replace('\\"', '"') if found else err.strip()
    for prefix in ("barque-runtime: ", "barque-runtime run failed: ", "runc run failed: ",
                   "unable to start container process: "):
        text = text.removeprefix(prefix)
    return text


# --- set-up order ---------------------------------------------------------------------------

def _chdir_denied(rt: Runtime, nnp: bool) -> dict:
    spec = rt.spec(["pwd"])
    spec["process"]["cwd"] = "/tmp"
    spec["process"]["noNewPrivileges"] = nnp
    spec["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["chdir", "fchdir"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": ENXIO}],
    }
    return spec


def test_seccomp_is_loaded_after_the_chdir_into_cwd(rt: Runtime) -> None:
    """With no_new_privs runc loads the filter after its chdir into cwd (as the user): a
    profile that answers chdir with ENXIO does not break the start."""
    proc = _run(rt, _chdir_denied(rt, nnp=True))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"/tmp\n"


def test_seccomp_without_no_new_privs_comes_before_the_chdir(rt: Runtime) -> None:
    """Without no_new_privs the filter needs CAP_SYS_ADMIN, so runc loads it first and the
    chdir fails, in these words."""
    proc = _run(rt, _chdir_denied(rt, nnp=False))
    assert proc.returncode == 1
    assert _error(proc) == ('chdir to cwd ("/tmp") set in config.json failed: '
                            "no such device or address")


def test_create_container_hooks_run_in_the_containers_root(rt: Runtime) -> None:
    out = os.path.join(rt.tmp, f"hook-cwd-{os.path.basename(rt.binary)}")
    spec = rt.spec(["true"])
    spec["hooks"] = {"createContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", f"pwd > {out}"]}]}
    bundle = rt.bundle(spec)
    proc = _run(rt, spec, bundle)
    assert proc.returncode == 0, proc.stderr
    with open(out) as f:
        assert f.read() == os.path.realpath(os.path.join(bundle, "rootfs")) + "\n"


def test_read_only_dev_is_remounted_after_the_mounts_under_it(rt: Runtime) -> None:
    """A read-only /dev tmpfs: devpts, shm and mqueue are mounted under it, the device nodes
    made in it, and only then is it made read-only."""
    spec = rt.spec(["sh", "-c", "cut -d' ' -f5,6 /proc/self/mountinfo | grep '^/dev';"
                    "ls /dev/null /dev/pts/ptmx; touch /dev/x"])
    for mnt in spec["mounts"]:
        if mnt["destination"] == "/dev":
            mnt["options"] = [*mnt["options"], "ro"]
    proc = _run(rt, spec)
    assert proc.returncode == 1, proc.stderr  # the touch
    out = proc.stdout.decode().splitlines()
    assert out[0].startswith("/dev ro,"), out
    assert {line.split()[0] for line in out if line.startswith("/dev")} >= {
        "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"}
    assert "/dev/null" in out and "/dev/pts/ptmx" in out
    assert b"Read-only file system" in proc.stderr


def _user_namespace_spec(rt: Runtime, args: list[str]) -> dict:
    spec = rt.spec(args)
    linux = spec["linux"]
    linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "cgroup"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    spec["mounts"] = [m for m in spec["mounts"]
                      if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
    return spec


def _reachable_by_mapped_root(rt: Runtime, bundle: str) -> None:
    subprocess.run(["chown", "-R", "100000:100000", os.path.join(bundle, "rootfs")], check=True)
    path = bundle
    while path != "/":
        os.chmod(path, os.stat(path).st_mode | 0o011)
        path = os.path.dirname(path)


def test_bind_sources_are_opened_before_the_user_namespace(rt: Runtime) -> None:
    """A bind source below a directory the container's root (host uid 100000) cannot search
    still mounts: runc opens the sources as the host's root."""
    from tests.runtime.test_isolation import user_namespaces_refused

    if user_namespaces_refused():
        pytest.skip("this environment refuses new user namespaces (a chroot, or disabled)")
    locked = os.path.join(rt.tmp, f"locked-{os.path.basename(rt.binary)}")
    os.makedirs(os.path.join(locked, "open"))
    with open(os.path.join(locked, "open", "marker"), "w") as f:
        f.write("reached\n")
    os.chmod(os.path.join(locked, "open"), 0o755)
    spec = _user_namespace_spec(rt, ["cat", "/mnt/marker"])
    spec["mounts"].append({"destination": "/mnt", "type": "bind",
                           "source": os.path.join(locked, "open"), "options": ["rbind", "ro"]})
    bundle = rt.bundle(spec)
    _reachable_by_mapped_root(rt, bundle)
    os.chmod(locked, 0o700)  # after: the walk up from the bundle must not open it
    proc = _run(rt, spec, bundle)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"reached\n"


# --- namespaces -----------------------------------------------------------------------------

def _without_mount_namespace(rt: Runtime, args: list[str]) -> dict:
    spec = rt.spec(args)
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                   if n["type"] != "mount"]
    spec["linux"].pop("maskedPaths", None)
    spec["linux"].pop("readonlyPaths", None)
    return spec


def _in_private_mount_namespace(rt: Runtime, *args: str) -> subprocess.CompletedProcess:
    """The runtime in a mount namespace of its own: without a container mount namespace runc
    mounts in its caller's, and none of that may reach the host."""
    return subprocess.run(["unshare", "--mount", "--propagation", "private", rt.binary,
                           "--root", rt.state_root, *args], capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=60)


def test_a_config_without_a_mount_namespace_runs_chrooted(rt: Runtime) -> None:
    spec = _without_mount_namespace(rt, [
        "sh", "-c", "cat /etc/passwd | head -1; ls /dev/pts/ptmx; test -d /proc/1 && echo proc"])
    proc = _in_private_mount_namespace(rt, "run", "--bundle", rt.bundle(spec), rt.new_id())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"root:x:0:0:root:/root:/bin/sh\n/dev/pts/ptmx\nproc\n"


def test_masked_paths_without_a_mount_namespace_are_refused(rt: Runtime) -> None:
    spec = _without_mount_namespace(rt, ["true"])
    spec["linux"]["maskedPaths"] = ["/proc/kcore"]
    proc = _in_private_mount_namespace(rt, "run", "--bundle", rt.bundle(spec), rt.new_id())
    assert proc.returncode == 1
    assert _error(proc) == "unable to restrict sys entries without a private MNT namespace"


def test_hostname_in_a_uts_namespace_joined_by_path(rt: Runtime) -> None:
    holder = subprocess.Popen(["unshare", "--uts", "sleep", "60"])
    try:
        path = f"/proc/{holder.pid}/ns/uts"
        for _ in range(100):  # until unshare has made it
            if os.stat(path).st_ino != os.stat("/proc/self/ns/uts").st_ino:
                break
            time.sleep(0.02)
        spec = rt.spec(["hostname"])
        spec["hostname"] = "joined-by-path"
        spec["linux"]["namespaces"] = [
            {"type": "uts", "path": path} if n["type"] == "uts" else n
            for n in spec["linux"]["namespaces"]]
        proc = _run(rt, spec)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == b"joined-by-path\n"
        there = subprocess.run(["nsenter", f"--uts={path}", "hostname"], capture_output=True)
        assert there.stdout == b"joined-by-path\n"  # the joined namespace's, as runc sets it
    finally:
        holder.kill()
        holder.wait()


def _root_mount(stdout: bytes) -> list[str]:
    """The optional fields (propagation) of the container's / in its mountinfo."""
    for line in stdout.decode().splitlines():
        fields = line.split()
        if fields[4] == "/":
            return fields[6:fields.index("-")]
    raise AssertionError(stdout)


@pytest.mark.parametrize("propagation,expect", [
    ("unbindable", "unbindable"), ("shared", "shared:"),
    ("rshared", "shared:"), ("private", ""), ("slave", ""),
])
def test_rootfs_propagation_holds_for_root_after_pivot(
        runtime: Runtime, propagation: str, expect: str) -> None:
    """rootfsPropagation is the container's / after pivot_root. runc 1.1.5 set it only on the
    host's / before binding the rootfs (so / ended private, and unbindable failed); runc 1.2
    (commit 04be81b) applies it to / after pivot_root: the behaviour the issue asks for. A
    slave of this test host's private / has no master to show."""
    spec = runtime.spec(["cat", "/proc/self/mountinfo"])
    spec["linux"]["rootfsPropagation"] = propagation
    proc = _run(runtime, spec)
    assert proc.returncode == 0, proc.stderr
    fields = _root_mount(proc.stdout)
    if propagation == "unbindable":
        assert fields == ["unbindable"], fields
    elif expect:
        assert len(fields) == 1 and fields[0].startswith(expect), fields
    else:
        assert not [f for f in fields if f.startswith("shared:")], fields


@pytest.mark.parametrize("propagation,expect", [
    ("slave", "master:"), ("rslave", "master:"), ("private", None), (None, None),
])
def test_a_slave_root_stays_a_slave_of_a_shared_parent(
        runtime: Runtime, propagation: str | None, expect: str | None) -> None:
    """The rootfs below a shared mount (made by the test in a mount namespace of its own):
    asked for, / is a slave of it (runc's fix ec170d8: its parent made a slave, not private);
    otherwise, the default included, it is private."""
    spec = runtime.spec(["cat", "/proc/self/mountinfo"])
    if propagation:
        spec["linux"]["rootfsPropagation"] = propagation
    bundle = runtime.bundle(spec)
    shared = os.path.join(runtime.tmp, "shared")
    os.mkdir(shared)
    script = ('mount -t tmpfs barque-test "$1" && mount --make-shared "$1" && '
              'cp -a "$2" "$1/b" && exec "$3" --root "$4" run --bundle "$1/b" "$5"')
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           script, "sh", shared, bundle, runtime.binary, runtime.state_root,
                           runtime.new_id()], capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    fields = _root_mount(proc.stdout)
    if expect:
        assert len(fields) == 1 and fields[0].startswith(expect), fields
    else:
        assert fields == [], fields


# --- devices --------------------------------------------------------------------------------

def test_fifo_and_unbuffered_devices(rt: Runtime) -> None:
    """linux.devices of type p (a fifo: no cgroup rule) and u (a character device)."""
    spec = rt.spec(["sh", "-c", "stat -c '%F %t:%T %a' /dev/fifo /dev/unbuffered;"
                    "echo through > /dev/unbuffered && echo written"])
    spec["linux"]["devices"] = [
        {"path": "/dev/fifo", "type": "p", "major": 0, "minor": 0, "fileMode": 0o640},
        {"path": "/dev/unbuffered", "type": "u", "major": 1, "minor": 3},  # /dev/null's
    ]
    spec["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"})
    proc = _run(rt, spec)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (b"fifo 0:0 640\ncharacter special file 1:3 666\nwritten\n")


def test_an_unknown_device_type_is_refused_in_runcs_words(rt: Runtime) -> None:
    spec = rt.spec(["true"])
    spec["linux"]["devices"] = [{"path": "/dev/x", "type": "x", "major": 1, "minor": 3}]
    proc = _run(rt, spec)
    assert proc.returncode == 1
    assert _error(proc) == 'invalid device type "x"'
    spec = rt.spec(["true"])
    spec["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "p", "major": 4, "minor": 64, "access": "rwm"})
    proc = _run(rt, spec)
    assert proc.returncode == 1
    assert _error(proc) == 'invalid cgroup device type "p"'


@pytest.mark.parametrize("access,granted", [
    ("wr", "rw"), ("rrw", "rw"), ("mwr", "rwm"), ("rwx", "rw"), ("r w", "rw"), ("mx", "m"),
])
def test_device_access_strings_runc_accepts(rt: Runtime, access: str, granted: str) -> None:
    """runc takes the letters of "rwm" in an access string, in any order or number, and
    ignores the rest. Checked on the container's devices.list where the host has v1's."""
    spec = rt.spec(["sh", "-c", "grep '^c 4:64 ' /sys/fs/cgroup/devices/devices.list || true"])
    spec["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": 4, "minor": 64, "access": access})
    assert "/sys/fs/cgroup" in [m["destination"] for m in spec["mounts"]]
    proc = _run(rt, spec)
    assert proc.returncode == 0, proc.stderr
    if not PURE_V2:
        assert proc.stdout == f"c 4:64 {granted}\n".encode()


def test_device_access_strings_runc_refuses(rt: Runtime) -> None:
    """An empty access, always; one without any of "rwm" only where v1's devices controller
    is used (runc's v2 ignores the rule)."""
    spec = rt.spec(["true"])
    spec["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": 4, "minor": 64, "access": ""})
    proc = _run(rt, spec)
    assert proc.returncode == 1
    assert _error(proc) == "device access at 1 field cannot be empty"
    spec["linux"]["resources"]["devices"][-1]["access"] = "x"
    proc = _run(rt, spec)
    if PURE_V2:
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode == 1
        assert "resulting devices cgroup doesn't precisely match target" in _error(proc)


# --- exec in the container's cgroups --------------------------------------------------------

def _cgroups(text: bytes) -> list[str]:
    return sorted(text.decode().splitlines())


def test_exec_lands_in_every_cgroup_of_the_container(rt: Runtime) -> None:
    """The exec'd process's /proc/self/cgroup is the init's: every v1 hierarchy (named ones
    included) and the unified one of a hybrid host."""
    spec = rt.spec(["sleep", "60"])
    # no cgroup namespace (runc's spec has one on pure v2): the host's paths show
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                   if n["type"] != "cgroup"]
    spec["linux"]["cgroupsPath"] = f"/{rt.prefix}-exec/{os.path.basename(rt.binary)}"
    cid = rt.new_id()
    rt.cmd("run", "--detach", "--bundle", rt.bundle(spec), cid, check=True, timeout=30)
    pid = json.loads(rt.cmd("state", cid, check=True).stdout)["pid"]
    with open(f"/proc/{pid}/cgroup", "rb") as f:
        init = f.read()
    proc = rt.cmd("exec", cid, "cat", "/proc/self/cgroup", timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert _cgroups(proc.stdout) == _cgroups(init)
    assert all(line.endswith(spec["linux"]["cgroupsPath"]) for line in _cgroups(init))
    if PURE_V2:
        return
    # exec --cgroup CONTROLLER:SUB on v1/hybrid: that hierarchy's sub-cgroup, the rest as is
    sub = f"/sys/fs/cgroup/memory{spec['linux']['cgroupsPath']}/sub"
    os.mkdir(sub)
    try:
        proc = rt.cmd("exec", "--cgroup", "memory:sub", cid, "cat", "/proc/self/cgroup",
                      timeout=30)
        assert proc.returncode == 0, proc.stderr
        expect = [line + "/sub" if ":memory:" in line else line for line in _cgroups(init)]
        assert _cgroups(proc.stdout) == expect
    finally:
        os.rmdir(sub)  # before the container's own cgroup goes with `delete`
