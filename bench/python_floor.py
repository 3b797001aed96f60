"""The least Python can do for `run` of runc's default spec: a floor, not a runtime.

`bench/runtime_start.py --floor` runs this beside barque-runtime and runc, with the same CLI
shape (`--root R run --bundle B ID`, `delete --force ID`), to answer one question: how fast
could any runtime whose create path runs in Python be, on a given interpreter? It does only
the system calls a runtime cannot skip for that spec (the namespaces, the spec's mounts, the
default devices, pivot_root, masked and read-only paths, the hostname, a read-only root, the
rlimit, the capability bounding set and no_new_privs, the cgroups in every hierarchy with the
device rules, a state file) with the fewest imports (os, ctypes, json), and none of what makes
barque-runtime a runtime: no validation, no path resolution inside the root, no seccomp, no
hooks, no error reporting, no state machine. It refuses any bundle but the bench's own
(runc's default spec running `true`) and is never installed.
"""

import _thread
import os
import sys


def hierarchy(ctrl: str) -> str:
    """Where a /proc/self/cgroup line's hierarchy is mounted: /sys/fs/cgroup/CTRL for a v1
    controller; for the v2 line (no controller) /sys/fs/cgroup on a pure v2 host, else the
    hybrid layout's /sys/fs/cgroup/unified."""
    ctrl = ctrl.removeprefix("name=").split(",")[0]
    if ctrl:
        return f"/sys/fs/cgroup/{ctrl}"
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "/sys/fs/cgroup"
    return "/sys/fs/cgroup/unified"


def _prewarm() -> None:
    # As bin/barque-runtime's launcher: a no-op move into our own cgroup while Python starts,
    # so the RCU grace period the first cgroup.procs write after a quiet spell waits for
    # overlaps the interpreter's start-up (barque/cgroups/prewarm.py says why).
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrl, path = line.rstrip("\n").split(":", 2)
                procs = f"{hierarchy(ctrl)}/{path.strip('/')}".rstrip("/") + "/cgroup.procs"
                if os.access(procs, os.W_OK):
                    with open(procs, "w") as out:
                        out.write("0")
                    return
    except OSError:
        pass


_thread.start_new_thread(_prewarm, ())

import ctypes  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402  (before pivot_root: the host's library is gone after it)

LIBC = ctypes.CDLL(None, use_errno=True)
NS = {"pid": 0x20000000, "network": 0x40000000, "ipc": 0x08000000, "uts": 0x04000000,
      "mount": 0x00020000, "cgroup": 0x02000000}
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_SLAVE = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 19)
FLAGS = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
         "strictatime": 1 << 24, "relatime": 1 << 21}
DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9),
           "tty": (5, 0)}
DEVICE_RULES = ("c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
                "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm")
KEPT_CAPS = (5, 10, 29)  # runc spec's bounding set: KILL, NET_BIND_SERVICE, AUDIT_WRITE


def check(result: int, what: str) -> None:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount(src: str | None, dst: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    check(LIBC.mount(src.encode() if src else None, dst.encode(),
                     fstype.encode() if fstype else None, flags,
                     data.encode() if data else None), f"mount {dst}")


def cgroup_dirs(cid: str) -> list[str]:
    dirs = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrl, _ = line.rstrip("\n").split(":", 2)
            if os.path.exists(f"{hierarchy(ctrl)}/cgroup.procs"):  # a cgroup fs, not a dir
                dirs.append(f"{hierarchy(ctrl)}/{cid}")
    return dirs


def write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def make_cgroup(path: str, pid: int) -> None:
    os.mkdir(path)
    if path.startswith("/sys/fs/cgroup/cpuset/"):
        for key in ("cpuset.cpus", "cpuset.mems"):
            with open(f"/sys/fs/cgroup/cpuset/{key}") as f:
                write(f"{path}/{key}", f.read())
    if path.startswith("/sys/fs/cgroup/devices/"):
        write(f"{path}/devices.deny", "a")
        for rule in DEVICE_RULES:
            write(f"{path}/devices.allow", rule)
    write(f"{path}/cgroup.procs", str(pid))


def init(cfg: dict, rootfs: str, flags: int, go: int) -> None:
    """The container's first process: mounts; once `go` is readable (the runtime made its
    cgroups), the devices, pivot_root and the rest; then exec."""
    check(LIBC.unshare(flags & ~NS["pid"]), "unshare")
    mount(None, "/", None, MS_REC | MS_SLAVE)
    mount(rootfs, rootfs, None, MS_BIND | MS_REC)
    for m in cfg["mounts"]:
        fl, data = 0, []
        for o in m.get("options", []):
            fl |= FLAGS.get(o, 0)
            if o not in FLAGS:
                data.append(o)
        dst = rootfs + m["destination"]
        os.makedirs(dst, exist_ok=True)
        if m["type"] == "cgroup":  # runc: a tmpfs with a bind of each hierarchy; one tmpfs here
            mount("tmpfs", dst, "tmpfs", fl & ~MS_RDONLY, "mode=755")
        else:
            mount(m["source"], dst, m["type"], fl, ",".join(data) or None)
    os.read(go, 1)  # in its cgroups (their device rules) before making devices, as runc's init
    for name, (major, minor) in DEVICES.items():
        os.mknod(f"{rootfs}/dev/{name}", 0o20666, os.makedev(major, minor))
    for target, name in (("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"),
                         ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr")):
        os.symlink(target, f"{rootfs}/dev/{name}")
    os.chdir(rootfs)
    old = os.open("/", os.O_RDONLY)
    check(LIBC.syscall(155, b".", b"."), "pivot_root")  # x86_64's SYS_pivot_root
    os.fchdir(old)
    mount(None, ".", None, MS_SLAVE | MS_REC)
    check(LIBC.umount2(b".", 2), "umount the old root")
    os.chdir("/")
    for path in cfg["linux"].get("readonlyPaths", []):
        if os.path.exists(path):
            mount(path, path, None, MS_BIND | MS_REC)
            mount(path, path, None, MS_BIND | MS_REC | MS_REMOUNT | MS_RDONLY)
    for path in cfg["linux"].get("maskedPaths", []):
        if os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", MS_RDONLY)
        elif os.path.exists(path):
            mount("/dev/null", path, None, MS_BIND)
    LIBC.sethostname(cfg["hostname"].encode(), len(cfg["hostname"]))
    mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
    LIBC.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    for cap in range(41):
        if cap not in KEPT_CAPS:
            LIBC.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP
    args = cfg["process"]["args"]
    os.execve("/bin/" + args[0], args, {"PATH": "/bin"})


def run(root: str, bundle: str, cid: str) -> int:
    with open(bundle + "/config.json", "rb") as f:
        cfg = json.loads(f.read())
    if cfg["process"]["args"] != ["true"] or cfg.get("hooks") or cfg["process"].get("terminal"):
        sys.exit("python_floor runs only the bench's own bundle (runc's spec running true)")
    os.makedirs(root, 0o711, exist_ok=True)
    state = f"{root}/{cid}"
    os.mkdir(state, 0o711)
    flags = 0
    for n in cfg["linux"]["namespaces"]:
        flags |= NS[n["type"]]
    go_r, go_w = os.pipe()
    own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY)
    check(LIBC.unshare(NS["pid"]), "unshare pid")
    pid = os.fork()
    if pid == 0:
        try:
            os.close(go_w)
            init(cfg, os.path.join(bundle, cfg["root"]["path"]), flags, go_r)
        finally:
            os._exit(127)
    LIBC.setns(own_pid_ns, NS["pid"])
    cgroups = cgroup_dirs(cid)
    for path in cgroups:
        make_cgroup(path, pid)
    write(f"{state}/state.json", json.dumps({"id": cid, "pid": pid, "status": "running"}))
    os.write(go_w, b"1")
    _, status = os.waitpid(pid, 0)
    delete(root, cid, cgroups)
    return os.waitstatus_to_exitcode(status)


def delete(root: str, cid: str, cgroups: list[str]) -> int:
    for path in cgroups:
        try:
            os.rmdir(path)
        except OSError:
            pass
    try:
        os.unlink(f"{root}/{cid}/state.json")
        os.rmdir(f"{root}/{cid}")
    except OSError:
        pass
    return 0


def main(argv: list[str]) -> int:
    if argv == ["--version"]:
        print(f"python_floor version {sys.version.split()[0]}")
        return 0
    if len(argv) == 6 and argv[0] == "--root" and argv[2:4] == ["run", "--bundle"]:
        return run(argv[1], argv[4], argv[5])
    if len(argv) == 5 and argv[0] == "--root" and argv[2:4] == ["delete", "--force"]:
        return delete(argv[1], argv[4], cgroup_dirs(argv[4]))
    sys.exit("usage: python_floor.py --root ROOT run --bundle BUNDLE ID | "
             "--root ROOT delete --force ID | --version")


if __name__ == "__main__":
    sys.stdout.flush()
    os._exit(main(sys.argv[1:]))
