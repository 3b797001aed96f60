"""The cgroup resources a container gets: its config's, plus what runc always adds."""

from __future__ import annotations

# The device rules runc appends after the config's own: what every container's /dev needs.
DEFAULT_DEVICE_RULES = [
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
]


def effective_resources(linux: dict) -> dict:
    """linux.resources plus runc's default device rules and one per linux.devices entry."""
    resources = dict(linux.get("resources") or {})
    rules = list(resources.get("devices") or [])
    rules += DEFAULT_DEVICE_RULES
    for dev in linux.get("devices") or []:
        kind = dev.get("type", "c")
        if kind == "p":
            continue  # a fifo is no device to the cgroup: runc adds no rule for it
        rules.append({"allow": True, "type": "c" if kind == "u" else kind,
                      "major": dev.get("major"), "minor": dev.get("minor"), "access": "rwm"})
    resources["devices"] = rules
    return resources
