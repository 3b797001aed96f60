"""Docker-compatible registry credentials: `$DOCKER_CONFIG/config.json` (`~/.docker/...`).

The file maps registry keys to `{"auth": base64("user:password")}` under `auths`; Docker
Hub's key is `https://index.docker.io/v1/`, other registries use `host[:port]`. Keys written
with a scheme or path by other tools are found too. Credential helpers (`credsStore`,
`credHelpers`) are not run: their entries are kept untouched but not read.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from typing import Any, NamedTuple

from barque.image.reference import DEFAULT_DOMAIN
from barque.registry.errors import AuthConfigError

HUB_KEY = "https://index.docker.io/v1/"
_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


class Credentials(NamedTuple):
    username: str
    password: str


def config_file(path: str | None = None) -> str:
    """The credentials file: `path`, else `$DOCKER_CONFIG/config.json`, else ~/.docker."""
    if path:
        return path
    directory = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"),
                                                                  ".docker")
    return os.path.join(directory, "config.json")


def registry_host(registry: str) -> str:
    """`https://127.0.0.1:5000/v2/` → `127.0.0.1:5000`; every Docker Hub alias → docker.io."""
    host = registry.strip()
    for scheme in ("https://", "http://"):
        if host.lower().startswith(scheme):
            host = host[len(scheme):]
    host = host.split("/", 1)[0]
    return DEFAULT_DOMAIN if host.lower() in _HUB_HOSTS else host


def registry_key(registry: str) -> str:
    """The `auths` key Docker uses for a registry."""
    host = registry_host(registry)
    return HUB_KEY if host == DEFAULT_DOMAIN else host


def _load(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise AuthConfigError(f"cannot read {path}: {e.strerror}") from None
    if not data.strip():
        return {}
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AuthConfigError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("auths", {}), dict):
        raise AuthConfigError(f"{path}: not a Docker config file")
    return obj


def _save(path: str, obj: dict[str, Any]) -> None:
    """Replace the file atomically, readable by its owner only (it holds passwords)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".config-", dir=directory)
    except OSError as e:
        raise AuthConfigError(f"cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            json.dump(obj, f, indent="\t")
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):
            raise AuthConfigError(f"cannot write {path}: {e.strerror}") from None
        raise


def _matching_keys(auths: dict[str, Any], registry: str) -> list[str]:
    """Keys naming the registry: the exact one first, then scheme/path variants."""
    key, host = registry_key(registry), registry_host(registry)
    return ([key] if key in auths else []) + [
        k for k in auths if k != key and registry_host(k) == host]


def _decode(entry: Any) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
        return Credentials(entry["username"], entry["password"])
    auth = entry.get("auth")
    if not isinstance(auth, str) or not auth:
        return None
    try:
        user, sep, password = base64.b64decode(auth, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return Credentials(user, password) if sep else None


def credentials_for(registry: str, config_path: str | None = None) -> Credentials | None:
    """The stored credentials for `registry` (a host, Hub alias or URL), or None."""
    auths = _load(config_file(config_path)).get("auths", {})
    for key in _matching_keys(auths, registry):
        found = _decode(auths[key])
        if found is not None:
            return found
    return None


def store_credentials(registry: str, creds: Credentials, config_path: str | None = None) -> str:
    """Write `creds` for `registry` (keeping every other key); returns the file's path."""
    path = config_file(config_path)
    obj = _load(path)
    auths = obj.setdefault("auths", {})
    for key in _matching_keys(auths, registry):
        del auths[key]
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    auths[registry_key(registry)] = {"auth": token}
    _save(path, obj)
    return path


def login(registry: str, username: str, password: str, config_path: str | None = None,
          **client_options: Any) -> str:
    """Check the credentials against the registry, then store them; returns the file's path.

    Raises UnauthorizedError (nothing stored) when the registry refuses them.
    `client_options` go to RegistryClient (insecure=, ca_file=, timeout=).
    """
    from barque.registry.client import RegistryClient

    if not username:
        raise AuthConfigError("a username is required to log in")
    creds = Credentials(username, password)
    client = RegistryClient(registry_host(registry), credentials=creds, **client_options)
    try:
        client.check_login()
    finally:
        client.close()
    return store_credentials(registry, creds, config_path)


def logout(registry: str, config_path: str | None = None) -> bool:
    """Forget the credentials for `registry`; False when there were none."""
    path = config_file(config_path)
    obj = _load(path)
    auths = obj.get("auths", {})
    keys = _matching_keys(auths, registry)
    if not keys:
        return False
    for key in keys:
        del auths[key]
    _save(path, obj)
    return True
