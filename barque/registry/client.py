"""An HTTP client for one registry, speaking the OCI distribution API (`/v2/`).

It pings `/v2/` once to learn the scheme and the auth challenge, then answers 401s the
Docker way: a `Bearer` challenge is met with a token from the challenge's realm (fetched with
the basic credentials, if any, and cached per scope); a `Basic` one with the credentials.
Insecure registries (localhost and 127.0.0.0/8 by default, like Docker) are tried over https
without certificate checks first, then over plain http. Logger `barque.registry` tells at
DEBUG level which requests are made, e.g. the Range a resumed blob download asks for.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import quote, urljoin, urlsplit

import requests

from barque.image.reference import DEFAULT_DOMAIN, is_insecure_default
from barque.registry import errors as err
from barque.registry.auth import Credentials, credentials_for
from barque.registry.manifest import ACCEPT, MAX_MANIFEST_SIZE, SCHEMA1_TYPES
from barque.storage.blobs import BlobError, BlobWriter, sha256_digest

log = logging.getLogger("barque.registry")

HUB_REGISTRY = "registry-1.docker.io"
CERTS_DIR = "/etc/docker/certs.d"
USER_AGENT = "barque/0.1"
CHUNK = 64 << 10
_ERROR_BODY_LIMIT = 64 << 10
ProgressCallback = Callable[[int], None]  # called with the bytes done so far


@dataclass
class Challenge:
    scheme: str  # "bearer" or "basic"
    params: dict[str, str] = field(default_factory=dict)


_PARAM_RE = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


def parse_challenge(header: str) -> Challenge | None:
    """`Bearer realm="https://auth",service="reg",scope="repository:x:pull"` → Challenge."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() not in ("bearer", "basic"):
        return None
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
              for m in _PARAM_RE.finditer(rest)}
    return Challenge(scheme.lower(), params)


def _error_text(resp: requests.Response) -> tuple[str, str]:
    """(first error code, Docker-style message `code: message`) of an error response."""
    try:
        body = json.loads(resp.content[:_ERROR_BODY_LIMIT])
        found = body.get("errors") if isinstance(body, dict) else None
        if isinstance(found, list) and found and isinstance(found[0], dict):
            # Docker prints a code as lower-case words: MANIFEST_UNKNOWN → "manifest unknown".
            parts = [f"{str(e.get('code', 'unknown')).lower().replace('_', ' ')}: "
                     f"{e.get('message', '')}" for e in found if isinstance(e, dict)]
            return str(found[0].get("code", "")), "; ".join(parts)
        if isinstance(body, dict) and isinstance(body.get("details"), str):
            return "", body["details"]
    except (ValueError, UnicodeDecodeError):
        pass
    return "", ""


def _origin(url: str) -> tuple[str, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def with_query(url: str, key: str, value: str) -> str:
    """Add `key=value` to a URL that may already hold a query (upload Locations do)."""
    parts = urlsplit(url)
    sep = "&" if parts.query else "?"
    base, _, fragment = url.partition("#")
    return f"{base}{sep}{key}={quote(value, safe=':')}" + (f"#{fragment}" if fragment else "")


class _Reader:
    """A request body reading `size` bytes from a stream, reporting progress as it goes."""

    def __init__(self, stream: IO[bytes], size: int, on_progress: ProgressCallback | None):
        self.stream, self.size, self.on_progress = stream, size, on_progress
        self.done = 0
        self.start = stream.tell() if stream.seekable() else None

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.done
        data = self.stream.read(left if n < 0 else min(n, left)) if left > 0 else b""
        self.done += len(data)
        if self.on_progress is not None and data:
            self.on_progress(self.done)
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK):
            yield chunk

    def __len__(self) -> int:
        return self.size - self.done

    def rewind(self) -> bool:
        if self.start is None:
            return False
        self.stream.seek(self.start)
        self.done = 0
        return True


def _default_verify(host: str, ca_file: str | None) -> str | bool:
    if ca_file:
        return ca_file
    ca = os.path.join(CERTS_DIR, host, "ca.crt")
    return ca if os.path.isfile(ca) else True


def _client_cert(host: str) -> tuple[str, str] | None:
    cert = os.path.join(CERTS_DIR, host, "client.cert")
    key = os.path.join(CERTS_DIR, host, "client.key")
    return (cert, key) if os.path.isfile(cert) and os.path.isfile(key) else None


class RegistryClient:
    """Talks to one registry. Thread-safe for concurrent blob transfers."""

    def __init__(self, domain: str, *, insecure: bool | None = None,
                 credentials: Credentials | None = None, timeout: float = 30.0,
                 ca_file: str | None = None, auth_config: str | None = None,
                 anonymous: bool = False) -> None:
        """`credentials` default to the Docker config's (`auth_config` path) unless
        `anonymous`; `insecure` defaults to Docker's rule (localhost, 127.0.0.0/8)."""
        self.domain = domain
        self.host = HUB_REGISTRY if domain == DEFAULT_DOMAIN else domain
        self.insecure = is_insecure_default(domain) if insecure is None else insecure
        if credentials is None and not anonymous:
            credentials = credentials_for(domain, auth_config)
        self.credentials = credentials
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.verify = False if self.insecure else _default_verify(self.host, ca_file)
        self.session.cert = _client_cert(self.host)
        self._scheme: str | None = None if self.insecure else "https"
        self._challenge: Challenge | None = None
        self._pinged = False
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        if self.insecure:
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    # --- plumbing ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        self._ping()
        return f"{self._scheme}://{self.host}"

    def display_name(self, repo: str) -> str:
        """How Docker names the repository in messages: `busybox`, `127.0.0.1:5000/app`."""
        if self.domain == DEFAULT_DOMAIN:
            return repo.removeprefix("library/")
        return f"{self.domain}/{repo}"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One HTTP exchange, with transport failures turned into RegistryErrors."""
        kwargs.setdefault("timeout", self.timeout)
        # Per request: requests lets $REQUESTS_CA_BUNDLE override a session's `verify`.
        kwargs.setdefault("verify", self.session.verify)
        what = f'{method.capitalize()} "{url}"'
        try:
            return self.session.request(method, url, **kwargs)
        except requests.exceptions.SSLError as e:
            text = str(e)
            if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text \
                    or "record layer failure" in text:
                raise err.TLSError(
                    f"{what}: http: server gave HTTP response to HTTPS client") from None
            if "CERTIFICATE_VERIFY_FAILED" in text:
                raise err.TLSError(
                    f"{what}: tls: failed to verify certificate: x509: certificate signed by "
                    f"unknown authority (give the CA with ca_file or {CERTS_DIR}/"
                    f"{self.host}/ca.crt)") from None
            raise err.TLSError(f"{what}: {text}") from None
        except requests.exceptions.Timeout:
            raise err.RegistryConnectionError(f"{what}: timeout") from None
        except requests.exceptions.ConnectionError as e:
            from barque.registry.dial_errors import describe

            raise err.RegistryConnectionError(f"{what}: {describe(url, e)}") from None

    def _ping(self) -> None:
        """GET /v2/ once: picks http or https, records the auth challenge."""
        if self._pinged:
            return
        with self._lock:
            if self._pinged:
                return
            if self._scheme is None:
                try:
                    resp = self._send("GET", f"https://{self.host}/v2/")
                    self._scheme = "https"
                except err.RegistryConnectionError:
                    # Docker's fallback for insecure registries: plain http after https.
                    self._scheme = "http"
                    resp = self._send("GET", f"http://{self.host}/v2/")
            else:
                resp = self._send("GET", f"https://{self.host}/v2/")
            self._check_protocol(resp)
            if resp.status_code == 401:
                self._challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
            self._pinged = True

    def _check_protocol(self, resp: requests.Response) -> None:
        if resp.status_code == 400 and b"HTTP request to an HTTPS server" in resp.content[:200]:
            raise err.TLSError(f'Get "{resp.url}": the registry only speaks https: '
                               "client sent an HTTP request to an HTTPS server")

    def _fetch_token(self, challenge: Challenge, scopes: Sequence[str]) -> str:
        realm = challenge.params.get("realm")
        if not realm:
            raise err.UnauthorizedError("unauthorized: bearer challenge without a realm")
        params: list[tuple[str, str]] = []
        if challenge.params.get("service"):
            params.append(("service", challenge.params["service"]))
        params += [("scope", s) for s in scopes]
        if self.credentials is not None:
            params.append(("account", self.credentials.username))
        auth = tuple(self.credentials) if self.credentials is not None else None
        log.debug("token request to %s for %s", realm, scopes)
        resp = self._send("GET", realm, params=params, auth=auth)
        if resp.status_code in (401, 403):
            _, text = _error_text(resp)
            if not text:
                text = ("unauthorized: authentication required" if self.credentials is None
                        else "unauthorized: incorrect username or password")
            elif not text.startswith(("unauthorized:", "denied:")):
                text = f"unauthorized: {text}"
            raise err.UnauthorizedError(text)
        if resp.status_code != 200:
            raise err.UnauthorizedError(
                f"getting a token from {realm}: HTTP {resp.status_code}")
        try:
            body = resp.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise err.UnauthorizedError(f"the token server {realm} sent no token")
        lifetime = body.get("expires_in") if isinstance(body.get("expires_in"), int) else 60
        with self._lock:
            self._tokens[" ".join(sorted(scopes))] = (token, time.monotonic() + lifetime - 10)
        return token

    def _authorization(self, scopes: Sequence[str], fresh: bool = False) -> str | None:
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            if self.credentials is None:
                return None
            raw = f"{self.credentials.username}:{self.credentials.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        wanted = list(scopes)
        if challenge.params.get("scope") and challenge.params["scope"] not in wanted:
            wanted.append(challenge.params["scope"])
        key = " ".join(sorted(wanted))
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None and not fresh and cached[1] > time.monotonic():
            return f"Bearer {cached[0]}"
        return f"Bearer {self._fetch_token(challenge, wanted)}"

    def request(self, method: str, url: str, *, scopes: Sequence[str] = (),
                headers: dict[str, str] | None = None, body: Any = None,
                stream: bool = False) -> requests.Response:
        """An authorised request; `url` is absolute or a path under the registry.

        A 401 is answered once with fresh authorisation (a streamed body is rewound if it
        can be). A 401/403 that remains raises UnauthorizedError.
        """
        if not url.startswith(("http://", "https://")):
            url = self.base_url + url
        else:
            self._ping()
        hdrs = dict(headers or {})
        # Credentials go to the registry only, never to another host a Location names (an
        # upload service, a CDN): those URLs carry their own authorisation.
        own = _origin(url) == _origin(self.base_url)
        for attempt in range(2):
            auth = self._authorization(scopes, fresh=attempt > 0) if own else None
            if auth:
                hdrs["Authorization"] = auth
            log.debug("%s %s %s", method, url, {k: v for k, v in hdrs.items()
                                               if k != "Authorization"})
            resp = self._send(method, url, headers=hdrs, data=body, stream=stream)
            self._check_protocol(resp)
            if resp.status_code != 401 or attempt:
                break
            challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
            if challenge is None or (challenge.scheme == "basic" and self.credentials is None):
                break
            if body is not None and not isinstance(body, bytes):
                if not (isinstance(body, _Reader) and body.rewind()):
                    break
            self._challenge = challenge
            resp.close()
        if resp.status_code in (401, 403):
            code, text = _error_text(resp)
            resp.close()
            if resp.status_code == 401 and not text:
                text = "unauthorized: authentication required"
            raise err.UnauthorizedError(text or "denied: requested access to the resource "
                                        "is denied")
        return resp

    def _fail(self, resp: requests.Response, what: str) -> err.RegistryError:
        code, text = _error_text(resp)
        resp.close()
        return err.RegistryError(f"{what}: {text or f'HTTP {resp.status_code} {resp.reason}'}")

    @staticmethod
    def _scope(repo: str, push: bool = False) -> str:
        return f"repository:{repo}:{'pull,push' if push else 'pull'}"

    # --- API -----------------------------------------------------------------------------

    def check_login(self) -> None:
        """GET /v2/ with the credentials; raises UnauthorizedError if the registry refuses."""
        self._ping()
        challenge = self._challenge
        if challenge is None:
            return
        if self.credentials is None:
            raise err.UnauthorizedError("unauthorized: authentication required")
        resp = self.request("GET", "/v2/")
        resp.close()
        if resp.status_code != 200:
            raise self._fail(resp, f'Get "{resp.url}"')

    def _manifest_not_found(self, resp: requests.Response, repo: str,
                            ref: str) -> err.RegistryError:
        code, text = _error_text(resp)
        resp.close()
        name = self.display_name(repo)
        if code == "NAME_UNKNOWN":
            return err.NotFoundError(f"repository {name} not found: {text}")
        sep = "@" if ref.startswith("sha256:") else ":"
        return err.ManifestUnknownError(
            f"manifest for {name}{sep}{ref} not found: "
            f"{text or 'manifest unknown: manifest unknown'}")

    def get_manifest(self, repo: str, ref: str,
                     accept: Sequence[str] = ACCEPT) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of the manifest or index `ref` (tag or digest).

        A digest ref is checked against the content; for a tag the digest is computed from
        the content, and a Docker-Content-Digest header that disagrees is an error.
        """
        resp = self.request("GET", f"/v2/{repo}/manifests/{ref}", scopes=[self._scope(repo)],
                            headers={"Accept": ", ".join(accept)}, stream=True)
        if resp.status_code == 404:
            raise self._manifest_not_found(resp, repo, ref)
        if resp.status_code != 200:
            raise self._fail(resp, f"fetching manifest {self.display_name(repo)}:{ref}")
        buf = bytearray()
        try:
            for chunk in resp.iter_content(CHUNK):
                buf += chunk
                if len(buf) > MAX_MANIFEST_SIZE:
                    raise err.UnsupportedManifestError(
                        f"manifest {ref} is larger than {MAX_MANIFEST_SIZE} bytes")
        except requests.exceptions.RequestException as e:
            raise err.RegistryConnectionError(f"fetching manifest {ref}: {e}") from None
        finally:
            resp.close()
        data = bytes(buf)
        digest = sha256_digest(data)
        media = resp.headers.get("Content-Type", "").split(";", 1)[0].strip()
        if ref.startswith("sha256:") and ref != digest:
            raise err.DigestMismatchError(
                f"manifest verification failed for digest {ref}: the registry sent {digest}")
        header = resp.headers.get("Docker-Content-Digest", "")
        if header.startswith("sha256:") and header != digest and media not in SCHEMA1_TYPES:
            raise err.DigestMismatchError(
                f"manifest {ref}: Docker-Content-Digest {header} does not match the content "
                f"({digest})")
        return data, media, digest

    def head_manifest(self, repo: str, ref: str,
                      accept: Sequence[str] = ACCEPT) -> tuple[str | None, str, int] | None:
        """(digest if the registry tells it, media type, size) of `ref`, or None if absent."""
        resp = self.request("HEAD", f"/v2/{repo}/manifests/{ref}",
                            scopes=[self._scope(repo)], headers={"Accept": ", ".join(accept)})
        resp.close()
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self._fail(resp, f"checking manifest {self.display_name(repo)}:{ref}")
        digest = resp.headers.get("Docker-Content-Digest") or None
        media = resp.headers.get("Content-Type", "").split(";", 1)[0].strip()
        return digest, media, int(resp.headers.get("Content-Length") or 0)

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        """Store a manifest or index under a tag or its digest; returns its digest."""
        digest = sha256_digest(data)
        resp = self.request("PUT", f"/v2/{repo}/manifests/{ref}",
                            scopes=[self._scope(repo, push=True)],
                            headers={"Content-Type": media_type}, body=data)
        if resp.status_code not in (200, 201):
            raise self._fail(resp, f"pushing manifest {self.display_name(repo)}:{ref}")
        resp.close()
        header = resp.headers.get("Docker-Content-Digest", "")
        if header.startswith("sha256:") and header != digest:
            raise err.DigestMismatchError(
                f"the registry stored manifest {ref} as {header}, expected {digest}")
        return digest

    def list_tags(self, repo: str) -> list[str]:
        resp = self.request("GET", f"/v2/{repo}/tags/list", scopes=[self._scope(repo)])
        if resp.status_code == 404:
            raise self._manifest_not_found(resp, repo, "latest")
        if resp.status_code != 200:
            raise self._fail(resp, f"listing tags of {self.display_name(repo)}")
        tags = resp.json().get("tags") or []
        return [t for t in tags if isinstance(t, str)]

    def blob_exists(self, repo: str, digest: str) -> int | None:
        """The blob's size if the repository has it, else None."""
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scopes=[self._scope(repo)])
        resp.close()
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self._fail(resp, f"checking blob {digest}")
        return int(resp.headers.get("Content-Length") or 0)

    def fetch_blob(self, repo: str, digest: str, writer: BlobWriter,
                   on_progress: ProgressCallback | None = None) -> None:
        """Download a blob into `writer` and commit it, resuming a partial ingest.

        DigestMismatchError (the ingest discarded) if the content is wrong; a transfer cut
        short leaves the partial ingest for the next try.
        """
        if writer.size is not None and writer.offset >= writer.size:
            writer.restart()  # a complete-looking leftover: cheaper to refetch than to trust
        offset = writer.offset
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        if offset:
            log.debug("resuming blob %s from byte %d (Range: bytes=%d-)", digest, offset, offset)
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", scopes=[self._scope(repo)],
                            headers=headers, stream=True)
        if offset and resp.status_code in (206, 416) and not self._resumable(resp, offset):
            # 416, or a 206 for another range: start over without a Range.
            log.debug("blob %s: the registry cannot resume at %d, restarting", digest, offset)
            resp.close()
            writer.restart()
            resp = self.request("GET", f"/v2/{repo}/blobs/{digest}",
                                scopes=[self._scope(repo)], stream=True)
        elif offset and resp.status_code == 200:
            log.debug("blob %s: the registry sent the whole blob, restarting", digest)
            writer.restart()
        if resp.status_code == 404:
            code, text = _error_text(resp)
            resp.close()
            raise err.BlobUnknownError(f"blob {digest} not found in "
                                       f"{self.display_name(repo)}: {text or 'blob unknown'}")
        if resp.status_code not in (200, 206):
            raise self._fail(resp, f"fetching blob {digest}")
        try:
            self._stream_into(resp, writer, on_progress)
            writer.commit()
        except BlobError as e:
            raise err.DigestMismatchError(f"filesystem layer verification failed for digest "
                                          f"{digest}: {e}") from None
        except requests.exceptions.RequestException as e:
            raise err.RegistryConnectionError(f"fetching blob {digest}: {e}") from None
        finally:
            resp.close()

    @staticmethod
    def _resumable(resp: requests.Response, offset: int) -> bool:
        if resp.status_code != 206:
            return False
        match = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
        return match is not None and int(match.group(1)) == offset

    @staticmethod
    def _stream_into(resp: requests.Response, writer: BlobWriter,
                     on_progress: ProgressCallback | None) -> None:
        if on_progress is not None and writer.offset:
            on_progress(writer.offset)
        for chunk in resp.iter_content(CHUNK):
            writer.write(chunk)
            if on_progress is not None:
                on_progress(writer.offset)

    def _location(self, resp: requests.Response) -> str:
        location = resp.headers.get("Location")
        if not location:
            raise err.RegistryError(f"{resp.request.method} {resp.url}: no Location header")
        return urljoin(resp.url, location)

    def _cancel_upload(self, url: str, repo: str) -> None:
        try:
            self.request("DELETE", url, scopes=[self._scope(repo, push=True)]).close()
        except err.RegistryError:
            pass  # the registry expires abandoned uploads itself

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Cross-repository mount; False when the registry cannot (an upload is needed)."""
        url = (f"/v2/{repo}/blobs/uploads/?mount={quote(digest, safe=':')}"
               f"&from={quote(from_repo, safe='/')}")
        resp = self.request("POST", url,
                            scopes=[self._scope(repo, push=True), self._scope(from_repo)])
        resp.close()
        if resp.status_code == 201:
            return True
        if resp.status_code == 202 and resp.headers.get("Location"):
            self._cancel_upload(self._location(resp), repo)
            return False
        if resp.status_code in (202, 404):
            return False
        raise self._fail(resp, f"mounting blob {digest} from {from_repo}")

    def upload_blob(self, repo: str, digest: str, stream: IO[bytes], size: int, *,
                    chunk_size: int | None = None,
                    on_progress: ProgressCallback | None = None) -> None:
        """Upload `size` bytes of `stream` as blob `digest`: POST, then one PUT, or PATCHes
        of `chunk_size` bytes then a closing PUT."""
        scopes = [self._scope(repo, push=True)]
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/", scopes=scopes)
        resp.close()
        if resp.status_code != 202:
            raise self._fail(resp, f"starting the upload of {digest}")
        location = self._location(resp)
        try:
            if chunk_size and size > chunk_size:
                location = self._patch_chunks(location, repo, stream, size, chunk_size,
                                              on_progress)
                body: Any = b""
            elif size == 0:
                body = b""  # an empty _Reader would make requests send chunked
            else:
                body = _Reader(stream, size, on_progress)
            resp = self.request("PUT", with_query(location, "digest", digest), scopes=scopes,
                                headers={"Content-Type": "application/octet-stream",
                                         "Content-Length": str(len(body))}, body=body)
            resp.close()
            if resp.status_code != 201:
                raise self._fail(resp, f"uploading blob {digest}")
        except BaseException:
            self._cancel_upload(location, repo)
            raise
        header = resp.headers.get("Docker-Content-Digest", "")
        if header.startswith("sha256:") and header != digest:
            raise err.DigestMismatchError(f"the registry stored blob {digest} as {header}")

    def _patch_chunks(self, location: str, repo: str, stream: IO[bytes], size: int,
                      chunk_size: int, on_progress: ProgressCallback | None) -> str:
        sent = 0
        while sent < size:
            data = stream.read(min(chunk_size, size - sent))
            if not data:
                raise err.RegistryError(f"upload source ended after {sent} of {size} bytes")
            resp = self.request(
                "PATCH", location, scopes=[self._scope(repo, push=True)], body=data,
                headers={"Content-Type": "application/octet-stream",
                         "Content-Range": f"{sent}-{sent + len(data) - 1}",
                         "Content-Length": str(len(data))})
            resp.close()
            if resp.status_code != 202:
                raise self._fail(resp, f"uploading a chunk at byte {sent}")
            location = self._location(resp)
            sent += len(data)
            if on_progress is not None:
                on_progress(sent)
        return location
