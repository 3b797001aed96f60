"""Fuzz image references (barque/image/reference.py) and the store's tag names.

Property: `parse` raises only ReferenceError (a ValueError); what it accepts is normalised
and stable: printing it (full or familiar form) and parsing that again gives the same
reference, its parts match Docker's grammar, and `tag_name` agrees (ImageError otherwise).

    python fuzz/reference.py -runs=200000
    python fuzz/reference.py --iterations 200000
"""

from __future__ import annotations

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz import _driver  # noqa: E402

with _driver.instrumented():
    from barque.image import reference as refs
    from barque.image.store import ImageError, tag_name

# Pieces of real references, so that most inputs get past the first check.
PIECES = ("busybox", "library/", "docker.io/", "index.docker.io/", "localhost", ":5000", "/",
          ":", "@", "sha256:", "a" * 64, "0" * 64, "latest", "v1.2-rc_3", "my-app", "__",
          "..", ".", "-", "[::1]", "127.0.0.1", "Example.com", "UPPER", "x" * 130, "é", " ",
          "\n", "\0", "sha512:", "A" * 32)
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)


def familiar_is_exact(ref: refs.Reference) -> bool:
    """Docker's familiar form is ambiguous in two cases, kept as Docker has them: a Hub path
    whose first component looks like a domain (`docker.io/docker.io/x` prints as
    `docker.io/x`), and a Hub image named by 64 hex digits (printed, it reads as an ID)."""
    if ref.domain != refs.DEFAULT_DOMAIN:
        return True
    first = ref.familiar_repository.split("/")[0]
    if "/" in ref.familiar_repository and ("." in first or ":" in first or first == "localhost"):
        return False
    return not refs.is_image_id(ref.familiar_repository)


def check(text: str, default_tag: bool) -> None:
    try:
        ref = refs.parse(text, default_tag)
    except refs.ReferenceError:
        try:
            tag_name(text)
        except ImageError:
            return
        raise AssertionError(f"tag_name accepted {text!r}, which parse refuses") from None
    assert ref.domain and ref.path, ref
    assert "/" in ref.path or ref.domain != refs.DEFAULT_DOMAIN, ref
    if ref.tag is not None:
        assert _TAG.fullmatch(ref.tag), ref
    if default_tag:
        assert ref.tag or ref.digest, ref
    again = refs.parse(str(ref), default_tag)
    assert again == ref, f"{text!r} -> {str(ref)!r} -> {again!r} != {ref!r}"
    if familiar_is_exact(ref):
        again = refs.parse(ref.familiar, default_tag)
        assert again == ref, f"{text!r} -> {ref.familiar!r} -> {again!r} != {ref!r}"
    assert refs.parse(ref.repository, False).repository == ref.repository
    refs.is_insecure_default(ref.domain)
    if ref.digest is None:
        assert tag_name(text) == str(refs.parse(text))
    else:
        try:
            tag_name(text)
        except ImageError:
            pass
        else:
            raise AssertionError(f"tag_name accepted the digest reference {text!r}")


def target(data: bytes) -> None:
    p = _driver.Provider(data)
    default_tag = p.bool()
    if p.chance(30):
        text = p.text(300)
    else:
        text = "".join(p.pick(PIECES) if p.chance(70) else p.text(3) for _ in range(p.int(0, 8)))
    check(text, default_tag)
    refs.is_image_id(text)
    try:
        refs.split_domain(text)
    except refs.ReferenceError:
        pass


if __name__ == "__main__":
    _driver.main("reference", target, max_len=512)
