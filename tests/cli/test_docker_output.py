"""Output that scripts read, as the real Docker (dockerd and docker CLI 20.10, run against a
private dockerd on this host on 2026-12-05) prints it: every expected value below was read off
that run of `docker` with the same command line (issue 13, "Output that scripts read")."""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.cli.conftest import Barque, inspect_container, ok, until
from tests.support.marks import needs_busybox

pytestmark = [
    pytest.mark.root,
    needs_busybox,
]

# dockerd 20.10's HostConfig and Config keys, in its Go structs' order, for
# `docker create --network none -m 64m busybox sleep 100` (omitempty keys left out).
DOCKER_HOST_CONFIG_KEYS = [
    "Binds", "ContainerIDFile", "LogConfig", "NetworkMode", "PortBindings", "RestartPolicy",
    "AutoRemove", "VolumeDriver", "VolumesFrom", "CapAdd", "CapDrop", "CgroupnsMode", "Dns",
    "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd", "IpcMode", "Cgroup", "Links",
    "OomScoreAdj", "PidMode", "Privileged", "PublishAllPorts", "ReadonlyRootfs", "SecurityOpt",
    "UTSMode", "UsernsMode", "ShmSize", "Runtime", "ConsoleSize", "Isolation", "CpuShares",
    "Memory", "NanoCpus", "CgroupParent", "BlkioWeight", "BlkioWeightDevice",
    "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps",
    "CpuPeriod", "CpuQuota", "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus",
    "CpusetMems", "Devices", "DeviceCgroupRules", "DeviceRequests", "KernelMemory",
    "KernelMemoryTCP", "MemoryReservation", "MemorySwap", "MemorySwappiness", "OomKillDisable",
    "PidsLimit", "Ulimits", "CpuCount", "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth",
    "MaskedPaths", "ReadonlyPaths"]
# dockerd 20.10's SystemInfo and the docker CLI's ClientInfo
DOCKER_INFO_KEYS = [
    "ID", "Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped", "Images",
    "Driver", "DriverStatus", "Plugins", "MemoryLimit", "SwapLimit", "KernelMemory",
    "KernelMemoryTCP", "CpuCfsPeriod", "CpuCfsQuota", "CPUShares", "CPUSet", "PidsLimit",
    "IPv4Forwarding", "BridgeNfIptables", "BridgeNfIp6tables", "Debug", "NFd",
    "OomKillDisable", "NGoroutines", "SystemTime", "LoggingDriver", "CgroupDriver",
    "CgroupVersion", "NEventsListener", "KernelVersion", "OperatingSystem", "OSVersion",
    "OSType", "Architecture", "IndexServerAddress", "RegistryConfig", "NCPU", "MemTotal",
    "GenericResources", "DockerRootDir", "HttpProxy", "HttpsProxy", "NoProxy", "Name",
    "Labels", "ExperimentalBuild", "ServerVersion", "Runtimes", "DefaultRuntime", "Swarm",
    "LiveRestoreEnabled", "Isolation", "InitBinary", "ContainerdCommit", "RuncCommit",
    "InitCommit", "SecurityOptions", "Warnings", "ClientInfo"]
DOCKER_CONFIG_KEYS = [
    "Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "Tty",
    "OpenStdin", "StdinOnce", "Env", "Cmd", "Image", "Volumes", "WorkingDir", "Entrypoint",
    "OnBuild", "Labels"]


def _created(b: Barque) -> dict:
    ok(b.run("create", "--network", "none", "--name", "c1", "-m", "64m", "busybox", "sleep",
             "100"))
    return inspect_container(b, "c1")


def test_inspect_key_order(cleanup: Barque) -> None:
    data = _created(cleanup)
    assert list(data["HostConfig"]) == DOCKER_HOST_CONFIG_KEYS  # none missing, none extra
    assert list(data["Config"]) == DOCKER_CONFIG_KEYS
    assert list(data["GraphDriver"]) == ["Data", "Name"]


def test_inspect_driver_and_hostname(cleanup: Barque) -> None:
    data = _created(cleanup)
    assert data["Driver"] == "overlay2" and data["GraphDriver"]["Name"] == "overlay2"
    assert data["GraphDriver"]["Data"]["LowerDir"]
    assert data["Config"]["Hostname"] == data["Id"][:12]


def test_inspect_daemon_defaults(cleanup: Barque) -> None:
    host_config = _created(cleanup)["HostConfig"]
    assert host_config["ShmSize"] == 64 * 1024 * 1024
    assert host_config["MemorySwap"] == 2 * 64 * 1024 * 1024  # dockerd: twice the memory


def test_inspect_unset_lists_are_null(cleanup: Barque) -> None:
    host_config = _created(cleanup)["HostConfig"]
    assert (host_config["Binds"], host_config["SecurityOpt"], host_config["Ulimits"]) == \
        (None, None, None)
    assert (host_config["Dns"], host_config["Devices"]) == ([], [])  # the docker CLI's []


def test_mount_points_as_dockerd(cleanup: Barque, tmp_path: str) -> None:
    b, src = cleanup, str(tmp_path)
    ok(b.run("create", "--network", "none", "--name", "m1", "-v", f"{src}:/b",
             "-v", f"{src}:/c:ro", "-v", "vol1:/v", "-v", "/anon",
             "--mount", f"type=bind,src={src},dst=/m", "--mount", "type=volume,src=vol3,dst=/w",
             "--tmpfs", "/t", "busybox", "true"))
    data = inspect_container(b, "m1")
    mounts = {m["Destination"]: m for m in data["Mounts"]}
    assert sorted(mounts) == ["/anon", "/b", "/c", "/m", "/v", "/w"]  # no tmpfs
    assert mounts["/b"] == {"Type": "bind", "Source": src, "Destination": "/b", "Mode": "",
                            "RW": True, "Propagation": "rprivate"}
    assert mounts["/c"] == {"Type": "bind", "Source": src, "Destination": "/c", "Mode": "ro",
                            "RW": False, "Propagation": "rprivate"}
    assert mounts["/m"]["Mode"] == "" and mounts["/m"]["Propagation"] == "rprivate"
    vol = mounts["/v"]
    assert list(vol) == ["Type", "Name", "Source", "Destination", "Driver", "Mode", "RW",
                         "Propagation"]
    assert (vol["Name"], vol["Driver"], vol["Mode"], vol["Propagation"]) == \
        ("vol1", "local", "z", "")
    assert mounts["/w"]["Mode"] == "z" and mounts["/anon"]["Mode"] == ""
    assert [m["Type"] for m in data["HostConfig"]["Mounts"]] == ["bind", "volume"]
    assert data["HostConfig"]["Binds"] == [f"{src}:/b", f"{src}:/c:ro", "vol1:/v", "/anon"]
    assert data["HostConfig"]["Tmpfs"] == {"/t": ""}


def test_ps_mounts_lists_binds(cleanup: Barque, tmp_path: str) -> None:
    b, src = cleanup, str(tmp_path)
    ok(b.run("create", "--network", "none", "-v", f"{src}:/b", "-v", "vol1:/v", "-v", "/anon",
             "busybox", "true"))
    anon = next(m["Name"] for m in inspect_container(b, b.run("ps", "-aq").stdout.strip())[
        "Mounts"] if m["Destination"] == "/anon")
    # ps's MOUNTS: a volume's name, a bind's host path, each cut to 15 columns
    listed = ok(b.run("ps", "-a", "--no-trunc", "--format", "{{.Mounts}}")).strip().split(",")
    assert sorted(listed) == sorted([src, "vol1", anon])
    cut = ok(b.run("ps", "-a", "--format", "{{.Mounts}}")).strip().split(",")
    assert anon[:14] + "…" in cut


def test_ps_command_quoting(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("create", "--network", "none", "busybox", "sh", "-c", 'echo "hé" <x> & tab\tend'))
    assert ok(b.run("ps", "-a", "--format", "{{.Command}}")) == '"sh -c \'echo \\"hé\\" <x…"\n'
    assert ok(b.run("ps", "-a", "--no-trunc", "--format", "{{.Command}}")) == \
        '"sh -c \'echo \\"hé\\" <x> & tab\\tend\'"\n'


def test_ps_size(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("create", "--network", "none", "busybox", "true"))
    size = ok(b.run("ps", "-a", "-s", "--format", "{{.Size}}")).strip()
    assert re.fullmatch(r"0B \(virtual [0-9.]+MB\)", size), size
    table = ok(b.run("ps", "-a", "-s")).splitlines()
    assert table[0].endswith("SIZE") and "(virtual " in table[1]


def test_ps_health_filter(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "-d", "--network", "none", "--name", "doc", "--health-cmd", "true",
             "--health-interval", "1s", "busybox", "sleep", "300"))
    ok(b.run("run", "-d", "--network", "none", "--name", "plain", "busybox", "sleep", "300"))
    until(lambda: ok(b.run("ps", "--filter", "health=healthy", "--format",
                           "{{.Names}}")) == "doc\n")
    assert ok(b.run("ps", "--filter", "health=none", "--format", "{{.Names}}")) == "plain\n"
    assert ok(b.run("ps", "--filter", "health=unhealthy", "-q")) == ""
    bad = b.run("ps", "--filter", "health=foo")
    assert (bad.returncode, bad.stderr) == \
        (1, "Error response from daemon: Unrecognised filter value for health: foo\n")
    ok(b.run("rm", "-f", "doc", "plain"))


def test_images_created_at(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "--rm", "--network", "none", "busybox", "true"))  # the default image
    # it is made at the epoch (reproducible): Go's time.String() in images, N/A in history's
    # human CREATED (the docker CLI's for a zero time)
    shown = ok(b.run("images", "--format", "{{.CreatedAt}}|{{.CreatedSince}}", "busybox"))
    assert re.fullmatch(r"1970-01-01 00:00:00 \+0000 UTC\|[0-9]+ years ago\n", shown), shown


def test_history_created_na_at_epoch(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "--rm", "--network", "none", "busybox", "true"))  # the default image
    assert ok(b.run("history", "--format", "{{.CreatedAt}}|{{.CreatedSince}}", "busybox")) == \
        "1970-01-01T00:00:00Z|N/A\n"
    assert ok(b.run("history", "busybox")).splitlines()[1].split()[1] == "N/A"


def test_image_size_and_legacy_fields(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "--rm", "--network", "none", "busybox", "true"))  # the default image
    # the size as dockerd's overlay2 counts a layer: every non-directory's bytes, symlinks too
    image = json.loads(ok(b.run("image", "inspect", "busybox")))[0]
    total = 0
    for base, _dirs, files in os.walk(image["GraphDriver"]["Data"]["LowerDir"]):
        total += sum(os.lstat(os.path.join(base, name)).st_size for name in files)
    assert image["Size"] == image["VirtualSize"] == total
    assert list(image)[5:8] == ["Created", "Container", "ContainerConfig"]


def test_system_df_counts_shared_layers_once(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "--network", "none", "--name", "w1", "busybox", "sh", "-c",
             "echo hello > /f"))
    ok(b.run("commit", "w1", "img2"))
    rows = dict(line.split("|") for line in ok(b.run(
        "system", "df", "--format", "{{.Type}}|{{.Size}} {{.Reclaimable}}")).splitlines())
    verbose = ok(b.run("system", "df", "-v")).splitlines()
    busybox = next(line.split() for line in verbose if line.startswith("busybox "))
    size = busybox[6]  # REPOSITORY TAG ID CREATED(3 words) SIZE …
    assert re.fullmatch(r"[0-9]\.[0-9]{3}MB", size), busybox  # units.HumanSize: 4 digits
    # both images hold busybox's layer: counted once; the image in use by w1 holds nothing
    # alone, so all of it is reclaimable (the docker CLI's arithmetic)
    assert rows["Images"] == f"{size} {size} (100%)"
    assert verbose[0] == "Images space usage:"
    ok(b.run("rm", "w1"))
    ok(b.run("rmi", "img2"))


def test_version_api_version(barque: Barque) -> None:
    b = barque
    assert ok(b.run("version", "--format", "{{.Client.APIVersion}} {{.Server.APIVersion}}")) \
        == "1.43 1.43\n"


def test_info_fields(barque: Barque) -> None:
    b = barque
    assert ok(b.run("info", "--format", "{{.SecurityOptions}}")) == \
        "[name=seccomp,profile=default]\n"
    swarm = json.loads(ok(b.run("info", "--format", "{{json .Swarm}}")))
    assert swarm == {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                     "ControlAvailable": False, "Error": "", "RemoteManagers": None}
    assert ok(b.run("info", "--format", "{{.Swarm.LocalNodeState}} {{.Driver}} "
                    "{{.ClientInfo.Context}} {{.Plugins.Volume}}")) == \
        "inactive overlay2 default [local]\n"
    keys = set(json.loads(ok(b.run("info", "--format", "{{json .}}"))))
    assert keys >= set(DOCKER_INFO_KEYS), set(DOCKER_INFO_KEYS) - keys


def test_diff_lists_parent_of_changed_file(cleanup: Barque) -> None:
    ok(cleanup.run("run", "--network", "none", "--name", "d2", "busybox", "sh", "-c",
                   "echo x >> /etc/passwd"))
    assert ok(cleanup.run("diff", "d2")) == "C /etc\nC /etc/passwd\n"


def test_dockerenv(cleanup: Barque) -> None:
    ok(cleanup.run("run", "--network", "none", "--name", "d3", "busybox", "test", "-x",
                   "/.dockerenv"))
    assert ok(cleanup.run("diff", "d3")) == ""  # in the init layer: not a change


@pytest.mark.parametrize("flags, shown", [
    (["-u", "1000:1000"], "uid=1000 gid=1000 groups=1000"),
    (["-u", "1000"], "uid=1000 gid=0(root) groups=0(root)"),
    ([], "uid=0(root) gid=0(root) groups=0(root)"),
    (["--group-add", "5", "-u", "1000:1000"], "uid=1000 gid=1000 groups=5(tty),1000"),
])
def test_supplementary_groups(cleanup: Barque, flags: list[str], shown: str) -> None:
    assert ok(cleanup.run("run", "--rm", "--network", "none", *flags, "busybox", "id")) == \
        shown + "\n"


@pytest.mark.parametrize("group, commands", [
    ("network", ["connect", "create", "disconnect", "inspect", "ls", "prune", "rm"]),
    ("image", ["build", "history", "import", "inspect", "load", "ls", "prune", "pull", "push",
               "rm", "save", "tag"]),
    ("volume", ["create", "inspect", "ls", "prune", "rm"]),
    ("system", ["df", "info", "prune"]),
])
def test_group_help_lists_subcommands(barque: Barque, group: str, commands: list[str]) -> None:
    text = ok(barque.run(group, "--help"))
    listed = re.findall(r"^  (\S+)", text.split("Commands:", 1)[1], re.M)
    assert [c for c in listed if c in commands] == commands
    assert "list" not in listed and "remove" not in listed  # aliases: not listed again


def _says(b: Barque, *args: str) -> tuple[int, str]:
    out = b.run(*args)
    return out.returncode, out.stderr


def _two(b: Barque) -> tuple[str, str]:
    """A running r1 and a created c1; their IDs."""
    ok(b.run("run", "-d", "--network", "none", "--name", "r1", "busybox", "sleep", "300"))
    ok(b.run("create", "--network", "none", "--name", "c1", "busybox", "true"))
    return inspect_container(b, "r1")["Id"], inspect_container(b, "c1")["Id"]


def test_rm_error_texts(cleanup: Barque) -> None:
    b = cleanup
    r1, _ = _two(b)
    assert _says(b, "rm", "r1") == (
        1, f"Error response from daemon: You cannot remove a running container {r1}. Stop the "
           "container before attempting removal or force remove\n")
    assert _says(b, "rm", "nope1", "nope2") == \
        (1, "Error: No such container: nope1\nError: No such container: nope2\n")
    assert _says(b, "rm", "-f", "nope") == (0, "Error: No such container: nope\n")
    ok(b.run("rm", "-f", "r1", "c1"))


def test_rename_error_texts(cleanup: Barque) -> None:
    b = cleanup
    _, c1 = _two(b)
    assert _says(b, "rename", "r1", "c1") == (
        1, 'Error response from daemon: Error when allocating new name: Conflict. The container '
           f'name "/c1" is already in use by container "{c1}". You have to remove (or rename) '
           "that container to be able to reuse that name.\n"
           "Error: failed to rename container named r1\n")
    assert _says(b, "rename", "r1", "bad name") == (
        1, "Error response from daemon: Error when allocating new name: Invalid container name "
           "(/bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed\n"
           "Error: failed to rename container named r1\n")
    ok(b.run("rm", "-f", "r1", "c1"))


def test_start_and_kill_error_texts(cleanup: Barque) -> None:
    b = cleanup
    _, c1 = _two(b)
    assert _says(b, "start", "nope1", "nope2") == (
        1, "Error response from daemon: No such container: nope1\n"
           "Error response from daemon: No such container: nope2\n"
           "Error: failed to start containers: nope1, nope2\n")
    assert _says(b, "kill", "c1") == (1, "Error response from daemon: Cannot kill container: "
                                         f"c1: Container {c1} is not running\n")
    assert _says(b, "kill", "nope") == \
        (1, "Error response from daemon: Cannot kill container: nope: No such container: nope\n")
    ok(b.run("rm", "-f", "r1", "c1"))


def test_tag_error_texts(barque: Barque) -> None:
    assert _says(barque, "tag", "busybox", "Bad:Tag") == (
        1, 'Error parsing reference: "Bad:Tag" is not a valid repository/tag: invalid reference '
           "format: repository name must be lowercase\n")
    assert _says(barque, "tag", "busybox", "x:-bad") == (
        1, 'Error parsing reference: "x:-bad" is not a valid repository/tag: invalid reference '
           "format\n")


@pytest.mark.parametrize("flags, words", [
    (["--rm", "--restart", "always"], "Conflicting options: --restart and --rm"),
    (["--restart", "foo"], "invalid restart policy 'foo'"),
    (["--restart", "on-failure:x"], "maximum retry count must be an integer"),
    (["--restart", "always:3"], "maximum retry count cannot be used with restart policy 'always'"),
    (["--restart", "on-failure:-1"], "maximum retry count cannot be negative"),
])
def test_restart_policy_error_texts(barque: Barque, flags: list[str], words: str) -> None:
    code, err = _says(barque, "run", "--network", "none", *flags, "busybox", "true")
    assert code == 125 and words in err, err
    assert barque.containers() == []  # nothing made
