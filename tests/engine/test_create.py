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


def _mounted_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


def test_run_keeps_its_snapshot_mounted_only_for_its_start(barque: Barque) -> None:
    # `run` leaves create's overlay mounted for its start; a start that fails before using
    # it (here: no runtime to be found) unmounts it, as `create` + a failed `start` leave it.
    import subprocess

    b = barque
    env = {**os.environ, "BARQUE_RUNTIME": "/nonexistent/barque-runtime"}
    proc = subprocess.run(b.argv("run", "--name", "nort", "busybox", "true"),
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 125 and "OCI runtime" in proc.stderr, proc.stderr
    cid = ok(b.run("inspect", "-f", "{{.Id}}", "nort")).strip()
    assert _mounted_under(os.path.join(b.root, "containers", cid)) == []
    ok(b.run("create", "--name", "made", "busybox", "true"))
    made = ok(b.run("inspect", "-f", "{{.Id}}", "made")).strip()
    assert _mounted_under(os.path.join(b.root, "containers", made)) == []
    ok(b.run("start", "-a", "nort"))  # the kept snapshot still starts
    assert _mounted_under(os.path.join(b.root, "containers", cid)) == []
    ok(b.run("rm", "nort", "made"))
