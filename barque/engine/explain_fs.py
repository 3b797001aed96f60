"""A container's union filesystem as mounted: the overlay's lower layers (with the image
store's digests and sizes, and how many other running containers' overlays share each), its
upper dir, and what copy-on-write has cost so far (the upper dir's bytes, files, largest)."""

from __future__ import annotations

import heapq
import os
import stat

from barque.engine import explain_proc as proc

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

    from barque.image.store import Image, ImageStore

LARGEST = 5
WALK_LIMIT = 200_000  # entries: a huge upper dir is summarised, never walked for minutes


def root_mount(mounts: list[proc.Mount]) -> proc.Mount | None:
    return proc.visible(mounts).get("/")


def _sharing(host_mounts: list[proc.Mount], upper: str) -> dict[str, int]:
    """For each lower dir: how many overlays other than the one on `upper` use it (the host's
    mount table: every running container's overlay is mounted there)."""
    counts: dict[str, int] = {}
    seen = {upper}
    for mount in host_mounts:
        if mount.fstype != "overlay":
            continue
        options = proc.overlay_options(mount)
        other = options.get("upperdir", "")
        if other in seen:
            continue
        seen.add(other)
        for lower in proc.split_lowerdir(options.get("lowerdir", "")):
            counts[lower] = counts.get(lower, 0) + 1
    return counts


def layers(lowers: list[str], store: ImageStore | None, image: Image | None,
           sharing: dict[str, int]) -> list[dict[str, Any]]:
    """The lower dirs, top-most first, each named by what it is."""
    known: dict[str, dict[str, Any]] = {}
    if store is not None and image is not None:
        sizes = store.layer_sizes(image)
        for layer, size in zip(image.layers, sizes, strict=True):
            known[store.layer_path(layer.chain_id)] = {
                "kind": "image", "chain_id": layer.chain_id, "diff_id": layer.diff_id,
                "digest": layer.blob_digest, "size": size}
    out = []
    for lower in lowers:
        entry = known.get(lower) or {"kind": "init" if lower.endswith("/init") else "other",
                                     "chain_id": None, "diff_id": None, "digest": None,
                                     "size": tree_size(lower)["bytes"]}
        out.append({"dir": lower, **entry, "shared_with": sharing.get(lower, 0)})
    return out


def tree_size(top: str, largest: int = 0) -> dict[str, Any]:
    """Bytes and regular files under `top` (a host dir: lstat only, symlinks never followed),
    directories, whiteouts (overlayfs's 0:0 character devices: deletions), and the `largest`
    biggest files as paths from `top`."""
    total = files = dirs = whiteouts = seen = 0
    biggest: list[tuple[int, str]] = []
    stack = [top]
    truncated = False
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > WALK_LIMIT:
                truncated = True
                stack.clear()
                break
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                dirs += 1
                stack.append(entry.path)
            elif stat.S_ISREG(st.st_mode):
                files += 1
                total += st.st_size
                if largest:
                    item = (st.st_size, entry.path)
                    if len(biggest) < largest:
                        heapq.heappush(biggest, item)
                    else:
                        heapq.heappushpop(biggest, item)
            elif stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                whiteouts += 1
    found: dict[str, Any] = {"bytes": total, "files": files, "dirs": dirs,
                             "whiteouts": whiteouts, "truncated": truncated}
    if largest:
        found["largest"] = [{"path": "/" + os.path.relpath(path, top), "bytes": size}
                            for size, path in sorted(biggest, reverse=True)]
    return found


def collect(mounts: list[proc.Mount], store: ImageStore | None,
            image: Image | None) -> dict[str, Any]:
    root = root_mount(mounts)
    if root is None or root.fstype != "overlay":
        # A plain-copy snapshot (no overlayfs on this host): no layers to show.
        return {"fstype": root.fstype if root else None, "overlay": None}
    options = proc.overlay_options(root)
    lowers = proc.split_lowerdir(options.get("lowerdir", ""))
    upper = options.get("upperdir", "")
    sharing = _sharing(proc.mountinfo("self"), upper)
    return {"fstype": "overlay", "overlay": {
        "mount_source": root.source, "read_only": root.read_only,
        "lower_dirs": lowers, "upper_dir": upper, "work_dir": options.get("workdir", ""),
        "layers": layers(lowers, store, image, sharing),
        "copy_on_write": tree_size(upper, LARGEST) if upper else None}}
