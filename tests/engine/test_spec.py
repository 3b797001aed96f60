"""The OCI spec the engine makes from a container's Config and HostConfig (no container runs
here): Docker's defaults and how each HostConfig field maps."""

from __future__ import annotations

import os

import pytest

from barque.engine import seccomp_profile, spec_resources, spec_security
from barque.engine.mounts import MountError, parse_bind, parse_mount
from barque.engine.spec import DOCKER_MASKED_PATHS, SpecError, make_spec, merge_env
from barque.engine.users import RootfsError, resolve_user

CID = "c0ffee" + "0" * 58


@pytest.fixture
def rootfs(tmp_path: str) -> str:
    root = os.path.join(str(tmp_path), "rootfs")
    os.makedirs(os.path.join(root, "etc"))
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n")
    with open(os.path.join(root, "etc", "group"), "w") as f:
        f.write("root:x:0:\nalice:x:1000:\nstaff:x:50:alice\n")
    return root


def _spec(rootfs: str, config: dict | None = None, host: dict | None = None) -> dict:
    config = {"Cmd": ["true"], **(config or {})}
    return make_spec(CID, config, host or {}, rootfs, os.path.dirname(rootfs), [])


def test_docker_defaults(rootfs: str) -> None:
    spec = _spec(rootfs)
    process = spec["process"]
    assert process["args"] == ["true"] and process["cwd"] == "/"
    assert len(process["capabilities"]["bounding"]) == 14
    assert spec["hostname"] == CID[:12] and "HOSTNAME=" + CID[:12] in process["env"]
    assert spec["linux"]["maskedPaths"] == DOCKER_MASKED_PATHS
    assert spec["linux"]["cgroupsPath"] == f"/barque/{CID}"
    shm = next(m for m in spec["mounts"] if m["destination"] == "/dev/shm")
    assert "size=67108864" in shm["options"]
    etc = [m["destination"] for m in spec["mounts"] if m["source"].startswith(
        os.path.dirname(rootfs))]
    assert etc == ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]
    seccomp = spec["linux"]["seccomp"]  # Docker's default profile
    assert seccomp["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = {n for rule in seccomp["syscalls"] for n in rule["names"]
               if rule["action"] == "SCMP_ACT_ALLOW"}
    assert "read" in allowed and "kexec_load" not in allowed
    assert "mount" not in allowed and "bpf" not in allowed  # only with CAP_SYS_ADMIN


def test_user_env_workdir_and_groups(rootfs: str) -> None:
    spec = _spec(rootfs, {"User": "alice", "Env": ["A=1", "PATH=/x"], "WorkingDir": "/w"},
                 {"GroupAdd": ["staff", "7"]})
    process = spec["process"]
    assert process["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [50, 1000, 7]}
    assert "PATH=/x" in process["env"] and "HOME=/home/alice" in process["env"]
    assert process["cwd"] == "/w"
    assert "effective" not in process["capabilities"]  # a non-root user starts with none
    with pytest.raises(RootfsError, match="unable to find user ghost"):
        resolve_user(rootfs, "ghost")
    with pytest.raises(SpecError, match="needs to be an absolute path"):
        _spec(rootfs, {"WorkingDir": "relative"})


def test_caps_privileged_and_security_options(rootfs: str) -> None:
    caps = spec_security.capabilities({"CapAdd": ["net_admin"], "CapDrop": ["CHOWN"]})
    assert "CAP_NET_ADMIN" in caps and "CAP_CHOWN" not in caps
    assert spec_security.capabilities({"CapDrop": ["ALL"], "CapAdd": ["kill"]}) == ["CAP_KILL"]
    with pytest.raises(spec_security.SecurityError,
                       match='invalid CapAdd: unknown capability: "CAP_NOPE"'):
        spec_security.capabilities({"CapAdd": ["NOPE"]})
    spec = _spec(rootfs, host={"Privileged": True, "SecurityOpt": ["no-new-privileges"]})
    assert spec["linux"]["maskedPaths"] == [] and "seccomp" not in spec["linux"]
    assert spec["process"]["noNewPrivileges"] is True
    assert _spec(rootfs, host={"SecurityOpt": ["seccomp=unconfined"]})["linux"].get(
        "seccomp") is None


def test_resources(rootfs: str) -> None:
    spec = _spec(rootfs, host={"Memory": 64 << 20, "MemorySwap": 128 << 20,
                               "NanoCpus": 1_500_000_000, "CpuShares": 512, "PidsLimit": 20,
                               "Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}]})
    res = spec["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert res["cpu"] == {"period": 100000, "quota": 150000, "shares": 512}
    assert res["pids"] == {"limit": 20}
    assert res["devices"][0] == {"allow": False, "access": "rwm"}
    assert spec["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]
    with pytest.raises(spec_resources.ResourceError, match="Memoryswap"):
        spec_resources.resources({"MemorySwap": 100})


def test_volume_specs() -> None:
    bind = parse_bind("/src:/dst:ro,rshared")
    assert (bind.type, bind.source, bind.target, bind.read_only, bind.propagation) == \
        ("bind", "/src", "/dst", True, "rshared")
    named = parse_bind("data:/data")
    assert (named.type, named.source) == ("volume", "data")
    assert parse_bind("/anon").source == ""
    for bad in ("a:b:c:d", ":/x", "/tmp:relative", "/src:/dst:bogus", "bad name:/x", "/src:/"):
        with pytest.raises(MountError, match="invalid volume specification"):
            parse_bind(bad)
    tmpfs = parse_mount("type=tmpfs,target=/t,tmpfs-size=1000")
    assert tmpfs.options == ["size=1000"]
    with pytest.raises(MountError, match="bind source path does not exist"):
        parse_mount("type=bind,source=/no/such/dir,target=/x")


def test_merge_env_replaces_in_place() -> None:
    assert merge_env(["A=1", "B=2"], ["B=3", "C=4"]) == ["A=1", "B=3", "C=4"]


def test_seccomp_rules_follow_capabilities() -> None:
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO",
         "excludes": {"caps": ["CAP_SYS_PTRACE"]}},
    ]}
    names = [r["names"] for r in seccomp_profile.to_oci(profile, ["CAP_CHOWN"])["syscalls"]]
    assert names == [["read"], ["ptrace"]]
    names = [r["names"] for r in seccomp_profile.to_oci(
        profile, ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"])["syscalls"]]
    assert names == [["read"], ["mount"]]


def test_pid_host_leaves_the_pid_namespace_out(rootfs: str) -> None:
    from barque.engine.context import EngineError
    from barque.engine.nsmodes import check_words

    types = [ns["type"] for ns in _spec(rootfs)["linux"]["namespaces"]]
    assert "pid" in types
    host = [ns["type"] for ns in _spec(rootfs, host={"PidMode": "host"})["linux"]["namespaces"]]
    assert host == [t for t in types if t != "pid"]
    check_words({"PidMode": "host"})
    check_words({})
    check_words({"PidMode": "container:web"})
    for mode in ("foo", "container:", "container:a:b"):
        with pytest.raises(EngineError, match=f"invalid PID mode: {mode}"):
            check_words({"PidMode": mode})
