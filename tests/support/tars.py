"""Tar archives made in memory for tests."""

from __future__ import annotations

import io
import tarfile


def files_tar(files: dict[str, bytes]) -> bytes:
    """A plain tar of regular files (mode 0644, owned by root), in the given order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
