"""AppArmor profiles and SELinux labels in a config.json: applied where the host has the
module, refused where it does not; never dropped with a warning (issue 8, escape 8)."""

from __future__ import annotations

import pytest

from barque.linux import lsm
from tests.support.bundles import Runtime
from tests.support.bundles import assert_refused as refused

pytestmark = pytest.mark.root


def test_confinement_the_host_cannot_give_is_refused(runtime: Runtime) -> None:
    if lsm.apparmor_enabled() and lsm.selinux_enabled():
        pytest.skip("this host has both AppArmor and SELinux: nothing to refuse")
    spec = runtime.spec(["true"])
    if not lsm.apparmor_enabled():
        spec["process"]["apparmorProfile"] = "docker-default"
        refused(runtime, spec, "apparmor profile is specified in config, but apparmor is "
                                "disabled or not supported")
        # exec asks for the same through its flag
        spec["process"].pop("apparmorProfile")
        spec["process"]["args"] = ["sleep", "30"]
        cid = runtime.new_id()
        runtime.cmd("run", "-d", "--bundle", runtime.bundle(spec), cid, check=True)
        proc = runtime.cmd("exec", "--apparmor", "docker-default", cid, "true")
        assert proc.returncode != 0 and b"apparmor is disabled" in proc.stderr, proc.stderr
        runtime.cmd("delete", "--force", cid, check=True)
        spec["process"]["args"] = ["true"]
    if not lsm.selinux_enabled():
        spec["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0"
        refused(runtime, spec, "selinux label is specified in config, but selinux is "
                                "disabled or not supported")


def test_unconfined_asks_for_nothing(runtime: Runtime) -> None:
    spec = runtime.spec(["true"])
    spec["process"]["apparmorProfile"] = "unconfined"
    proc = runtime.run(spec)
    assert proc.returncode == 0, proc.stderr.decode()
