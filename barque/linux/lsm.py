"""Linux security module labels for the next execve: AppArmor profiles, SELinux contexts."""

from __future__ import annotations

import os


def apparmor_enabled() -> bool:
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def selinux_enabled() -> bool:
    return os.path.exists("/sys/fs/selinux/enforce")


def _write_attr(paths: tuple[str, ...], value: str) -> None:
    last: OSError | None = None
    for path in paths:
        try:
            with open(path, "w") as f:
                f.write(value)
            return
        except FileNotFoundError as e:
            last = e
    raise last or FileNotFoundError(paths[0])


def set_apparmor_exec(profile: str) -> None:
    """Confine the next execve under `profile` (as libapparmor's aa_change_onexec does)."""
    _write_attr(("/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"), f"exec {profile}")


def set_selinux_exec(label: str) -> None:
    _write_attr(("/proc/self/attr/exec",), label)
