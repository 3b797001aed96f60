"""Docker's userns-remap (issue 14): daemon.json's "userns-remap" puts every container in a
user namespace whose root is an unprivileged range of the host's ids; `--userns=host` opts
out; `--privileged` with it is refused; `explain` reports it.

The ranges come from files of the test's own (Barque's "userns-remap-subuid"/"-subgid"
keys), for the system user `daemon` every Debian has: the host's /etc/passwd, /etc/subuid
and /etc/subgid are never touched.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess

import pytest

from tests.cli.conftest import Barque, inspect_container, ok
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]

COUNT = 65536


@pytest.fixture
def remapped(barque: Barque) -> tuple[Barque, int]:
    """The `barque` fixture's root with userns-remap on; (it, the host uid of its root)."""
    start = 400000 + secrets.randbelow(64) * COUNT  # clear of the usual 100000.. ranges
    os.chmod(os.path.dirname(barque.root), 0o711)  # dockerd's rule: the remapped root passes
    for name in ("subuid", "subgid"):
        with open(os.path.join(barque.root, name), "w") as f:
            f.write(f"root:1000000:{COUNT}\ndaemon:{start}:{COUNT}\n")
    path = os.path.join(barque.root, "daemon.json")
    with open(path) as f:
        settings = json.load(f)
    settings.update({"userns-remap": "daemon",
                     "userns-remap-subuid": os.path.join(barque.root, "subuid"),
                     "userns-remap-subgid": os.path.join(barque.root, "subgid")})
    with open(path, "w") as f:
        json.dump(settings, f)
    return barque, start


def _status_ids(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["Uid"].split()[0]), int(fields["Gid"].split()[0])


def test_root_inside_is_the_mapped_uid_outside(remapped: tuple[Barque, int]) -> None:
    b, start = remapped
    cid = ok(b.run("run", "-d", "--name", "un", "--network", "none", "busybox",
                   "sleep", "1000")).strip()
    info = inspect_container(b, "un")
    assert info["HostConfig"]["UsernsMode"] == ""
    pid = int(info["State"]["Pid"])
    assert _status_ids(pid) == (start, start)
    with open(f"/proc/{pid}/uid_map") as f:
        assert f.read().split() == ["0", str(start), str(COUNT)]
    assert ok(b.run("exec", "un", "id", "-u")) == "0\n"
    # The image's files are its root's inside (an idmapped view: the layers stay as they were).
    assert ok(b.run("exec", "un", "stat", "-c", "%u:%g", "/bin/busybox", "/etc/hosts",
                    "/")) == "0:0\n0:0\n0:0\n"
    ok(b.run("exec", "un", "sh", "-c", "echo hi > /written && mkdir /madedir && "
             "echo x >> /etc/passwd"))
    assert ok(b.run("exec", "un", "stat", "-c", "%u", "/written", "/etc/passwd")) == "0\n0\n"
    upper = os.path.join(b.root, "containers", cid, "snapshot", "upper")
    for name in ("written", "madedir", "etc/passwd"):  # "passwd": copied up from a layer
        st = os.lstat(os.path.join(upper, name))
        assert (st.st_uid, st.st_gid) == (start, start), name
    st = os.lstat(upper)
    assert (st.st_uid, st.st_gid) == (start, start)
    # The root dir (state DB, volumes) opens to the mapped root's group only, not to all.
    st = os.stat(b.root)
    assert (st.st_mode & 0o777, st.st_gid) == (0o710, start)
    layers = [line for line in _mounts() if cid in line and " overlay " in line]
    assert layers, "the container's overlay is mounted"
    image_passwd = _lower_file(b, "etc/passwd")
    assert os.lstat(image_passwd).st_uid == 0  # no chowned copy of the image


def _mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return f.read().splitlines()


def _lower_file(b: Barque, relative: str) -> str:
    """A file of the busybox image's layer in the store (whichever layer dir holds it)."""
    for top, _dirs, _files in os.walk(b.root):
        if "containers" in top.split(os.sep):
            continue
        candidate = os.path.join(top, relative)
        if os.path.isfile(candidate) and not os.path.islink(candidate) and \
                os.path.isfile(os.path.join(top, "bin", "busybox")):
            return candidate
    raise AssertionError(f"no layer holds {relative}")


def test_a_bridge_network_container_is_remapped_too(remapped: tuple[Barque, int]) -> None:
    b, start = remapped
    out = ok(b.run("run", "--rm", "busybox", "sh", "-c",
                   "cat /proc/self/uid_map; ip -o -4 addr show eth0 | wc -l; ls /sys/class"))
    lines = out.split("\n")
    assert lines[0].split() == ["0", str(start), str(COUNT)]
    assert lines[1] == "1" and "net" in out


def test_userns_host_opts_out(remapped: tuple[Barque, int]) -> None:
    b, _ = remapped
    ok(b.run("run", "-d", "--name", "ho", "--userns=host", "--network", "none", "busybox",
             "sleep", "1000"))
    info = inspect_container(b, "ho")
    assert info["HostConfig"]["UsernsMode"] == "host"
    pid = int(info["State"]["Pid"])
    assert _status_ids(pid) == (0, 0)
    assert os.readlink(f"/proc/{pid}/ns/user") == os.readlink("/proc/self/ns/user")


def test_privileged_with_remap_is_refused_as_docker_does(remapped: tuple[Barque, int]) -> None:
    b, _ = remapped
    result = b.run("run", "--rm", "--privileged", "busybox", "true")
    assert result.returncode == 125
    assert "privileged mode is incompatible with user namespaces.  You must run the " \
        "container in the host namespace when running privileged mode" in result.stderr
    assert ok(b.run("ps", "-aq")) == ""  # nothing made
    out = ok(b.run("run", "--rm", "--privileged", "--userns", "host", "--network", "none",
                   "busybox", "cat", "/proc/self/uid_map"))
    assert out.split() == ["0", "0", "4294967295"]


def test_a_bad_userns_mode_is_refused(barque: Barque) -> None:
    result = barque.run("run", "--rm", "--userns", "private", "busybox", "true")
    assert result.returncode == 125
    assert "--userns: invalid USER mode" in result.stderr
    assert ok(barque.run("ps", "-aq")) == ""


def test_without_remap_a_container_has_no_user_namespace(barque: Barque) -> None:
    ok(barque.run("run", "-d", "--name", "plain", "--network", "none", "busybox",
                  "sleep", "1000"))
    pid = int(inspect_container(barque, "plain")["State"]["Pid"])
    assert os.readlink(f"/proc/{pid}/ns/user") == os.readlink("/proc/self/ns/user")


def test_explain_reports_the_user_namespace(remapped: tuple[Barque, int]) -> None:
    b, start = remapped
    ok(b.run("run", "-d", "--name", "ex", "--network", "none", "busybox", "sleep", "1000"))
    pid = int(inspect_container(b, "ex")["State"]["Pid"])
    facts = json.loads(ok(b.run("explain", "--format", "json", "--interval", "0.2", "ex")))
    user = next(ns for ns in facts["namespaces"] if ns["type"] == "user")
    assert user["private"] and user["shared_with"] == []
    assert user["inode"] == int(os.readlink(f"/proc/{pid}/ns/user")[6:-1])
    assert f"root inside is uid {start} outside" in user["meaning"]
    with open(f"/proc/{pid}/uid_map") as f:
        kernel_map = [[int(n) for n in line.split()] for line in f]
    assert facts["security"]["user"]["uid_map"] == kernel_map == [[0, start, COUNT]]
    assert facts["security"]["user"]["outside"] == {"uid": start, "gid": start}
    assert facts["security"]["user"]["inside"] == {"uid": 0, "gid": 0}
    view = ok(b.run("explain", "--interval", "0.2", "ex"))
    assert f"root inside is uid {start}" in view


def test_commit_export_and_cp_speak_the_containers_own_ids(remapped: tuple[Barque, int],
                                                            tmp_path: str) -> None:
    """The upper dir holds mapped ids; what crosses the container's edge (a committed
    layer, an export, `cp` both ways) is in the container's own ids, as Docker's remap
    gives."""
    import tarfile

    b, start = remapped
    ok(b.run("run", "--name", "cm", "--network", "none", "busybox", "sh", "-c",
             "echo hi > /made && mkdir -p /home/someone && touch /home/someone/own && "
             "chown 1234:1234 /home/someone/own"))
    exported = os.path.join(tmp_path, "x.tar")
    ok(b.run("export", "-o", exported, "cm"))
    with tarfile.open(exported) as tar:
        owners = {m.name: (m.uid, m.gid) for m in tar.getmembers()}
    assert owners["made"] == (0, 0) and owners["bin/busybox"] == (0, 0)
    assert owners["home/someone/own"][0] == 1234
    ok(b.run("commit", "cm", "committed:1"))
    out = ok(b.run("run", "--rm", "--userns=host", "--network", "none", "committed:1",
                   "stat", "-c", "%u:%g", "/made", "/home/someone/own"))
    assert out.split() == ["0:0", "1234:1234"]
    host_file = os.path.join(tmp_path, "in.txt")
    with open(host_file, "w") as f:
        f.write("in\n")
    os.chown(host_file, 4321, 4321)
    ok(b.run("cp", host_file, "cm:/in.txt"))
    cid = inspect_container(b, "cm")["Id"]
    st = os.lstat(os.path.join(b.root, "containers", cid, "snapshot", "upper", "in.txt"))
    assert (st.st_uid, st.st_gid) == (start, start)
    copied = os.path.join(tmp_path, "out.tar")
    with open(copied, "wb") as f:
        subprocess.run(b.argv("cp", "cm:/home/someone", "-"), stdout=f, check=True,
                       timeout=60)
    with tarfile.open(copied) as tar:
        owners = {m.name: (m.uid, m.gid) for m in tar.getmembers()}
    assert owners == {"someone": (0, 0), "someone/own": (1234, 1234)}


def test_a_root_dir_the_mapped_root_cannot_reach_is_a_clear_error(
        remapped: tuple[Barque, int]) -> None:
    b, _ = remapped
    os.chmod(os.path.dirname(b.root), 0o700)
    result = b.run("run", "--rm", "--network", "none", "busybox", "true")
    assert result.returncode == 125, result.stderr
    assert "restricts access to the remapped root uid/gid; please fix by allowing 'o+x' " \
        "permissions on existing directories" in result.stderr
    assert ok(b.run("ps", "-aq")) == ""


def test_remapped_root_has_no_rights_over_the_hosts_files(remapped: tuple[Barque, int],
                                                          tmp_path: str) -> None:
    """The point of the remap: root inside is nobody special outside. A host dir bound in
    (owned by the host's root) can be neither read where it is private nor written."""
    host = os.path.join(tmp_path, "host")
    os.mkdir(host, 0o755)
    os.chmod(tmp_path, 0o755)
    secret = os.path.join(host, "secret")
    with open(secret, "w") as f:
        f.write("host only\n")
    os.chmod(secret, 0o600)
    b, _ = remapped
    result = b.run("run", "--rm", "--network", "none", "-v", f"{host}:/h", "busybox", "sh",
                   "-c", "cat /h/secret; echo pwned > /h/marker; stat -c %u /h/secret")
    assert "Permission denied" in result.stderr
    assert "host only" not in result.stdout
    assert result.stdout.strip() == "65534"  # the host's root is unmapped: the overflow id
    assert not os.path.exists(os.path.join(host, "marker"))
    # The same container without the remap reads and writes them: the test's dir is fine.
    out = ok(b.run("run", "--rm", "--userns", "host", "--network", "none", "-v",
                   f"{host}:/h", "busybox", "sh", "-c", "cat /h/secret; touch /h/marker"))
    assert out == "host only\n"


def test_a_new_volume_is_the_mapped_roots(remapped: tuple[Barque, int]) -> None:
    b, start = remapped
    out = ok(b.run("run", "--rm", "--network", "none", "-v", "vol1:/data", "busybox", "sh",
                   "-c", "touch /data/x && stat -c %u:%g /data /data/x"))
    assert out.split() == ["0:0", "0:0"]
    [volume] = json.loads(ok(b.run("volume", "inspect", "vol1")))
    for path in (volume["Mountpoint"], os.path.join(volume["Mountpoint"], "x")):
        st = os.lstat(path)
        assert (st.st_uid, st.st_gid) == (start, start)


def test_exec_into_a_bridge_network_container(remapped: tuple[Barque, int]) -> None:
    # The runtime joined its user namespace before the network namespace the engine made
    # (the host's user namespace's): EPERM.
    b, start = remapped
    ok(b.run("run", "-d", "--name", "br", "busybox", "sleep", "1000"))
    assert ok(b.run("exec", "br", "cat", "/proc/self/uid_map")).split() == \
        ["0", str(start), str(COUNT)]


def test_a_joiner_is_in_its_donors_user_namespace(remapped: tuple[Barque, int]) -> None:
    """As dockerd's: an IPC or PID namespace is its user namespace's (its root mounts /proc,
    mqueue for it), so a remapped joiner joins the donor's user namespace too."""
    b, start = remapped
    ok(b.run("run", "-d", "--name", "donor", "--ipc", "shareable", "busybox", "sleep", "1000"))
    pid = inspect_container(b, "donor")["State"]["Pid"]
    out = ok(b.run("run", "--rm", "--ipc", "container:donor", "--pid", "container:donor",
                   "busybox", "sh", "-c", "readlink /proc/self/ns/user; readlink "
                   "/proc/self/ns/ipc; cat /proc/self/uid_map; touch /dev/shm/x && "
                   "ps -o args | grep -c '^sleep'"))
    lines = out.splitlines()
    assert lines[:2] == [os.readlink(f"/proc/{pid}/ns/{k}") for k in ("user", "ipc")]
    assert lines[2].split() == ["0", str(start), str(COUNT)]
    assert lines[3] == "1"
    ok(b.run("run", "-d", "--name", "plain", "--userns=host", "--network", "none",
             "--ipc", "shareable", "busybox", "sleep", "1000"))
    result = b.run("run", "--rm", "--network", "none", "--ipc", "container:plain", "busybox",
                   "true")
    assert result.returncode == 125
    assert "it is not in a user namespace and this container is (userns-remap)" in \
        result.stderr


def test_ipc_and_uts_host_with_remap(remapped: tuple[Barque, int]) -> None:
    # dockerd allows both under userns-remap; mqueue cannot be mounted for the host's IPC
    # namespace from another user namespace: the host's /dev/mqueue is bound, if mounted.
    b, _ = remapped
    out = ok(b.run("run", "--rm", "--network", "none", "--ipc", "host", "--uts", "host",
                   "busybox", "sh", "-c", "readlink /proc/self/ns/ipc; readlink "
                   "/proc/self/ns/uts; cat /proc/self/uid_map"))
    lines = out.splitlines()
    assert lines[:2] == [os.readlink(f"/proc/self/ns/{k}") for k in ("ipc", "uts")]
    assert lines[2].split()[0] == "0" and lines[2].split()[1] != "0"
