"""Issue 9's acceptance, end to end: containers on Barque's bridges, with real namespaces,
veths and nftables rules. Traffic stays on 127.0.0.0/8 and on the tests' own bridges."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import subprocess
import threading
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from tests.cli.conftest import Barque, inspect_container, ok, until
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]

WEB = ("sh", "-c", "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && "
       "exec httpd -f -p 80 -h /www")


@pytest.fixture
def net(barque: Barque) -> Iterator[str]:
    name = f"n{uuid.uuid4().hex[:8]}"
    ok(barque.run("network", "create", name))
    yield name


def _web(barque: Barque, name: str, *flags: str) -> str:
    return ok(barque.run("run", "-d", "--name", name, *flags, "busybox", *WEB)).strip()


def _fetch(barque: Barque, url: str, *flags: str, wait: int = 3
           ) -> subprocess.CompletedProcess[str]:
    """GET `url` from a new container: status 0 and the body for a 200, else 1. busybox nc,
    not wget: Debian's static busybox wget crashes in glibc's static name lookup."""
    host, _, port = url.removeprefix("http://").rstrip("/").partition(":")
    result = barque.run("run", "--rm", *flags, "busybox", "sh", "-c",
                        'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w "$0" "$1" "$2"',
                        str(wait), host, port or "80")
    head, _, body = result.stdout.replace("\r\n", "\n").partition("\n\n")
    good = result.returncode == 0 and " 200 " in head.split("\n")[0]
    return subprocess.CompletedProcess(result.args, 0 if good else 1, body, result.stderr)


def _address(barque: Barque, container: str, network: str) -> str:
    settings = inspect_container(barque, container)["NetworkSettings"]
    return str(settings["Networks"][network]["IPAddress"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def _serve_until_ready(barque: Barque, url: str) -> str:
    result: list[str] = []

    def fetched() -> bool:
        try:
            result.append(_http_get(url))
            return True
        except OSError:
            return False
    until(fetched, timeout=15)
    return result[-1]


def test_containers_on_a_user_network_reach_each_other_by_name_and_alias(
        barque: Barque, net: str) -> None:
    _web(barque, "web", "--network", net, "--network-alias", "site")
    for host in ("web", "site", "WEB"):
        result = _fetch(barque, f"http://{host}/", "--network", net)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("hello-from-"), result.stdout
    resolv = ok(barque.run("run", "--rm", "--network", net, "busybox", "cat",
                           "/etc/resolv.conf"))
    assert "nameserver 127.0.0.11" in resolv


def test_a_container_on_another_network_cannot_reach_it(barque: Barque, net: str) -> None:
    other = f"n{uuid.uuid4().hex[:8]}"
    ok(barque.run("network", "create", other))
    _web(barque, "web", "--network", net)
    address = _address(barque, "web", net)
    assert _fetch(barque, "http://web/", "--network", net).returncode == 0
    assert _fetch(barque, "http://web/", "--network", other).returncode != 0  # no such name
    assert _fetch(barque, f"http://{address}/", "--network", other).returncode != 0
    ok(barque.run("network", "connect", other, "web"))  # now it is on both
    assert _fetch(barque, "http://web/", "--network", other).returncode == 0
    ok(barque.run("network", "disconnect", other, "web"))
    assert _fetch(barque, "http://web/", "--network", other).returncode != 0


class _HostListener:
    """A TCP server on every host address, answering one line to each client."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("0.0.0.0", 0))
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nhost-says-hi\n")

    def close(self) -> None:
        self.sock.close()


def test_internal_network_cannot_reach_the_hosts_address_on_its_bridge(barque: Barque) -> None:
    listener = _HostListener()
    try:
        for name, internal in (("open", False), ("closed", True)):
            network = f"{name}{uuid.uuid4().hex[:6]}"
            ok(barque.run("network", "create", *(["--internal"] if internal else []), network))
            [net] = json.loads(ok(barque.run("network", "inspect", network)))
            gateway = net["IPAM"]["Config"][0]["Gateway"]
            result = _fetch(barque, f"http://{gateway}:{listener.port}/", "--network", network)
            if internal:
                assert result.returncode != 0, result.stdout
                routes = ok(barque.run("run", "--rm", "--network", network, "busybox",
                                       "ip", "route"))
                assert "default" not in routes
            else:
                assert result.returncode == 0, result.stderr
                assert "host-says-hi" in result.stdout
    finally:
        listener.close()


def test_published_port_serves_httpd_to_the_host(barque: Barque) -> None:
    port = _free_port()
    _web(barque, "web", "-p", f"127.0.0.1:{port}:80")
    assert _serve_until_ready(barque, f"http://127.0.0.1:{port}/").startswith("hello-from-")
    assert ok(barque.run("port", "web")).strip() == f"80/tcp -> 127.0.0.1:{port}"
    ports = ok(barque.run("ps", "--format", "{{.Ports}}")).strip()
    assert ports == f"127.0.0.1:{port}->80/tcp"


def test_publish_all_gives_exposed_ports_random_host_ports(barque: Barque) -> None:
    _web(barque, "web", "-P", "--expose", "80")
    lines = ok(barque.run("port", "web", "80/tcp")).split()
    host_ports = {line.rsplit(":", 1)[1] for line in lines}
    assert len(host_ports) == 1, lines
    [port] = host_ports
    assert _serve_until_ready(barque, f"http://127.0.0.1:{port}/").startswith("hello-from-")


def test_a_published_port_already_in_use_is_refused_and_changes_nothing(
        barque: Barque) -> None:
    port = _free_port()
    _web(barque, "first", "-p", f"127.0.0.1:{port}:80")
    result = barque.run("run", "-d", "--name", "second", "-p", f"127.0.0.1:{port}:80",
                        "busybox", *WEB)
    assert result.returncode == 125
    assert f"Bind for 127.0.0.1:{port} failed: port is already allocated" in result.stderr
    assert inspect_container(barque, "second")["State"]["Running"] is False
    holder = socket.create_server(("127.0.0.1", 0))
    try:
        taken = holder.getsockname()[1]
        result = barque.run("run", "-d", "--name", "third", "-p", f"127.0.0.1:{taken}:80",
                            "busybox", *WEB)
        assert result.returncode == 125
        assert "address already in use" in result.stderr
    finally:
        holder.close()
    # The first one still serves.
    assert _http_get(f"http://127.0.0.1:{port}/").startswith("hello-from-")


def test_host_network_sees_the_hosts_interfaces(barque: Barque) -> None:
    out = ok(barque.run("run", "--rm", "--network", "host", "busybox", "cat", "/proc/net/dev"))
    with open("/proc/net/dev") as f:
        host = {line.split(":")[0].strip() for line in f.readlines()[2:]}
    seen = {line.split(":")[0].strip() for line in out.splitlines()[2:]}
    assert host <= seen | {n for n in host if n.startswith("veth")}


def test_none_has_only_loopback(barque: Barque) -> None:
    out = ok(barque.run("run", "--rm", "--network", "none", "busybox", "cat", "/proc/net/dev"))
    assert [line.split(":")[0].strip() for line in out.splitlines()[2:]] == ["lo"]


def test_default_bridge_gives_an_address_and_no_names(barque: Barque) -> None:
    _web(barque, "web")
    settings = inspect_container(barque, "web")["NetworkSettings"]
    address = settings["IPAddress"]
    assert address and settings["Gateway"] and settings["MacAddress"]
    assert settings["Networks"]["bridge"]["IPAddress"] == address
    assert ok(barque.run("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web")).strip() \
        == address
    assert _fetch(barque, f"http://{address}/").returncode == 0  # icc
    assert _fetch(barque, "http://web/").returncode != 0  # Docker's default bridge: no DNS
    linked = _fetch(barque, "http://site/", "--link", "web:site")
    assert linked.returncode == 0, linked.stderr
    hosts = ok(barque.run("run", "--rm", "--add-host", "gw:host-gateway", "busybox", "cat",
                          "/etc/hosts"))
    assert f"{settings['Gateway']}\tgw" in hosts


def _veths_of(barque: Barque) -> set[str]:
    return {n for n in os.listdir("/sys/class/net") if n.startswith("veth")}


def _endpoint_rows(barque: Barque) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{barque.root}/barque.db?mode=ro", uri=True)
    try:
        return conn.execute("SELECT container_id, ipv4, veth FROM endpoints").fetchall() + \
            conn.execute("SELECT container_id FROM published_ports").fetchall()
    finally:
        conn.close()


def _table_rules(table: str) -> int:
    out = subprocess.run(["nft", "-j", "list", "table", "inet", table], capture_output=True,
                         text=True).stdout
    return sum(1 for item in json.loads(out or '{"nftables": []}')["nftables"] if "rule" in item)


@pytest.mark.slow
def test_a_hundred_cycles_leave_nothing_behind(barque: Barque, net: str) -> None:
    from barque.network import config

    table = config.load(barque.root).nft_table
    ok(barque.run("run", "--rm", "--network", net, "-p", "127.0.0.1::80", "busybox", "true"))
    [net_id] = ok(barque.run("network", "ls", "-q", "--no-trunc", "--filter",
                             f"name={net}")).split()
    before_rules = _table_rules(table)
    veths = []
    for i in range(100):
        flags = ["-p", "127.0.0.1::80"] if i % 2 else []
        cid = ok(barque.run("create", "--network", net, *flags, "busybox", "true")).strip()
        ok(barque.run("start", "-a", cid))
        ok(barque.run("rm", cid))
        veths.append("veth" + hashlib.sha256(f"{cid}:{net_id}".encode()).hexdigest()[:7])
    # The namespaces' ends take their veths with them, moments later.
    until(lambda: not any(os.path.exists(f"/sys/class/net/{v}") for v in veths), timeout=30)
    assert _table_rules(table) == before_rules
    assert _endpoint_rows(barque) == []
    [net_obj] = json.loads(ok(barque.run("network", "inspect", net)))
    assert net_obj["Containers"] == {}


def test_parallel_runs_never_get_the_same_address(barque: Barque, net: str) -> None:
    names = [f"p{i}" for i in range(6)]
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def start(name: str) -> None:
        results[name] = barque.run("run", "-d", "--name", name, "--network", net, "busybox",
                                   "sleep", "60")
    threads = [threading.Thread(target=start, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in names:
        ok(results[name])
    addresses = [_address(barque, name, net) for name in names]
    assert len(set(addresses)) == len(names), addresses


def test_rm_and_restart_policies_unmake_the_network(barque: Barque, net: str) -> None:
    ok(barque.run("run", "-d", "--name", "flaky", "--network", net, "--restart",
                  "on-failure:2", "busybox", "sh", "-c", "sleep 0.3; exit 1"))
    until(lambda: inspect_container(barque, "flaky")["State"]["Status"] == "exited",
          timeout=30)
    assert inspect_container(barque, "flaky")["RestartCount"] == 2
    until(lambda: _endpoint_rows(barque) == [] or
          all(row[1] is None for row in _endpoint_rows(barque)))
    ok(barque.run("run", "--rm", "--network", net, "busybox", "true"))
    until(lambda: all(row[1] is None for row in _endpoint_rows(barque)))


def test_bad_input_gets_dockers_words_and_changes_nothing(barque: Barque, net: str) -> None:
    [obj] = json.loads(ok(barque.run("network", "inspect", net)))
    subnet = obj["IPAM"]["Config"][0]["Subnet"]
    result = barque.run("network", "create", "--subnet", subnet, "overlap")
    assert result.returncode == 1 and "overlaps" in result.stderr
    result = barque.run("network", "create", "--subnet", "10.231.0.0/24", "--gateway",
                        "10.232.0.1", "badgw")
    assert result.returncode == 1 and "10.232.0.1" in result.stderr
    names = ok(barque.run("network", "ls", "--format", "{{.Name}}")).split()
    assert "overlap" not in names and "badgw" not in names
    result = barque.run("run", "--rm", "--network", "nope", "busybox", "true")
    assert result.returncode == 125 and "network nope not found" in result.stderr
    assert barque.containers() == []
    _web(barque, "web", "--network", net)
    result = barque.run("network", "rm", net)
    assert result.returncode == 1 and "active endpoints" in result.stderr
    assert net in ok(barque.run("network", "ls", "--format", "{{.Name}}")).split()


def _mounts_below(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return sorted((p for p in points if p == path or p.startswith(path + "/")), reverse=True)


def _reboot(barque: Barque, *containers: str) -> None:
    """What a host reboot leaves of Barque: its root dir. Processes killed without any
    clean-up (monitor first, so none runs), mounts, /run, bridges and nft tables gone."""
    from barque.network import config
    from barque.network.firewall import Firewall

    for name in containers:
        obj = inspect_container(barque, name)
        with open(os.path.join(barque.runroot, "containers", obj["Id"], "state.json")) as f:
            monitor_pid = int(json.load(f)["MonitorPid"])
        pid = int(obj["State"]["Pid"])
        os.kill(monitor_pid, 9)
        os.kill(pid, 9)
        until(lambda pid=pid: not os.path.exists(f"/proc/{pid}"))  # type: ignore[misc]
    with open(os.path.join(barque.runroot, "dns", "pid")) as f:  # the embedded resolver
        resolver = int(f.read().split()[0])
    os.kill(resolver, 9)
    until(lambda: not os.path.exists(f"/proc/{resolver}"))
    for point in _mounts_below(barque.runroot) + _mounts_below(barque.root):
        subprocess.run(["umount", "--lazy", point], check=True)
    subprocess.run(["rm", "-rf", barque.runroot], check=True)
    settings = config.load(barque.root)
    bridges = [settings.bridge] + [f"br-{i[:12]}" for i in
                                   ok(barque.run("network", "ls", "-q", "--no-trunc")).split()]
    for bridge in bridges:
        if os.path.exists(f"/sys/class/net/{bridge}"):
            subprocess.run(["ip", "link", "del", bridge], check=True)
    Firewall(settings.nft_table).delete_table()


def test_networks_survive_a_reboots_fresh_state(barque: Barque, net: str) -> None:
    port = _free_port()
    _web(barque, "web", "--network", net, "-p", f"127.0.0.1:{port}:80")
    _reboot(barque, "web")
    assert inspect_container(barque, "web")["State"]["Running"] is False
    # The dead run's address and port are free again: taken by a new container, or by it.
    ok(barque.run("run", "-d", "--name", "other", "--network", net, "busybox", "sleep", "60"))
    ok(barque.run("start", "web"))
    assert _serve_until_ready(barque, f"http://127.0.0.1:{port}/").startswith("hello-from-")
    assert _fetch(barque, "http://web/", "--network", net).returncode == 0
    assert _address(barque, "web", net) != _address(barque, "other", net)


def test_system_prune_removes_unused_networks(barque: Barque, net: str) -> None:
    used = f"u{uuid.uuid4().hex[:8]}"
    ok(barque.run("network", "create", used))
    ok(barque.run("run", "-d", "--network", used, "busybox", "sleep", "60"))
    out = ok(barque.run("system", "prune", "-f"))
    assert f"Deleted Networks:\n{net}\n" in out
    names = ok(barque.run("network", "ls", "--format", "{{.Name}}")).split()
    assert net not in names and used in names


def test_dns_flags_reach_resolv_conf(barque: Barque, net: str) -> None:
    flags = ["--dns", "192.0.2.53", "--dns-search", "example.test", "--dns-option", "ndots:2"]
    plain = ok(barque.run("run", "--rm", *flags, "busybox", "cat", "/etc/resolv.conf"))
    assert "nameserver 192.0.2.53" in plain.splitlines()
    assert "search example.test" in plain.splitlines()
    assert "options ndots:2" in plain.splitlines()
    embedded = ok(barque.run("run", "--rm", "--network", net, *flags, "busybox", "cat",
                             "/etc/resolv.conf"))
    assert "nameserver 127.0.0.11" in embedded.splitlines()  # 192.0.2.53 is its upstream
    assert "nameserver 192.0.2.53" not in embedded.splitlines()
    assert "search example.test" in embedded.splitlines()


def test_ipv6_on_a_user_network(barque: Barque) -> None:
    network = f"v6{uuid.uuid4().hex[:6]}"
    subnet = f"fd{uuid.uuid4().hex[:2]}:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}::/64"
    ok(barque.run("network", "create", "--ipv6", "--subnet", subnet, network))
    _web(barque, "web", "--network", network)
    settings = inspect_container(barque, "web")["NetworkSettings"]["Networks"][network]
    address = settings["GlobalIPv6Address"]
    assert address and settings["IPAddress"], settings
    result = barque.run("run", "--rm", "--network", network, "busybox", "sh", "-c",
                        'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 "$0" 80', address)
    assert " 200 " in result.stdout, (result.stdout, result.stderr)
    looked_up = ok(barque.run("run", "--rm", "--network", network, "busybox", "nslookup",
                              "-type=AAAA", "web", "127.0.0.11"))
    assert address in looked_up


def test_rules_taken_away_between_runs_are_made_again(barque: Barque) -> None:
    """A start commits no nftables transaction when Barque's rules are all there (it
    remembers them in the runroot); rules deleted or changed since, even both tables, are
    put back by the next start, and a start still works without that memory."""
    from barque.network import config
    from barque.network.firewall import Firewall

    settings = config.load(barque.root)
    fw = Firewall(settings.nft_table)
    ok(barque.run("run", "--rm", "busybox", "true"))
    handles = subprocess.run(["nft", "-a", "list", "table", "inet", settings.nft_table],
                             capture_output=True, text=True, check=True).stdout
    ok(barque.run("run", "--rm", "busybox", "true"))  # nothing rewritten: same handles
    assert subprocess.run(["nft", "-a", "list", "table", "inet", settings.nft_table],
                          capture_output=True, text=True, check=True).stdout == handles
    for change in ([f"flush chain inet {settings.nft_table} fwd-out-{settings.bridge}"],
                   [f"delete element inet {settings.nft_table} bridges {{ {settings.bridge} }}"],
                   None):
        if change is None:
            fw.delete_table()  # `nft flush ruleset`, a reboot
        else:
            subprocess.run(["nft", *change], check=True)
        ok(barque.run("run", "--rm", "busybox", "true"))
        assert fw.bridges() == [settings.bridge]
        rules = subprocess.run(["nft", "list", "chain", "inet", settings.nft_table,
                                f"fwd-out-{settings.bridge}"], capture_output=True,
                               text=True, check=True).stdout
        assert "drop" in rules
    for name in os.listdir(barque.runroot):
        if name.startswith("firewall-"):
            os.unlink(os.path.join(barque.runroot, name))
    fw.delete_table()
    ok(barque.run("run", "--rm", "busybox", "true"))
    assert fw.bridges() == [settings.bridge]
