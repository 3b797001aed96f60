"""barque.network.links' operations, run by the runroot's network agent when it answers, else
in this process (see agent.py): the same arguments, results, exceptions and words either way.

The first call that finds no agent does its work itself and starts one in the background, so
no caller ever waits for the agent, and none fails for want of it: a missing, stale, hung or
foreign (another namespace's) agent means the work is done here."""

from __future__ import annotations

import os

from barque.network import agent, service

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TIMEOUT = 2.0  # a link operation takes milliseconds; beyond this the agent is hung
AGENT = "barque.network.agent"


class LinkOps:
    def __init__(self, root: str, runroot: str) -> None:
        self.root = os.path.abspath(root)
        self.runroot = os.path.abspath(runroot)
        self.directory = agent.state_dir(self.runroot)
        self.use_agent = True  # False once it failed us: not twice in one process

    def ensure_bridge(self, name: str, addresses: list[str], mtu: int = 1500) -> None:
        self._run("ensure_bridge", name=name, addresses=list(addresses), mtu=mtu)

    def delete_bridge(self, name: str) -> None:
        self._run("delete_bridge", name=name)

    def add_veth(self, netns_path: str, bridge: str, host_name: str, ifname: str,
                 addresses: list[str], gateways: list[str], mac: str | None,
                 mtu: int = 1500) -> None:
        self._run("add_veth", netns_path=os.path.abspath(netns_path), bridge=bridge,
                  host_name=host_name, ifname=ifname, addresses=list(addresses),
                  gateways=list(gateways), mac=mac, mtu=mtu)

    def attach(self, netns_path: str, bridge: str, bridge_addresses: list[str], host_name: str,
               ifname: str, addresses: list[str], gateways: list[str], mac: str | None,
               mtu: int = 1500) -> None:
        self._run("attach", netns_path=os.path.abspath(netns_path), bridge=bridge,
                  bridge_addresses=list(bridge_addresses), host_name=host_name, ifname=ifname,
                  addresses=list(addresses), gateways=list(gateways), mac=mac, mtu=mtu)

    def delete_link(self, name: str) -> None:
        from barque.network import links

        if not links.link_exists(name):  # nothing to do, and no netlink needed to know it
            return
        self._run("delete_link", name=name)

    def link_exists(self, name: str) -> bool:
        from barque.network import links

        return links.link_exists(name)  # if_nametoindex: a round trip would cost more

    # -------------------------------------------------------------------------------------

    def _run(self, op: str, **args: Any) -> Any:
        if self.use_agent:
            request = {"op": op, "args": args, "ns": agent.namespaces()}
            try:
                reply = service.call(self.directory, request, TIMEOUT)
            except service.NotRunning:
                self._start_agent()
            except (service.NoReply, OSError):
                self.use_agent = False
                # Hung (or half dead): it would cost every later call its timeout too. The
                # next call starts a fresh one.
                service.kill(self.directory, AGENT)
                if op in ("add_veth", "attach"):
                    # It may have made the pair before it hung or died: the name is this
                    # container's, so what carries it is a leftover of this very request.
                    self._local("delete_link", name=args["host_name"])
            else:
                if "result" in reply:
                    return reply["result"]
                if "error" in reply:
                    raise _rebuild(reply)
                # "unsupported" (another namespace, an error that is not links' own): here
        return self._local(op, **args)

    def _local(self, op: str, **args: Any) -> Any:
        from barque.network import links

        return getattr(links, op)(**args)

    def _start_agent(self) -> None:
        """In the background: this call does its own work meanwhile."""
        try:
            service.start(self.directory, service.python_argv(
                AGENT, "--root", self.root, "--runroot", self.runroot))
        except (OSError, service.HelperError):
            pass  # no agent then: everything still works, only slower


def _rebuild(reply: dict[str, Any]) -> Exception:
    message = str(reply.get("message", ""))
    if reply.get("error") == "ValueError":
        return ValueError(message)
    code = reply.get("errno")
    filename = reply.get("filename")
    if isinstance(code, int):
        # OSError picks the subclass (FileExistsError, ...) from the errno, as raise did.
        return OSError(code, message) if filename is None else OSError(code, message, filename)
    return OSError(message)


_cache: dict[tuple[str, str], LinkOps] = {}


def of(root: str, runroot: str) -> LinkOps:
    """The operations for a root and runroot (one object per process: it remembers an agent
    that failed it)."""
    key = (os.path.abspath(root), os.path.abspath(runroot))
    if key not in _cache:
        _cache[key] = LinkOps(*key)
    return _cache[key]
