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
            module = _load_module()
            try:
                nft = module.Nftables()
            except OSError as e:  # libnftables.so.1 itself is missing
                raise NftError(f"cannot load libnftables: {e} (apt-get install nftables)") from e
            nft.set_json_output(True)
            nft.set_handle_output(True)
            cls._nft = nft
        return cls._nft


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


# The ruleset's generation through nfnetlink (NFT_MSG_GETGEN): one small request, without
# loading libnftables. The kernel counts every committed transaction of the netns.
_NETLINK_NETFILTER = 12
_GETGEN = (10 << 8) | 16  # NFNL_SUBSYS_NFTABLES, NFT_MSG_GETGEN
_NEWGEN = (10 << 8) | 15
_NLMSG_ERROR = 2
_NFTA_GEN_ID = 1


def generation() -> int:
    """The ruleset's generation ID: it changes with every transaction anyone commits (a rule
    added, a table deleted, `nft flush ruleset`). OSError if the kernel will not tell."""
    import socket
    import struct

    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                       _NETLINK_NETFILTER) as sock:
        sock.settimeout(2.0)
        body = struct.pack("=BBH", 0, 0, 0)  # nfgenmsg: AF_UNSPEC, NFNETLINK_V0, res_id
        sock.sendto(struct.pack("=IHHII", 16 + len(body), _GETGEN, 1, 1, 0) + body, (0, 0))
        data = sock.recv(65536)
    if len(data) < 16:
        raise OSError("nfnetlink: short reply")
    length, kind = struct.unpack_from("=IH", data)
    if kind == _NLMSG_ERROR:
        (code,) = struct.unpack_from("=i", data, 16)
        raise OSError(-code, f"nfnetlink: {os.strerror(-code)}")
    offset = 20  # nlmsghdr + nfgenmsg
    while kind == _NEWGEN and offset + 4 <= min(length, len(data)):
        size, attr = struct.unpack_from("=HH", data, offset)
        if size < 4:
            break
        if attr & 0x3FFF == _NFTA_GEN_ID and size >= 8:
            return int(struct.unpack_from(">I", data, offset + 4)[0])
        offset += (size + 3) & ~3
    raise OSError("nfnetlink: no generation in the reply")
