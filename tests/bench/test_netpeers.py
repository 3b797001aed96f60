"""bench/netpeers.py's undo plan: what the network benches take out of the host's iptables
after Docker (and podman's CNI portmap) ran — Docker's rules and chains, nothing else. Pure:
the dumps are text, nothing is run."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from netpeers import Dump, undo_plan  # noqa: E402

BEFORE = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:CNI-FORWARD - [0:0]
-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
"""

# After Docker ran with a published port (its FORWARD policy set to DROP), podman's portmap
# left its chains, and meanwhile another program added a rule and a per-container CNI chain.
AFTER = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:CNI-FORWARD - [0:0]
:DOCKER - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD
-A FORWARD -j DOCKER-USER
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i br-other -j ACCEPT
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-USER -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:CNI-HOSTPORT-DNAT - [0:0]
:CNI-HOSTPORT-MASQ - [0:0]
:CNI-0123abcd - [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE
-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ
-A POSTROUTING -s 10.88.0.5/32 -j CNI-0123abcd
-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE
-A CNI-0123abcd -d 10.88.0.0/16 -j ACCEPT
-A DOCKER -i docker0 -j RETURN
COMMIT
"""

DOCKER0 = [ipaddress.ip_network("172.17.0.0/16")]


def plan_of(before: str, after: str, docker: bool = True) -> list[tuple[str, list[str]]]:
    return undo_plan(Dump.parse(before), Dump.parse(after), DOCKER0, docker)


def test_takes_out_dockers_rules_chains_and_policy() -> None:
    plan = plan_of(BEFORE, AFTER)
    assert ("filter", ["-D", "FORWARD", "-j", "DOCKER-USER"]) in plan
    assert ("filter", ["-D", "FORWARD", "-o", "docker0", "-j", "DOCKER"]) in plan
    assert ("filter", ["-D", "FORWARD", "-i", "docker0", "!", "-o", "docker0", "-j",
                       "ACCEPT"]) in plan
    assert ("nat", ["-D", "POSTROUTING", "-s", "172.17.0.0/16", "!", "-o", "docker0", "-j",
                    "MASQUERADE"]) in plan
    # a published port's masquerade names neither docker0 nor a DOCKER chain
    assert ("nat", ["-D", "POSTROUTING", "-s", "172.17.0.2/32", "-d", "172.17.0.2/32", "-p",
                    "tcp", "-m", "tcp", "--dport", "80", "-j", "MASQUERADE"]) in plan
    for table, chain in [("filter", "DOCKER"), ("filter", "DOCKER-USER"), ("nat", "DOCKER")]:
        assert plan.index((table, ["-F", chain])) < plan.index((table, ["-X", chain]))
    assert ("filter", ["-P", "FORWARD", "ACCEPT"]) in plan
    # rules inside the chains go with the flush, not one by one
    assert not any(args[0] == "-D" and args[1].startswith("DOCKER") for _, args in plan)


def test_takes_out_portmaps_chains_once_no_port_is_mapped() -> None:
    plan = plan_of(BEFORE, AFTER)
    assert ("nat", ["-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j",
                    "CNI-HOSTPORT-DNAT"]) in plan
    assert ("nat", ["-X", "CNI-HOSTPORT-MASQ"]) in plan


def test_keeps_what_others_added() -> None:
    plan = plan_of(BEFORE, AFTER)
    text = repr(plan)
    assert "br-other" not in text
    assert "CNI-0123abcd" not in text and "10.88.0.5" not in text
    assert "CNI-FORWARD" not in text


def test_portmaps_chains_stay_while_a_port_is_mapped() -> None:
    in_use = AFTER.replace(":DOCKER - [0:0]\n-A PREROUTING",
                           ":DOCKER - [0:0]\n-A CNI-HOSTPORT-DNAT -p tcp -j CNI-DN-1\n"
                           "-A PREROUTING", 1)
    assert "CNI-HOSTPORT" not in repr(plan_of(BEFORE, in_use))


def test_another_dockers_rules_are_left_alone() -> None:
    """docker0 existed before the bench: its Docker's rules are not the bench's to remove."""
    plan = plan_of(BEFORE, AFTER, docker=False)
    assert "DOCKER" not in repr(plan) and "docker0" not in repr(plan)
    assert not any(args[0] == "-P" for _, args in plan)


def test_nothing_changed_nothing_to_do() -> None:
    assert plan_of(AFTER, AFTER) == []
    assert plan_of(BEFORE, BEFORE) == []


def test_portmaps_chains_from_before_the_bench_stay() -> None:
    before = BEFORE.replace(":POSTROUTING ACCEPT [0:0]\n",
                            ":POSTROUTING ACCEPT [0:0]\n:CNI-HOSTPORT-DNAT - [0:0]\n"
                            ":CNI-HOSTPORT-MASQ - [0:0]\n", 1)
    assert "CNI-HOSTPORT" not in repr(plan_of(before, AFTER))
