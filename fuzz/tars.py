"""Hostile tar streams for the unpacker, import and load fuzzers (and their hypothesis tests).

A tar is described as a list of `Member`s and serialised by hand, header by header, so that a
member can lie: a declared size far beyond its data, pax headers that rename it, declare it
sparse or give it xattrs, a type byte tarfile does not know. `CANARY` in a name or link target
stands for the absolute path of a directory outside the target, which must stay unchanged.
"""

from __future__ import annotations

import gzip
import tarfile
from dataclasses import dataclass, field

import zstandard

from fuzz._driver import Provider

CANARY = "@CANARY@"
KINDS = ("file", "dir", "symlink", "hardlink", "char", "block", "fifo", "raw")
_TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
          "hardlink": tarfile.LNKTYPE, "char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE,
          "fifo": tarfile.FIFOTYPE}
# Weighted towards names that collide, so later members meet what earlier ones made.
COMPONENTS = ("a", "b", "lnk", "alnk", "etc", "passwd", "canary")
ODD_COMPONENTS = (".wh.a", ".wh.lnk", ".wh..wh..opq", ".wh..wh.plnk", ".wh..", ".wh...", "..",
                  ".", "", "x" * 120, "é\udcff")
PREFIXES = ("", "./")
ODD_PREFIXES = ("/", "../", CANARY + "/")
TARGETS = (CANARY, CANARY + "/passwd", "../canary", "../../canary", "../" * 8 + "canary",
           "/", "/etc/passwd", "lnk/passwd", "a", "a/b", ".", "", "alnk/passwd")
PAX_KEYS = ("path", "linkpath", "size", "uid", "gid", "mtime", "SCHILY.xattr.user.x",
            "SCHILY.xattr.trusted.overlay.opaque", "SCHILY.xattr.trusted.overlay.redirect",
            "SCHILY.xattr.security.capability", "SCHILY.xattr.", "LIBARCHIVE.xattr.user.y",
            "GNU.sparse.size", "GNU.sparse.map", "GNU.sparse.major", "GNU.sparse.minor",
            "GNU.sparse.name", "GNU.sparse.realsize", "hdrcharset", "comment")
PAX_VALUES = ("0", "1", "-1", "1073741824", "99999999999999999999", "1e400", "nan",
              "0,0,1073741824,0", "0,1073741824", "1.0", "a", "../canary", CANARY, "",
              "BINARY", "%ff", "QUFB")
SIZES = (0, 1, 511, 512, 513, 1 << 20, 1 << 33, (1 << 63) - 1, 8 ** 11 - 1)
FORMATS = ("pax", "gnu", "ustar")


@dataclass
class Member:
    kind: str
    name: str
    target: str = ""
    data: bytes = b""
    size: int | None = None  # the declared size when it lies about the data
    pax: dict[str, str] = field(default_factory=dict)
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    dev: tuple[int, int] = (0, 0)
    raw_type: bytes = b"0"


@dataclass
class Tar:
    members: list[Member]
    fmt: str = "pax"
    end: int = 2  # zero blocks at the end (0, 1, 2 or more)
    trailing: bytes = b""  # after the end marker
    compression: str = ""  # "", "gzip", "zstd"
    truncate: int | None = None  # cut the (compressed) stream to this many bytes
    flips: list[tuple[int, int]] = field(default_factory=list)  # (offset, xor) on the plain tar


def _header(m: Member, fmt: str, canary: str) -> bytes:
    info = tarfile.TarInfo(m.name.replace(CANARY, canary))
    info.type = m.raw_type if m.kind == "raw" else _TYPES[m.kind]
    info.linkname = m.target.replace(CANARY, canary)
    info.size = len(m.data) if m.size is None else m.size
    if m.kind not in ("file", "raw"):
        info.size = 0 if m.size is None else m.size
    info.mode, info.uid, info.gid = m.mode, m.uid, m.gid
    info.mtime = 1_600_000_000
    info.devmajor, info.devminor = m.dev
    info.pax_headers = {k: v.replace(CANARY, canary) for k, v in m.pax.items()}
    formats = {"pax": tarfile.PAX_FORMAT, "gnu": tarfile.GNU_FORMAT, "ustar": tarfile.USTAR_FORMAT}
    order = [formats[fmt]] + [f for f in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT)
                              if f != formats[fmt]]
    for f in order:  # ustar cannot hold long names, nor GNU pax headers: fall back
        if m.pax and f != tarfile.PAX_FORMAT:
            continue
        try:
            return info.tobuf(f, "utf-8", "surrogateescape")
        except ValueError:
            continue
    return b""  # not expressible at all (e.g. a size beyond every format): left out


def plain(tar: Tar, canary: str) -> bytes:
    """The uncompressed stream."""
    out = bytearray()
    for m in tar.members:
        header = _header(m, tar.fmt, canary)
        if not header:
            continue
        out += header + m.data
        out += b"\0" * (-len(m.data) % 512)
    out += b"\0" * (512 * tar.end) + tar.trailing
    for offset, xor in tar.flips:
        if out:
            out[offset % len(out)] ^= xor or 1
    return bytes(out)


def serialise(tar: Tar, canary: str) -> bytes:
    data = plain(tar, canary)
    if tar.compression == "gzip":
        data = gzip.compress(data, mtime=0)
    elif tar.compression == "zstd":
        data = zstandard.ZstdCompressor().compress(data)
    if tar.truncate is not None:
        data = data[:tar.truncate]
    return data


# --- drawn from fuzzer bytes --------------------------------------------------------------

def draw_name(p: Provider) -> str:
    if p.chance(5):
        return p.text(40)
    parts = [p.pick(ODD_COMPONENTS if p.chance(8) else COMPONENTS) for _ in range(p.int(1, 4))]
    prefix = p.pick(ODD_PREFIXES if p.chance(5) else PREFIXES)
    return prefix + "/".join(parts) + ("/" if p.chance(10) else "")


def draw_target(p: Provider) -> str:
    return p.pick(TARGETS) if p.bool() else draw_name(p)


def draw_member(p: Provider) -> Member:
    kind = p.pick(KINDS)
    m = Member(kind, draw_name(p))
    if kind in ("symlink", "hardlink") or p.chance(5):
        m.target = draw_target(p)
    if kind in ("file", "raw"):
        m.data = b"pwned" * p.int(0, 3) if p.bool() else p.blob(64)
    if p.chance(10):
        m.size = p.pick(SIZES)
    if kind in ("char", "block"):
        m.dev = p.pick(((0, 0), (1, 3), (8, 0), (7, 0), (-1, 0), (4095, 1 << 20)))
    if kind == "raw":
        m.raw_type = p.pick((b"S", b"K", b"L", b"x", b"g", b"7", b"V", b"M", b"D", b"\0", b"9"))
    if p.chance(15):
        for _ in range(p.int(1, 3)):
            m.pax[p.pick(PAX_KEYS)] = p.pick(PAX_VALUES) if p.bool() else p.text(16)
    if p.chance(15):
        m.mode = p.pick((0o4755, 0o7777, 0o000, 0o1777, 0o2755, 0o100644, -1, 8 ** 8 - 1))
    if p.chance(10):
        m.uid = p.pick((0, 1000, 65534, 2 ** 31, 2 ** 32 - 1, 8 ** 7 - 1, 2 ** 40, -1))
        m.gid = p.pick((0, 1000, 65534, 2 ** 32 - 1, -1))
    return m


def draw_tar(p: Provider, max_members: int = 10) -> Tar:
    tar = Tar([draw_member(p) for _ in range(p.int(0, max_members))])
    tar.fmt = p.pick(FORMATS)
    if p.chance(15):
        tar.end = p.pick((0, 1, 3))
    if p.chance(10):
        tar.trailing = p.pick((b"\0" * 512, b"junk", b"\0" * 1024 + b"x"))
    if p.chance(20):
        tar.compression = p.pick(("gzip", "zstd"))
    if p.chance(10):
        tar.truncate = p.int(0, 4096)
    if p.chance(10):
        tar.flips = [(p.int(0, 1 << 16), p.int(0, 255)) for _ in range(p.int(1, 4))]
    return tar
