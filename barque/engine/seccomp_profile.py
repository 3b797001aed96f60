"""Docker-format seccomp profiles (`--security-opt seccomp=…`) made into OCI `linux.seccomp`.

The default profile is Docker's own (profiles/seccomp-default.json, see the README there). A
profile's rules may depend on the container's capabilities, the CPU architecture and the
kernel version ("includes"/"excludes"); they are resolved here, for one container, the way
moby's setupSeccomp does.
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PROFILE = os.path.join(os.path.dirname(__file__), "profiles", "seccomp-default.json")

# uname's machine -> the profile's architecture names.
_ARCHES = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64",
           "ppc64le": "SCMP_ARCH_PPC64LE", "s390x": "SCMP_ARCH_S390X"}
_ARCH_WORDS = {"SCMP_ARCH_X86_64": "amd64", "SCMP_ARCH_AARCH64": "arm64",
               "SCMP_ARCH_PPC64LE": "ppc64le", "SCMP_ARCH_S390X": "s390x"}


class ProfileError(Exception):
    pass


def load_default() -> dict[str, Any]:
    return load(DEFAULT_PROFILE)


def load(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return parse(f.read(), path)
    except OSError as e:
        raise ProfileError(f"opening seccomp profile ({path}) failed: {e.strerror}") from None
    except ValueError:  # a NUL byte: not a path (a profile file's text that is not JSON)
        raise ProfileError(f"opening seccomp profile ({path[:64]!r}) failed: not a path "
                           "or a JSON profile") from None


def parse(raw: bytes, where: str = "profile") -> dict[str, Any]:
    try:
        profile = json.loads(raw)
    except ValueError as e:
        raise ProfileError(f"decoding seccomp profile failed ({where}): {e}") from None
    if not isinstance(profile, dict) or not isinstance(profile.get("defaultAction"), str):
        raise ProfileError(f"decoding seccomp profile failed ({where}): no defaultAction")
    problem = _shape_problem(profile)
    if problem:
        raise ProfileError(f"decoding seccomp profile failed ({where}): {problem}")
    return profile


def _strings(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _int(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _filter_problem(rule: dict[str, Any], key: str) -> str | None:
    value = rule.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        return f"syscalls.{key} must be an object"
    if not (_strings(value.get("caps")) and _strings(value.get("arches"))):
        return f"syscalls.{key}.caps and .arches must be lists of strings"
    if not isinstance(value.get("minKernel") or "", str):
        return f"syscalls.{key}.minKernel must be a string"
    return None


def _shape_problem(profile: dict[str, Any]) -> str | None:
    """What makes a profile unusable, by the types Docker's Go struct would decode: the rest
    of this module may then index it freely."""
    if not _strings(profile.get("architectures")) or not _strings(profile.get("flags")):
        return "architectures and flags must be lists of strings"
    if not _int(profile.get("defaultErrnoRet")):
        return "defaultErrnoRet must be an integer"
    arch_map = profile.get("archMap") or []
    if not isinstance(arch_map, list) or not all(
            isinstance(e, dict) and isinstance(e.get("architecture", ""), str) and
            _strings(e.get("subArchitectures")) for e in arch_map):
        return "archMap must be a list of {architecture, subArchitectures}"
    rules = profile.get("syscalls") or []
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        return "syscalls must be a list of objects"
    for rule in rules:
        if not _strings(rule.get("names")) or not isinstance(rule.get("name") or "", str):
            return "syscalls.names must be a list of strings"
        if not isinstance(rule.get("action"), str):
            return "every syscall rule needs an action"
        if not _int(rule.get("errnoRet")) or not isinstance(rule.get("args") or [], list):
            return "syscalls.errnoRet must be an integer and syscalls.args a list"
        problem = _filter_problem(rule, "includes") or _filter_problem(rule, "excludes")
        if problem:
            return problem
    return None


def _kernel() -> tuple[int, int]:
    release = os.uname().release.split("-")[0].split(".")
    try:
        return int(release[0]), int(release[1])
    except (IndexError, ValueError):
        return (0, 0)


def _at_least(version: str, kernel: tuple[int, int]) -> bool:
    parts = version.split(".")
    try:
        wanted = (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0)
    except ValueError:
        return True
    return kernel >= wanted


def _applies(rule: dict[str, Any], caps: set[str], arch: str, kernel: tuple[int, int]) -> bool:
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    word = _ARCH_WORDS.get(arch, arch)
    if any(c in caps for c in exc.get("caps") or []):
        return False
    if word in (exc.get("arches") or []):
        return False
    if exc.get("minKernel") and _at_least(exc["minKernel"], kernel):
        return False
    if inc.get("arches") and word not in inc["arches"]:
        return False
    if any(c not in caps for c in inc.get("caps") or []):
        return False
    return not (inc.get("minKernel") and not _at_least(inc["minKernel"], kernel))


def to_oci(profile: dict[str, Any], bounding_caps: list[str]) -> dict[str, Any]:
    """The OCI `linux.seccomp` for a container whose bounding set is `bounding_caps`."""
    arch = _ARCHES.get(os.uname().machine, "")
    caps, kernel = set(bounding_caps), _kernel()
    spec: dict[str, Any] = {"defaultAction": profile["defaultAction"]}
    if profile.get("defaultErrnoRet") is not None:
        spec["defaultErrnoRet"] = profile["defaultErrnoRet"]
    arches: list[str] = []
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == arch:
            arches = [arch, *(entry.get("subArchitectures") or [])]
    arches = arches or list(profile.get("architectures") or [])
    if arches:
        spec["architectures"] = arches
    for key in ("flags", "listenerPath", "listenerMetadata"):
        if profile.get(key):
            spec[key] = profile[key]
    syscalls = []
    for rule in profile.get("syscalls") or []:
        if not _applies(rule, caps, arch, kernel):
            continue
        names = list(rule.get("names") or ([rule["name"]] if rule.get("name") else []))
        if not names:
            continue
        out: dict[str, Any] = {"names": names, "action": rule["action"]}
        for key in ("errnoRet", "args"):
            if rule.get(key) is not None:
                out[key] = rule[key]
        syscalls.append(out)
    spec["syscalls"] = syscalls
    return spec
