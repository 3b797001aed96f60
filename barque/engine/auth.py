"""`docker login` / `docker logout` (and the API's `POST /auth`): check credentials against a
registry and keep them in, or drop them from, the auth config file (barque.registry.auth)."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


def login(server: str, username: str, password: str, *, config_path: str | None = None,
          **client_options: Any) -> dict[str, str]:
    """Store the credentials once the registry takes them; the Engine API's AuthResponse.
    Raises UnauthorizedError (nothing stored) when the registry refuses them."""
    from barque.registry import auth

    reply = check(server, username, password, **client_options)
    auth.store_credentials(server, auth.Credentials(username, password), config_path)
    return reply


def check(server: str, username: str, password: str, **client_options: Any) -> dict[str, str]:
    """What `docker login` asks the daemon (the API's `POST /auth`): the registry takes the
    credentials or UnauthorizedError; nothing is stored (the client keeps them)."""
    from barque.registry.auth import Credentials, registry_host
    from barque.registry.client import RegistryClient
    from barque.registry.errors import AuthConfigError

    if not username:
        raise AuthConfigError("a username is required to log in")
    host = registry_host(server or "docker.io")
    with RegistryClient(host, credentials=Credentials(username, password),
                        **client_options) as client:
        client.check_login()
    return {"Status": "Login Succeeded", "IdentityToken": ""}


def logout(server: str, *, config_path: str | None = None) -> bool:
    """Forget the credentials for `server`; False when there were none."""
    from barque.registry import auth

    return auth.logout(server, config_path)
