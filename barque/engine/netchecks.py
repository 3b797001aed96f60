"""What the daemon checks of a container's network settings at create, in its words: the
network mode against the other options (runconfig's validateNetMode), each endpoint's settings
(validateEndpointSettings, without the network's subnets: those are known only where the
network is, at add_endpoints), `--link` targets on the default bridge; and the normalisation
of Docker's "default" network mode to "bridge"."""

from __future__ import annotations

from barque.engine.context import Engine, EngineError

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

DEFAULT_NETWORK = "bridge"


def user_defined(name: str) -> bool:
    """container.NetworkMode.IsUserDefined."""
    return name not in ("default", DEFAULT_NETWORK, "host", "none") and \
        not name.startswith("container:")


def valid_mac(text: str) -> bool:
    """net.ParseMAC: 6, 8 or 20 bytes as aa:bb:…, aa-bb-… or aabb.ccdd.…"""
    if len(text) < 14:
        return False
    if text[2] in ":-":
        groups = text.split(text[2])
        size = 2
    elif text[4] == ".":
        groups = text.split(".")
        size = 4
    else:
        return False
    count = len(groups) * size // 2
    return count in (6, 8, 20) and all(
        len(g) == size and all(c in "0123456789abcdefABCDEF" for c in g) for g in groups)


def normalize(host_config: dict[str, Any], networking_config: dict[str, Any] | None
              ) -> dict[str, Any]:
    """NetworkMode "default" (or none given) becomes "bridge", and so does an endpoint named
    "default"; the network of NetworkMode gets an endpoint even without settings (as the
    daemon makes one), first, so that it is eth0. Returns the NetworkingConfig."""
    mode = str(host_config.get("NetworkMode") or "default")
    if mode == "default":
        mode = DEFAULT_NETWORK
    host_config["NetworkMode"] = mode
    given = dict((networking_config or {}).get("EndpointsConfig") or {})
    if "default" in given:
        given[DEFAULT_NETWORK] = given.pop("default")
    endpoints: dict[str, Any] = {}
    if mode == DEFAULT_NETWORK or user_defined(mode):
        endpoints[mode] = given.pop(mode, None) or {}
    endpoints.update(given)
    return {"EndpointsConfig": endpoints}


_CONTAINER_CONFLICTS = (
    (lambda c, h: c.get("Hostname"), "conflicting options: hostname and the network mode"),
    (lambda c, h: h.get("Links"), "conflicting options: container type network can't be used "
                                  "with links. This would result in undefined behavior"),
    (lambda c, h: h.get("Dns"), "conflicting options: dns and the network mode"),
    (lambda c, h: h.get("ExtraHosts"), "conflicting options: custom host-to-IP mapping and "
                                       "the network mode"),
    (lambda c, h: c.get("MacAddress"), "conflicting options: mac-address and the network mode"),
    (lambda c, h: h.get("PortBindings") or h.get("PublishAllPorts"),
     "conflicting options: port publishing and the container type network mode"),
    (lambda c, h: c.get("ExposedPorts"), "conflicting options: port exposing and the container "
                                         "type network mode"),
)


def check_mode(config: dict[str, Any], host_config: dict[str, Any]) -> None:
    """validateNetMode, on the container's own config (before the image's is merged in)."""
    mode = str(host_config.get("NetworkMode") or "")
    if mode.split(":")[0] == "container":
        if not mode.partition(":")[2]:
            raise EngineError("Invalid network mode: invalid container format "
                              "container:<name|id>", status=400)
        for conflicts, message in _CONTAINER_CONFLICTS:
            if conflicts(config, host_config):
                raise EngineError(message, status=400)
    if mode == "host":
        if host_config.get("Links"):
            raise EngineError("conflicting options: host type networking can't be used with "
                              "links. This would result in undefined behavior", status=400)
        if config.get("MacAddress"):
            raise EngineError("conflicting options: mac-address and the network mode",
                              status=400)


def _ip_errors(ipam: dict[str, Any]) -> list[str]:
    """EndpointIPAMConfig.Validate."""
    from barque.network.ports import parse_ip

    errors = []
    v4, v6 = str(ipam.get("IPv4Address") or ""), str(ipam.get("IPv6Address") or "")
    if v4:
        address = parse_ip(v4)
        if address is None or address.version != 4 or address.is_unspecified:
            errors.append(f"invalid IPv4 address: {v4}")
    if v6:
        address = parse_ip(v6)
        if (address is None or address.is_unspecified or address.version != 6 or
                getattr(address, "ipv4_mapped", None) is not None):
            errors.append(f"invalid IPv6 address: {v6}")
    return errors


def check_endpoint(name: str, settings: dict[str, Any]) -> None:
    """validateEndpointSettings without the network (its subnets are checked at
    add_endpoints)."""
    ipam = settings.get("IPAMConfig") or {}
    errors = []
    if not user_defined(name):
        if ipam.get("IPv4Address") or ipam.get("IPv6Address"):
            errors.append("user specified IP address is supported on user defined networks "
                          "only")
        if settings.get("Aliases"):
            errors.append("network-scoped alias is supported only for containers in user "
                          "defined networks")
    errors += _ip_errors(ipam)
    mac = str(settings.get("MacAddress") or "")
    if mac and not valid_mac(mac):
        raise EngineError(f"invalid config for network {name}: invalid MAC address {mac}",
                          status=400)
    if errors:
        raise EngineError(f"invalid config for network {name}: invalid endpoint settings:\n" +
                          "\n".join(errors), status=400)


def check_links(engine: Engine, host_config: dict[str, Any]) -> None:
    """registerLinks: on the default bridge a link names an existing container that is not
    on the host's network."""
    mode = str(host_config.get("NetworkMode") or "")
    if user_defined(mode):
        return
    for link in host_config.get("Links") or []:
        name = str(link).split(":")[0].lstrip("/")
        try:
            child = engine.find(name)
        except EngineError as e:
            raise EngineError(f"could not get container for {name}: {e}", status=400) from None
        if str(child.host_config.get("NetworkMode") or "") == "host":
            raise EngineError("conflicting options: host type networking can't be used with "
                              "links. This would result in undefined behavior", status=400)


def check(engine: Engine, config: dict[str, Any], host_config: dict[str, Any],
          networking_config: dict[str, Any]) -> list[str]:
    """Everything above, on a normalized HostConfig and NetworkingConfig; the warnings."""
    check_mode(config, host_config)
    for name, settings in (networking_config.get("EndpointsConfig") or {}).items():
        check_endpoint(name, settings or {})
    check_links(engine, host_config)
    if host_config.get("NetworkMode") == "host" and host_config.get("PortBindings"):
        return ["Published ports are discarded when using host network mode"]
    return []
