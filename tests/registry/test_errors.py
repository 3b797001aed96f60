"""Failures give clear errors and store nothing unverified: unknown tags, refused connections,
https spoken to an http registry, and (from a deliberately broken stub server, since a real
registry never misbehaves so) lying digests, schema 1 manifests and ignored Range requests."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from barque.image.oci_layout import canonical_json
from barque.image.reference import parse
from barque.registry import manifest as mt
from barque.registry.client import RegistryClient
from barque.registry.errors import (
    DigestMismatchError,
    ManifestUnknownError,
    RegistryConnectionError,
    TLSError,
    UnsupportedManifestError,
)
from barque.registry.pull import pull
from barque.registry.push import push
from barque.storage.blobs import BlobStore, sha256_digest
from tests.registry.images import busybox_layer, store_image, verify_store
from tests.support.httpd import serving
from tests.support.registry import Registry, free_port


class _Stub(ThreadingHTTPServer):
    """Serves fixed responses by path; Range headers are ignored (always the whole body)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, tuple[bytes, str]] = {"/v2/": (b"{}", "application/json")}
        self.seen: list[tuple[str, str, str | None]] = []  # method, path, Range

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Stub

    def _reply(self, body: bool) -> None:
        self.server.seen.append((self.command, self.path, self.headers.get("Range")))
        found = self.server.routes.get(self.path)
        if found is None:
            data = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
        else:
            data, ctype = found
            self.send_response(200)
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._reply(True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._reply(False)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[_Stub]:
    with serving(_Stub()) as server:
        yield server


def _serve_image(stub: _Stub, repo: str, layer: bytes, claimed: str | None = None,
                 ) -> tuple[str, str]:
    """Serve an image whose layer descriptor says `claimed` (default: the true digest)."""
    tar = layer
    claimed = claimed or sha256_digest(layer)
    config = canonical_json({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]}})
    manifest = canonical_json({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": sha256_digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": mt.OCI_LAYER, "digest": claimed, "size": len(layer)}]})
    stub.routes[f"/v2/{repo}/manifests/latest"] = (manifest, mt.OCI_MANIFEST)
    stub.routes[f"/v2/{repo}/blobs/{sha256_digest(config)}"] = (config, "application/json")
    stub.routes[f"/v2/{repo}/blobs/{claimed}"] = (layer, "application/octet-stream")
    return sha256_digest(manifest), sha256_digest(config)


def test_unknown_tag(registry: Registry, seeded: str, store: BlobStore) -> None:
    with pytest.raises(ManifestUnknownError) as e:
        pull(parse(f"{registry.host}/busybox:nope"), store)
    assert str(e.value) == (f"manifest for {registry.host}/busybox:nope not found: "
                            "manifest unknown: manifest unknown")
    assert list(store.digests()) == []


def test_unknown_repository(registry: Registry, store: BlobStore) -> None:
    with pytest.raises(ManifestUnknownError, match="not found"):
        pull(parse(f"{registry.host}/never/pushed:latest"), store)
    assert list(store.digests()) == []


def test_connection_refused(store: BlobStore) -> None:
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryConnectionError) as e:
        pull(parse(f"{host}/busybox"), store)
    assert str(e.value) == (f'Get "http://{host}/v2/": dial tcp {host}: connect: '
                            "connection refused")


def test_https_to_plain_http_registry(registry: Registry, seeded: str,
                                      store: BlobStore) -> None:
    client = RegistryClient(registry.host, insecure=False)
    with pytest.raises(TLSError) as e:
        pull(parse(seeded), store, client=client)
    assert str(e.value) == (f'Get "https://{registry.host}/v2/": http: server gave HTTP '
                            "response to HTTPS client")


def test_config_and_manifest_disagree(registry: Registry, store: BlobStore,
                                      tmp_path: os.PathLike[str]) -> None:
    source = BlobStore(os.path.join(tmp_path, "src"))
    image = store_image(source, [busybox_layer()])
    manifest = json.loads(image.manifest)
    manifest["layers"] *= 2  # two layers, one diff_id
    data = canonical_json(manifest)
    source.put(data)
    ref = parse(f"{registry.host}/mismatch:latest")
    push(ref, source, data, mt.OCI_MANIFEST)
    with pytest.raises(UnsupportedManifestError, match="2 layers but the config has 1"):
        pull(ref, store)
    assert not store.has(sha256_digest(data))
    assert not store.has(image.layer_digests[0])


def test_blob_that_lies_about_its_digest(stub: _Stub, store: BlobStore) -> None:
    layer = b"the real content" * 1000
    claimed = sha256_digest(b"what the manifest promised".ljust(len(layer), b"."))
    manifest_digest, config_digest = _serve_image(stub, "bad", layer, claimed)
    with pytest.raises(DigestMismatchError, match=f"verification failed for digest {claimed}"):
        pull(parse(f"{stub.host}/bad"), store)
    assert not store.has(claimed)
    assert not os.path.exists(os.path.join(store.ingest_dir, claimed.split(":")[1]))
    assert not store.has(manifest_digest)
    assert list(store.digests()) == [config_digest]  # verified content only
    verify_store(store)


def test_manifest_that_does_not_match_the_digest_asked(stub: _Stub, store: BlobStore) -> None:
    manifest_digest, _ = _serve_image(stub, "lying", b"x" * 100)
    wrong = sha256_digest(b"another manifest")
    stub.routes[f"/v2/lying/manifests/{wrong}"] = stub.routes["/v2/lying/manifests/latest"]
    with pytest.raises(DigestMismatchError, match="manifest verification failed"):
        pull(parse(f"{stub.host}/lying@{wrong}"), store)
    assert list(store.digests()) == []


def test_schema1_is_refused(stub: _Stub, store: BlobStore) -> None:
    old = json.dumps({"schemaVersion": 1, "name": "old", "tag": "latest", "fsLayers": [],
                      "history": [], "signatures": []}).encode()
    stub.routes["/v2/old/manifests/latest"] = (old, mt.DOCKER_SCHEMA1_SIGNED)
    with pytest.raises(UnsupportedManifestError, match="schema 1 is deprecated"):
        pull(parse(f"{stub.host}/old"), store)
    assert list(store.digests()) == []


def test_resume_against_a_server_ignoring_range(stub: _Stub, store: BlobStore) -> None:
    layer = os.urandom(300_000)
    _serve_image(stub, "norange", layer)
    digest = sha256_digest(layer)
    with store.writer(digest, len(layer)) as w:  # what a killed pull leaves behind
        w.write(layer[:100_000])
    result = pull(parse(f"{stub.host}/norange"), store)
    assert store.read(digest) == layer
    ranges = [r for m, p, r in stub.seen if p.endswith(digest)]
    assert ranges == ["bytes=100000-"]  # asked to resume, got 200, restarted on that answer
    assert result.downloaded.count(digest) == 1
    verify_store(store)
