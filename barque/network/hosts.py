"""A container's /etc/hosts as Docker Engine writes it (moby's libnetwork/etchosts and
Sandbox.buildHostsFile): localhost, the IPv6 names, `--add-host` entries, `--link` entries,
then the container's own addresses under its hostname. One "ADDRESS<TAB>NAMES" line each."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

DEFAULT_IPV4 = [("127.0.0.1", "localhost")]
DEFAULT_IPV6 = [
    ("::1", "localhost ip6-localhost ip6-loopback"),
    ("fe00::", "ip6-localnet"),
    ("ff00::", "ip6-mcastprefix"),
    ("ff02::1", "ip6-allnodes"),
    ("ff02::2", "ip6-allrouters"),
]


def render(hostname: str, addresses: list[str], extra_hosts: list[tuple[str, str]],
           links: Sequence[tuple[str, str, str] | tuple[str, str, str, str]], *,
           domainname: str = "", ipv6: bool = True) -> str:
    """The file's text.

    `addresses`: the container's own addresses (each network's IPv4 then IPv6, in connect
    order); `extra_hosts`: `--add-host` as (name, address), `host-gateway` already resolved;
    `links`: `--link` children as (address, alias, name) or (address, alias, name, hostname),
    written as Docker does: "address alias [hostname] [name unless it is the alias]".
    `ipv6` False (the container has IPv6 disabled) leaves out every IPv6 line, as Docker."""
    records = list(DEFAULT_IPV4) + (list(DEFAULT_IPV6) if ipv6 else [])
    records += [(address, name) for name, address in extra_hosts]
    records += [(link[0], _link_names(*link[1:])) for link in links]
    own = hostname + (f".{domainname}" if domainname else "")
    if "." in own:
        own += " " + own.partition(".")[0]  # the FQDN and the bare name
    records += [(address, own) for address in addresses]
    return "".join(f"{_addr(address)}\t{names}\n" for address, names in records
                   if ipv6 or not _is_ipv6(address))


def _link_names(alias: str, name: str, hostname: str = "") -> str:
    names = [alias] + ([hostname] if hostname else [])
    if alias != name:
        names.append(name)
    return " ".join(names)


def _addr(text: str) -> str:
    """The address as Go's netip prints it (IPv6 compressed, lower case)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _is_ipv6(text: str) -> bool:
    return ":" in text
