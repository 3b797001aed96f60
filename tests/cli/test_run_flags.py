"""`run` flags and container commands not covered elsewhere, each checked from inside the
container or through `inspect`, as a Docker user would."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.cli.conftest import Barque, inspect_container, ok, until
from tests.support.marks import needs_busybox

pytestmark = [
    pytest.mark.root,
    needs_busybox,
]


def test_process_flags(barque: Barque, tmp_path: str) -> None:
    b = barque
    env_file = os.path.join(str(tmp_path), "env")
    with open(env_file, "w") as f:
        f.write("# a comment\nFROM_FILE=yes\n")
    script = ('echo "$FROM_FILE"; ulimit -n; grep CapEff /proc/self/status; '
              'grep -c box.example /etc/hosts; cat /proc/self/cgroup >/dev/null')
    out = ok(b.run("run", "--rm", "--env-file", env_file, "--ulimit", "nofile=512:512",
                   "--cap-drop", "ALL", "--cap-add", "KILL", "--add-host",
                   "box.example:10.1.2.3", "--entrypoint", "sh", "busybox", "-c", script))
    lines = out.splitlines()
    assert lines[0] == "yes" and lines[1] == "512"
    assert int(lines[2].split()[1], 16) == 1 << 5  # CAP_KILL alone
    assert lines[3] == "1"
    privileged = ok(b.run("run", "--rm", "--privileged", "busybox", "grep", "CapEff",
                          "/proc/self/status"))
    assert int(privileged.split()[1], 16) > 0xA80425FB  # more than Docker's 14


def test_network_modes(barque: Barque) -> None:
    b = barque
    host = ok(b.run("run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net"))
    # (veths come and go with other containers, and the namespaces' ends go moments later)
    assert {n for n in host.split() if not n.startswith("veth")} == \
        {n for n in os.listdir("/sys/class/net") if not n.startswith("veth")}
    ok(b.run("run", "-d", "--name", "netowner", "busybox", "sleep", "300"))
    pid = inspect_container(b, "netowner")["State"]["Pid"]
    joined = ok(b.run("run", "--rm", "--network", "container:netowner", "busybox",
                      "readlink", "/proc/self/ns/net"))
    assert joined.strip() == os.readlink(f"/proc/{pid}/ns/net")


def test_device_cpuset_and_pids_limit(barque: Barque) -> None:
    b = barque
    out = ok(b.run("run", "--rm", "--device", "/dev/null:/dev/mynull", "--cpuset-cpus", "0",
                   "busybox", "sh", "-c", "echo hi > /dev/mynull && echo ok; "
                   "grep Cpus_allowed_list /proc/self/status"))
    assert out.splitlines()[0] == "ok" and out.split()[-1] == "0"
    # A bounded "fork bomb": a subshell starts 40 background sleeps under a limit of 10
    # processes (ash gives up at its first failed fork); the count is then read with shell
    # builtins only (no fork is left to spare).
    bomb = ("(i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done) 2>/dev/null; "
            "for f in /sys/fs/cgroup/pids/pids.current /sys/fs/cgroup/pids.current; do "
            "[ -r $f ] && read n < $f && echo $n; done; exit 0")
    count = ok(b.run("run", "--rm", "--pids-limit", "10", "busybox", "sh", "-c", bomb,
                     timeout=60))
    assert 1 < int(count.split()[0]) <= 10


def test_stop_signal_and_timeout(barque: Barque) -> None:
    b = barque
    script = "trap 'echo got-usr1; exit 0' USR1; while :; do sleep 0.1; done"
    ok(b.run("run", "-d", "--name", "sig", "--stop-signal", "USR1", "busybox", "sh", "-c",
             script))
    ok(b.run("stop", "sig"))
    assert inspect_container(b, "sig")["State"]["ExitCode"] == 0
    assert "got-usr1" in ok(b.run("logs", "sig"))
    ok(b.run("run", "-d", "--name", "slow", "--stop-timeout", "1", "busybox", "sleep", "300"))
    started = time.monotonic()
    ok(b.run("stop", "slow"))
    assert time.monotonic() - started < 10
    assert inspect_container(b, "slow")["State"]["ExitCode"] == 137


def test_restart_attach_and_exec_tty(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "-d", "--name", "svc", "busybox", "sh", "-c",
             "echo started; while :; do sleep 0.1; done"))
    first = inspect_container(b, "svc")["State"]["StartedAt"]
    assert ok(b.run("restart", "-t", "0", "svc")) == "svc\n"
    state = inspect_container(b, "svc")["State"]
    assert state["Running"] and state["StartedAt"] != first
    until(lambda: ok(b.run("logs", "svc")) == "started\nstarted\n")
    # attach: output from now on; the container's end ends it with the container's status.
    proc = subprocess.Popen(b.argv("attach", "svc"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    time.sleep(0.5)
    ok(b.run("exec", "svc", "sh", "-c", "echo from-exec > /proc/1/fd/1"))
    ok(b.run("kill", "svc"))
    out, _ = proc.communicate(timeout=30)
    assert b"from-exec" in out and proc.returncode == 137
    ok(b.run("start", "svc"))
    tty = ok(b.run("exec", "-t", "svc", "sh", "-c", "tty; stty size"))
    assert tty.startswith("/dev/pts/") and len(tty.splitlines()) == 2


def test_logs_since_until(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "--name", "timed", "busybox", "sh", "-c", "echo early; sleep 1.2; echo late"))
    entries = ok(b.run("logs", "-t", "timed")).splitlines()
    late_time = entries[1].split()[0]
    assert ok(b.run("logs", "--since", late_time, "timed")) == "late\n"
    assert ok(b.run("logs", "--until", late_time.replace("Z", "")[:19] + "Z", "timed")) == \
        "early\n"
    assert ok(b.run("logs", "--since", "1h", "timed")) == "early\nlate\n"
    assert ok(b.run("logs", "--since", "2099-01-01T00:00:00Z", "timed")) == ""


def test_port_prune_and_volume_commands(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "--name", "portless", "busybox", "true"))
    assert ok(b.run("port", "portless")) == ""
    missing = b.run("port", "portless", "80")
    # the oracle's docker 20.10 names it with its protocol (docker 28 repeats the argument)
    assert missing.returncode == 1 and "No public port '80/tcp' published" in missing.stderr
    assert ok(b.run("volume", "create", "--label", "k=v", "vol1")) == "vol1\n"
    assert ok(b.run("volume", "create", "vol1")) == "vol1\n"  # as Docker: no error
    info = ok(b.run("volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels.k}}", "vol1"))
    assert info == "vol1 local v\n"
    assert ok(b.run("volume", "ls", "--filter", "label=k=v", "-q")) == "vol1\n"
    ok(b.run("run", "--name", "anon", "-v", "/data", "busybox", "true"))
    anon = inspect_container(b, "anon")["Mounts"][0]["Name"]
    pruned = ok(b.run("container", "prune", "-f"))
    assert "Deleted Containers:" in pruned and ok(b.run("ps", "-aq")) == ""
    pruned = ok(b.run("volume", "prune", "-f"))
    assert anon in pruned and "vol1" not in pruned  # only anonymous ones by default
    assert "vol1" not in ok(b.run("volume", "prune", "-a", "-f", "--filter", "label=k=w"))
    bad = b.run("volume", "prune", "-f", "--filter", "until=1h")
    assert bad.returncode != 0 and "Invalid filter 'until'" in bad.stderr
    assert ok(b.run("volume", "prune", "-a", "-f", "--filter", "label=k")).count("vol1") == 1
    assert ok(b.run("volume", "ls", "-q")) == ""


# --- network flags (#9): Docker's API shapes in the record, Docker's words for bad ones -----

def test_network_flags_in_inspect(barque: Barque) -> None:
    b = barque
    result = b.run("create", "--name", "pub", "-p", "127.0.0.1:8080:80", "-p", "9090:90/udp",
                   "-p", "127.0.0.1::70", "--expose", "7000-7001", "-P", "--dns", "1.1.1.1",
                   "--dns", "127.0.0.1", "--dns-search", "example.com", "--dns-option",
                   "ndots:2", "--add-host", "a:1.2.3.4", "--add-host", "b=[::1]",
                   "--add-host", "gw:host-gateway", "busybox", "true")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "WARNING: Localhost DNS (127.0.0.1) may fail in containers.\n"
    info = inspect_container(b, "pub")
    host = info["HostConfig"]
    assert host["NetworkMode"] == "bridge"  # Docker's default, not "default"
    assert host["PortBindings"] == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
        "90/udp": [{"HostIp": "", "HostPort": "9090"}],
        "70/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert host["PublishAllPorts"] is True
    assert (host["Dns"], host["DnsSearch"], host["DnsOptions"]) == (
        ["1.1.1.1", "127.0.0.1"], ["example.com"], ["ndots:2"])
    assert host["ExtraHosts"] == ["a:1.2.3.4", "b:::1", "gw:host-gateway"]
    assert sorted(info["Config"]["ExposedPorts"]) == [
        "70/tcp", "7000/tcp", "7001/tcp", "80/tcp", "90/udp"]
    settings = info["NetworkSettings"]
    assert settings["Ports"] == {} and settings["IPAddress"] == ""  # not running
    assert ok(b.run("port", "pub")) == ""
    result = b.run("port", "pub", "80")
    assert result.returncode == 1
    assert result.stderr == "Error: No public port '80/tcp' published for pub\n"
    assert ok(b.run("ps", "-a", "--filter", "publish=8080", "-q")) == ""  # only while running
    result = b.run("ps", "-a", "--filter", "publish=80:80")
    assert result.returncode == 1 and "should not contain ':'" in result.stderr


def test_network_mode_warnings_and_links(barque: Barque) -> None:
    b = barque
    result = b.run("create", "--name", "hostnet", "--network", "host", "-p", "80:80",
                   "busybox", "true")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ("WARNING: Published ports are discarded when using host network "
                             "mode\n")
    ok(b.run("create", "--name", "target", "busybox", "true"))
    ok(b.run("create", "--name", "linker", "--link", "target:t", "--link", "target",
             "busybox", "true"))
    assert inspect_container(b, "linker")["HostConfig"]["Links"] == [
        "/target:/linker/t", "/target:/linker/target"]


_DAEMON_CHECKS = ("user specified IP address", "could not get container",
                  "host type networking can't", "port publishing and the container type",
                  "dns and the network mode")


@pytest.mark.parametrize("flags,words", [
    (["-p", "abc"], "Invalid containerPort: abc"),
    (["-p", "8000-8010:80-85"], "Invalid ranges specified for container and host Ports: 80-85 "
                                "and 8000-8010"),
    (["-p", "1.2.3.4:80:80:80"], "Invalid ip address: 1.2.3.4:80"),
    (["-p", "80/xyz"], "Invalid proto: xyz"),
    (["--expose", "80:80"], "invalid port format for --expose: 80:80"),
    (["--ip", "172.17.0.9"], "Error response from daemon: invalid config for network bridge: "
                             "invalid endpoint settings:\nuser specified IP address is supported "
                             "on user defined networks only"),
    (["--network-alias", "x"], "network-scoped aliases are only supported for user-defined "
                               "networks"),
    (["--mac-address", "zz"], "zz is not a valid mac address"),
    (["--dns", "abc"], 'invalid argument "abc" for "--dns" flag: abc is not an ip address'),
    (["--add-host", "foo:bar"], 'invalid argument "foo:bar" for "--add-host" flag: invalid IP '
                                'address in add-host: "bar"'),
    (["--link", "a:b:c"], 'invalid argument "a:b:c" for "--link" flag: bad format for links: '
                          "a:b:c"),
    (["--link", "nosuch"], "could not get container for nosuch: No such container: nosuch"),
    (["--network", "host", "--link", "x"], "conflicting options: host type networking can't "
                                           "be used with links"),
    (["--network", "container:x", "-p", "80"], "conflicting options: port publishing and the "
                                               "container type network mode"),
    (["--network", "container:x", "--dns", "1.1.1.1"], "conflicting options: dns and the "
                                                        "network mode"),
    (["--network", "host", "--network", "mynet"], "conflicting options: cannot attach both "
                                                  "user-defined and non-user-defined "
                                                  "network-modes"),
    (["--network", "foo=bar"], 'invalid argument "foo=bar" for "--network" flag: invalid field '
                               "key foo"),
])
def test_bad_network_flags(barque: Barque, flags: list[str], words: str) -> None:
    """The docker CLI's own checks exit 125; what the daemon refuses, `docker create` reports
    with exit 1 (its "Error response from daemon")."""
    b = barque
    before = ok(b.run("ps", "-aq")) if b.containers() else ""
    result = b.run("create", *flags, "busybox", "true")
    daemons = any(w in words for w in _DAEMON_CHECKS)
    assert result.returncode == (1 if daemons else 125), result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr
    assert (ok(b.run("ps", "-aq")) if b.containers() else "") == before  # nothing made


def test_network_flags_make_dockers_networking_config() -> None:
    """The create body for a user network, as `docker create` sends it (docker 28.2)."""
    from barque.cli import argv_scan
    from barque.cli.main import build_parser
    from barque.cli.run_options import create_request

    argv = ["create", "--network", "mynet", "--ip", "10.0.0.5", "--ip6", "fd00::5",
            "--mac-address", "02:42:ac:11:00:05", "--network-alias", "web",
            "--network-alias", "www", "--link", "other:o", "--network", "name=two,alias=a1",
            "busybox"]
    argv_scan.scan(argv)
    _, _, host_config, networking = create_request(build_parser().parse_args(argv))
    assert host_config["NetworkMode"] == "mynet" and host_config["Links"] == ["other:o"]
    assert networking == {"EndpointsConfig": {
        "mynet": {"IPAMConfig": {"IPv4Address": "10.0.0.5", "IPv6Address": "fd00::5"},
                  "Links": ["other:o"], "Aliases": ["web", "www"],
                  "MacAddress": "02:42:ac:11:00:05", "DriverOpts": None},
        "two": {"IPAMConfig": None, "Links": None, "Aliases": ["a1"], "MacAddress": "",
                "DriverOpts": None}}}
    argv = ["create", "--network", "bridge", "busybox"]
    argv_scan.scan(argv)
    _, _, host_config, networking = create_request(build_parser().parse_args(argv))
    assert (host_config["NetworkMode"], networking) == ("bridge", {"EndpointsConfig": {}})
