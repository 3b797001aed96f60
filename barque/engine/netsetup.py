"""A container's network, made at each start and unmade when it stops, as Docker's libnetwork
sandbox: a network namespace kept at <runroot>/netns/<id>, one veth per network the container
is on (the bridge, its addresses and the firewall's rules made on first use, e.g. after a
reboot), its published ports held by its monitor and forwarded by nftables, and the embedded
resolver listening inside the namespace on user-defined networks.

Everything is made in an order that `teardown` can undo from any point, and `teardown` is
also what a start runs first: what a crashed run left behind is reclaimed there.
"""

from __future__ import annotations

import os

from barque.engine.errors import EngineError
from barque.network.errors import NetworkError
from barque.structs import dataclass, field

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

    from barque.engine.context import Engine
    from barque.engine.records import ContainerRecord
    from barque.network.config import DaemonNetConfig
    from barque.network.firewall import Firewall
    from barque.network.linkops import LinkOps
    from barque.network.ports import PortMap
    from barque.network.store import Endpoint, Network, NetworkStore

BUILTIN_MODES = ("host", "none")
DEFAULT_NAMES = ("", "default", "bridge")


@dataclass
class Sandbox:
    """What a start needs from the network: the namespace for the spec, the host ports for the
    monitor to hold, and the /etc files' content (None: the engine's defaults)."""
    netns: str | None = None
    hold_fds: list[int] = field(default_factory=list)
    hosts: str | None = None
    resolv_conf: str | None = None

    def close_fds(self) -> None:
        for fd in self.hold_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.hold_fds = []


def store_of(engine: Engine) -> NetworkStore:
    from barque.network.store import NetworkStore

    return NetworkStore(engine.records.conn)


def config_of(engine: Engine) -> DaemonNetConfig:
    from barque.network import config

    return config.load(engine.paths.root)


def firewall_of(engine: Engine) -> Firewall:
    from barque.network.firewall import Firewall

    # The runroot remembers the ruleset generation at which the rules were last found
    # complete (Firewall.ensure_network): gone with /run at a reboot, as the rules are.
    return Firewall(config_of(engine).nft_table, engine.paths.runroot)


def links_of(engine: Engine) -> LinkOps:
    """barque.network.links' operations, by the runroot's warm network agent when it runs."""
    from barque.network import linkops

    return linkops.of(engine.paths.root, engine.paths.runroot)


def netns_path(engine: Engine, container_id: str) -> str:
    return os.path.join(engine.paths.runroot, "netns", container_id)


def mode_of(host_config: dict[str, Any]) -> str:
    mode = str(host_config.get("NetworkMode") or "")
    return "bridge" if mode in DEFAULT_NAMES else mode


def has_own_network(host_config: dict[str, Any]) -> bool:
    """Does the container get a namespace with Barque's networks (not host/none/container:)?"""
    mode = mode_of(host_config)
    return mode not in BUILTIN_MODES and not mode.startswith("container:")


def _engine_error(e: Exception, exit_code: int = 125) -> EngineError:
    status = getattr(e, "status", 400 if isinstance(e, ValueError) else 500)
    return EngineError(str(e), exit_code, status)


def _is_network_failure(e: BaseException) -> bool:
    """The network services' errors (each module has its own class), and the kernel's."""
    return isinstance(e, OSError | ValueError) or type(e).__module__.startswith("barque.network")


# --- at create -------------------------------------------------------------------------------

def add_endpoints(engine: Engine, record: ContainerRecord,
                  networking_config: dict[str, Any] | None) -> None:
    """The networks a new container is on: its NetworkMode's, then any other of Docker's
    NetworkingConfig.EndpointsConfig, each with the settings given for it."""
    if not has_own_network(record.host_config):
        return
    endpoints = dict((networking_config or {}).get("EndpointsConfig") or {})
    store = store_of(engine)
    mode = mode_of(record.host_config)
    try:
        primary = _network_named(engine, store, mode)
        settings = endpoints.pop(mode, None) or endpoints.pop(primary.name, None) or \
            endpoints.pop(primary.id, None) or {}
        _add_endpoint(store, record, primary, settings, primary=True)
        for name, more in endpoints.items():
            _add_endpoint(store, record, _network_named(engine, store, name), more or {})
    except NetworkError as e:
        store.remove_endpoint(record.id)
        error = _engine_error(e)
        error.at_start = True  # dockerd joins networks (and allocates addresses) at start
        raise error from None


def _network_named(engine: Engine, store: NetworkStore, name: str) -> Network:
    if name in DEFAULT_NAMES:
        return store.default_bridge(config_of(engine))
    return store.get(name)


def _add_endpoint(store: NetworkStore, record: ContainerRecord, network: Network,
                  settings: dict[str, Any], primary: bool = False) -> Endpoint:
    ipam = dict(settings.get("IPAMConfig") or {})
    ipam = {k: v for k, v in ipam.items() if k in ("IPv4Address", "IPv6Address") and v}
    aliases = [str(a) for a in settings.get("Aliases") or []]
    links = [str(x) for x in settings.get("Links") or []]
    if network.is_default or primary:  # --link: the default bridge's (/etc/hosts), or the
        # user network's the container is made on (names its resolver answers, as dockerd's)
        links += [str(x) for x in record.host_config.get("Links") or [] if str(x) not in links]
    return store.add_endpoint(record.id, network.id, aliases, ipam,
                              settings.get("MacAddress") or None, links)


def remove_container(engine: Engine, record: ContainerRecord) -> None:
    """At `rm`: the container leaves every network (what the kernel keeps of a network that
    cannot be unmade now, a veth or a rule, goes with the namespace or at the next reclaim;
    the container is removed all the same, as Docker's rm)."""
    if not has_own_network(record.host_config):
        return  # host, none, container:X: never on a network (connect refuses them), and
        # the store's modules cost every `run --rm --network none` ~8 ms to import
    try:
        teardown(engine, record)
    except Exception as e:
        if not _is_network_failure(e):
            raise
    store_of(engine).remove_endpoint(record.id)


# --- at start ---------------------------------------------------------------------------------

def setup(engine: Engine, record: ContainerRecord) -> Sandbox:
    """Make the container's network; EngineError (and nothing left behind) if it cannot be."""
    if not has_own_network(record.host_config):
        return Sandbox(hosts=_gateway_hosts(engine, record))
    teardown(engine, record)  # what a crashed run left, if anything
    store = store_of(engine)
    _reclaim_stale(engine, store)
    if not store.endpoints_of(record.id):  # made before networks existed: Docker's default
        add_endpoints(engine, record, None)
    sandbox = Sandbox(netns=netns_path(engine, record.id))
    try:
        _make(engine, store, record, sandbox)
    except BaseException as e:
        sandbox.close_fds()
        teardown(engine, record)
        if isinstance(e, Exception) and _is_network_failure(e):
            raise _engine_error(e) from None
        raise
    return sandbox


def _reclaim_stale(engine: Engine, store: NetworkStore) -> None:
    """Addresses, host ports and port rules held for containers whose namespace is gone are
    free again: after a reboot /run is empty, and no clean-up ran for what was running.

    A port rule is only ever made after its published_ports row, and its row only goes after
    it (here and in teardown), so with no stale holder there is no stale rule either: the
    common case costs one query and a stat per running container, no nftables listing."""
    stale = [c for c in store.holders() if not os.path.exists(netns_path(engine, c))]
    if not stale:
        return
    firewall = firewall_of(engine)
    for container_id in stale:
        if store.published(container_id):
            firewall.remove_ports(container_id)
        store.release(container_id)
        store.unpublish(container_id)
    for owner in firewall.port_owners():  # one made by a Barque before that order, say
        if not os.path.exists(netns_path(engine, owner)):
            firewall.remove_ports(owner)


def _make(engine: Engine, store: NetworkStore, record: ContainerRecord,
          sandbox: Sandbox) -> None:
    from barque.network import netns

    assert sandbox.netns is not None
    os.makedirs(os.path.dirname(sandbox.netns), mode=0o700, exist_ok=True)
    netns.create(sandbox.netns)
    attached: list[tuple[Endpoint, Network]] = []
    for position, endpoint in enumerate(store.endpoints_of(record.id)):
        network = store.get(endpoint.network_id)
        _ensure_rules(engine, network)
        endpoint = store.allocate(record.id, network.id)
        assert endpoint.veth is not None  # allocate names it
        # In one agent round trip: the bridge ensured (a reboot leaves none), a previous
        # run's veth of that name gone (its namespace not yet), the new pair made.
        links_of(engine).attach(sandbox.netns, network.bridge, _bridge_addresses(network),
                                endpoint.veth, f"eth{position}", _addresses(network, endpoint),
                                _gateways(network), endpoint.mac)
        attached.append((endpoint, network))
    sandbox.hold_fds = _publish(engine, store, record, attached)
    if any(not network.is_default for _, network in attached):
        from barque.network.dns import client

        client.register(engine.paths.root, engine.paths.runroot, record.id, sandbox.netns)
    sandbox.hosts = _hosts(engine, store, record, attached)
    sandbox.resolv_conf = _resolv_conf(record, attached)


def ensure_network(engine: Engine, network: Network) -> None:
    """The network's bridge and rules exist (idempotent; a reboot leaves neither)."""
    links_of(engine).ensure_bridge(network.bridge, _bridge_addresses(network))
    _ensure_rules(engine, network)


def _ensure_rules(engine: Engine, network: Network) -> None:
    firewall_of(engine).ensure_network(network.bridge, [str(s.network) for s in
                                                        network.subnets()],
                                       network.internal, network.icc, network.masquerade)


def _bridge_addresses(network: Network) -> list[str]:
    return [f"{s.gateway}/{s.network.prefixlen}" for s in network.subnets()
            if s.gateway is not None]


def _addresses(network: Network, endpoint: Endpoint) -> list[str]:
    result = []
    for subnet in network.subnets():
        address = endpoint.ipv4 if subnet.network.version == 4 else endpoint.ipv6
        if address:
            result.append(f"{address}/{subnet.network.prefixlen}")
    return result


def _gateways(network: Network) -> list[str]:
    if network.internal:
        return []  # no route out
    return [str(s.gateway) for s in network.subnets() if s.gateway is not None]


def _publish(engine: Engine, store: NetworkStore, record: ContainerRecord,
             attached: list[tuple[Endpoint, Network]]) -> list[int]:
    """Reserve and forward the container's published ports (to its address on the first
    network that leads out, as Docker); the reserving sockets, for the monitor to hold."""
    if not record.host_config.get("PortBindings") and \
            not record.host_config.get("PublishAllPorts"):
        return []  # nothing to publish (ports.requested's words), and its module unloaded
    from barque.network import ports

    wanted = ports.requested(record.config, record.host_config)
    target = next(((e, n) for e, n in attached if not n.internal and e.ipv4), None)
    if not wanted or target is None:
        return []
    endpoint, network = target
    allocated = [(p.proto, p.host_ip, p.host_port) for p in store.published(None)]
    ipv6 = str(endpoint.ipv6) if endpoint.ipv6 else ""  # IPv6 host addresses go there
    try:
        held = ports.reserve(wanted, allocated, container_ip=str(endpoint.ipv4),
                             container_ipv6=ipv6)
    except ports.PortError as e:
        raise NetworkError(str(e), e.status) from None
    try:
        bound = ports.port_maps(held)
        store.publish(record.id, bound)
        firewall_of(engine).add_ports(record.id, network.bridge, str(endpoint.ipv4), bound,
                                      container_ipv6=ipv6)
    except BaseException:
        ports.release(held)
        raise
    return [fd for fd, _ in held]


def _hosts(engine: Engine, store: NetworkStore, record: ContainerRecord,
           attached: list[tuple[Endpoint, Network]]) -> str:
    from barque.engine import spec
    from barque.network import hosts

    addresses = [str(a) for e, _ in attached for a in (e.ipv4, e.ipv6) if a]
    links = []
    for endpoint, network in attached:
        if network.is_default:
            links += _link_entries(engine, store, network, endpoint.links)
    return hosts.render(spec.hostname_of(record.id, record.config), addresses,
                        _extra_hosts(engine, record), links)


def _link_entries(engine: Engine, store: NetworkStore, network: Network,
                  links: list[str]) -> list[tuple[str, str, str]]:
    """--link NAME[:ALIAS]: (address, alias, name) of each linked container on the bridge."""
    result = []
    for link in links:
        name, _, alias = link.partition(":")
        try:
            other = engine.find(name)
        except EngineError:
            continue
        for endpoint in store.endpoints_of(other.id):
            if endpoint.network_id == network.id and endpoint.ipv4:
                result.append((str(endpoint.ipv4), alias or other.name, other.name))
    return result


def _extra_hosts(engine: Engine, record: ContainerRecord) -> list[tuple[str, str]]:
    """--add-host NAME:ADDRESS, `host-gateway` being the default bridge's gateway (Docker's)."""
    result = []
    for entry in record.host_config.get("ExtraHosts") or []:
        name, _, address = str(entry).partition(":")
        if address == "host-gateway":
            address = _host_gateway(engine)
        result.append((name, address))
    return result


def _host_gateway(engine: Engine) -> str:
    subnets = store_of(engine).default_bridge(config_of(engine)).subnets()
    return next((str(s.gateway) for s in subnets if s.gateway is not None), "")


def _gateway_hosts(engine: Engine, record: ContainerRecord) -> str | None:
    """host/none/container: keep the engine's files, except that host-gateway is resolved."""
    extra = record.host_config.get("ExtraHosts") or []
    if not any(str(e).endswith(":host-gateway") for e in extra):
        return None
    from barque.engine import spec
    from barque.network import hosts

    return hosts.render(spec.hostname_of(record.id, record.config), [],
                        _extra_hosts(engine, record), [])


def _resolv_conf(record: ContainerRecord, attached: list[tuple[Endpoint, Network]]) -> str:
    from barque.network import resolvconf

    host_config = record.host_config
    try:
        with open("/etc/resolv.conf", encoding="utf-8", errors="replace") as f:
            host_text = f.read()
    except OSError:
        host_text = ""
    embedded = any(not network.is_default for _, network in attached)
    return resolvconf.render(host_text, list(host_config.get("Dns") or []),
                             list(host_config.get("DnsSearch") or []),
                             list(host_config.get("DnsOptions") or []), embedded)


# --- at stop ----------------------------------------------------------------------------------

def teardown(engine: Engine, record: ContainerRecord) -> None:
    """Unmake the container's network, from whatever point a start or a crash left it at."""
    if not has_own_network(record.host_config):
        return
    path = netns_path(engine, record.id)
    store = store_of(engine)
    endpoints = store.endpoints_of(record.id)
    if os.path.exists(path) or any(e.veth for e in endpoints):
        from barque.network.dns import client

        client.unregister(engine.paths.runroot, record.id)
    # A port rule is made after its published_ports row and goes before it: with no row and
    # no port asked for, there is no rule to list the table for.
    if store.published(record.id) or record.host_config.get("PortBindings") or \
            record.host_config.get("PublishAllPorts"):
        firewall_of(engine).remove_ports(record.id)
        store.unpublish(record.id)
    if os.path.exists(path):
        from barque.network import netns

        # The namespace's end takes its veths with it (the kernel does it moments later): no
        # netlink here, whose library costs ~0.1 s to load on the way out of every `run`.
        netns.remove(path)
    if any(e.endpoint_id is not None for e in endpoints) and \
            not record.host_config.get("AutoRemove"):
        # (Not for --rm: its rm comes next and deletes the rows, addresses and all, so this
        # would be one more write transaction per run; should the rm never come, the next
        # start's _reclaim_stale frees what a container without its namespace holds.)
        store.release(record.id)


# --- connect, disconnect, network rm ---------------------------------------------------------

def connect_running(engine: Engine, record: ContainerRecord, network: Network,
                    endpoint: Endpoint) -> None:
    """`network connect` of a running container: one more veth, named eth<position>."""
    links = links_of(engine)
    if not has_own_network(record.host_config):
        raise EngineError("container sharing network namespace with another container or "
                          "host cannot be connected to any other network", 1, 400)
    store = store_of(engine)
    path = netns_path(engine, record.id)
    try:
        ensure_network(engine, network)
        endpoint = store.allocate(record.id, network.id)
        assert endpoint.veth is not None  # allocate names it
        links.add_veth(path, network.bridge, endpoint.veth, f"eth{endpoint.position}",
                       _addresses(network, endpoint), [], endpoint.mac)
        if not network.is_default:
            from barque.network.dns import client

            client.register(engine.paths.root, engine.paths.runroot, record.id, path)
    except Exception as e:
        store.release(record.id, network.id)
        if _is_network_failure(e):
            raise _engine_error(e, 1) from None
        raise


def disconnect_running(engine: Engine, record: ContainerRecord, network: Network) -> None:
    """`network disconnect` of a running container: its veth on that network goes."""
    links = links_of(engine)
    store = store_of(engine)
    for endpoint in store.endpoints_of(record.id):
        if endpoint.network_id == network.id and endpoint.veth:
            links.delete_link(endpoint.veth)
    store.release(record.id, network.id)


def release_network(engine: Engine, network: Network) -> None:
    """`network rm`: its bridge and its rules go (the caller checked it has no endpoint)."""
    links = links_of(engine)
    firewall_of(engine).remove_network(network.bridge)
    links.delete_bridge(network.bridge)


# --- views ------------------------------------------------------------------------------------

def view_data(engine: Engine, record: ContainerRecord
              ) -> tuple[list[Endpoint], dict[str, Network], list[PortMap]]:
    """For inspect, ps and port: the container's endpoints, their networks, its ports."""
    if not has_own_network(record.host_config):
        return [], {}, []
    store = store_of(engine)
    endpoints = store.endpoints_of(record.id)
    networks = {}
    for endpoint in endpoints:
        try:
            networks[endpoint.network_id] = store.get(endpoint.network_id)
        except NetworkError:
            pass
    return endpoints, networks, store.published(record.id)
