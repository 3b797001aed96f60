"""Barque's packet filter and NAT: one nftables table of its own, never any other.

Layout (family `inet` for routing and NAT, family `bridge` of the same name for icc):

    table inet T
      set bridges  {ifname}                  every bridge of this table
      maps fwd_in, fwd_out, host_in          {ifname: jump <that bridge's chain>}
      maps nat4, nat6                        {subnet: jump nat-B}
      chain loopback     (filter/prerouting/raw)  iifname @bridges ip daddr 127.0.0.0/8 drop
      chain forward      (filter/forward)    iifname vmap @fwd_in; oifname vmap @fwd_out
      chain input        (filter/input)      iifname vmap @host_in
      chain prerouting   (nat/dstnat)        fib daddr type local jump ports
      chain output       (nat/-100)          fib daddr type local jump ports
      chain postrouting  (nat/srcnat)        127.0.0.0/8 sources out of a bridge: masquerade;
                                             ip saddr vmap @nat4; ip6 saddr vmap @nat6
      chain ports                            one DNAT rule per published port, its comment
                                             the container id
      chains fwd-in-B, fwd-out-B, in-B, nat-B   one of each per bridge B
    table bridge T
      maps icc4, icc6 {subnet: jump icc-B};  chain forward (filter/bridged) ip[6] saddr vmap
      chains icc-B                           icc off: drop frames to B's own subnets

Postrouting dispatches by source subnet because the input interface is unknown there.
Every change is one transaction that either flushes and rewrites what it owns (the base chains,
a bridge's chains) or adds map elements identical to what is there, so calling it again, or
from several barque processes at once, gives the same table. Removals list the table first and
retry when another process changed it meanwhile.

Published ports use kernel DNAT, not a userland proxy as Docker offers (its default): no extra
process per port, no copy of every byte through user space, and the container sees the client's
real address. The host reaches its ports at 127.0.0.1 because the bridge gets route_localnet=1
and 127.0.0.0/8 sources leaving through a bridge are masqueraded to the bridge's address; the
`loopback` chain keeps route_localnet from opening the host's loopback to the containers.
An IPv6 host address (:: or one of the host's) is DNAT'd to the container's IPv6 address,
never to its IPv4 one (the kernel does not translate between the families), and never ::1
(no route_localnet for IPv6: a DNAT'd connection from ::1 never completes). A container cannot
reach a published port of a container on another Barque network through the host's address
either: isolation drops the DNAT'd packet, as Docker's own rules do when its proxy is off.

icc=False is enforced in the bridge family, by subnet: frames bridged between two ports of B
whose source and destination are both in B's subnets are dropped. We did not use br_netfilter
(the inet forward hook seeing bridged frames): it is a host-wide switch that pushes every
bridged frame of every bridge (libvirt's, Docker's) through the IP hooks. `meta ibrname` would
be neater but needs CONFIG_NFT_BRIDGE_META, which kernels (this VM's) may lack.

Co-existence with Docker: a table's accept does not override another table's drop. Docker sets
the policy of iptables' FORWARD chain (table ip filter) to DROP when it is the one to turn
ip_forward on (dockerd started first after a boot; ip6tables' FORWARD whenever its ip6tables
option is on), so traffic our bridges forward (outbound, published ports from other hosts, and
with br_netfilter's bridge-nf-call-iptables=1 even container to container) is dropped there.
We never change another table; `foreign_forward_drops()` names the chains that do it, so the
caller can say why.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import time

from barque import sha256
from barque.network import nft
from barque.network.nft import NftError
from barque.storage.atomic import atomic_write

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    from barque.network.ports import PortMap

    Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network

INET = "inet"
BRIDGE = "bridge"
# Maps that send a bridge's packets to its own chains: by interface name (map -> chain prefix),
# by source subnet (family -> chain prefix, ip version -> map).
IF_MAPS = {"fwd_in": "fwd-in-", "fwd_out": "fwd-out-", "host_in": "in-"}
SUBNET_MAPS = {INET: ("nat-", {4: "nat4", 6: "nat6"}), BRIDGE: ("icc-", {4: "icc4", 6: "icc6"})}
IPFAM = {4: "ip", 6: "ip6"}
PROTOS = ("tcp", "udp", "sctp")
# Interface names go into nft as strings, where "@x" names a set and a trailing "*" is a
# wildcard: accept only plain names (Linux allows far more, e.g. "@bridges").
IFNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")
TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
TAG = re.compile(r"[A-Za-z0-9_.-]{1,100}")
RETRIES = 5


class FirewallError(Exception):
    """nftables or a sysctl refused a change; the message says which."""


class Firewall:
    def __init__(self, table: str, state_dir: str | None = None) -> None:
        """`state_dir`: where to remember which networks' rules were found complete, and at
        which ruleset generation (see ensure_network); None: check the table every time."""
        if not TABLE.fullmatch(table):
            raise ValueError(f"invalid nftables table name {table!r}")
        self.table = table
        self.state_dir = state_dir

    # -- networks ------------------------------------------------------------------------------

    def ensure_network(self, bridge: str, subnets: list[str], internal: bool, icc: bool,
                       masquerade: bool) -> None:
        """Make the table hold exactly this bridge's rules (idempotent).

        Most calls find them there already (every container start calls this): the table is
        then listed and compared with what the transaction would make, and nothing is
        committed. A table found complete is remembered (in state_dir) with a fingerprint of
        it read by nfnetlink (nft.fingerprint: its chains, sets, elements and rules, but the
        published ports' rules) and the ruleset's generation, which the kernel changes with
        every commit of anyone's: while the generation is unchanged nothing needs reading;
        while the fingerprint is, the listing is not needed. Anything else (`nft flush
        ruleset`, a reboot, a rule deleted by hand) gets the full check and repair."""
        _check_ifname(bridge)
        nets = [_subnet(s) for s in subnets]
        masquerade = masquerade and not internal

        def plan(listing: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
            return self._skeleton() + self._network(bridge, nets, internal, icc, masquerade,
                                                    listing)

        key = _digest(plan({INET: [], BRIDGE: []}))  # the inputs and this code's rules
        if not self._remembered(key):
            self._ensure(plan, key)
        _sysctl("net/ipv4/ip_forward", "1")
        if any(n.version == 6 for n in nets):
            _sysctl("net/ipv6/conf/all/forwarding", "1")
        _sysctl(f"net/ipv4/conf/{bridge}/route_localnet", "1", missing_ok=True)

    def _ensure(self, plan: Callable[[dict[str, list[dict[str, Any]]]], list[dict[str, Any]]],
                key: str) -> None:
        generation = _generation()
        listing = self._listing()
        if not _holds(plan(listing), listing):
            if not listing[INET] or not listing[BRIDGE]:  # a table (and its maps) missing:
                # libnftables cannot add an element to an interval map the same batch makes
                self._apply(self._skeleton)
            self._apply(lambda: plan(self._listing()))
            generation = _generation()
            listing = self._listing()
            if not _holds(plan(listing), listing):
                return  # changed meanwhile (another barque): checked again next time
        fingerprint = self._fingerprint()
        if generation is not None and fingerprint is not None and generation == _generation():
            self._remember(generation, fingerprint, key)

    def _fingerprint(self) -> str | None:
        try:
            return nft.fingerprint([(INET, self.table), (BRIDGE, self.table)], ("ports",))
        except OSError:
            return None

    def _state_file(self) -> str | None:
        if self.state_dir is None:
            return None
        return os.path.join(self.state_dir, f"firewall-{self.table}.json")

    def _read_state(self) -> dict[str, Any] | None:
        path = self._state_file()
        if path is None:
            return None
        try:
            with open(path) as f:
                state = json.load(f)
            if isinstance(state, dict) and isinstance(state.get("verified"), list):
                return state
        except (OSError, ValueError):
            pass
        return None

    def _remembered(self, key: str) -> bool:
        """Was the table found holding `key`'s rules, and is it unchanged since?"""
        state = self._read_state()
        if state is None or key not in state["verified"]:
            return False
        generation = _generation()
        if generation is None:
            return False
        if generation == state.get("generation") and _epoch() == state.get("epoch"):
            return True
        fingerprint = self._fingerprint()
        if fingerprint is None or fingerprint != state.get("fingerprint") or \
                generation != _generation():  # (read while someone committed: unsure)
            return False
        self._remember(generation, fingerprint, key)  # next time not even the fingerprint
        return True

    def _remember(self, generation: int, fingerprint: str, key: str) -> None:
        path = self._state_file()
        if path is None:
            return
        verified = [key]
        state = self._read_state()
        if state is not None and state.get("fingerprint") == fingerprint:
            verified += [k for k in state["verified"] if k != key][:63]
        state = {"generation": generation, "epoch": _epoch(), "fingerprint": fingerprint,
                 "verified": verified}
        try:  # a concurrent writer's list may win: only slower then; never fsynced: a cache
            atomic_write(path, json.dumps(state).encode(), 0o600, durable=False)
        except OSError:
            pass

    def remove_network(self, bridge: str) -> None:
        """Remove exactly this bridge's elements and chains (missing is fine)."""
        _check_ifname(bridge)
        self._apply(lambda: self._network_removal(bridge))

    def bridges(self) -> list[str]:
        listing = nft.list_table(INET, self.table) or []
        for obj in listing:
            s = obj.get("set")
            if s and s.get("name") == "bridges":
                return sorted(str(e) for e in s.get("elem", []))
        return []

    # -- published ports -----------------------------------------------------------------------

    def add_ports(self, container_id: str, bridge: str, container_ipv4: str,
                  ports: list[PortMap], container_ipv6: str = "") -> None:
        """DNAT each port to the container, replacing what this container had (idempotent):
        an IPv4 host address (or "") to container_ipv4, an IPv6 one to container_ipv6."""
        _check_tag(container_id)
        _check_ifname(bridge)
        targets = {4: _ipv4(container_ipv4, "container address"),
                   6: _ipv6(container_ipv6) if container_ipv6 else ""}
        rules = [self._port_rule(container_id, targets, p) for p in ports]
        _sysctl(f"net/ipv4/conf/{bridge}/route_localnet", "1")  # first: a missing bridge fails

        def plan() -> list[dict[str, Any]]:
            listing = self._listing()
            # The skeleton only when it is not all there: rewriting its chains would change
            # their rules' handles, and with them what ensure_network remembered.
            skeleton = self._skeleton()
            if _holds(skeleton, listing):
                skeleton = []
            return skeleton + self._port_removal(container_id, listing[INET]) + rules

        self._apply(plan)

    def remove_ports(self, container_id: str) -> None:
        _check_tag(container_id)
        self._apply(lambda: self._port_removal(container_id))

    def port_owners(self) -> list[str]:
        return sorted({str(r["comment"]) for r in self._rules(nft.list_table(INET, self.table),
                                                               "ports") if r.get("comment")})

    # -- the table -----------------------------------------------------------------------------

    def delete_table(self) -> None:
        for family in (INET, BRIDGE):
            try:
                nft.run([{"delete": {"table": {"family": family, "name": self.table}}}])
            except NftError as e:
                if e.unavailable:
                    return  # no nftables in this kernel: no table either
                if not e.missing:
                    raise FirewallError(f"cannot delete table {family} {self.table}: {e}") from e

    @staticmethod
    def foreign_forward_drops() -> list[str]:
        """Other tables' forward chains whose policy drops what our rules let through
        (Docker's iptables FORWARD): "family table chain" each."""
        return [f"{c['family']} {c['table']} {c['name']}" for c in nft.list_chains()
                if c.get("hook") == "forward" and c.get("policy") == "drop"]

    # -- building commands ---------------------------------------------------------------------

    def _apply(self, plan: Callable[[], list[dict[str, Any]]]) -> None:
        """Run a freshly planned transaction; plan again when a concurrent barque changed the
        table between our listing and our commit."""
        for attempt in range(RETRIES):
            try:
                nft.run(plan())
                return
            except NftError as e:
                if attempt == RETRIES - 1 or not _transient(e):
                    raise FirewallError(f"nftables table {self.table}: {e}") from e
                time.sleep(0.005 * (attempt + 1))

    def _obj(self, family: str, kind: str, **fields: Any) -> dict[str, Any]:
        return {kind: {"family": family, "table": self.table, **fields}}

    def _add(self, family: str, kind: str, **fields: Any) -> dict[str, Any]:
        return {"add": self._obj(family, kind, **fields)}

    def _rule(self, chain: str, *expr: dict[str, Any], family: str = INET,
              comment: str | None = None) -> dict[str, Any]:
        fields: dict[str, Any] = {"chain": chain, "expr": list(expr)}
        if comment:
            fields["comment"] = comment
        return self._add(family, "rule", **fields)

    def _chain(self, family: str, name: str, kind: str | None = None, hook: str | None = None,
               prio: int = 0) -> list[dict[str, Any]]:
        """Add (idempotent) and flush a chain: its rules are then rewritten in full."""
        fields: dict[str, Any] = {"name": name}
        if kind:
            fields.update(type=kind, hook=hook, prio=prio, policy="accept")
        return [self._add(family, "chain", **fields),
                {"flush": self._obj(family, "chain", name=name)}]

    def _skeleton(self) -> list[dict[str, Any]]:
        cmds = [{"add": {"table": {"family": INET, "name": self.table}}},
                {"add": {"table": {"family": BRIDGE, "name": self.table}}},
                self._add(INET, "set", name="bridges", type="ifname")]
        cmds += [self._add(INET, "map", name=m, type="ifname", map="verdict") for m in IF_MAPS]
        for family, (_, maps) in SUBNET_MAPS.items():
            cmds += [self._add(family, "map", name=m, type=f"ipv{v}_addr", map="verdict",
                               flags=["interval"]) for v, m in maps.items()]
        cmds += self._chain(INET, "loopback", "filter", "prerouting", -300)
        cmds += self._chain(INET, "forward", "filter", "forward", 0)
        cmds += self._chain(INET, "input", "filter", "input", 0)
        cmds += self._chain(INET, "prerouting", "nat", "prerouting", -100)
        cmds += self._chain(INET, "output", "nat", "output", -100)
        cmds += self._chain(INET, "postrouting", "nat", "postrouting", 100)
        cmds.append(self._add(INET, "chain", name="ports"))
        cmds += self._chain(BRIDGE, "forward", "filter", "forward", -200)
        local = _match(_fib_daddr_type(), "local")
        cmds += [
            # route_localnet=1 would let a container reach the host's 127.0.0.1-only services
            # (CVE-2020-8558): nothing from a bridge is for 127/8. Raw priority: before
            # conntrack reverses our masquerade, so answers to 127.0.0.1 are not mistaken.
            self._rule("loopback", _match(_meta("iifname"), "@bridges"),
                       _match(_payload("ip", "daddr"), _prefix(_subnet("127.0.0.0/8"))),
                       {"drop": None}),
            self._rule("forward", _vmap(_meta("iifname"), "fwd_in")),
            self._rule("forward", _vmap(_meta("oifname"), "fwd_out")),
            self._rule("input", _vmap(_meta("iifname"), "host_in")),
            self._rule("prerouting", local, _jump("ports")),
            self._rule("output", local, _jump("ports")),
            self._rule("postrouting", _match(_meta("oifname"), "@bridges"),
                       _match(_payload("ip", "saddr"), _prefix(_subnet("127.0.0.0/8"))),
                       {"masquerade": None}),
        ]
        # By source subnet: postrouting knows no input interface.
        for family, (_, maps) in SUBNET_MAPS.items():
            chain = "postrouting" if family == INET else "forward"
            cmds += [self._rule(chain, _vmap(_payload(IPFAM[v], "saddr"), m), family=family)
                     for v, m in maps.items()]
        return cmds

    def _network(self, bridge: str, nets: list[Subnet], internal: bool, icc: bool,
                 masquerade: bool, listing: dict[str, list[dict[str, Any]]]
                 ) -> list[dict[str, Any]]:
        b = bridge
        not_b_out = _match(_meta("oifname"), b, "!=")
        not_b_in = _match(_meta("iifname"), b, "!=")
        drop = {"drop": None}
        cmds = [self._add(INET, "element", name="bridges", elem=[b])]
        for prefix in [*IF_MAPS.values(), "nat-"]:
            cmds += self._chain(INET, prefix + b)
        if internal:  # nothing leaves the bridge, nothing comes in, the host is out of reach
            cmds += [self._rule("fwd-in-" + b, not_b_out, drop),
                     self._rule("fwd-out-" + b, not_b_in, drop),
                     self._rule("in-" + b, _ct("state", ["established", "related"]), _accept()),
                     # neighbour discovery is not tracked: without it the host's own
                     # connections to the containers would find no IPv6 neighbour
                     self._rule("in-" + b, _match(_payload("icmpv6", "type"), {"set": [
                         "nd-neighbor-solicit", "nd-neighbor-advert"]}), _accept()),
                     self._rule("in-" + b, drop)]
        else:  # out: anywhere but another Barque bridge; in: replies and published ports only
            cmds += [self._rule("fwd-in-" + b, not_b_out, _match(_meta("oifname"), "@bridges"),
                                drop),
                     self._rule("fwd-out-" + b, _ct("state", ["established", "related"]),
                                _accept()),
                     self._rule("fwd-out-" + b, _ct("status", "dnat"), _accept()),
                     self._rule("fwd-out-" + b, not_b_in, drop)]
        if masquerade:
            cmds.append(self._rule("nat-" + b, not_b_out, {"masquerade": None}))
        # A container reaching a published port of its own bridge: the answer must come back
        # through the host, so the host must be the source (hairpin NAT).
        cmds.append(self._rule("nat-" + b, _match(_meta("oifname"), b), _ct("status", "dnat"),
                               {"masquerade": None}))
        cmds += [self._add(INET, "element", name=m, elem=[[b, _jump(prefix + b)]])
                 for m, prefix in IF_MAPS.items()]
        cmds += self._subnet_elements(listing[INET], INET, b, nets)
        # icc off: frames bridged from one of the bridge's subnets to another address in them
        cmds += self._chain(BRIDGE, "icc-" + b)
        wanted = [] if icc else nets
        cmds += [self._rule("icc-" + b, _match(_payload(IPFAM[n.version], "daddr"), _prefix(n)),
                            drop, family=BRIDGE) for n in wanted]
        return cmds + self._subnet_elements(listing[BRIDGE], BRIDGE, b, wanted)

    def _subnet_elements(self, listing: list[dict[str, Any]], family: str, bridge: str,
                         nets: list[Subnet]) -> list[dict[str, Any]]:
        """Make the family's subnet maps send exactly nets to the bridge's chain. Elements go
        for subnets it no longer has (a changed default bridge), and elements of other bridges
        that overlap: subnets of one root never do, so those are a crashed run's leftovers."""
        prefix, maps = SUBNET_MAPS[family]
        chain = prefix + bridge
        keep = {(n.version, str(n)) for n in nets}
        cmds = [{"delete": self._obj(family, "element", name=maps[v], elem=[key])}
                for v, key, net, target in _subnet_map(listing, family)
                if ((v, net) not in keep if target == chain else
                    any(n.overlaps(ipaddress.ip_network(net)) for n in nets if n.version == v))]
        return cmds + [self._add(family, "element", name=maps[n.version],
                                 elem=[[_prefix(n), _jump(prefix + bridge)]]) for n in nets]

    def _listing(self) -> dict[str, list[dict[str, Any]]]:
        return {f: nft.list_table(f, self.table) or [] for f in (INET, BRIDGE)}

    def _network_removal(self, bridge: str) -> list[dict[str, Any]]:
        cmds: list[dict[str, Any]] = []
        listing = self._listing()
        for obj in listing[INET]:
            s = obj.get("set") or obj.get("map")
            if s and bridge in [e[0] if isinstance(e, list) else e for e in s.get("elem", [])]:
                cmds.append({"delete": self._obj(INET, "element", name=s["name"], elem=[bridge])})
        for family in (INET, BRIDGE):
            prefix, maps = SUBNET_MAPS[family]
            cmds += [{"delete": self._obj(family, "element", name=maps[v], elem=[key])}
                     for v, key, _, target in _subnet_map(listing[family], family)
                     if target == prefix + bridge]
        ours = {(INET, p + bridge) for p in [*IF_MAPS.values(), "nat-"]}
        ours.add((BRIDGE, "icc-" + bridge))
        present = {(o["chain"]["family"], o["chain"]["name"])
                   for objs in listing.values() for o in objs if "chain" in o}
        for family, chain in sorted(ours & present):
            cmds += [{"flush": self._obj(family, "chain", name=chain)},
                     {"delete": self._obj(family, "chain", name=chain)}]
        return cmds

    def _port_rule(self, container_id: str, targets: dict[int, str],
                   port: PortMap) -> dict[str, Any]:
        if port.proto not in PROTOS:
            raise ValueError(f"invalid protocol {port.proto!r}: tcp, udp or sctp")
        for value, what in ((port.host_port, "host port"), (port.container_port, "port")):
            if not isinstance(value, int) or not 0 < value < 65536:
                raise ValueError(f"invalid {what} {value!r}")
        version = 6 if ":" in port.host_ip else 4
        host = _host_address(port.host_ip, version)
        if version == 6 and not targets[6]:
            raise ValueError(f"invalid host address {port.host_ip!r}: the container has no "
                             "IPv6 address to forward it to")
        family = IPFAM[version]
        expr = [_match(_meta("nfproto"), f"ipv{version}")]
        if not host.is_unspecified:
            expr.append(_match(_payload(family, "daddr"), str(host)))
        expr += [_match(_payload(port.proto, "dport"), port.host_port),
                 {"dnat": {"family": family, "addr": targets[version],
                           "port": port.container_port}}]
        return self._rule("ports", *expr, comment=container_id)

    def _port_removal(self, container_id: str,
                      listing: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        if listing is None:
            listing = nft.list_table(INET, self.table)
        return [{"delete": self._obj(INET, "rule", chain="ports", handle=r["handle"])}
                for r in self._rules(listing, "ports") if r.get("comment") == container_id]

    @staticmethod
    def _rules(listing: Iterable[dict[str, Any]] | None, chain: str) -> list[dict[str, Any]]:
        return [o["rule"] for o in listing or [] if "rule" in o and o["rule"]["chain"] == chain]


# -- is the table already what a transaction would make it? ---------------------------------

def _holds(plan: list[dict[str, Any]], listing: dict[str, list[dict[str, Any]]]) -> bool:
    """True when committing `plan` would change nothing: it deletes nothing, every table, set,
    map and chain it adds exists, every element it adds is there, and every chain it flushes
    holds exactly the rules it adds there, in order."""
    objects: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    rules: dict[tuple[Any, Any], list[Any]] = {}
    for obj in listing[INET] + listing[BRIDGE]:
        for kind, body in obj.items():  # (one each; any other kind someone added is kept)
            if not isinstance(body, dict):
                continue
            if kind == "rule":
                rules.setdefault((body.get("family"), body.get("chain")), []).append(
                    _rule_key(body))
            else:
                objects[(kind, body.get("family"), body.get("name"))] = body
    wanted: dict[tuple[str, str], list[Any]] = {}
    flushed = []
    for command in plan:
        ((verb, what),) = command.items()
        ((kind, body),) = what.items()
        family = body["family"]
        if verb == "delete":
            return False
        if verb == "flush":
            flushed.append((family, body["name"]))
        elif kind == "rule":
            wanted.setdefault((family, body["chain"]), []).append(_rule_key(body))
        elif kind == "element":
            found = objects.get(("set", family, body["name"])) or \
                objects.get(("map", family, body["name"]))
            if found is None or any(e not in found.get("elem", []) for e in body["elem"]):
                return False
        elif (kind, family, body["name"]) not in objects:
            return False
    return all(rules.get(chain, []) == wanted.get(chain, []) for chain in flushed)


def _rule_key(rule: dict[str, Any]) -> tuple[Any, Any]:
    return rule.get("expr"), rule.get("comment")


def _digest(plan: list[dict[str, Any]]) -> str:
    return sha256.hexdigest(json.dumps(plan, sort_keys=True).encode())


def _epoch() -> str:
    """What a generation number is counted in: this boot's network namespace (a runroot on
    disk outlives a reboot, and the count starts again then)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        return f"{boot}:{os.stat('/proc/thread-self/ns/net').st_ino}"
    except OSError:
        return ""


def _generation() -> int | None:
    try:
        return nft.generation()
    except OSError:
        return None


# -- expressions -------------------------------------------------------------------------------

def _meta(key: str) -> dict[str, Any]:
    return {"meta": {"key": key}}


def _payload(protocol: str, field: str) -> dict[str, Any]:
    return {"payload": {"protocol": protocol, "field": field}}


def _match(left: dict[str, Any], right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _ct(key: str, value: Any) -> dict[str, Any]:
    return _match({"ct": {"key": key}}, value, "in")


def _fib_daddr_type() -> dict[str, Any]:
    return {"fib": {"result": "type", "flags": ["daddr"]}}


def _vmap(key: dict[str, Any], name: str) -> dict[str, Any]:
    return {"vmap": {"key": key, "data": "@" + name}}


def _jump(chain: str) -> dict[str, Any]:
    return {"jump": {"target": chain}}


def _accept() -> dict[str, Any]:
    return {"accept": None}


def _prefix(net: Subnet) -> dict[str, Any]:
    return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


def _subnet_map(listing: list[dict[str, Any]], family: str) -> list[tuple[int, Any, str, str]]:
    """(ip version, element key, subnet, chain jumped to) of the family's subnet maps."""
    maps = SUBNET_MAPS[family][1]
    found = []
    for obj in listing:
        m = obj.get("map")
        if not m or m.get("name") not in maps.values():
            continue
        version = 4 if m["name"] == maps[4] else 6
        for key, verdict in m.get("elem", []):
            found.append((version, key, _key_net(key), verdict.get("jump", {}).get("target")))
    return found


def _key_net(key: Any) -> str:
    """The subnet an interval map key stands for ({"prefix": ...}, a range, or one address)."""
    if isinstance(key, dict) and "prefix" in key:
        return str(ipaddress.ip_network(f"{key['prefix']['addr']}/{key['prefix']['len']}"))
    return str(key)


# -- input checks and sysctls ------------------------------------------------------------------

def _check_ifname(name: str) -> None:
    if not isinstance(name, str) or not IFNAME.fullmatch(name):
        raise ValueError(f"invalid bridge name {name!r}")


def _check_tag(container_id: str) -> None:
    if not isinstance(container_id, str) or not TAG.fullmatch(container_id):
        raise ValueError(f"invalid container id {container_id!r}")


def _subnet(text: str) -> Subnet:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as e:
        raise ValueError(f"invalid subnet {text!r}") from e


def _ipv4(text: str, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError as e:
        raise ValueError(f"invalid {what} {text!r}: published ports need an IPv4 address") from e


def _ipv6(text: str) -> str:
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError as e:
        raise ValueError(f"invalid container IPv6 address {text!r}") from e


def _host_address(text: str, version: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A published port's host address ("" = every IPv4 one); never ::1, which the kernel
    cannot forward (see the module's docstring)."""
    if version == 4:
        return ipaddress.IPv4Address(_ipv4(text or "0.0.0.0", "host address"))
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError as e:
        raise ValueError(f"invalid host address {text!r}") from e
    if address.is_loopback or address.ipv4_mapped is not None:
        raise ValueError(f"invalid host address {text!r}: the kernel cannot forward it")
    return address


def _transient(e: NftError) -> bool:
    """Errors a concurrent barque causes between our listing and our commit."""
    text = str(e)
    return e.missing or "File exists" in text or "busy" in text or "Interrupted" in text


def _sysctl(key: str, value: str, missing_ok: bool = False) -> None:
    path = "/proc/sys/" + key
    try:
        with open(path) as f:
            if f.read().strip() == value:
                return
        with open(path, "w") as f:
            f.write(value)
    except FileNotFoundError:
        if not missing_ok:
            raise FirewallError(f"cannot set {key.replace('/', '.')}: no such entry") from None
    except OSError as e:
        raise FirewallError(f"cannot set {key.replace('/', '.')}={value}: {e.strerror}") from e
