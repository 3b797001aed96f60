"""A test-only Executor: one RUN through barque-runtime directly (no network namespace of
its own beyond the runtime's default spec, numeric USER only). The engine's executor
(barque/engine/build_run.py) replaces it in the end-to-end tests once it is on main."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable

from barque.build.executor import RunRequest
from barque.runtime.spec import default_spec


class RuntimeExecutor:
    def __init__(self, runtime_bin: str, prefix: str) -> None:
        self.runtime_bin = runtime_bin
        self.prefix = prefix
        self.runs: list[RunRequest] = []

    def run(self, request: RunRequest, output: Callable[[int, bytes], None]) -> int:
        self.runs.append(request)
        work = tempfile.mkdtemp(prefix=f"{self.prefix}-exec-")
        cid = f"{self.prefix}-b{uuid.uuid4().hex[:8]}"
        try:
            spec = default_spec()
            spec["root"] = {"path": request.rootfs, "readonly": False}
            spec["process"].update(terminal=False, args=request.args, env=request.env,
                                   cwd=request.cwd)
            if request.user:
                uid, _, gid = request.user.partition(":")
                spec["process"]["user"] = {"uid": int(uid), "gid": int(gid or 0)}
            spec["hostname"] = request.hostname
            with open(os.path.join(work, "config.json"), "w") as f:
                json.dump(spec, f)
            proc = subprocess.run(
                [self.runtime_bin, "--root", os.path.join(work, "state"), "run", "-b", work,
                 cid], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
            if proc.stdout:
                output(1, proc.stdout)
            if proc.stderr:
                output(2, proc.stderr)
            return proc.returncode
        finally:
            subprocess.run([self.runtime_bin, "--root", os.path.join(work, "state"), "delete",
                            "--force", cid], capture_output=True, check=False)
            shutil.rmtree(work, ignore_errors=True)
