"""The network agent (barque.network.agent) and its facade (barque.network.linkops): the same
results, exceptions and words as barque.network.links in-process; the work done in-process
whenever the agent is missing, stale, killed, hung or in another namespace; one agent per
runroot however many start it; its end after its idle time or SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from barque.network import agent, linkops, links, netns, service
from tests.support.netns import delete_links, free_subnets, ip, link_gone, netns_dir
from tests.support.procs import alive, module_pids, wait_gone
from tests.support.tools import require

pytestmark = pytest.mark.root


@dataclass
class World:
    root: str
    runroot: str
    nsdir: str
    prefix: str          # interface names
    v4: list[str]        # a free /24's addresses as CIDR: [gateway, container, ...]
    made: list[str]

    @property
    def dir(self) -> str:
        return agent.state_dir(self.runroot)

    def ops(self) -> linkops.LinkOps:
        return linkops.LinkOps(self.root, self.runroot)

    def name(self, suffix: str) -> str:
        self.made.append(self.prefix + suffix)
        return self.prefix + suffix

    def ns(self, name: str) -> str:
        path = os.path.join(self.nsdir, name)
        netns.create(path)
        return path

    def pid(self) -> int | None:
        return service.read_pid(self.dir)

    def set_idle(self, seconds: float) -> None:
        with open(os.path.join(self.root, "daemon.json"), "w") as f:
            json.dump({"network-agent-idle": seconds}, f)


@pytest.fixture
def world(run_prefix: str, if_prefix: str) -> Iterator[World]:
    require("ip")
    work = tempfile.mkdtemp(prefix=f"{run_prefix}-agent-")
    v4, _ = free_subnets()
    prefix = f"{if_prefix}a"
    with netns_dir(run_prefix) as nsdir:
        w = World(os.path.join(work, "root"), os.path.join(work, "run"), nsdir, prefix,
                  [f"{v4[n]}/{v4.prefixlen}" for n in (1, 2, 3)], [])
        os.makedirs(w.root)
        w.set_idle(30)
        try:
            yield w
        finally:
            service.stop(w.dir)  # by its pid file
            delete_links(*w.made)
            shutil.rmtree(work, ignore_errors=True)
    assert all(link_gone(name) for name in w.made)


def ask(w: World, op: str, **args: object) -> dict[str, object]:
    """A request to the agent itself (no fallback): its raw reply."""
    return service.call(w.dir, {"op": op, "args": args, "ns": agent.namespaces()}, 5.0)


def wait_serving(w: World, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ask(w, "link_exists", name="lo") == {"result": True}:
                pid = w.pid()
                assert pid is not None
                return pid
        except OSError:
            pass
        assert time.monotonic() < deadline, "the agent did not start"
        time.sleep(0.05)


def agent_pids(runroot: str) -> list[int]:
    """Processes whose command line is an agent of `runroot` (counted, never killed)."""
    return module_pids("barque.network.agent", runroot)


def _addresses(info: dict) -> set[str]:
    return {f"{a['local']}/{a['prefixlen']}" for a in info["addr_info"]
            if a["family"] == "inet" and a.get("scope") == "global"}


def test_first_call_works_in_process_and_starts_the_agent(world: World) -> None:
    bridge = world.name("b")
    assert world.pid() is None
    world.ops().ensure_bridge(bridge, [world.v4[0]])
    [info] = ip("addr", "show", "dev", bridge)  # made by the call itself, not later
    assert _addresses(info) == {world.v4[0]}
    pid = wait_serving(world)
    assert agent_pids(world.runroot) == [pid]
    assert stat.S_IMODE(os.stat(world.dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(world.dir, service.SOCKET)).st_mode) == 0o600
    with open(f"/proc/{pid}/status") as f:  # detached: its own session, reparented
        status = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
    assert int(status["PPid"]) != os.getpid()
    assert os.getsid(pid) != os.getsid(0)  # a session of its own (not its leader: no tty)
    fds = {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    assert [fds[n] for n in ("0", "1", "2")] == ["/dev/null"] * 3
    assert os.path.join(world.dir, service.PIDFILE) in fds.values()
    assert len(fds) <= 7  # stdio, the pid file, its dir, its socket: nothing of ours


def test_the_agent_serves_as_links_does(world: World) -> None:
    """A process that never imports pyroute2 makes a bridge and a container's veth through
    the agent; the kernel shows what links.* in-process makes (tests/network/test_links.py)."""
    bridge, host = world.name("b"), world.name("v1")
    world.ops().link_exists("lo")
    world.ops().ensure_bridge(bridge, [world.v4[0]])  # starts the agent
    wait_serving(world)
    path = world.ns("c1")
    gateway = world.v4[0].split("/")[0]
    code = (
        "import sys, json; from barque.network import linkops\n"
        "ops = linkops.LinkOps(sys.argv[1], sys.argv[2])\n"
        "ops.ensure_bridge(sys.argv[3], [sys.argv[6]])\n"
        "ops.add_veth(sys.argv[4], sys.argv[3], sys.argv[5], 'eth0', [sys.argv[7]],"
        " [sys.argv[8]], '02:42:c6:12:00:02', mtu=1400)\n"
        "print(json.dumps([ops.link_exists(sys.argv[5]), 'pyroute2' in sys.modules]))\n")
    out = subprocess.run([sys.executable, "-c", code, world.root, world.runroot, bridge, path,
                          host, world.v4[0], world.v4[1], gateway],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [True, False]  # served, and not by itself
    [h] = ip("-d", "link", "show", "dev", host)
    assert h["master"] == bridge and "UP" in h["flags"] and h["mtu"] == 1400
    inside = {link["ifname"]: link for link in ip("addr", "show", netns=path)}
    assert set(inside) == {"lo", "eth0"}
    assert inside["eth0"]["address"] == "02:42:c6:12:00:02"
    assert _addresses(inside["eth0"]) == {world.v4[1]}
    [route] = ip("-4", "route", "show", "default", netns=path)
    assert (route["gateway"], route["dev"]) == (gateway, "eth0")
    assert ask(world, "link_exists", name=host) == {"result": True}
    assert ask(world, "delete_link", name=host) == {"result": None}
    assert link_gone(host)
    assert ask(world, "delete_link", name=host) == {"result": None}  # missing is fine
    assert ask(world, "delete_bridge", name=bridge) == {"result": None}
    assert link_gone(bridge)


def _raised(function: Any, **args: object) -> BaseException:
    try:
        function(**args)
    except Exception as e:
        return e
    raise AssertionError("no exception")


def test_errors_keep_their_type_and_words(world: World) -> None:
    bridge, host = world.name("b"), world.name("v1")
    links.ensure_bridge(bridge, [world.v4[0]])
    world.ops().link_exists("lo")
    world.ops().delete_bridge(world.name("none"))
    world.ops().ensure_bridge(bridge, [world.v4[0]])
    wait_serving(world)
    path = world.ns("c1")
    links.add_veth(path, bridge, host, "eth0", [world.v4[1]], [], None)
    cases = [
        ("ensure_bridge", {"name": "a/b", "addresses": []}),
        ("ensure_bridge", {"name": bridge, "addresses": ["10.0.0.1/40"]}),
        ("ensure_bridge", {"name": host, "addresses": []}),  # not a bridge
        ("add_veth", {"netns_path": path, "bridge": bridge + "x", "host_name": "x1",
                      "ifname": "eth1", "addresses": [], "gateways": [], "mac": None}),
        ("add_veth", {"netns_path": path + "-missing", "bridge": bridge, "host_name": "x1",
                      "ifname": "eth1", "addresses": [], "gateways": [], "mac": None}),
        ("add_veth", {"netns_path": path, "bridge": bridge, "host_name": host,  # taken
                      "ifname": "eth1", "addresses": [], "gateways": [], "mac": None}),
        ("add_veth", {"netns_path": path, "bridge": bridge, "host_name": "x1",
                      "ifname": "eth0", "addresses": [], "gateways": [], "mac": "zz"}),
    ]
    for op, args in cases:
        direct = _raised(getattr(links, op), **args)
        reply = ask(world, op, **args)
        assert "error" in reply, (op, args, reply)  # answered by the agent
        rebuilt = linkops._rebuild(reply)
        assert (type(rebuilt), str(rebuilt)) == (type(direct), str(direct)), (op, args)
        via = _raised(getattr(world.ops(), op), **args)
        assert (type(via), str(via)) == (type(direct), str(direct)), (op, args)
    assert isinstance(linkops._rebuild(ask(world, "ensure_bridge", name=host, addresses=[])),
                      FileExistsError)
    assert link_gone("x1")


def test_a_killed_agent_means_in_process_then_a_new_agent(world: World) -> None:
    bridge = world.name("b")
    world.ops().link_exists("lo")
    world.ops().delete_bridge(bridge)  # nothing to delete: no agent needed...
    world.ops().ensure_bridge(bridge, [world.v4[0]])  # ...this starts one
    pid = wait_serving(world)
    os.kill(pid, signal.SIGKILL)  # ours: by its pid file
    assert wait_gone(pid)
    assert os.path.exists(os.path.join(world.dir, service.SOCKET))  # stale now
    ops = world.ops()
    ops.delete_bridge(bridge)
    assert link_gone(bridge)
    ops.ensure_bridge(bridge, [world.v4[0]])
    assert not link_gone(bridge)
    new = wait_serving(world)
    assert new != pid and agent_pids(world.runroot) == [new]


def test_a_stale_socket_file_and_pid_file(world: World) -> None:
    os.makedirs(world.dir, mode=0o700)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(os.path.join(world.dir, service.SOCKET))  # nobody listens on it
    with open(os.path.join(world.dir, service.PIDFILE), "w") as f:
        f.write("1\n")  # a pid that is not an agent, and no lock held
    bridge = world.name("b")
    world.ops().ensure_bridge(bridge, [world.v4[0]])
    assert not link_gone(bridge)
    pid = wait_serving(world)
    assert pid != 1 and agent_pids(world.runroot) == [pid]


def test_a_hung_agent_means_in_process(world: World) -> None:
    bridge, host = world.name("b"), world.name("v1")
    world.ops().ensure_bridge(bridge, [world.v4[0]])
    pid = wait_serving(world)
    path = world.ns("c1")
    os.kill(pid, signal.SIGSTOP)
    try:
        ops = world.ops()
        started = time.monotonic()
        ops.add_veth(path, bridge, host, "eth0", [world.v4[1]], [], None)
        assert time.monotonic() - started < linkops.TIMEOUT + 5
        assert not link_gone(host)
        started = time.monotonic()
        ops.delete_link(host)  # the same object does not wait for it again
        assert time.monotonic() - started < 1.0
        assert link_gone(host)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert wait_gone(pid)  # killed by its pid file: later callers do not wait for it
    world.ops().ensure_bridge(bridge, [world.v4[0]])
    assert wait_serving(world) != pid


def test_racing_starters_start_one_agent(world: World) -> None:
    bridge = world.name("b")
    code = ("import sys; from barque.network import linkops\n"
            "linkops.LinkOps(sys.argv[1], sys.argv[2]).ensure_bridge(sys.argv[3], [sys.argv[4]])")
    procs = [subprocess.Popen([sys.executable, "-c", code, world.root, world.runroot, bridge,
                               world.v4[0]]) for _ in range(6)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 6
    pid = wait_serving(world)
    time.sleep(1.0)  # any second agent would be up by now
    assert agent_pids(world.runroot) == [pid]


def test_it_exits_after_its_idle_time_and_on_sigterm(world: World) -> None:
    world.set_idle(1.0)
    bridge = world.name("b")
    world.ops().ensure_bridge(bridge, [world.v4[0]])
    pid = wait_serving(world)
    for _ in range(3):  # requests keep it
        time.sleep(0.5)
        assert ask(world, "link_exists", name=bridge) == {"result": True}
    assert alive(pid)
    assert wait_gone(pid, 10)
    assert sorted(os.listdir(world.dir)) == []
    world.set_idle(30)
    world.ops().ensure_bridge(bridge, [world.v4[0]])
    pid = wait_serving(world)
    service.stop(world.dir)
    assert not alive(pid)
    assert sorted(os.listdir(world.dir)) == []
    assert world.ops().link_exists(bridge)


def test_by_default_it_stays_through_a_quiet_spell(world: World) -> None:
    """The default (no daemon.json key): the agent does not leave when unused, so the `run`
    after a quiet minute finds it warm."""
    from barque.network import config

    os.unlink(os.path.join(world.root, "daemon.json"))
    assert config.load(world.root).agent_idle == 0
    bridge = world.name("b")
    world.ops().ensure_bridge(bridge, [world.v4[0]])
    pid = wait_serving(world)
    assert not wait_gone(pid, 3)
    assert ask(world, "link_exists", name=bridge) == {"result": True}
    service.stop(world.dir)
    assert not alive(pid)


def test_another_network_namespace_is_not_served_by_the_agent(world: World) -> None:
    bridge = world.name("b")
    world.ops().ensure_bridge(bridge, [world.v4[0]])
    wait_serving(world)
    path = world.ns("c1")
    reply = service.call(world.dir, {"op": "link_exists", "args": {"name": bridge},
                                     "ns": [[0, 0], [0, 0]]}, 5.0)
    assert "unsupported" in reply
    with netns.entered(path):  # this thread only: /proc/thread-self tells
        ops = world.ops()
        assert not ops.link_exists(bridge)
        ops.ensure_bridge("inner0", ["192.0.2.1/24"])
        assert ops.link_exists("inner0")
    assert link_gone("inner0")
    assert {link["ifname"] for link in ip("link", "show", netns=path)} == {"lo", "inner0"}


def test_bad_daemon_json_idle_is_refused_by_config(world: World) -> None:
    from barque.network import config
    from barque.network.errors import NetworkError

    for bad in ("1", -1, True, None):
        with open(os.path.join(world.root, "daemon.json"), "w") as f:
            json.dump({"network-agent-idle": bad}, f)
        with pytest.raises(NetworkError, match="network-agent-idle"):
            config.load(world.root)
    world.set_idle(2.5)
    assert config.load(world.root).agent_idle == 2.5
