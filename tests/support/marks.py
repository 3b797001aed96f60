"""Marks shared by test modules."""

from __future__ import annotations

import os

import pytest

from barque.image import default as default_image

# The default image is built from the host's busybox-static.
needs_busybox = pytest.mark.skipif(
    not os.path.isfile(default_image.BUSYBOX),
    reason="busybox-static is not installed (apt-get install -y busybox-static)",
)
