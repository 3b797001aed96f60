"""`features`: what this runtime recognises (OCI runtime spec, features.md)."""

from __future__ import annotations

from barque.runtime.spec import OCI_VERSION


def features() -> dict:
    from barque.linux.capabilities import NAMES
    from barque.linux.mount import _FLAGS, EXTENSIONS, PROPAGATION
    from barque.linux.namespaces import NAMESPACES

    seccomp: dict = {"enabled": False}
    try:
        from barque.linux import seccomp as sc

        seccomp = {
            "enabled": True,
            "actions": sc.supported_actions(),
            "operators": sc.supported_operators(),
            "archs": sc.supported_archs(),
            "knownFlags": sc.supported_flags(),
            "supportedFlags": sc.supported_flags(),
        }
    except (ImportError, OSError, AttributeError):
        pass
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"],
        "mountOptions": sorted(set(_FLAGS) | set(PROPAGATION) | set(EXTENSIONS) - {"idmap",
                                                                                  "ridmap"}),
        "linux": {
            "namespaces": sorted(NAMESPACES),
            "capabilities": list(NAMES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": False},
            "seccomp": seccomp,
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
            "netDevices": {"enabled": False},
        },
        "annotations": {
            "io.github.barque.version": "0.1.0",
        },
    }
