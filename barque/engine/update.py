"""`docker update`: new resource limits and restart policy for a container, applied at once
to a running one (the limits through the runtime's `update`, the policy by its monitor, for
the present run's end as dockerd's restart manager), and kept for its next starts."""

from __future__ import annotations

import json
import os
import tempfile

from barque.engine import events, monitor, resource_checks, spec_resources
from barque.engine.context import Engine, EngineError
from barque.engine.create import check_restart_policy

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

    from barque.engine.records import ContainerRecord


def update(engine: Engine, ref: str, changes: dict[str, Any]) -> None:
    from barque.engine import lifecycle

    record = engine.find(ref)
    # Under the container's lock, as a start: the record the next start reads, or the
    # running monitor, has the new policy; two updates do not mix.
    with lifecycle.locked(engine, record.id, ref) as record:
        _update_locked(engine, record, changes)


def _update_locked(engine: Engine, record: ContainerRecord, changes: dict[str, Any]) -> None:
    host_config = {**record.host_config, **changes}
    if "Memory" in changes and "MemorySwap" not in changes and record.host_config.get(
            "MemorySwap", 0) not in (0, -1) and changes["Memory"] > record.host_config[
            "MemorySwap"]:
        raise EngineError("Memory limit should be smaller than already set memoryswap limit, "
                          "update the memoryswap at the same time", 1, 400)
    try:
        resource_checks.check(host_config)
        resources = spec_resources.resources(host_config)
    except (spec_resources.ResourceError, resource_checks.ResourceCheckError) as e:
        raise EngineError(str(e), 1, 400) from None
    policy = changes.get("RestartPolicy")
    if policy is not None:
        _check_policy(record, policy)
    state = engine.state(record)
    told = policy is not None and _tell_monitor(engine, record, host_config)
    try:
        # as dockerd's: a restarting container's limits are the record's, for its restart
        if state["Running"] and state["Status"] != "restarting" and \
                changes.keys() - {"RestartPolicy"}:
            _update_resources(engine, record, resources)
    except BaseException:
        if told:  # the update changes nothing: the monitor's policy back as it was
            _tell_monitor(engine, record, record.host_config, quiet=True)
        raise
    record.host_config = host_config
    engine.records.update(record)
    events.container(engine, record, "update")


def _check_policy(record: ContainerRecord, policy: dict[str, Any]) -> None:
    """dockerd's checks of the body's policy (400), then of the container (its
    UpdateContainer's words, wrapped as its errCannotUpdate: 500)."""
    check_restart_policy({"RestartPolicy": policy})
    if record.host_config.get("AutoRemove") and policy.get("Name") not in ("", "no"):
        raise EngineError(f"Cannot update container {record.id}: Restart policy cannot be "
                          "updated because AutoRemove is enabled for the container", 1, 500)


def _tell_monitor(engine: Engine, record: ContainerRecord, host_config: dict[str, Any],
                  quiet: bool = False) -> bool:
    """The running monitor's restart policy (one not running: nothing to tell, its next
    start takes the record's); True if a monitor took it."""
    try:
        return monitor.set_restart(engine.paths.monitor_dir(record.id), host_config)
    except monitor.MonitorError as e:
        if quiet:
            return False
        raise EngineError(f"Cannot update container {record.id}: its monitor did not take "
                          f"the restart policy: {e}", 1, 500) from None


def _update_resources(engine: Engine, record: ContainerRecord, resources: dict[str, Any]
                      ) -> None:
    from barque.engine.lifecycle import call_runtime

    resources.pop("devices", None)  # unchanged: no need to rewrite the device rules
    fd, path = tempfile.mkstemp(prefix=".update-", suffix=".json",
                                dir=engine.paths.container_dir(record.id))
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(resources, f)
        call_runtime(engine, "update", "--resources", path, record.id)
    finally:
        os.unlink(path)
