"""Unpack image layer blobs: each into its own overlayfs lower dir, or onto a plain rootfs.

`unpack_layer` is how the image store keeps layers: one directory per layer, in overlayfs
lower-dir format, made in a `.tmp-` sibling and renamed into place only once complete and
verified, so a layer dir that exists is always whole. `apply_layer_to_rootfs` is the copy
fallback for hosts without overlayfs.

Layers are untrusted input. Their compression is sniffed (see compression), the tar is read as
a stream and must end properly (tarfile would take a cut-off archive for a complete one), the
uncompressed stream is checked against the diff_id to its very end, and every entry is written
through directory fds without following symlinks (see apply and tarsafe). Every failure is a
LayerError naming the entry.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
from typing import IO

from barque.storage import tarsafe
from barque.storage.apply import Applier
from barque.storage.compression import DecompressError, decompressed
from barque.storage.entries import LayerError, tar_entry
from barque.storage.tapstream import Tap, TarEndError

__all__ = ["LayerError", "apply_layer_to_rootfs", "unpack_layer"]

_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_CHUNK = 1 << 20


def _read_tar(tap: Tap, applier: Applier) -> None:
    try:
        tar = tarfile.open(fileobj=tap, mode="r|")  # type: ignore[call-overload]
    except tarfile.ReadError as e:
        if tap.pos == 0:
            return  # an empty stream is an empty layer to Go's archive/tar, so to Docker
        raise LayerError(f"not a tar archive: {e}") from None
    with tar:
        while (member := tar.next()) is not None:
            tar.members.clear()  # a stream needs no index; layers can have many entries
            if member.sparse is not None:
                # Holes would be written as zeros: a tiny tar could fill the disk.
                raise LayerError(f"layer entry {member.name!r} is a sparse file (unsupported)")
            try:
                entry = tar_entry(tar, member)
                if entry is not None:
                    applier.apply(entry)
            except (OSError, ValueError, OverflowError, UnicodeError, tarfile.TarError,
                    DecompressError) as e:  # its data cut short, or not writable
                raise LayerError(f"layer entry {member.name!r}: {e}") from None
        try:
            tap.check_end(tar.offset)
        except TarEndError as e:
            raise LayerError(str(e)) from None


def _apply_blob(blob: str | IO[bytes], media_type: str, diff_id: str | None,
                applier: Applier) -> None:
    if diff_id is not None and not _DIGEST_RE.match(diff_id):
        raise LayerError(f"unsupported or malformed diff_id {diff_id!r}")
    try:
        f = open(blob, "rb") if isinstance(blob, str) else blob
    except OSError as e:
        raise LayerError(f"cannot open layer blob: {e}") from None
    try:
        tap = Tap(decompressed(f, media_type), hashed=True)
        try:
            _read_tar(tap, applier)
            tap.drain()  # the diff_id covers the whole stream, past the end marker too
        finally:
            applier.close()
    except DecompressError as e:
        raise LayerError(str(e)) from None
    except (tarfile.TarError, EOFError, OSError, ValueError, OverflowError) as e:
        raise LayerError(f"corrupt layer: {e}") from None
    finally:
        if isinstance(blob, str):
            f.close()
    got = tap.digest
    if diff_id is not None and got != diff_id:
        raise LayerError(f"layer content does not match its diff_id: expected {diff_id}, "
                         f"got {got}")
    try:
        applier.finish()
    except OSError as e:
        raise LayerError(f"finishing the layer: {e}") from None


def unpack_layer(blob: str | IO[bytes], media_type: str, dest: str, diff_id: str | None = None,
                 *, allow_devices: bool = True) -> int:
    """Unpack one layer blob into the new directory `dest`, in overlayfs lower-dir format.

    `blob` is a path or a readable stream; `media_type` one of the OCI/Docker layer types (the
    compression itself is sniffed). Returns the bytes of regular files unpacked. On any error,
    nothing is left behind: not `dest`, not the temporary dir.
    """
    dest = os.path.abspath(dest)
    parent = os.path.dirname(dest)
    if os.path.lexists(dest):
        raise LayerError(f"{dest} already exists")
    from barque.linux import files  # here: loads libc, which most commands never need

    try:
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    except OSError as e:
        raise LayerError(f"cannot make a directory next to {dest}: {e}") from None
    try:
        os.chmod(tmp, 0o755)
        fd = tarsafe.open_root(tmp)
        try:
            applier = Applier(fd, overlay=True, allow_devices=allow_devices)
            _apply_blob(blob, media_type, diff_id, applier)
            files.syncfs(fd)
        finally:
            os.close(fd)
        files.rename_noreplace(tmp, dest)
        tarsafe.fsync_dir(parent)
        return applier.size
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise LayerError(f"unpacking into {dest}: {e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def apply_layer_to_rootfs(blob: str | IO[bytes], media_type: str, rootfs: str,
                          diff_id: str | None = None, *, allow_devices: bool = True) -> int:
    """Apply one layer blob on top of the plain directory `rootfs` (the copy fallback).

    Whiteouts delete lower entries; the result is what overlayfs would show. Returns the bytes
    of regular files written. The rootfs is changed in place: after a LayerError it is partly
    changed and should be discarded (it is never written outside of, though).
    """
    try:
        fd = tarsafe.open_root(rootfs)
    except OSError as e:
        raise LayerError(f"cannot open the rootfs {rootfs}: {e}") from None
    try:
        applier = Applier(fd, overlay=False, allow_devices=allow_devices)
        _apply_blob(blob, media_type, diff_id, applier)
        return applier.size
    finally:
        os.close(fd)
