"""Commands that need no container: spec, features, version, help."""

from __future__ import annotations

import json
import os
import subprocess

from barque.runtime.spec import default_spec, rootless_spec
from tests.conftest import runtime_binary


def run(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([runtime_binary(), *args], capture_output=True, cwd=cwd, timeout=30)


def test_spec_writes_runc_default(tmp_path: os.PathLike) -> None:
    assert run("spec", cwd=str(tmp_path)).returncode == 0
    spec = json.load(open(os.path.join(tmp_path, "config.json")))
    assert spec == default_spec()
    assert spec["process"]["capabilities"]["bounding"] == [
        "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    again = run("spec", cwd=str(tmp_path))
    assert again.returncode == 1 and b"exists" in again.stderr


def test_spec_rootless(tmp_path: os.PathLike) -> None:
    assert run("spec", "--rootless", "--bundle", str(tmp_path)).returncode == 0
    spec = json.load(open(os.path.join(tmp_path, "config.json")))
    assert spec == rootless_spec()
    kinds = [n["type"] for n in spec["linux"]["namespaces"]]
    assert "user" in kinds and "network" not in kinds
    assert spec["linux"]["uidMappings"][0]["hostID"] == os.geteuid()


def test_spec_validates_against_schema(tmp_path: os.PathLike) -> None:
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    schema_dir = os.path.join(os.path.dirname(__file__), "schemas")  # vendored: README there
    resources = []
    for name in (n for n in os.listdir(schema_dir) if n.endswith(".json")):
        with open(os.path.join(schema_dir, name)) as f:
            contents = json.load(f)
        resources.append((name, Resource.from_contents(contents, default_specification=DRAFT4)))
    registry = Registry().with_resources(resources)
    schema = json.load(open(os.path.join(schema_dir, "config-schema.json")))
    for spec in (default_spec(), rootless_spec()):
        jsonschema.validate(spec, schema, registry=registry)  # type: ignore[call-arg]


def test_features_json() -> None:
    proc = run("features")
    assert proc.returncode == 0
    feats = json.loads(proc.stdout)
    assert feats["ociVersionMin"] == "1.0.0"
    assert "pid" in feats["linux"]["namespaces"] and "time" in feats["linux"]["namespaces"]
    assert "poststop" in feats["hooks"] and "rbind" in feats["mountOptions"]
    assert feats["linux"]["seccomp"]["enabled"] is True
    assert "SCMP_ACT_ERRNO" in feats["linux"]["seccomp"]["actions"]


def test_version_and_help() -> None:
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith(b"barque-runtime version ")
    assert b"spec: " in proc.stdout
    assert run("--help").returncode == 0
    assert run().returncode == 1


def test_systemd_cgroup_is_refused_clearly() -> None:
    proc = run("--systemd-cgroup", "list")
    assert proc.returncode == 1 and b"systemd cgroup driver is not supported" in proc.stderr
