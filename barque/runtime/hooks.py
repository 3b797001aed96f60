"""OCI hooks: run with the container state on stdin, within their timeout."""

from __future__ import annotations

from barque.runtime import fastjson as json
from barque.runtime.errors import RuntimeFailure
from barque.runtime.log import LOG


def run_hooks(hooks: list[dict], state: dict, kind: str, fatal: bool = True) -> None:
    if not hooks:
        return
    import subprocess

    payload = json.dumps(state).encode()
    for hook in hooks:
        args = hook.get("args") or [hook["path"]]
        env = dict(e.split("=", 1) for e in hook.get("env") or [] if "=" in e)
        timeout = hook.get("timeout")
        try:
            proc = subprocess.run(
                args, executable=hook["path"], input=payload, env=env, capture_output=True,
                timeout=timeout if timeout and timeout > 0 else None,
            )
            error = None
            if proc.returncode != 0:
                error = (
                    f"{kind} hook {hook['path']} exited with status {proc.returncode}: "
                    f"{proc.stderr.decode(errors='replace').strip()}"
                )
        except subprocess.TimeoutExpired:
            error = f"{kind} hook {hook['path']} timed out after {timeout}s"
        except OSError as e:
            error = f"{kind} hook {hook['path']}: {e.strerror}"
        if error:
            if fatal:
                raise RuntimeFailure(f"error running {error}")
            LOG.warning(error)
