"""daemon.json's userns-remap as dockerd reads it: a user's subordinate ranges laid end to
end from container id 0, its errors in dockerd's words, and the checks of a container's
settings against it. Files of the test's own: the host's /etc/subuid is never read."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from barque.engine import userns
from barque.engine.errors import EngineError


def _root(tmp_path: Any, remap: object, subuid: str, subgid: str | None = None) -> str:
    root = str(tmp_path)
    for name, text in (("subuid", subuid), ("subgid", subuid if subgid is None else subgid)):
        with open(os.path.join(root, name), "w") as f:
            f.write(text)
    with open(os.path.join(root, "daemon.json"), "w") as f:
        json.dump({"userns-remap": remap,
                   "userns-remap-subuid": os.path.join(root, "subuid"),
                   "userns-remap-subgid": os.path.join(root, "subgid")}, f)
    return root


def test_no_setting_is_no_remap(tmp_path: Any) -> None:
    assert userns.load(str(tmp_path)) is None
    with open(tmp_path / "daemon.json", "w") as f:
        json.dump({"userns-remap": ""}, f)
    assert userns.load(str(tmp_path)) is None


def test_ranges_by_name_or_uid_are_laid_end_to_end(tmp_path: Any) -> None:
    # daemon is uid 1 on Debian: a line may name it either way; others' lines are not its.
    root = _root(tmp_path, "daemon", "root:100000:65536\ndaemon:500000:1000\n"
                 "1:700000:5000\n", "daemon:600000:65536\n")
    remap = userns.load(root)
    assert remap is not None
    assert remap.uids == [(0, 500000, 1000), (1000, 700000, 5000)]
    assert remap.gids == [(0, 600000, 65536)]
    assert remap.root == (500000, 600000)
    assert userns.load(_root(tmp_path, "1:daemon", "daemon:500000:10\n")).uids == \
        [(0, 500000, 10)]


def test_errors_in_dockerds_words(tmp_path: Any) -> None:
    with pytest.raises(EngineError, match="No subuid ranges found for user 'daemon'"):
        userns.load(_root(tmp_path, "daemon", "root:100000:65536\n"))
    with pytest.raises(EngineError, match="No subgid ranges found for group 'daemon'"):
        userns.load(_root(tmp_path, "daemon", "daemon:100000:65536\n", ""))
    with pytest.raises(EngineError, match="Error during uid lookup for 'no-such-user-x'"):
        userns.load(_root(tmp_path, "no-such-user-x", ""))
    with pytest.raises(EngineError, match="invalid line"):
        userns.load(_root(tmp_path, "daemon", "daemon:x:65536\n"))


def test_a_containers_settings_against_the_remap(tmp_path: Any) -> None:
    remap = userns.load(_root(tmp_path, "daemon", "daemon:500000:65536\n"))
    userns.check(remap, {})
    userns.check(remap, {"UsernsMode": "host", "Privileged": True, "PidMode": "host",
                         "NetworkMode": "host"})
    with pytest.raises(EngineError, match="privileged mode is incompatible with user "
                                          "namespaces.  You must run the container in the "
                                          "host namespace when running privileged mode"):
        userns.check(remap, {"Privileged": True})
    with pytest.raises(EngineError, match="cannot share the host's network namespace when "
                                          "user namespaces are enabled"):
        userns.check(remap, {"NetworkMode": "host"})
    with pytest.raises(EngineError, match="cannot share the host PID namespace"):
        userns.check(remap, {"PidMode": "host"})
    with pytest.raises(EngineError, match="invalid USER mode: private"):
        userns.check(None, {"UsernsMode": "private"})
    userns.check(None, {"Privileged": True})
    assert userns.for_container(str(tmp_path), {"UsernsMode": "host"}) is None
    assert userns.for_container(str(tmp_path), {}) == remap


def test_the_root_path_must_let_the_mapped_root_through() -> None:
    import shutil
    import tempfile

    top = tempfile.mkdtemp(prefix="barque-userns-")  # under /tmp: pytest's dirs are 0700
    try:
        closed = os.path.join(top, "closed")
        root = os.path.join(closed, "root")
        os.makedirs(root)
        os.chmod(top, 0o711)
        os.chmod(closed, 0o700)
        with pytest.raises(EngineError, match="restricts access to the remapped root"):
            userns.check_root_path(root, (500000, 500000))
        os.chmod(closed, 0o711)
        userns.check_root_path(root, (500000, 500000))
        os.chmod(closed, 0o750)
        os.chown(closed, 0, 500000)
        userns.check_root_path(root, (500000, 500000))
    finally:
        shutil.rmtree(top)


def test_the_root_dir_opens_to_the_mapped_group_only() -> None:
    import shutil
    import tempfile

    top = tempfile.mkdtemp(prefix="barque-userns-")
    try:
        os.chmod(top, 0o711)
        root = os.path.join(top, "root")
        containers = os.path.join(root, "containers")
        one = os.path.join(containers, "one")
        os.makedirs(one, mode=0o700)
        for path in (root, containers, one):
            os.chmod(path, 0o700)
        userns.let_root_in(root, containers, one, (500000, 500001))
        modes = [(os.stat(p).st_mode & 0o777, os.stat(p).st_gid)
                 for p in (root, containers, one)]
        assert modes == [(0o710, 500001), (0o711, 0), (0o710, 500001)]
        with pytest.raises(EngineError, match="belongs to group 500001, not the remapped"):
            userns.let_root_in(root, containers, one, (600000, 600000))
    finally:
        shutil.rmtree(top)
