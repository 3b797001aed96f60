"""Fuzz `import` (barque/image/archive.py import_tarball): a hostile rootfs tar (fuzz/tars.py),
maybe compressed, with a fuzzed reference, --change lines and --platform, becomes a one-layer
image whose layer the store unpacks.

Property: import succeeds or raises ArchiveError / ImageError / BlobError; nothing outside
the store's root changes (a canary dir beside it). Needs root.

    python fuzz/image_import.py -runs=5000
    python fuzz/image_import.py --iterations 5000
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz import _driver  # noqa: E402
from fuzz.archive_load import ERRORS, store  # noqa: E402
from fuzz.tars import draw_tar, serialise  # noqa: E402

with _driver.instrumented():
    from barque.image.archive import import_tarball

REFERENCES = (None, "", "fuzz:imported", "Bad", "a@sha256:" + "0" * 64, "x" * 300,
              "localhost:5000/a:b", ":")
CHANGES = ("CMD [\"sh\"]", "CMD sh", "ENV A=1", "ENV A", "EXPOSE 80", "EXPOSE x",
           "WORKDIR /x", "WORKDIR rel", "USER 0", "LABEL a=b", "VOLUME /v", "VOLUME [\"/v\"",
           "ENTRYPOINT [1]", "STOPSIGNAL 9", "ONBUILD RUN x", "RUN x", "BOGUS", "", "CMD [",
           "HEALTHCHECK CMD true", "ENV", "LABEL", "ENV A=\"unterminated")
PLATFORMS = (None, "", "linux", "amd64", "linux/arm64/v8", "windows", "linux//", "a/b/c/d",
             "LINUX/AMD64")


def check(blob: bytes, reference: str | None, changes: list[str], platform: str | None) -> None:
    s = store()
    base = os.path.dirname(s.root)
    before = _driver.snapshot(base, skip=s.root)
    try:
        import_tarball(s, io.BytesIO(blob), reference, changes, "fuzz", platform)
    except ERRORS:
        pass
    assert _driver.snapshot(base, skip=s.root) == before, "import wrote outside the store"


def target(data: bytes) -> None:
    p = _driver.Provider(data)
    s = store()
    canary = os.path.join(os.path.dirname(s.root), "canary")
    reference = p.pick(REFERENCES) if p.chance(90) else p.text(20)
    changes = [p.pick(CHANGES) if p.chance(80) else p.text(20) for _ in range(p.int(0, 3))]
    platform = p.pick(PLATFORMS)
    if p.chance(5):
        blob = p.bytes(p.left())
    else:
        blob = serialise(draw_tar(p), canary)
        if p.chance(10):
            blob = p.pick((bz2.compress, lzma.compress))(blob)
    check(blob, reference, changes, platform)


if __name__ == "__main__":
    _driver.main("image_import", target)
