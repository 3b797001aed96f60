"""The last steps before execve, shared by the container init and `exec`: rlimits, user,
capabilities, no_new_privs, seccomp — in runc's order — and the executable lookup."""

from __future__ import annotations

import os
import stat

from barque.runtime.errors import RuntimeFailure
from barque.runtime.log import LOG

TYPE_CHECKING = False  # not typing's: see barque/linux/libc.py
if TYPE_CHECKING:
    from collections.abc import Callable

    from barque.linux.seccomp import Program

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}
_INFINITY = 0xFFFFFFFFFFFFFFFF


def env_dict(env: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def lookup_executable(name: str, env: dict[str, str], cwd: str) -> str:
    """Find args[0] as exec.LookPath would, with runc's error words (Docker maps them to
    exit codes 127 and 126; the runtime itself then exits 1, as runc)."""
    if "/" in name:
        candidates = [name if name.startswith("/") else os.path.join(cwd, name)]
    else:
        path = env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        candidates = [os.path.join(d or ".", name) for d in path.split(":")]
    for candidate in candidates:
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return candidate
        if "/" in name:  # a directory too: Go's LookPath says EACCES, so does runc
            raise RuntimeFailure(f'exec: "{name}": permission denied')
    if "/" in name:
        raise RuntimeFailure(f'exec: "{name}": stat {name}: no such file or directory')
    # Go's LookPath passes over what is in $PATH but not an executable file (a directory,
    # a file without x bits, and "" which names the directory itself): not found, as runc
    raise RuntimeFailure(f'exec: "{name}": executable file not found in $PATH')


def own_session() -> None:
    """The first step of every process the runtime starts (init and exec, terminal or not), as
    runc's nsexec does: a session of its own. Left in the caller's session it would share the
    caller's controlling terminal: open /dev/tty, read the admin's keys, type into the admin's
    shell with TIOCSTI. A terminal of its own becomes its controlling one later."""
    os.setsid()


def apply_rlimits(rlimits: list[dict]) -> None:
    if not rlimits:
        return  # and no import: preload() loads resource only for a process with rlimits
    import resource

    for rl in rlimits:
        kind = rl.get("type", "")
        if kind not in RLIMITS:
            raise RuntimeFailure(f"unknown rlimit type {kind!r}")
        soft = -1 if rl["soft"] >= _INFINITY else int(rl["soft"])
        hard = -1 if rl["hard"] >= _INFINITY else int(rl["hard"])
        try:
            resource.setrlimit(RLIMITS[kind], (soft, hard))
        except (OSError, ValueError) as e:
            raise RuntimeFailure(
                f"error setting rlimit type {kind} to {rl['soft']}/{rl['hard']}: {e}"
            ) from None


def home_of(uid: int) -> str | None:
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5]
    except OSError:
        pass
    return None


def _cap_numbers(caps: dict, key: str) -> list[int]:
    from barque.linux.capabilities import known

    nums, unknown = known(list(caps.get(key) or []))
    for name in unknown:
        LOG.warning(f"ignoring unknown or unsupported capability {name!r} in {key}")
    return nums


def set_user_and_caps(process: dict, userns_setgroups: bool = True) -> None:
    """Switch to process.user keeping exactly the configured capabilities."""
    from barque.linux import capabilities as c
    from barque.linux import prctl

    caps = process.get("capabilities")
    user = process.get("user") or {}
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    if caps is not None:
        c.drop_bounding(c.mask(_cap_numbers(caps, "bounding")))
    prctl.set_keepcaps(True)
    extra = [int(g) for g in user.get("additionalGids") or []]
    if userns_setgroups:
        os.setgroups(extra)
    elif extra:
        raise RuntimeFailure("additionalGids need setgroups, which this user namespace denies")
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    prctl.set_keepcaps(False)
    if caps is None:
        return
    _, have, _ = c.capget()
    permitted = c.mask(_cap_numbers(caps, "permitted"))
    missing = permitted & ~have
    if missing:
        names = [c.NAMES[n] for n in range(len(c.NAMES)) if missing >> n & 1]
        LOG.warning(f"capabilities not held by the runtime, dropped: {', '.join(names)}")
        permitted &= have
    effective = c.mask(_cap_numbers(caps, "effective")) & permitted
    inheritable = c.mask(_cap_numbers(caps, "inheritable"))
    c.capset(effective, permitted, inheritable)
    wanted = _cap_numbers(caps, "ambient")
    # The kernel raises an ambient capability only if it is permitted and inheritable. runc
    # (and `runc spec`'s own bundle, which lists ambient but no inheritable set) raises what
    # it can and, like runc 1.1 (whose stderr stays empty here), only logs the rest at debug
    # level instead of failing.
    ambient = [n for n in wanted if (permitted & inheritable) >> n & 1]
    for n in wanted:
        if n not in ambient:
            LOG.debug(f"can't raise ambient capability {c.NAMES[n]}: operation not permitted")
    if ambient or caps.get("ambient") is not None:
        c.set_ambient(ambient)


def build_seccomp(linux: dict, cache_root: str | None = None) -> Program | None:
    """Compile linux.seccomp in the runtime, before anything is created: a bad profile fails
    early and cleanly, and the child only has to load it (after pivot_root libseccomp's
    data files would be out of reach). `cache_root`: the runtime's root, which keeps
    compiled programs (see seccomp_cache.py)."""
    profile = linux.get("seccomp")
    if profile is None:
        return None
    from barque.linux.seccomp import SeccompError
    from barque.runtime.seccomp_cache import compiled

    try:
        return compiled(cache_root, profile)
    except SeccompError as e:
        raise RuntimeFailure(f"invalid seccomp profile: {e}") from None


def apply_scheduling(process: dict) -> None:
    """process.scheduler and process.ioPriority, while the capabilities they may need
    (CAP_SYS_NICE for real-time policies) are still held."""
    from barque.linux import sched

    try:
        if process.get("scheduler"):
            sched.set_scheduler(process["scheduler"])
        if process.get("ioPriority"):
            sched.set_io_priority(process["ioPriority"])
    except OSError as e:
        raise RuntimeFailure(f"cannot apply the process's scheduling settings: {e}") from None


def finalize(
    process: dict, seccomp_filter: Program | None, userns_setgroups: bool = True,
    preserve_fds: int = 0, chdir: Callable[[bool], bool] | None = None,
) -> None:
    """Everything after the filesystem is set but the no_new_privs filter (`seal`): runc's
    order in its finalizeNamespace. `chdir(as_root)`: into the cwd, first as root (after a
    filter that needs CAP_SYS_ADMIN, before the user is set); False if root was refused,
    then it is called again as the user."""
    from barque.linux.fds import cloexec_from

    # The container gets stdio and the preserved fds (made inheritable before), nothing else
    # of the runtime's caller (runc: CloseExecFrom). Now, before a seccomp profile could
    # forbid close_range or fcntl.
    cloexec_from(3 + preserve_fds)

    apply_rlimits(process.get("rlimits") or [])
    apply_scheduling(process)
    os.umask(int((process.get("user") or {}).get("umask", 0o022)))
    if seccomp_filter is not None and not process.get("noNewPrivileges"):
        # Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it before the
        # capabilities are dropped (runc does the same).
        seccomp_filter.load()
    entered = chdir is None or chdir(True)
    set_user_and_caps(process, userns_setgroups)
    if not entered and chdir is not None:
        chdir(False)


def seal(process: dict, seccomp_filter: Program | None) -> None:
    """no_new_privs and its filter, as late as possible before execve (so the filter need
    not allow the runtime's own set-up)."""
    if process.get("noNewPrivileges"):
        from barque.linux import prctl

        prctl.set_no_new_privs()
        if seccomp_filter is not None:
            seccomp_filter.load()


def exec_process(path: str, process: dict) -> None:
    env = env_dict(process.get("env") or [])
    if "HOME" not in env:
        uid = int((process.get("user") or {}).get("uid", 0))
        env["HOME"] = home_of(uid) or "/"
    os.execve(path, process["args"], env)
