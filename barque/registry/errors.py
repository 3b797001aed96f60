"""Errors of the registry client; messages use Docker's wording where Docker has one."""

from __future__ import annotations


class RegistryError(Exception):
    """Any failure to talk to a registry or to accept what it sent."""


class UnauthorizedError(RegistryError):
    """401/403: missing or wrong credentials, or no access to the repository."""


class NotFoundError(RegistryError):
    """The registry has no such repository, manifest or blob."""


class ManifestUnknownError(NotFoundError):
    """The tag or digest names no manifest."""


class BlobUnknownError(NotFoundError):
    """The registry has no blob with that digest in the repository."""


class DigestMismatchError(RegistryError):
    """Content the registry sent does not match the digest (or size) it was asked for."""


class RegistryConnectionError(RegistryError):
    """The registry could not be reached (refused, unresolvable, timed out, cut off)."""


class TLSError(RegistryConnectionError):
    """TLS failed: untrusted certificate, or https spoken to a plain-http registry."""


class UnsupportedManifestError(RegistryError):
    """A manifest of a kind Barque does not handle (schema 1, unknown media type, malformed)."""


class NoMatchingPlatformError(RegistryError):
    """An image index lists no manifest for the requested platform."""


class AuthConfigError(RegistryError):
    """The Docker credentials file cannot be read or written."""
