"""What a build's RUN left when its process was killed (kill -9, a crash): each run keeps its
files under <runroot>/build-runs/<id>/ and claims that dir while it lives (storage/claimed.py);
a dir no live process claims belongs to a dead run, whose runtime container (and cgroup),
network namespace, veth and address are unmade here, then the dir."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from barque.engine.context import Engine


def reclaim(engine: Engine) -> None:
    from barque.engine.build_run import ID_PREFIX, runs_dir
    from barque.storage import claimed

    claimed.reclaim(runs_dir(engine), lambda path: _reclaim_one(engine, path), ID_PREFIX)


def _reclaim_one(engine: Engine, path: str) -> None:
    import shutil

    run_id = os.path.basename(path)
    delete_container(engine, run_id)
    teardown_network(engine, run_id)
    shutil.rmtree(path, ignore_errors=True)


def delete_container(engine: Engine, run_id: str, thorough: bool = True) -> None:
    """The runtime's container of the run (its process killed, its cgroup removed), if the
    runtime did not delete it itself (`run` does, unless it was killed first). `thorough`:
    also a cgroup the runtime made before it was killed, with no state of its own yet."""
    if os.path.isdir(os.path.join(engine.paths.runtime_root, run_id)):
        import subprocess

        from barque.engine.context import find_runtime

        proc = subprocess.run([find_runtime(), "--root", engine.paths.runtime_root, "delete",
                               "--force", run_id], capture_output=True, timeout=60)
        if proc.returncode != 0 and os.path.isdir(os.path.join(engine.paths.runtime_root,
                                                               run_id)):
            message = proc.stderr.decode(errors="replace").strip()
            raise OSError(f"deleting the runtime's container {run_id}: {message}")
    if thorough:
        _remove_cgroup(run_id)


def _remove_cgroup(run_id: str) -> None:
    from barque.cgroups import CgroupError, open_manager
    from barque.engine.spec import CGROUP_PARENT

    try:
        manager = open_manager(f"{CGROUP_PARENT}/{run_id}", run_id)
        if manager.exists():
            manager.kill_all(9)
            manager.destroy()
    except CgroupError as e:
        raise OSError(f"removing the cgroup of {run_id}: {e}") from None


def teardown_network(engine: Engine, run_id: str) -> None:
    from barque.engine import netsetup
    from barque.engine.records import ContainerRecord

    record = ContainerRecord(id=run_id, name=run_id, created="", image="", image_id="",
                             config={}, host_config={"NetworkMode": "default",
                                                     "AutoRemove": True})
    netsetup.remove_container(engine, record)
