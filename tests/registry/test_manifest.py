"""Platform names and matching, manifest decoding, and the small parsers of the client."""

from __future__ import annotations

import json
from typing import Any

import pytest

from barque.registry import auth
from barque.registry import manifest as mt
from barque.registry.client import parse_challenge, with_query
from barque.registry.errors import NoMatchingPlatformError, UnsupportedManifestError
from barque.registry.manifest import Platform, parse_platform, select_platform

D = {n: "sha256:" + str(n) * 64 for n in range(1, 8)}


@pytest.mark.parametrize(("text", "expected"), [
    ("linux/amd64", Platform("linux", "amd64")),
    ("linux/x86_64", Platform("linux", "amd64")),
    ("linux/arm64/v8", Platform("linux", "arm64")),
    ("linux/aarch64", Platform("linux", "arm64")),
    ("linux/arm", Platform("linux", "arm", "v7")),
    ("linux/arm/6", Platform("linux", "arm", "v6")),
    ("linux/armhf", Platform("linux", "arm", "v7")),
    ("linux/i386", Platform("linux", "386")),
    ("Linux/AMD64", Platform("linux", "amd64")),
    ("s390x", Platform("linux", "s390x")),
])
def test_parse_platform(text: str, expected: Platform) -> None:
    assert parse_platform(text) == expected


@pytest.mark.parametrize("text", ["", "linux/", "a/b/c/d", "//"])
def test_parse_platform_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid platform"):
        parse_platform(text)


def _index(*platforms: dict[str, str]) -> dict[str, object]:
    return {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": D[i + 1], "size": 100, "platform": p}
        for i, p in enumerate(platforms)]}


def test_select_platform() -> None:
    index = _index({"os": "linux", "architecture": "amd64"},
                   {"os": "linux", "architecture": "arm64", "variant": "v8"},
                   {"os": "linux", "architecture": "arm", "variant": "v6"},
                   {"os": "unknown", "architecture": "unknown"})
    assert select_platform(index, parse_platform("linux/amd64")).digest == D[1]
    assert select_platform(index, parse_platform("linux/arm64")).digest == D[2]
    assert select_platform(index, parse_platform("linux/arm64/v8")).digest == D[2]
    # An armv7 machine runs v6 images when there is no v7 one.
    assert select_platform(index, parse_platform("linux/arm/v7")).digest == D[3]
    with pytest.raises(NoMatchingPlatformError) as e:
        select_platform(index, parse_platform("linux/arm/v5"))
    assert str(e.value) == "no matching manifest for linux/arm/v5 in the manifest list entries"


def test_select_prefers_exact_variant() -> None:
    index = _index({"os": "linux", "architecture": "arm", "variant": "v6"},
                   {"os": "linux", "architecture": "arm", "variant": "v7"})
    assert select_platform(index, parse_platform("linux/arm")).digest == D[2]


def test_decode() -> None:
    body = json.dumps({"schemaVersion": 2, "config": {}, "layers": []}).encode()
    assert decode_type(body, "application/json") == mt.OCI_MANIFEST
    assert decode_type(body, mt.DOCKER_MANIFEST) == mt.DOCKER_MANIFEST
    listing = json.dumps({"schemaVersion": 2, "mediaType": mt.DOCKER_LIST,
                          "manifests": []}).encode()
    assert decode_type(listing, "text/plain") == mt.DOCKER_LIST
    for bad, message in [(b"{", "not valid JSON"), (b"[]", "not a JSON object"),
                         (json.dumps({"schemaVersion": 1}).encode(), "schema 1"),
                         (json.dumps({"mediaType": "application/x-other"}).encode(),
                          "unsupported manifest media type")]:
        with pytest.raises(UnsupportedManifestError, match=message):
            mt.decode(bad, None)


def decode_type(data: bytes, content_type: str) -> str:
    return mt.decode(data, content_type)[1]


def test_image_parts_refuses_artifacts_and_bad_descriptors() -> None:
    layer: dict[str, Any] = {"mediaType": mt.OCI_LAYER_GZIP, "digest": D[2], "size": 10}
    good: dict[str, Any] = {"config": {"mediaType": mt.OCI_CONFIG, "digest": D[1], "size": 5},
                            "layers": [layer]}
    config, layers = mt.image_parts(good)
    assert config.digest == D[1] and [la.digest for la in layers] == [D[2]]
    changes: list[tuple[dict[str, Any], str]] = [
        ({"config": {**good["config"], "mediaType": "application/vnd.cncf.helm.config.v1+json"}},
         "not a container image"),
        ({"layers": [{**layer, "digest": "sha512:" + "a" * 128}]}, "malformed digest"),
        ({"layers": [{**layer, "digest": "sha256:../../etc"}]}, "malformed digest"),
        ({"layers": [{**layer, "size": -1}]}, "not a byte count"),
        ({"layers": [{**layer, "mediaType": "application/x-foo"}]}, "unsupported layer"),
        ({"layers": None}, "no layers list"),
    ]
    for change, message in changes:
        with pytest.raises(UnsupportedManifestError, match=message):
            mt.image_parts({**good, **change})


def test_parse_challenge() -> None:
    c = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io"'
                        ',scope="repository:library/busybox:pull"')
    assert c is not None and c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.docker.io/token",
                        "service": "registry.docker.io",
                        "scope": "repository:library/busybox:pull"}
    basic = parse_challenge('Basic realm="basic-realm"')
    assert basic is not None and basic.scheme == "basic"
    assert parse_challenge("Negotiate abc") is None


def test_with_query() -> None:
    assert with_query("http://r/v2/x/blobs/uploads/u", "digest", D[1]) == \
        f"http://r/v2/x/blobs/uploads/u?digest={D[1]}"
    assert with_query("http://r/v2/x/blobs/uploads/u?_state=a%3D", "digest", D[1]) == \
        f"http://r/v2/x/blobs/uploads/u?_state=a%3D&digest={D[1]}"


@pytest.mark.parametrize(("name", "key"), [
    ("docker.io", auth.HUB_KEY), ("index.docker.io", auth.HUB_KEY),
    ("https://index.docker.io/v1/", auth.HUB_KEY), ("registry-1.docker.io", auth.HUB_KEY),
    ("127.0.0.1:5000", "127.0.0.1:5000"), ("https://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
])
def test_registry_key(name: str, key: str) -> None:
    assert auth.registry_key(name) == key


def test_credentials_file(docker_config: str) -> None:
    assert auth.credentials_for("127.0.0.1:5000") is None
    auth.store_credentials("docker.io", auth.Credentials("u", "p:w"))
    assert auth.credentials_for("index.docker.io") == ("u", "p:w")
    with open(docker_config, "w") as f:
        json.dump({"auths": {"http://127.0.0.1:5000/v1/": {"auth": "YTpi"}}}, f)
    assert auth.credentials_for("127.0.0.1:5000") == ("a", "b")
    auth.store_credentials("127.0.0.1:5000", auth.Credentials("c", "d"))
    with open(docker_config) as f:
        assert list(json.load(f)["auths"]) == ["127.0.0.1:5000"]
    with open(docker_config, "w") as f:
        f.write("{not json")
    with pytest.raises(auth.AuthConfigError, match="not valid JSON"):
        auth.credentials_for("127.0.0.1:5000")
