"""OCI hooks: run with the container state on stdin, within their timeout."""

from __future__ import annotations

from barque.runtime import fastjson as json
from barque.runtime.errors import RuntimeFailure
from barque.runtime.log import LOG


def run_hooks(hooks: list[dict], state: dict, kind: str, fatal: bool = True) -> None:
    if not hooks:
        return
    payload = json.dumps(state).encode()
    for index, hook in enumerate(hooks):
        error = _run_one(hook, payload)
        if error:
            # runc's words: "error running hook #N: " and the hook's own error
            message = f"error running hook #{index}: {error}"
            if fatal:
                raise RuntimeFailure(message)
            LOG.warning(f"{kind} hook: {message}")


def _run_one(hook: dict, payload: bytes) -> str | None:
    """The hook's failure as runc's Command.Run words it, or None."""
    import subprocess

    args = hook.get("args") or [hook["path"]]
    env = dict(e.split("=", 1) for e in hook.get("env") or [] if "=" in e)
    timeout = hook.get("timeout")
    try:
        proc = subprocess.run(
            args, executable=hook["path"], input=payload, env=env, capture_output=True,
            timeout=timeout if timeout and timeout > 0 else None,
        )
    except subprocess.TimeoutExpired:
        return f"hook ran past specified timeout of {float(timeout or 0):.1f}s"
    except OSError as e:
        return f"fork/exec {hook['path']}: {(e.strerror or '').lower()}"
    if proc.returncode == 0:
        return None
    status = (f"exit status {proc.returncode}" if proc.returncode > 0
              else f"signal: {_signal_name(-proc.returncode)}")
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace")
    return f"error running hook: {status}, stdout: {out}, stderr: {err}"


def _signal_name(sig: int) -> str:
    import signal

    try:
        return (signal.strsignal(sig) or str(sig)).lower()  # Go's words: "killed"
    except ValueError:
        return str(sig)
