"""Fuzz the layer unpacker (barque/storage/layers.py, apply.py, tarsafe.py, entries.py).

Each input is a hostile layer tar (see fuzz/tars.py): unpacked into a new layer dir (overlay
format), then applied onto a rootfs whose lower layers hold symlinks out of it (the copy
fallback). Property: LayerError or success, nothing else; a failed unpack leaves neither its
dest nor a temp dir; nothing outside the target dir changes (a canary dir beside it, its
parent). Needs root (layers keep their owners and device nodes).

    python fuzz/tar_unpack.py -runs=20000          # atheris
    python fuzz/tar_unpack.py --iterations 20000   # plain Python
"""

from __future__ import annotations

import io
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz import _driver  # noqa: E402
from fuzz.tars import draw_tar, serialise  # noqa: E402

with _driver.instrumented():
    from barque.storage.layers import LayerError, apply_layer_to_rootfs, unpack_layer

MEDIA = ("application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
         "application/vnd.docker.image.rootfs.diff.tar.gzip", "")
_COUNT = [0]


def make_case(parent: str) -> dict[str, str]:
    """A fresh case dir: canary (must stay as it is), store (the layer dir's parent), rootfs
    (with lower layers' symlinks out of it)."""
    _COUNT[0] += 1
    case = os.path.join(parent, f"case{_COUNT[0]}")
    canary = os.path.join(case, "canary")
    os.makedirs(os.path.join(canary, "a"))
    with open(os.path.join(canary, "passwd"), "w") as f:
        f.write("canary\n")
    store = os.path.join(case, "store")
    rootfs = os.path.join(case, "rootfs")
    os.makedirs(store)
    os.makedirs(os.path.join(rootfs, "a"))
    os.symlink("../canary", os.path.join(rootfs, "lnk"))
    os.symlink(canary, os.path.join(rootfs, "alnk"))
    os.symlink(canary, os.path.join(rootfs, "a", "lnk"))
    return {"case": case, "canary": canary, "store": store, "rootfs": rootfs,
            "dest": os.path.join(store, "layer")}


def check_unpack(blob: bytes, media: str, parent: str) -> None:
    """The property, for one blob: raises AssertionError (or the undocumented error)."""
    c = make_case(parent)
    try:
        outside = _driver.snapshot(parent, skip=c["dest"])
        try:
            unpack_layer(io.BytesIO(blob), media, c["dest"])
        except LayerError:
            assert not os.path.lexists(c["dest"]), "a failed unpack left its dest"
        assert not [n for n in os.listdir(c["store"]) if n.startswith(".tmp-")], \
            "a temp dir was left"
        assert _driver.snapshot(parent, skip=c["dest"]) == outside, "written outside dest"

        outside = _driver.snapshot(parent, skip=c["rootfs"])
        try:
            apply_layer_to_rootfs(io.BytesIO(blob), media, c["rootfs"])
        except LayerError:
            pass
        assert _driver.snapshot(parent, skip=c["rootfs"]) == outside, "written outside rootfs"
    finally:
        shutil.rmtree(c["case"])


def target(data: bytes) -> None:
    p = _driver.Provider(data)
    media = p.pick(MEDIA)
    parent = _driver.sandbox()
    if p.chance(10):
        check_unpack(p.bytes(p.left()), media, parent)  # raw bytes, as they come
        return
    tar = draw_tar(p)
    check_unpack(serialise(tar, os.path.join(parent, f"case{_COUNT[0] + 1}", "canary")), media,
                 parent)


if __name__ == "__main__":
    _driver.main("tar_unpack", target)
