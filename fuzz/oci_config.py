"""Fuzz the runtime's reading and checking of a bundle's config.json (barque/runtime/config.py):
the config comes from whoever writes the pod spec when barque-runtime runs under containerd.

Inputs are raw bytes (as a config.json file), or runc's default spec with values swapped
for JSON of other types and shapes at random paths. Property: `load_bundle` and `validate`
raise only RuntimeFailure; a config they accept has the types the runtime then relies on.

    python fuzz/oci_config.py -runs=100000
    python fuzz/oci_config.py --iterations 100000
"""

from __future__ import annotations

import copy
import json
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz import _driver  # noqa: E402

with _driver.instrumented():
    from barque.runtime.config import load_bundle, validate
    from barque.runtime.errors import RuntimeFailure
    from barque.runtime.spec import default_spec

BASE = default_spec()
# Keys a config may have that the default spec leaves out: fuzzed in as well.
EXTRA_PATHS = (("hooks",), ("hooks", "prestart"), ("linux", "uidMappings"),
               ("linux", "personality"), ("linux", "intelRdt"), ("process", "scheduler"),
               ("process", "ioPriority"), ("process", "execCPUAffinity"), ("process", "env"),
               ("process", "user", "uid"), ("mounts",), ("linux", "namespaces"), ("root",),
               ("process", "cwd"), ("process", "args"), ("ociVersion",),
               ("process", "scheduler", "flags"), ("process", "execCPUAffinity", "initial"),
               ("linux", "resources"), ("linux", "sysctl"), ("linux", "seccomp"))
SCALARS: tuple[Any, ...] = (None, True, False, 0, -1, 1, 2 ** 64, 1.5, float("1e308"), "", "x",
                            "/", "relative", "user", "mount", "LINUX", "SCHED_FIFO",
                            "IOPRIO_CLASS_RT", "0-3", "a-b", "9" * 30, "idmap",
                            "SCHED_FLAG_RESET_ON_FORK", "=", "A=1")


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


BASE_PATHS = _paths(BASE)[1:] + list(EXTRA_PATHS)


def draw_value(p: _driver.Provider, depth: int = 0) -> Any:
    choice = p.int(0, 9)
    if depth > 2 or choice < 5:
        return p.pick(SCALARS)
    if choice < 7:
        return [draw_value(p, depth + 1) for _ in range(p.int(0, 3))]
    if choice < 9:
        keys = ("type", "path", "destination", "options", "domain", "policy", "class",
                "priority", "flags", "uid", "gid", "initial", "final", "x")
        return {p.pick(keys): draw_value(p, depth + 1) for _ in range(p.int(0, 3))}
    return p.text(10)


def _set(config: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = config
    for key in path[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(key, {})
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return
    if isinstance(node, dict):
        node[path[-1]] = value
    elif isinstance(node, list) and isinstance(path[-1], int) and path[-1] < len(node):
        node[path[-1]] = value


def draw_config(p: _driver.Provider) -> dict[str, Any]:
    config = copy.deepcopy(BASE)
    for _ in range(p.int(1, 4)):
        _set(config, p.pick(BASE_PATHS), draw_value(p))
    return config


def check_config(config: dict[str, Any]) -> None:
    try:
        validate(config)
    except RuntimeFailure:
        return
    # Accepted: what the runtime indexes next must be there, with its type.
    assert isinstance(config["root"]["path"], str)
    assert all(isinstance(a, str) for a in config["process"]["args"])
    assert all(isinstance(ns, dict) for ns in (config.get("linux") or {}).get("namespaces") or [])
    assert all(isinstance(m, dict) for m in config.get("mounts") or [])


def check_bundle(raw: bytes) -> None:
    bundle = os.path.join(_driver.sandbox(), "bundle")
    os.makedirs(os.path.join(bundle, "rootfs"), exist_ok=True)
    with open(os.path.join(bundle, "config.json"), "wb") as f:
        f.write(raw)
    try:
        load_bundle(bundle)
    except RuntimeFailure:
        pass


def target(data: bytes) -> None:
    p = _driver.Provider(data)
    mode = p.int(0, 9)
    if mode == 0:
        check_bundle(p.bytes(p.left()))
    elif mode == 1:
        depth = p.int(0, 200_000)
        check_bundle(b"[" * depth + b"]" * depth if p.bool() else b'{"a":' * depth)
    else:
        config = draw_config(p)
        check_config(config)
        if mode == 2:
            check_bundle(json.dumps(config).encode())


if __name__ == "__main__":
    _driver.main("oci_config", target, max_len=1024)
