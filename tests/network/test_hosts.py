"""hosts.render against the /etc/hosts Docker Engine 28 writes (moby's libnetwork/etchosts,
Sandbox.buildHostsFile, addLegacyLinks)."""

from __future__ import annotations

from barque.network import hosts

DEFAULTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::\tip6-localnet\n"
    "ff00::\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


def test_no_network() -> None:
    assert hosts.render("0123456789ab", [], [], []) == DEFAULTS


def test_own_addresses() -> None:
    # `docker run --network n1 busybox cat /etc/hosts` (n1 with IPv6): the container's
    # addresses under its hostname, IPv4 then IPv6.
    assert hosts.render("0123456789ab", ["172.18.0.2", "fd00:0:0:0::2"], [], []) == \
        DEFAULTS + "172.18.0.2\t0123456789ab\nfd00::2\t0123456789ab\n"


def test_fqdn_hostname_gets_its_short_name() -> None:
    assert hosts.render("web.example.com", ["172.17.0.2"], [], []).endswith(
        "172.17.0.2\tweb.example.com web\n")
    assert hosts.render("web", ["172.17.0.2"], [], [], domainname="example.com").endswith(
        "172.17.0.2\tweb.example.com web\n")


def test_add_host_then_links_then_own() -> None:
    text = hosts.render(
        "0123456789ab", ["172.17.0.3"],
        [("db.local", "10.0.0.5"), ("gw", "172.17.0.1"), ("v6host", "2001:DB8::1")],
        [("172.17.0.2", "db", "mydb", "a1b2c3d4e5f6"), ("172.17.0.4", "cache", "cache")])
    assert text == DEFAULTS + (
        "10.0.0.5\tdb.local\n"
        "172.17.0.1\tgw\n"
        "2001:db8::1\tv6host\n"
        "172.17.0.2\tdb a1b2c3d4e5f6 mydb\n"   # alias, the child's hostname, its name
        "172.17.0.4\tcache\n"                  # the name only once when it is the alias
        "172.17.0.3\t0123456789ab\n")


def test_ipv6_disabled_drops_every_ipv6_line() -> None:
    text = hosts.render("h", ["172.18.0.2", "fd00::2"], [("v6", "2001:db8::1"), ("v4", "10.0.0.1")],
                        [], ipv6=False)
    assert text == "127.0.0.1\tlocalhost\n10.0.0.1\tv4\n172.18.0.2\th\n"
