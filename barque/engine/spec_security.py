"""The security part of a container's spec: capabilities, seccomp, no_new_privs, as Docker
sets them from `--cap-add`, `--cap-drop`, `--privileged` and `--security-opt`."""

from __future__ import annotations

from barque.engine import seccomp_profile
from barque.linux.capabilities import NAMES as CAP_NAMES

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

# moby's caps.DefaultCapabilities(), in moby's order.
DOCKER_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]  # fmt: skip


class SecurityError(Exception):
    pass


def normalize_cap(name: str, field: str = "CapAdd") -> str:
    """"net_admin", "NET_ADMIN", "CAP_NET_ADMIN" -> "CAP_NET_ADMIN"; "ALL" stays. An unknown
    one in moby's words, naming the HostConfig field (`field`) it came from."""
    upper = name.strip().upper()
    if upper == "ALL":
        return upper
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in CAP_NAMES:
        raise SecurityError(f"invalid {field}: unknown capability: \"{full}\"")
    return full


def host_bounding_caps() -> list[str]:
    """The capabilities this process may pass on: its bounding set (a privileged container
    asking for more would fail to start)."""
    try:
        with open("/proc/self/status") as f:
            line = next(entry for entry in f if entry.startswith("CapBnd:"))
        mask = int(line.split()[1], 16)
    except (OSError, StopIteration, ValueError):
        return list(CAP_NAMES)
    return [name for i, name in enumerate(CAP_NAMES) if mask >> i & 1]


def capabilities(host_config: dict[str, Any]) -> list[str]:
    """moby's caps.TweakCapabilities: the defaults, then drops, then adds ("ALL" allowed)."""
    if host_config.get("Privileged"):
        return host_bounding_caps()
    adds = [normalize_cap(c) for c in host_config.get("CapAdd") or []]
    drops = [normalize_cap(c, "CapDrop") for c in host_config.get("CapDrop") or []]
    if "ALL" in adds:
        caps = host_bounding_caps()
    elif "ALL" in drops:
        caps = []
    else:
        caps = [c for c in DOCKER_CAPS if c not in drops]
    for cap in adds:
        if cap != "ALL" and cap not in caps and cap not in drops:
            caps.append(cap)
    if "ALL" in adds:
        caps = [c for c in caps if c not in drops]
    return caps


def security_options(host_config: dict[str, Any]) -> dict[str, str]:
    """--security-opt as a dict: "seccomp=PATH" -> {"seccomp": PATH}; "no-new-privileges"
    (alone, or =true/false, or with ":") -> {"no-new-privileges": "true"}. Every option is
    either applied or refused here, never accepted and ignored: a confinement asked for and
    not given would fail open."""
    options: dict[str, str] = {}
    for opt in host_config.get("SecurityOpt") or []:
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")
        key = key.strip()
        if key == "no-new-privileges":
            value = value or "true"
            if value not in ("true", "false"):
                raise SecurityError(f"invalid --security-opt 2: {_go_quote(opt)}")
        elif key not in _CHECKS:
            if not sep:
                raise SecurityError(f"invalid --security-opt 1: {_go_quote(opt)}")
            raise SecurityError(f"invalid --security-opt 2: {_go_quote(opt)}")
        elif not sep:
            raise SecurityError(f"invalid --security-opt 1: {_go_quote(opt)}")
        else:
            _CHECKS[key](opt, value)
        if key in ("mask", "unmask", "label") and key in options:
            value = options[key] + ":" + value  # these add up, as in Podman
        options[key] = value
    return options


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_seccomp(opt: str, value: str) -> None:
    pass  # read and checked by seccomp() below


def _check_apparmor(opt: str, value: str) -> None:
    from barque.linux import lsm

    if value != "unconfined" and not lsm.apparmor_enabled():
        raise SecurityError(f"AppArmor is not enabled on this host: cannot confine the "
                            f"container with --security-opt {opt}")


_LABEL_KEYS = ("user", "role", "type", "level", "filetype")


def _check_label(opt: str, value: str) -> None:
    from barque.linux import lsm

    if value in ("disable", "nested"):
        return  # no SELinux confinement asked for
    kind, sep, setting = value.partition(":")
    if kind not in _LABEL_KEYS or not sep or not setting:
        raise SecurityError(f"bad label option {_go_quote(value)}, valid options 'disable' or "
                            "'user, role, level, type, filetype' followed by ':' and a value")
    if not lsm.selinux_enabled():
        raise SecurityError(f"SELinux is not enabled on this host: cannot apply "
                            f"--security-opt {opt}")
    raise SecurityError(f"--security-opt {opt}: barque does not set SELinux labels")


def _check_systempaths(opt: str, value: str) -> None:
    if value != "unconfined":
        raise SecurityError(f"invalid --security-opt 2: {_go_quote(opt)}")


def _check_paths(opt: str, value: str) -> None:
    """Podman's mask=/a:/b and unmask=ALL or /a:/proc/* (globs)."""
    for path in value.split(":"):
        if not (path == "ALL" and opt.startswith("unmask")) and not path.startswith("/"):
            raise SecurityError(f"invalid --security-opt 2: {_go_quote(opt)}: {path!r} is not "
                                "an absolute path")


_CHECKS = {
    "seccomp": _check_seccomp, "apparmor": _check_apparmor, "label": _check_label,
    "systempaths": _check_systempaths, "mask": _check_paths, "unmask": _check_paths,
}


def system_paths(host_config: dict[str, Any], masked: list[str],
                 readonly: list[str]) -> tuple[list[str], list[str]]:
    """The container's (masked, read-only) paths from the defaults: none when privileged or
    with systempaths=unconfined (Docker), then Podman's mask= added and unmask= taken out of
    both lists."""
    options = security_options(host_config)
    if host_config.get("Privileged") or options.get("systempaths") == "unconfined":
        masked, readonly = [], []
    masked, readonly = list(masked), list(readonly)
    for path in (options.get("mask") or "").split(":"):
        if path and path not in masked:
            masked.append(path)
    unmask = [p for p in (options.get("unmask") or "").split(":") if p]
    if unmask:
        import fnmatch

        def kept(path: str) -> bool:
            return not any(p == "ALL" or fnmatch.fnmatchcase(path, p) for p in unmask)

        masked = [p for p in masked if kept(p)]
        readonly = [p for p in readonly if kept(p)]
    return masked, readonly


def apparmor_profile(host_config: dict[str, Any]) -> str | None:
    """The AppArmor profile to run under; None for none (also for "unconfined", which
    security_options() took as asking for no confinement)."""
    profile = security_options(host_config).get("apparmor")
    return profile if profile and profile != "unconfined" else None


def seccomp(host_config: dict[str, Any], caps: list[str]) -> dict[str, Any] | None:
    """The OCI linux.seccomp of the container, None when it runs unconfined."""
    choice = security_options(host_config).get("seccomp", "")
    if host_config.get("Privileged") or choice == "unconfined":
        return None
    try:
        if choice.lstrip().startswith("{"):
            # What the docker CLI sends: it reads a profile file and passes its content.
            profile = seccomp_profile.parse(choice.encode("utf-8", "surrogateescape"),
                                            "--security-opt seccomp")
        elif choice and choice != "builtin":
            profile = seccomp_profile.load(choice)
        else:
            profile = seccomp_profile.load_default()
        return seccomp_profile.to_oci(profile, caps)
    except seccomp_profile.ProfileError as e:
        raise SecurityError(str(e)) from None


def no_new_privileges(host_config: dict[str, Any]) -> bool:
    return security_options(host_config).get("no-new-privileges") == "true"
