"""Fuzz `load` (barque/image/archive.py, archive_io.py, docker_archive.py, oci_archive.py): a
docker-archive (manifest.json) or an OCI layout (oci-layout, index.json, blobs) built from
the fuzzer's bytes, with hostile layers (fuzz/tars.py), JSON values of the wrong type at
random places, members that are links, absolute or `..` names, devices, and byte flips.

Property: `load` succeeds or raises ArchiveError / ImageError / BlobError; nothing outside
the store's root changes (a canary dir beside it). Needs root (layers keep their owners).

    python fuzz/archive_load.py -runs=5000
    python fuzz/archive_load.py --iterations 5000
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz import _driver  # noqa: E402
from fuzz.tars import Member, Tar, draw_tar, plain, serialise  # noqa: E402

with _driver.instrumented():
    from barque.image import oci_layout as ol
    from barque.image.archive import ArchiveError, load
    from barque.image.store import ImageError, ImageStore
    from barque.storage.blobs import BlobError

ERRORS = (ArchiveError, ImageError, BlobError)
TAGS = ("busybox:latest", "fuzz/x:1", "localhost:5000/a/b:c", "Bad:Tag", "a@sha256:" + "0" * 64,
        "", "library/library/x:y", "x" * 300)
JUNK: tuple[Any, ...] = (None, 0, -1, 2 ** 70, 1.5, "", "x", "../../canary", "/etc/passwd",
                         [], {}, [None], {"a": []}, True, "sha256:" + "0" * 64, "sha256:zz")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(p: _driver.Provider, canary: str) -> tuple[bytes, str]:
    """(blob, diff ID): a small hostile tar, maybe compressed; the diff ID right unless the
    stream was cut or flipped."""
    tar = draw_tar(p, max_members=4)
    if p.chance(80):
        tar.truncate = None
        tar.flips = []
    raw = plain(tar, canary)
    return serialise(tar, canary), _digest(raw)


def _bend(p: _driver.Provider, doc: Any) -> Any:
    """`doc` with a few values replaced by JSON of another type or shape."""
    doc = copy.deepcopy(doc)
    for _ in range(p.int(1, 2)):
        node = doc
        while isinstance(node, dict | list) and node:
            key: Any = p.pick(list(node)) if isinstance(node, dict) else \
                p.int(0, len(node) - 1)
            child = node[key]
            if isinstance(child, dict | list) and child and p.chance(60):
                node = child
                continue
            node[key] = copy.deepcopy(p.pick(JUNK))
            break
    return doc


def _json(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _config(diff_ids: list[str]) -> dict[str, Any]:
    return {"architecture": ol.host_platform()["architecture"], "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids}}


def _docker(p: _driver.Provider, layers: list[tuple[bytes, str]]) -> list[Member]:
    config = _json(_bend(p, _config([d for _, d in layers])) if p.chance(30) else
                   _config([d for _, d in layers]))
    members = [Member("file", "config.json", data=config)]
    names = []
    for i, (blob, _) in enumerate(layers):
        names.append(f"{i}/layer.tar")
        members.append(Member("file", names[-1], data=blob))
    manifest: Any = [{"Config": "config.json", "RepoTags": [p.pick(TAGS)], "Layers": names}]
    if p.chance(40):
        manifest = _bend(p, manifest)
    members.append(Member("file", "manifest.json", data=_json(manifest)))
    return members


def _oci(p: _driver.Provider, layers: list[tuple[bytes, str]]) -> list[Member]:
    members = [Member("file", "oci-layout", data=_json({"imageLayoutVersion": p.pick(
        ("1.0.0", "1.0.0", "2.0", 1))}))]

    def blob(data: bytes) -> dict[str, Any]:
        desc = {"digest": _digest(data), "size": len(data)}
        members.append(Member("file", "blobs/sha256/" + desc["digest"][7:], data=data))
        return desc

    config = _config([d for _, d in layers])
    manifest: Any = {"schemaVersion": 2, "mediaType": ol.MEDIA_MANIFEST,
                     "config": {"mediaType": ol.MEDIA_CONFIG, **blob(_json(config))},
                     "layers": [{"mediaType": ol.MEDIA_LAYER_GZIP if b[:2] == b"\x1f\x8b" else
                                 ol.MEDIA_LAYER, **blob(b)} for b, _ in layers]}
    if p.chance(30):
        manifest = _bend(p, manifest)
    desc: Any = {"mediaType": ol.MEDIA_MANIFEST, **blob(_json(manifest)),
                 "annotations": {ol.ANNOTATION_REF_NAME: p.pick(TAGS)}}
    if p.chance(20):  # through a nested index
        index = {"schemaVersion": 2, "mediaType": ol.MEDIA_INDEX,
                 "manifests": [{**desc, "platform": ol.host_platform()}]}
        desc = {"mediaType": ol.MEDIA_INDEX, **blob(_json(index))}
    index_json: Any = {"schemaVersion": 2, "manifests": [desc]}
    if p.chance(40):
        index_json = _bend(p, index_json)
    members.append(Member("file", "index.json", data=_json(index_json)))
    return members


# Members no archive should have, and links that try to leave it.
EXTRA = (Member("symlink", "manifest.json", target="../../canary/passwd"),
         Member("symlink", "index.json", target="/etc/passwd"),
         Member("symlink", "config.json", target="../" * 6 + "etc/passwd"),
         Member("hardlink", "x", target="../canary/passwd"),
         Member("file", "../escape", data=b"x"), Member("file", "/abs", data=b"x"),
         Member("char", "dev", dev=(1, 3)), Member("fifo", "fifo"),
         Member("file", "blobs/sha256/" + "0" * 64, data=b"lies"),
         Member("symlink", "loop", target="loop"), Member("dir", "blobs/sha256/"),
         Member("file", "manifest.json", data=b"{not json"))


def draw_archive(p: _driver.Provider, canary: str) -> bytes:
    layers = [_layer(p, canary) for _ in range(p.int(0, 3))]
    members = _docker(p, layers) if p.bool() else _oci(p, layers)
    for _ in range(p.int(0, 2) if p.chance(30) else 0):
        members.insert(p.int(0, len(members)), copy.copy(p.pick(EXTRA)))
    outer = Tar(members, fmt=p.pick(("pax", "gnu", "ustar")))
    if p.chance(10):
        outer.flips = [(p.int(0, 1 << 16), p.int(1, 255))]
    if p.chance(5):
        outer.truncate = p.int(0, 1 << 14)
    data = serialise(outer, canary)
    return gzip.compress(data, mtime=0) if p.chance(15) else data


_STORE: list[ImageStore] = []


def store() -> ImageStore:
    if not _STORE:
        base = _driver.sandbox()
        os.makedirs(os.path.join(base, "canary", "a"), exist_ok=True)
        with open(os.path.join(base, "canary", "passwd"), "w") as f:
            f.write("canary\n")
        _STORE.append(ImageStore(os.path.join(base, "store")))
    return _STORE[0]


def check(archive: bytes) -> None:
    s = store()
    base = os.path.dirname(s.root)
    before = _driver.snapshot(base, skip=s.root)
    try:
        load(s, io.BytesIO(archive))
    except ERRORS:
        pass
    assert _driver.snapshot(base, skip=s.root) == before, "load wrote outside the store"


def target(data: bytes) -> None:
    p = _driver.Provider(data)
    s = store()
    canary = os.path.join(os.path.dirname(s.root), "canary")
    check(p.bytes(p.left()) if p.chance(5) else draw_archive(p, canary))


if __name__ == "__main__":
    _driver.main("archive_load", target)
