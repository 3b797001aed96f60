"""libnftables through its official Python binding (Debian's python3-nftables), JSON in and out.

The binding is a pure-Python ctypes wrapper that Debian installs for the system Python only
(/usr/lib/python3/dist-packages/nftables), so Barque's own interpreter usually cannot import
it. We then load that one package from its file, under its own name, without putting the rest
of dist-packages on sys.path (that would shadow our pinned dependencies with Debian's).

Commands are JSON, never text: names that come from users (a bridge named by
`-o com.docker.network.bridge.name`) are data there, not syntax. One call to `run` is one
netlink batch, i.e. one kernel transaction: it applies completely or not at all.
"""

from __future__ import annotations

import json
import os
import sys
import threading

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

# Where distributions install the binding for their system Python.
PACKAGE_DIRS = (
    "/usr/lib/python3/dist-packages",
    "/usr/lib/python3/site-packages",
    "/usr/local/lib/python3/dist-packages",
)
# The kernel's ENOENT, and libnftables' own words when its cache already knows.
MISSING = ("No such file or directory", "does not exist")


class NftError(Exception):
    """libnftables refused a command or could not be loaded; the message is its own words."""

    unavailable = False  # the kernel has no nf_tables (nfnetlink) at all

    @property
    def missing(self) -> bool:
        """The table, chain, rule or element the command named does not exist (ENOENT)."""
        return any(words in str(self) for words in MISSING)


def _load_module() -> ModuleType:
    try:
        import nftables

        if hasattr(nftables, "Nftables"):
            return nftables
    except ImportError:
        pass
    for base in PACKAGE_DIRS:
        module = _load_from(os.path.join(base, "nftables"))
        if module is not None:
            return module
    raise NftError("the nftables Python binding is not installed "
                   "(apt-get install nftables python3-nftables)")


def _load_from(package_dir: str) -> ModuleType | None:
    import importlib.util

    init = os.path.join(package_dir, "__init__.py")
    if not os.path.isfile(init):
        return None
    spec = importlib.util.spec_from_file_location(
        "nftables", init, submodule_search_locations=[package_dir])
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules["nftables"] = module  # its `from .nftables import *` needs the parent registered
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop("nftables", None)
        sys.modules.pop("nftables.nftables", None)
        raise NftError(f"cannot load the nftables Python binding from {package_dir}: {e}") from e
    return module


class _Context:
    """One libnftables context per process (it keeps a cache; it is not thread-safe)."""

    _lock = threading.Lock()
    _nft: Any = None

    @classmethod
    def get(cls) -> Any:
        if cls._nft is None:
            _check_kernel()
            module = _load_module()
            try:
                nft = module.Nftables()
            except OSError as e:  # libnftables.so.1 itself is missing
                raise NftError(f"cannot load libnftables: {e} (apt-get install nftables)") from e
            nft.set_json_output(True)
            nft.set_handle_output(True)
            cls._nft = nft
        return cls._nft


def _check_kernel() -> None:
    """libnftables exit()s the whole process (status 3, "Unable to initialize Netlink
    socket") on a kernel without nfnetlink: find that out first, with a socket of our own."""
    import socket

    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                      _NETLINK_NETFILTER).close()
    except OSError as e:
        error = NftError(f"this kernel has no nftables (netlink netfilter: {e.strerror}); "
                         "load the nf_tables module")
        error.unavailable = True
        raise error from None


def run(commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run commands (libnftables JSON objects such as {"add": {"table": {...}}}) as one
    transaction; return the objects libnftables printed (listings), without its metainfo."""
    if not commands:
        return []
    with _Context._lock:
        nft = _Context.get()
        rc, output, error = nft.cmd(json.dumps({"nftables": commands}))
    if rc != 0:
        raise NftError(_first_error(error) or f"nftables failed (rc {rc})")
    if not output.strip():
        return []
    return [obj for obj in json.loads(output).get("nftables", []) if "metainfo" not in obj]


def _first_error(text: str) -> str:
    # libnftables echoes the whole JSON input after the message: keep the message.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "Error:" in line:  # "internal:0:0-0: Error: ..." or "Error: ..."
            return line.split("Error:", 1)[1].strip()
    return lines[0] if lines else ""


def list_table(family: str, name: str) -> list[dict[str, Any]] | None:
    """Everything a table holds (sets with elements, chains, rules with handles and comments),
    or None when there is no such table."""
    try:
        return run([{"list": {"table": {"family": family, "name": name}}}])
    except NftError as e:
        if e.missing:
            return None
        raise


def list_chains() -> list[dict[str, Any]]:
    """Every chain of every table (name, family, table, hook, policy): read-only."""
    return [obj["chain"] for obj in run([{"list": {"chains": {}}}]) if "chain" in obj]


# The ruleset's generation, and a table's fingerprint, through nfnetlink directly: small
# requests, without loading libnftables (~4 ms).
_NETLINK_NETFILTER = 12
_MSG = {name: (10 << 8) | n for name, n in (  # NFNL_SUBSYS_NFTABLES, NFT_MSG_*
    ("gettable", 1), ("getchain", 4), ("getrule", 7), ("getset", 10), ("getsetelem", 13),
    ("newgen", 15), ("getgen", 16))}
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NFPROTO = {"inet": 1, "ip": 2, "arp": 3, "netdev": 5, "bridge": 7, "ip6": 10}


class _Nfnl:
    def __init__(self) -> None:
        import socket

        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  _NETLINK_NETFILTER)
        self.sock.settimeout(2.0)
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, msg: str, family: int = 0, attrs: bytes = b"",
                dump: bool = False) -> list[bytes] | None:
        """The payloads (after nfgenmsg) of the reply's messages; None: ENOENT."""
        import struct

        self.seq += 1
        body = struct.pack("=BBH", family, 0, 0) + attrs
        flags = _NLM_F_REQUEST | (_NLM_F_DUMP if dump else 0)
        self.sock.send(struct.pack("=IHHII", 16 + len(body), _MSG[msg], flags, self.seq, 0)
                       + body)
        replies: list[bytes] = []
        while True:
            data = self.sock.recv(1 << 16)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, _, seq, _ = struct.unpack_from("=IHHII", data, offset)
                if length < 16:
                    raise OSError("nfnetlink: bad message")
                payload = data[offset + 16:offset + length]
                offset += (length + 3) & ~3
                if seq != self.seq:
                    continue
                if kind == _NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", payload)
                    if code == 0:
                        return replies
                    if -code == 2:  # ENOENT
                        return None
                    raise OSError(-code, f"nfnetlink: {os.strerror(-code)}")
                if kind == _NLMSG_DONE:
                    return replies
                replies.append(payload[4:])
                if not dump:
                    return replies


def _attr(kind: int, text: str) -> bytes:
    import struct

    raw = text.encode() + b"\0"
    return struct.pack("=HH", 4 + len(raw), kind) + raw + b"\0" * (-len(raw) & 3)


def _attrs(payload: bytes) -> dict[int, bytes]:
    import struct

    found = {}
    offset = 0
    while offset + 4 <= len(payload):
        size, kind = struct.unpack_from("=HH", payload, offset)
        if size < 4:
            break
        found[kind & 0x3FFF] = payload[offset + 4:offset + size]
        offset += (size + 3) & ~3
    return found


def _name(raw: bytes | None) -> str:
    return (raw or b"").rstrip(b"\0").decode(errors="replace")


def generation() -> int:
    """The ruleset's generation ID: it changes with every transaction anyone commits (a rule
    added, a table deleted, `nft flush ruleset`). OSError if the kernel will not tell."""
    import struct

    nl = _Nfnl()
    try:
        replies = nl.request("getgen")
    finally:
        nl.close()
    generation_id = _attrs(replies[0]).get(1) if replies else None  # NFTA_GEN_ID
    if generation_id is None or len(generation_id) < 4:
        raise OSError("nfnetlink: no generation in the reply")
    return int(struct.unpack(">I", generation_id[:4])[0])


def fingerprint(tables: list[tuple[str, str]], skip_rules_of: tuple[str, ...] = ()) -> str | None:
    """A digest of everything the tables hold as the kernel reports it (the tables, their
    chains, sets, elements and rules, handles included, so a table made again differs), but
    the rules of the chains `skip_rules_of`; None when a table is missing. Equal digests: the
    tables were not changed in between (read at one generation, see generation())."""
    from barque import sha256

    digest = sha256.new()
    nl = _Nfnl()
    try:
        for family_name, table in tables:
            family = _NFPROTO[family_name]
            found = nl.request("gettable", family, _attr(1, table))  # NFTA_TABLE_NAME
            if not found:
                return None
            parts = list(found)
            # Chains are dumped for the whole family (sets by table, on kernels that filter
            # them): keep this table's.
            for chain in nl.request("getchain", family, dump=True) or []:
                attrs = _attrs(chain)
                if _name(attrs.get(1)) == table:  # NFTA_CHAIN_TABLE
                    attrs.pop(6, None)  # NFTA_CHAIN_USE: counts its rules (ports' too)
                    parts.append(b"".join(k.to_bytes(2, "little") + v
                                          for k, v in sorted(attrs.items())))
            sets = [p for p in nl.request("getset", family, _attr(1, table), dump=True) or []
                    if _name(_attrs(p).get(1)) == table]  # NFTA_SET_TABLE
            parts += sets
            for one in sets:
                name = _name(_attrs(one).get(2))  # NFTA_SET_NAME
                parts += nl.request("getsetelem", family, _attr(1, table) + _attr(2, name),
                                    dump=True) or []  # NFTA_SET_ELEM_LIST_TABLE, _SET
            for rule in nl.request("getrule", family, _attr(1, table), dump=True) or []:
                attrs = _attrs(rule)  # NFTA_RULE_TABLE, NFTA_RULE_CHAIN
                if _name(attrs.get(1)) == table and _name(attrs.get(2)) not in skip_rules_of:
                    parts.append(rule)
            for part in parts:
                digest.update(len(part).to_bytes(4, "little") + part)
    finally:
        nl.close()
    return digest.hexdigest()[:32]
