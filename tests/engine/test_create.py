"""`create`'s overlayfs probe runs once per boot and containers dir, not at every create."""

from __future__ import annotations

import os

import pytest

from barque.engine import create as cr
from barque.engine.context import Engine, Paths
from barque.storage import overlayfs
from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]


def _boot_id() -> str:
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


def test_overlay_probe_is_remembered_for_the_boot(barque: Barque,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    b = barque
    ok(b.run("create", "--name", "first", "busybox", "true"))
    marker = os.path.join(b.runroot, cr.OVERLAY_PROBED)
    base = os.path.realpath(os.path.join(b.root, "containers"))
    line = f"{_boot_id()} {os.stat(base).st_dev} {base}"
    with open(marker) as f:
        assert f.read().splitlines() == [line]

    probes: list[str] = []
    real_probe = overlayfs._probe

    def counting_probe(base_dir: str) -> bool:
        probes.append(base_dir)
        return real_probe(base_dir)

    monkeypatch.setattr(overlayfs, "_probe", counting_probe)
    monkeypatch.setattr(overlayfs, "_supported", {})
    with Engine(Paths(b.root, b.runroot)) as engine:
        assert cr._overlay_works(engine) is True
        assert probes == []  # remembered: no test mount
        # A line of another boot (or file system) does not count: probed again, rewritten.
        with open(marker, "w") as f:
            f.write(line.replace(_boot_id(), "another-boot") + "\n")
        assert cr._overlay_works(engine) is True
        assert probes == [base]
    with open(marker) as f:
        assert line in f.read().splitlines()
    ok(b.run("rm", "first"))
    # The probe's cache is outside the containers dir: nothing of a removed container stays.
    assert b.containers() == []
