"""Building layer tars and describing directory trees, for the storage tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from typing import Any

import pytest
import zstandard

from barque.storage.snapshot import overlay_supported

OCI_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def info(name: str, kind: str = "file", *, data: bytes = b"", target: str = "",
         mode: int | None = None, uid: int = 0, gid: int = 0, mtime: float = 1_600_000_000,
         dev: tuple[int, int] = (0, 0), xattrs: dict[str, bytes] | None = None,
         pax: dict[str, str] | None = None) -> tuple[tarfile.TarInfo, bytes | None]:
    """One tar member: kind is file, dir, symlink, hardlink, char, block or fifo."""
    ti = tarfile.TarInfo(name)
    ti.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
               "hardlink": tarfile.LNKTYPE, "char": tarfile.CHRTYPE,
               "block": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}[kind]
    ti.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    ti.uid, ti.gid, ti.mtime = uid, gid, mtime
    ti.linkname = target
    ti.devmajor, ti.devminor = dev
    headers = dict(pax or {})
    for key, value in (xattrs or {}).items():
        headers["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
    ti.pax_headers = headers
    if kind == "file":
        ti.size = len(data)
        return ti, data
    return ti, None


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for ti, data in members:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


_SHORT_KINDS = {"file": "file", "dir": "dir", "sym": "symlink", "hard": "hardlink"}


def short_tar(members: list[tuple[str, str, str]], *, mode: int = 0o644, dir_mode: int = 0o755,
              uid: int = 0, gid: int = 0, mtime: float = 0) -> bytes:
    """(kind, name, a file's text or a link's target) -> a PAX archive; kind is file, dir,
    sym or hard, every member with the same owner, mtime and mode (`dir_mode` for dirs)."""
    return tar_bytes([
        info(name, _SHORT_KINDS[kind], data=data.encode() if kind == "file" else b"",
             target=data if kind in ("sym", "hard") else "",
             mode=dir_mode if kind == "dir" else mode, uid=uid, gid=gid, mtime=mtime)
        for kind, name, data in members])


def compress(raw: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(raw)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(raw)
    return raw


def diff_id(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _xattrs(path: str) -> dict[str, bytes]:
    out = {}
    for key in os.listxattr(path, follow_symlinks=False):
        if not key.startswith("trusted.overlay."):
            out[key] = os.getxattr(path, key, follow_symlinks=False)
    return out


def describe(path: str, st: os.stat_result, *, times: bool) -> tuple[Any, ...]:
    kind = stat.S_IFMT(st.st_mode)
    extra: Any = None
    if stat.S_ISREG(kind):
        with open(path, "rb") as f:
            extra = hashlib.sha256(f.read()).hexdigest()
    elif stat.S_ISLNK(kind):
        extra = os.readlink(path)
    elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
        extra = (os.major(st.st_rdev), os.minor(st.st_rdev))
    mtime = st.st_mtime_ns if times and not stat.S_ISDIR(kind) else None
    return (stat.filemode(st.st_mode), st.st_uid, st.st_gid, extra, mtime,
            tuple(sorted(_xattrs(path).items())) if not stat.S_ISLNK(kind) else ())


def tree(root: str, *, times: bool = True) -> dict[str, tuple[Any, ...]]:
    """Every path under `root` (symlinks not followed) with its type, mode, owner, content
    digest or target, mtime (not of dirs: overlayfs shows the upper's) and xattrs."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = describe(path, os.lstat(path), times=times)
    return out


def view(root: str) -> dict[str, tuple[Any, ...]]:
    """What a container sees: `tree` without whiteout devices (a merged overlay hides them)."""
    return {k: v for k, v in tree(root).items() if not (v[0].startswith("c") and v[3] == (0, 0))}


def mounted_under(path: str) -> list[str]:
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == real or p.startswith(real + "/")]


def temp_dirs(parent: str) -> list[str]:
    return [n for n in os.listdir(parent) if n.startswith(".tmp-")]


def require_overlay(path: str) -> None:
    """Overlay mounts must work under `path`: a failure in CI, a skip elsewhere."""
    if overlay_supported(path):
        return
    message = "overlayfs mounts do not work here (kernel module, file system or privileges)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must not skip: {message}")
    pytest.skip(message)
