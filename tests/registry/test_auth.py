"""Credentials against real registries: htpasswd (Basic), a token server (Bearer JWTs signed
with openssl, trusted by the registry through its certificate), and TLS with a private CA."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from barque.image.reference import parse
from barque.registry import auth
from barque.registry.client import RegistryClient
from barque.registry.errors import TLSError, UnauthorizedError
from barque.registry.pull import pull
from barque.registry.push import push
from barque.storage.blobs import BlobStore
from tests.registry.images import busybox_layer, store_image, verify_store
from tests.support.httpd import serving
from tests.support.registry import Registry, run_registry, skopeo_copy
from tests.support.tools import require

USER, PASSWORD = "alice", "s3cret-pw"
SERVICE, ISSUER = "barque-test-registry", "barque-test-issuer"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key: (cert.pem, key.pem)."""
    require("openssl")
    d = tmp_path_factory.mktemp("cert")
    crt, key = str(d / "cert.pem"), str(d / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return crt, key


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry behind htpasswd (bcrypt) auth, over plain http (2.8 allows it)."""
    require("htpasswd")
    root = tmp_path_factory.mktemp("basic-registry")
    htpasswd = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True,
                              capture_output=True, text=True).stdout
    (root / "htpasswd").write_text(htpasswd)
    with run_registry(str(root), auth={"htpasswd": {"realm": "basic-realm",
                                                    "path": str(root / "htpasswd")}}) as reg:
        yield reg


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _TokenServer(ThreadingHTTPServer):
    """Issues RS256 JWTs as the registry's `auth: token:` expects: anyone gets a token, but
    only USER (with PASSWORD) gets access in it, as Docker Hub's anonymous tokens go."""

    daemon_threads = True

    def __init__(self, cert: str, key: str) -> None:
        super().__init__(("127.0.0.1", 0), _TokenHandler)
        self.key = key
        der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], check=True,
                             capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.scopes: list[list[str]] = []
        self.lock = threading.Lock()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/token"

    def jwt(self, subject: str, scopes: list[str]) -> str:
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        now = int(time.time())
        access = []
        for scope in scopes if subject else []:
            kind, rest = scope.split(":", 1)
            name, actions = rest.rsplit(":", 1)
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + 300,
                  "nbf": now - 60, "iat": now - 60, "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}." \
                        f"{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                                   input=signing_input.encode(), check=True,
                                   capture_output=True).stdout
        return f"{signing_input}.{_b64url(signature)}"


class _TokenHandler(BaseHTTPRequestHandler):
    server: _TokenServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        query = parse_qs(urlsplit(self.path).query)
        subject = ""
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if (user, password) != (USER, PASSWORD):
                return self._send(401, {"details": "incorrect username or password"})
            subject = user
        if query.get("service") != [SERVICE]:
            return self._send(400, {"details": "wrong service"})
        scopes = query.get("scope", [])
        with self.server.lock:
            self.server.scopes.append(scopes)
        # access_token, not token: the client must accept either field.
        self._send(200, {"access_token": self.server.jwt(subject, scopes), "expires_in": 300})

    def _send(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def token_server(cert: tuple[str, str]) -> Iterator[_TokenServer]:
    with serving(_TokenServer(*cert)) as server:
        yield server


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory, cert: tuple[str, str],
                   token_server: _TokenServer) -> Iterator[Registry]:
    token = {"realm": token_server.realm, "service": SERVICE, "issuer": ISSUER,
             "rootcertbundle": cert[0]}
    with run_registry(str(tmp_path_factory.mktemp("token-registry")),
                      auth={"token": token}) as reg:
        yield reg


def _login_cycle(reg: Registry, docker_config: str, tmp_path: os.PathLike[str]) -> None:
    """Denied without credentials; a wrong login stores nothing; a right one works for pull
    and push; logout forgets it."""
    source = BlobStore(os.path.join(tmp_path, "src"))
    image = store_image(source, [busybox_layer()])
    ref = parse(f"{reg.host}/private/busybox:latest")

    with pytest.raises(UnauthorizedError) as e:
        push(ref, source, image.manifest, image.media_type)
    assert str(e.value) == "unauthorized: authentication required"
    with pytest.raises(UnauthorizedError) as e:
        pull(ref, BlobStore(os.path.join(tmp_path, "anon")))
    assert str(e.value) == "unauthorized: authentication required"

    os.makedirs(os.path.dirname(docker_config), exist_ok=True)
    before: dict[str, Any] = {"auths": {"other.example:5000": {"auth": "eDp5"}},
                              "psFormat": "table {{.ID}}"}
    with open(docker_config, "w") as f:
        json.dump(before, f)
    with pytest.raises(UnauthorizedError):
        auth.login(reg.host, USER, "wrong")
    with open(docker_config) as f:
        assert json.load(f) == before
    assert auth.credentials_for(reg.host) is None

    auth.login(reg.host, USER, PASSWORD)
    with open(docker_config) as f:
        saved = json.load(f)
    assert saved["psFormat"] == before["psFormat"]
    assert saved["auths"]["other.example:5000"] == before["auths"]["other.example:5000"]
    assert base64.b64decode(saved["auths"][reg.host]["auth"]).decode() == f"{USER}:{PASSWORD}"
    assert stat.S_IMODE(os.stat(docker_config).st_mode) == 0o600
    assert auth.credentials_for(reg.host) == (USER, PASSWORD)

    assert push(ref, source, image.manifest, image.media_type) == image.digest
    store = BlobStore(os.path.join(tmp_path, "store"))
    assert pull(ref, store).manifest_digest == image.digest
    verify_store(store)

    assert auth.logout(reg.host) is True
    with open(docker_config) as f:
        saved = json.load(f)
    assert reg.host not in saved["auths"] and "other.example:5000" in saved["auths"]
    with pytest.raises(UnauthorizedError):
        pull(ref, BlobStore(os.path.join(tmp_path, "after")))
    assert auth.logout(reg.host) is False


def test_basic_auth(basic_registry: Registry, docker_config: str,
                    tmp_path: os.PathLike[str]) -> None:
    _login_cycle(basic_registry, docker_config, tmp_path)
    # skopeo reads what Barque pushed with the same credentials.
    skopeo_copy(f"docker://{basic_registry.host}/private/busybox:latest",
                f"oci:{os.path.join(tmp_path, 'copy')}:latest",
                f"--src-creds={USER}:{PASSWORD}")


def test_bearer_token_auth(token_registry: Registry, token_server: _TokenServer,
                           docker_config: str, tmp_path: os.PathLike[str]) -> None:
    _login_cycle(token_registry, docker_config, tmp_path)
    scopes = {s for request in token_server.scopes for s in request}
    assert "repository:private/busybox:pull,push" in scopes
    assert "repository:private/busybox:pull" in scopes
    # Tokens are cached per scope: one push is not one token per request.
    requests_before = len(token_server.scopes)
    store = BlobStore(os.path.join(tmp_path, "cached"))
    client = RegistryClient(token_registry.host, credentials=auth.Credentials(USER, PASSWORD))
    pull(parse(f"{token_registry.host}/private/busybox:latest"), store, client=client)
    assert len(token_server.scopes) - requests_before == 1


def test_tls_registry_with_private_ca(cert: tuple[str, str], tmp_path: os.PathLike[str],
                                      store: BlobStore) -> None:
    source = BlobStore(os.path.join(tmp_path, "src"))
    image = store_image(source, [busybox_layer()])
    with run_registry(os.path.join(tmp_path, "registry"), tls=cert) as reg:
        ref = parse(f"{reg.host}/secure:latest")
        verified = RegistryClient(reg.host, insecure=False, ca_file=cert[0])
        assert push(ref, source, image.manifest, image.media_type, client=verified) == \
            image.digest
        untrusted = RegistryClient(reg.host, insecure=False)
        with pytest.raises(TLSError, match="certificate signed by unknown authority"):
            pull(ref, store, client=untrusted)
        assert list(store.digests()) == []
        # 127.0.0.1 is insecure by default, as with Docker: https without checks first.
        default = RegistryClient(reg.host)
        assert default.base_url == f"https://{reg.host}"
        assert pull(ref, store, client=default).manifest_digest == image.digest
        verify_store(store)
