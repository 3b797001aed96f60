"""OCI linux.resources.devices rules: parsing, v1 cgroupfs strings, and runc's emulator.

The emulator replays a rule list the way the v1 devices controller would and yields the
minimal equivalent list: a default (allow or deny everything) plus exceptions. The v2 eBPF
filter is compiled from that, so both cgroup versions mean the same thing by a rule list
(runc libcontainer/cgroups/devices/devices_emulator.go).
"""

from __future__ import annotations

from barque.cgroups.base import CgroupError

WILDCARD = -1
# Access bits as the kernel's BPF_DEVCG_ACC_* constants, so the filter can use them as is.
ACCESS_BITS = {"m": 1, "r": 2, "w": 4}
ACCESS_ALL = 7


def access_string(bits: int) -> str:
    return "".join(c for c in "rwm" if bits & ACCESS_BITS[c])


class DeviceRule:
    __slots__ = ("type", "major", "minor", "access", "allow")

    def __init__(self, type_: str, major: int, minor: int, access: int, allow: bool) -> None:
        self.type = type_  # "a", "b" or "c"
        self.major = major  # WILDCARD for "*"
        self.minor = minor
        self.access = access  # ACCESS_BITS combined
        self.allow = allow

    def cgroup_string(self) -> str:
        """The v1 devices.allow/devices.deny line, e.g. "c 1:3 rwm"."""
        major = "*" if self.major == WILDCARD else str(self.major)
        minor = "*" if self.minor == WILDCARD else str(self.minor)
        return f"{self.type} {major}:{minor} {access_string(self.access)}"

    def __repr__(self) -> str:
        return f"DeviceRule({'allow' if self.allow else 'deny'} {self.cgroup_string()})"


def _number(entry: dict, key: str, index: int) -> int:
    value = entry.get(key)
    if value is None:
        return WILDCARD
    if not 0 <= value < 2**32:
        raise CgroupError(f"devices[{index}]: invalid {key} {value}")
    return int(value)


def _access(entry: dict, index: int) -> int:
    """runc's reading of an access string: its letters of "rwm" in any order and number,
    anything else ignored ("rwx" is "rw"). Empty is refused in runc's words; one without
    any of those letters grants nothing (v2) or is refused (v1: see check_v1)."""
    text = entry.get("access") or ""
    if not isinstance(text, str) or not text:
        raise CgroupError(f"device access at {index} field cannot be empty")
    bits = 0
    for c in text:
        bits |= ACCESS_BITS.get(c, 0)
    return bits


def check_v1(rules: list[DeviceRule]) -> None:
    """A rule without access cannot be written to v1's devices.allow/deny as asked: runc
    writes it, finds devices.list differs from its target, and fails in these words."""
    if any(rule.type != "a" and not rule.access for rule in rules):
        raise CgroupError("resulting devices cgroup doesn't precisely match target")


def parse_rules(entries: list[dict]) -> list[DeviceRule]:
    rules = []
    for i, entry in enumerate(entries):
        type_ = entry.get("type") or "a"
        if type_ not in ("a", "b", "c"):
            raise CgroupError(f'invalid cgroup device type "{type_}"')
        major, minor = _number(entry, "major", i), _number(entry, "minor", i)
        rules.append(DeviceRule(type_, major, minor, _access(entry, i), bool(entry.get("allow"))))
    return rules


class Emulator:
    """The v1 devices controller's semantics, for v2 (runc's devices.Emulator)."""

    def __init__(self) -> None:
        self.default_allow = False  # a fresh emulator denies everything, as runc's does
        self.exceptions: dict[tuple[str, int, int], int] = {}

    def apply(self, rule: DeviceRule) -> None:
        if rule.type != "a" and not rule.access:
            return  # grants or denies nothing (an access string without r, w or m: runc's v2)
        if rule.type == "a":
            self.default_allow, self.exceptions = rule.allow, {}
        elif rule.allow == self.default_allow:
            self._remove(rule)  # granting what the default grants drops a contrary exception
        else:
            key = (rule.type, rule.major, rule.minor)
            self.exceptions[key] = self.exceptions.get(key, 0) | rule.access

    def _remove(self, rule: DeviceRule) -> None:
        key = (rule.type, rule.major, rule.minor)
        for wider in (
            (rule.type, WILDCARD, rule.minor),
            (rule.type, rule.major, WILDCARD),
            (rule.type, WILDCARD, WILDCARD),
        ):
            # v1 silently ignores such a request; refusing it avoids false confidence.
            if wider != key and self.exceptions.get(wider, 0) & rule.access:
                raise CgroupError(
                    f"device rule {rule!r} cannot punch a hole in the wildcard rule "
                    f"{wider[0]} {wider[1]}:{wider[2]} (not supported by the devices cgroup)"
                )
        remaining = self.exceptions.pop(key, 0) & ~rule.access
        if remaining:
            self.exceptions[key] = remaining

    def rules(self) -> list[DeviceRule]:
        """The exceptions to the default, in a stable order (major, minor, type)."""
        keys = sorted(self.exceptions, key=lambda k: (k[1], k[2], k[0]))
        return [
            DeviceRule(t, ma, mi, self.exceptions[(t, ma, mi)], not self.default_allow)
            for t, ma, mi in keys
        ]


def emulate(rules: list[DeviceRule]) -> Emulator:
    emulator = Emulator()
    for rule in rules:
        emulator.apply(rule)
    return emulator
