"""What a process sees from inside: namespaces, pid 1, filesystem, identity, limits, paths."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from tests.support.bundles import Runtime

pytestmark = pytest.mark.root


def ns_inode(pid: object, name: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{name}")


def test_namespaces_differ_from_host(runtime: Runtime) -> None:
    spec = runtime.spec(["sh", "-c", "for n in pid net ipc uts mnt cgroup; do "
                                     "readlink /proc/self/ns/$n; done"])
    if {"type": "cgroup"} not in spec["linux"]["namespaces"]:  # runc's default: v2 only
        spec["linux"]["namespaces"].append({"type": "cgroup"})
    proc = runtime.run(spec)
    assert proc.returncode == 0, proc.stderr
    inside = proc.stdout.decode()
    host = [ns_inode("self", n) for n in ("pid", "net", "ipc", "uts", "mnt", "cgroup")]
    for mine, theirs in zip(inside.split(), host, strict=True):
        assert mine != theirs


def test_pid_one_and_process_list(runtime: Runtime) -> None:
    out = runtime.output(["sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"])
    pid, count = out.split()
    assert pid == "1"
    assert int(count) <= 3  # sh, ls, grep — nothing of the host


def test_host_files_invisible(runtime: Runtime) -> None:
    marker = f"/tmp/{runtime.prefix}-{uuid.uuid4().hex}"
    open(marker, "w").close()
    try:
        out = runtime.output(["sh", "-c", f"test -e {marker} && echo seen || echo hidden; "
                                          "cat /proc/1/mountinfo | wc -l"])
        assert out.split()[0] == "hidden"
    finally:
        os.unlink(marker)


def test_hostname_env_cwd_user(runtime: Runtime) -> None:
    spec = runtime.spec(["sh", "-c", "hostname; echo $FOO; pwd; id -u; id -g; id -G; umask"])
    spec["hostname"] = "boat"
    spec["process"]["env"].append("FOO=bar baz")
    spec["process"]["cwd"] = "/home/user"
    spec["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 65534],
                               "umask": 0o027}
    proc = runtime.run(spec)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert lines[0] == "boat"
    assert lines[1] == "bar baz"
    assert lines[2] == "/home/user"
    assert lines[3:5] == ["1000", "1000"]
    assert set(lines[5].split()) == {"1000", "5", "65534"}
    assert lines[6] == "0027"


def test_rlimits(runtime: Runtime) -> None:
    spec = runtime.spec(["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"])
    spec["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
    ]
    proc = runtime.run(spec)
    assert proc.stdout.decode().split() == ["321", "654", "0"], proc.stderr


def test_rlimit_above_host_hard_limit_fails_clearly(runtime: Runtime) -> None:
    spec = runtime.spec(["true"])
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    can_raise = os.path.exists("/proc/self/status") and _has_cap(24)
    if can_raise:
        pytest.skip("this host lets root raise RLIMIT_NOFILE (CAP_SYS_RESOURCE)")
    spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}]
    proc = runtime.run(spec)
    assert proc.returncode == 1 and b"RLIMIT_NOFILE" in proc.stderr


def _has_cap(num: int) -> bool:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return bool(int(line.split()[1], 16) >> num & 1)
    return False


def _cap_line(out: str, name: str) -> int:
    for line in out.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"{name} not in {out}")


def test_capabilities_as_configured(runtime: Runtime) -> None:
    caps = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    spec = runtime.spec(["cat", "/proc/self/status"])
    spec["process"]["capabilities"] = {k: list(caps) for k in
                                       ("bounding", "effective", "permitted")}
    out = runtime.output(spec["process"]["args"], process=spec["process"])
    want = (1 << 0) | (1 << 5) | (1 << 10)
    assert _cap_line(out, "CapEff") == want
    assert _cap_line(out, "CapPrm") == want
    assert _cap_line(out, "CapBnd") == want
    assert _cap_line(out, "CapInh") == 0


def test_capabilities_non_root_ambient(runtime: Runtime) -> None:
    spec = runtime.spec(["cat", "/proc/self/status"])
    spec["process"]["user"] = {"uid": 1000, "gid": 1000}
    spec["process"]["capabilities"] = {k: ["CAP_NET_BIND_SERVICE"] for k in
                                       ("bounding", "effective", "permitted", "inheritable",
                                        "ambient")}
    out = runtime.output(spec["process"]["args"], process=spec["process"])
    assert _cap_line(out, "CapEff") == 1 << 10
    assert _cap_line(out, "CapAmb") == 1 << 10


def test_no_new_privileges(runtime: Runtime) -> None:
    out = runtime.output(["grep", "NoNewPrivs", "/proc/self/status"])
    assert out.split()[1] == "1"


def test_masked_and_readonly_paths(runtime: Runtime) -> None:
    spec = runtime.spec(["sh", "-c",
                         "cat /proc/kcore | wc -c; ls /sys/firmware | wc -l; "
                         "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo rw || echo ro;"
                         "touch /etc/masked-file.txt 2>/dev/null; cat /etc/secret"])
    rootfs_secret = "secret contents"
    bundle = runtime.bundle(spec)
    with open(os.path.join(bundle, "rootfs/etc/secret"), "w") as f:
        f.write(rootfs_secret)
    import json

    spec["linux"]["maskedPaths"].append("/etc/secret")
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(dict(spec, root={"path": "rootfs"}), f)
    proc = runtime.cmd("run", "--bundle", bundle, runtime.new_id())
    lines = proc.stdout.decode().split()
    assert lines[0] == "0"  # /proc/kcore masked by /dev/null
    assert lines[1] == "0"  # /sys/firmware masked by an empty tmpfs
    assert lines[2] == "ro"  # /proc/sys read-only
    assert rootfs_secret not in proc.stdout.decode()


def test_readonly_root(runtime: Runtime) -> None:
    spec = runtime.spec(["sh", "-c", "touch /x 2>/dev/null && echo rw || echo ro; "
                                     "touch /tmp/x 2>/dev/null && echo rw || echo ro"])
    spec["root"]["readonly"] = True
    spec["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev"]})
    proc = runtime.run(spec)
    assert proc.stdout.decode().split() == ["ro", "rw"], proc.stderr


def test_mounts_bind_tmpfs_ro(runtime: Runtime, tmp_path: object) -> None:
    host_dir = os.path.join(str(tmp_path), "shared")
    os.makedirs(host_dir)
    with open(os.path.join(host_dir, "hello"), "w") as f:
        f.write("from host")
    spec = runtime.spec(["sh", "-c", "cat /mnt/ro/hello; touch /mnt/ro/x 2>/dev/null && echo w "
                                     "|| echo nw; echo hi > /mnt/rw/new; grep ' /scratch ' "
                                     "/proc/mounts"])
    spec["mounts"] += [
        {"destination": "/mnt/ro", "type": "bind", "source": host_dir,
         "options": ["rbind", "ro"]},
        {"destination": "/mnt/rw", "type": "bind", "source": host_dir, "options": ["bind"]},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
         "options": ["size=1m", "mode=700"]},
    ]
    out = runtime.output(spec["process"]["args"], mounts=spec["mounts"])
    assert out.startswith("from host")
    assert "nw" in out
    assert "tmpfs" in out and "size=1024k" in out and "mode=700" in out
    assert open(os.path.join(host_dir, "new")).read() == "hi\n"


def test_dev_nodes_and_symlinks(runtime: Runtime) -> None:
    spec = runtime.spec(["sh", "-c", "ls -l /dev/null /dev/zero /dev/full /dev/urandom /dev/tty "
                                     "/dev/fuse; readlink /dev/fd; readlink /dev/ptmx; "
                                     "head -c 4 /dev/zero | wc -c; ls -d /dev/pts /dev/shm "
                                     "/dev/mqueue"])
    spec["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                                 "fileMode": 0o600, "uid": 0, "gid": 0}]
    spec["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 10,
                                                  "minor": 229, "access": "rwm"})
    out = runtime.output(spec["process"]["args"], linux=spec["linux"])
    assert "/proc/self/fd" in out and "pts/ptmx" in out
    assert "crw-------" in out.split("/dev/fuse")[0].splitlines()[-1] or "crw-------" in out
    assert "\n4\n" in out


def test_device_cgroup_denies_unlisted(runtime: Runtime) -> None:
    # /dev/kmsg bound in from the host, but absent from the device rules: opening it is denied.
    spec = runtime.spec(["sh", "-c", "head -c1 /dev/kmsg 2>&1; true"])
    spec["mounts"].append({"destination": "/dev/kmsg", "type": "bind", "source": "/dev/kmsg",
                           "options": ["bind"]})
    out = runtime.output(spec["process"]["args"], mounts=spec["mounts"])
    assert "Operation not permitted" in out


def test_sysctl_and_domainname(runtime: Runtime) -> None:
    spec = runtime.spec(["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward; "
                                     "cat /proc/sys/kernel/domainname"])
    spec["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    spec["domainname"] = "example.org"
    out = runtime.output(spec["process"]["args"], linux=spec["linux"], domainname="example.org")
    assert out.split() == ["1", "example.org"]


def test_loopback_up_in_new_netns(runtime: Runtime) -> None:
    out = runtime.output(["cat", "/sys/class/net/lo/operstate", "/proc/net/dev"])
    assert out.split()[0] in ("unknown", "up")
    assert "eth0" not in out


def test_join_network_namespace_by_path(runtime: Runtime) -> None:
    name = f"{runtime.prefix}-ns"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        path = f"/var/run/netns/{name}"
        spec = runtime.spec(["readlink", "/proc/self/ns/net"])
        for ns in spec["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = path
        out = runtime.output(spec["process"]["args"], linux=spec["linux"])
        assert out.strip() == f"net:[{os.stat(path).st_ino}]"
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def test_join_namespaces_of_another_container(runtime: Runtime) -> None:
    # The engine's --network/--ipc/--uts container:NAME: joined by the init itself (no stage 1).
    first = runtime.new_id()
    runtime.cmd("run", "-d", "--bundle", runtime.bundle(runtime.spec(["sleep", "600"])), first,
                check=True)
    pid = runtime.state(first)["pid"]
    kinds = {"network": "net", "ipc": "ipc", "uts": "uts"}
    spec = runtime.spec(["sh", "-c", "for n in net ipc uts pid mnt; do readlink /proc/self/ns/$n; "
                                     "done"])
    spec.pop("hostname", None)
    for ns in spec["linux"]["namespaces"]:
        if ns["type"] in kinds:
            ns["path"] = f"/proc/{pid}/ns/{kinds[ns['type']]}"
    proc = runtime.run(spec)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode().split()
    theirs = [os.readlink(f"/proc/{pid}/ns/{n}") for n in ("net", "ipc", "uts", "pid", "mnt")]
    assert out[:3] == theirs[:3]
    assert out[3] != theirs[3] and out[4] != theirs[4]


def test_joining_a_missing_namespace_fails_cleanly(runtime: Runtime) -> None:
    spec = runtime.spec(["true"])
    path = f"/run/netns/{runtime.prefix}-missing"
    for ns in spec["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = path
    cid = runtime.new_id()
    proc = runtime.cmd("run", "--bundle", runtime.bundle(spec), cid)
    assert proc.returncode == 1
    assert f"cannot join network namespace {path}: No such file or directory".encode() \
        in proc.stderr
    assert not os.path.exists(os.path.join(runtime.state_root, cid))


def user_namespaces_refused() -> bool:
    # The kernel refuses unshare(CLONE_NEWUSER) inside a chroot (the cgroup2 guest runs its
    # command in one) or where user namespaces are disabled.
    return subprocess.run(["unshare", "--user", "true"], capture_output=True).returncode != 0


def test_user_namespace_mapping(runtime: Runtime) -> None:
    if user_namespaces_refused():
        pytest.skip("this environment refuses new user namespaces (a chroot, or disabled)")
    spec = runtime.spec(["sh", "-c", "id -u; cat /proc/self/uid_map; stat -c %u /bin/busybox"])
    spec["linux"]["namespaces"].append({"type": "user"})
    spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                   if n["type"] != "cgroup"]
    spec["mounts"] = [m for m in spec["mounts"] if m["destination"] not in ("/sys",
                                                                            "/sys/fs/cgroup")]
    bundle = runtime.bundle(spec)
    subprocess.run(["chown", "-R", "100000:100000", os.path.join(bundle, "rootfs")], check=True)
    # The mapped root is uid 100000 on the host: it must be able to reach the bundle.
    path = bundle
    while path != "/":
        os.chmod(path, os.stat(path).st_mode | 0o011)
        path = os.path.dirname(path)
    proc = runtime.cmd("run", "--bundle", bundle, runtime.new_id())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().split()
    assert lines[0] == "0"
    assert lines[1:4] == ["0", "100000", "65536"]
    assert lines[4] == "0"


def test_time_namespace_offsets(runtime: Runtime) -> None:
    if not os.path.exists("/proc/self/ns/time"):
        pytest.skip("kernel without time namespaces")
    spec = runtime.spec(["cat", "/proc/uptime"])
    spec["linux"]["namespaces"].append({"type": "time"})
    spec["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 365, "nanosecs": 0}}
    out = runtime.output(spec["process"]["args"], linux=spec["linux"])
    assert float(out.split()[0]) > 86400 * 365


def test_no_pivot(runtime: Runtime) -> None:
    spec = runtime.spec(["sh", "-c", "echo $$; ls /"])
    cid = runtime.new_id()
    proc = runtime.cmd("run", "--no-pivot", "--bundle", runtime.bundle(spec), cid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().split()[0] == "1"
    assert "busybox" not in proc.stdout.decode().split()[1:]  # / is the rootfs, not the host


def test_exec_into_no_pivot_container_sees_its_root(runtime: Runtime) -> None:
    bundle = runtime.bundle(runtime.spec(["sleep", "600"]))
    with open(os.path.join(bundle, "rootfs", "marker-in-rootfs"), "w") as f:
        f.write("inside\n")
    cid = runtime.new_id()
    runtime.cmd("run", "-d", "--no-pivot", "--bundle", bundle, cid, check=True)
    proc = runtime.cmd("exec", cid, "cat", "/marker-in-rootfs")
    assert (proc.returncode, proc.stdout) == (0, b"inside\n"), proc.stderr


def test_a_command_that_cannot_start_exits_1(runtime: Runtime) -> None:
    """runc exits 1; Docker gets its 126/127 from the words (tests/runtime/test_runc_callers)."""
    proc = runtime.run(runtime.spec(["/etc/passwd"]))
    assert proc.returncode == 1 and b"permission denied" in proc.stderr, proc.stderr
    proc = runtime.run(runtime.spec(["no-such-thing"]))
    assert proc.returncode == 1 and b"executable file not found" in proc.stderr


def test_seccomp_denies_with_configured_errno(runtime: Runtime) -> None:
    spec = runtime.spec(["sh", "-c", "mkdir /tmp/d 2>&1; touch /tmp/f && echo touched"])
    spec["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 28}],
    }
    out = runtime.output(spec["process"]["args"], linux=spec["linux"])
    assert "No space left on device" in out
    assert "touched" in out
    status = runtime.output(["grep", "Seccomp:", "/proc/self/status"], linux=spec["linux"])
    assert status.split()[1] == "2"


def test_invalid_seccomp_fails_before_anything_is_made(runtime: Runtime) -> None:
    spec = runtime.spec(["true"])
    spec["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_BOGUS"}
    cid = runtime.new_id()
    proc = runtime.cmd("create", "--bundle", runtime.bundle(spec), cid)
    assert proc.returncode == 1 and b"SCMP_ACT_BOGUS" in proc.stderr
    assert not os.path.exists(os.path.join(runtime.state_root, cid))


def test_personality_linux32(runtime: Runtime) -> None:
    spec = runtime.spec(["uname", "-m"])
    spec["linux"]["personality"] = {"domain": "LINUX32"}
    out = runtime.output(spec["process"]["args"], linux=spec["linux"])
    if os.uname().machine == "x86_64":
        assert out.strip() in ("i686", "i386")


def test_unsupported_features_fail_clearly(runtime: Runtime) -> None:
    spec = runtime.spec(["true"])
    spec["mounts"].append({"destination": "/mnt", "type": "bind", "source": "/tmp",
                           "options": ["rbind", "idmap"]})
    proc = runtime.cmd("create", "--bundle", runtime.bundle(spec, copy_rootfs=False),
                       runtime.new_id())
    assert proc.returncode == 1 and b"idmapped mounts are not supported" in proc.stderr


def test_mount_destination_symlink_cannot_escape_rootfs(runtime: Runtime, tmp_path: object) -> None:
    # A hostile rootfs points /evil at a host directory; the mount must land inside the rootfs.
    host_dir = os.path.join(str(tmp_path), "host-target")
    os.makedirs(host_dir)
    spec = runtime.spec(["sh", "-c", "ls -ld /evil"])
    spec["mounts"].append({"destination": "/evil/sub", "type": "tmpfs", "source": "tmpfs",
                           "options": ["size=1m"]})
    bundle = runtime.bundle(spec)
    os.symlink(host_dir, os.path.join(bundle, "rootfs", "evil"))
    proc = runtime.cmd("run", "--bundle", bundle, runtime.new_id())
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(host_dir) == []  # nothing created or mounted on the host side
    assert os.path.isdir(os.path.join(bundle, "rootfs", str(host_dir).lstrip("/"), "sub"))


def test_preserve_fds(runtime: Runtime, tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "extra")
    with open(path, "w") as f:
        f.write("passed through fd 3")
    bundle = runtime.bundle(runtime.spec(["sh", "-c", "cat <&3"]))
    # A shell opens fd 3 for the runtime: the test process's own fd 3 belongs to pytest.
    proc = subprocess.run(
        ["sh", "-c", 'exec 3<"$1"; shift; exec "$@"', "sh", path, runtime.binary, "--root",
         runtime.state_root, "run", "--preserve-fds", "1", "--bundle", bundle,
         runtime.new_id()], capture_output=True, timeout=60)
    assert proc.stdout == b"passed through fd 3", proc.stderr


def test_rootless_spec_runs(runtime: Runtime) -> None:
    if user_namespaces_refused():
        pytest.skip("this environment refuses new user namespaces (a chroot, or disabled)")
    from barque.runtime.spec import rootless_spec

    spec = rootless_spec()
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["sh", "-c", "id -u; cat /proc/self/uid_map"]
    spec["root"]["readonly"] = False
    proc = runtime.run(spec)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().split()
    assert lines[0] == "0" and lines[1:4] == ["0", str(os.geteuid()), "1"]


def test_scheduler_and_io_priority(runtime: Runtime) -> None:
    spec = runtime.spec(["sh", "-c", "cat /proc/self/stat; ionice -p $$"])
    spec["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}
    spec["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 6}
    out = runtime.output(spec["process"]["args"], process=spec["process"])
    stat_line, ionice = out.splitlines()[0], out.splitlines()[1]
    fields = stat_line[stat_line.rindex(")") + 2:].split()
    assert fields[16] == "7"  # nice
    assert fields[38] == "3"  # policy: SCHED_BATCH
    assert "best-effort" in ionice and "6" in ionice


def test_bad_scheduler_fails_before_anything_is_made(runtime: Runtime) -> None:
    spec = runtime.spec(["true"])
    spec["process"]["scheduler"] = {"policy": "SCHED_FAST"}
    cid = runtime.new_id()
    proc = runtime.cmd("create", "--bundle", runtime.bundle(spec, copy_rootfs=False), cid)
    assert proc.returncode == 1 and b"process.scheduler.policy" in proc.stderr
    assert not os.path.exists(os.path.join(runtime.state_root, cid))


def test_own_session_keyring(runtime: Runtime) -> None:
    cid = runtime.new_id()
    runtime.cmd("run", "-d", "--bundle", runtime.bundle(runtime.spec(["sleep", "600"])), cid,
                check=True)
    with open("/proc/keys") as f:
        assert f"_ses.{cid}" in f.read()
    other = runtime.new_id()
    runtime.cmd("run", "-d", "--no-new-keyring", "--bundle",
                runtime.bundle(runtime.spec(["sleep", "600"])), other, check=True)
    with open("/proc/keys") as f:
        assert f"_ses.{other}" not in f.read()
