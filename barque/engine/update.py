"""`docker update`: new resource limits (and restart policy) for a container, applied at
once to a running one through the runtime's `update`, and kept for its next starts."""

from __future__ import annotations

import json
import os
import tempfile

from barque.engine import events, resource_checks, spec_resources
from barque.engine.context import Engine, EngineError
from barque.engine.create import check_restart_policy

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any


def update(engine: Engine, ref: str, changes: dict[str, Any]) -> None:
    from barque.engine.lifecycle import call_runtime

    record = engine.find(ref)
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
    check_restart_policy(host_config)
    if engine.state(record)["Running"]:
        resources.pop("devices", None)  # unchanged: no need to rewrite the device rules
        fd, path = tempfile.mkstemp(prefix=".update-", suffix=".json",
                                    dir=engine.paths.container_dir(record.id))
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(resources, f)
            call_runtime(engine, "update", "--resources", path, record.id)
        finally:
            os.unlink(path)
    record.host_config = host_config
    engine.records.update(record)
    events.container(engine, record, "update")
