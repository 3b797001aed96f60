"""Property: whatever a layer tar holds, unpacking it (or applying it to a rootfs) writes
nothing outside its directory, and a failed unpack leaves nothing behind."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from barque.storage.layers import LayerError, apply_layer_to_rootfs, unpack_layer
from tests.storage.util import OCI_TAR, info, tar_bytes, temp_dirs, tree

pytestmark = pytest.mark.root

VICTIM = "@VICTIM@"  # replaced by the victim dir's absolute path
# Weighted so that most tars are valid enough to get far: "..", "/" and the rest are rarer.
_COMPONENTS = ["a"] * 4 + ["b"] * 4 + ["lnk"] * 3 + [
    "alnk", "victim", "passwd", ".wh.a", ".wh.b", ".wh..wh..opq", "..", ".", ""]

names = st.tuples(st.sampled_from(["", "", "", "", "", "/"]),
                  st.lists(st.sampled_from(_COMPONENTS), min_size=1, max_size=4)).map(
    lambda t: t[0] + "/".join(t[1]))
targets = st.one_of(names, st.sampled_from([VICTIM, VICTIM + "/passwd", "../victim",
                                            "../../victim", "/", "/etc", "../" * 6 + "etc"]))
entries = st.lists(st.tuples(st.sampled_from(["file", "dir", "symlink", "hardlink", "fifo",
                                              "char"]), names, targets), max_size=12)


def _build(items: list[tuple[str, str, str]], victim: str) -> bytes:
    members = []
    for kind, name, target in items:
        target = target.replace(VICTIM, victim)
        if kind == "file":
            members.append(info(name, data=b"pwned"))
        elif kind in ("symlink", "hardlink"):
            members.append(info(name, kind, target=target))
        elif kind == "char":
            members.append(info(name, kind, dev=(1, 3)))
        else:
            members.append(info(name, kind))
    return tar_bytes(members)


def _outside(root: str, inside: str) -> dict[str, Any]:
    return {k: v for k, v in tree(root).items() if not (k == inside or k.startswith(inside + "/"))}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("property"))


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(items=entries)
def test_nothing_escapes(base: str, items: list[tuple[str, str, str]]) -> None:
    sandbox = tempfile.mkdtemp(dir=base)
    try:
        victim = os.path.join(sandbox, "victim")
        os.makedirs(os.path.join(victim, "a"))
        with open(os.path.join(victim, "passwd"), "w") as f:
            f.write("victim\n")
        store = os.path.join(sandbox, "store")
        rootfs = os.path.join(sandbox, "rootfs")
        os.makedirs(store)
        os.makedirs(os.path.join(rootfs, "a"))
        # The copy fallback's rootfs already holds lower layers' symlinks out of it.
        os.symlink("../victim", os.path.join(rootfs, "lnk"))
        os.symlink(victim, os.path.join(rootfs, "alnk"))
        os.symlink(victim, os.path.join(rootfs, "a", "lnk"))
        raw = _build(items, victim)

        before = _outside(sandbox, "store/layer")
        dest = os.path.join(store, "layer")
        try:
            unpack_layer(io.BytesIO(raw), OCI_TAR, dest)
        except LayerError:
            assert not os.path.lexists(dest)
        assert temp_dirs(store) == []
        assert _outside(sandbox, "store/layer") == before

        before = _outside(sandbox, "rootfs")
        try:
            apply_layer_to_rootfs(io.BytesIO(raw), OCI_TAR, rootfs)
        except LayerError:
            pass
        assert _outside(sandbox, "rootfs") == before
    finally:
        shutil.rmtree(sandbox)
