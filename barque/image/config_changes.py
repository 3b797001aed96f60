"""`--change` for `import` and `commit`: Dockerfile instructions applied to an image's
container config, as Docker's builder does (moby builder/dockerfile BuildFromConfig).

Only metadata instructions are valid; anything else is "<instr> is not a valid change command".
Each change is read by the Dockerfile parser and its arguments by barque/build/dockerfile's
commands (the same code `barque build` uses): quotes, escapes and variable substitution from
the config's Env as it stands, except in CMD/ENTRYPOINT/HEALTHCHECK.
"""

from __future__ import annotations

import copy
import posixpath
from typing import Any

from barque.build.dockerfile import commands
from barque.build.dockerfile.instructions import Instruction
from barque.build.dockerfile.parser import parse_instruction

VALID = ("cmd", "entrypoint", "env", "expose", "healthcheck", "label", "onbuild", "stopsignal",
         "user", "volume", "workdir")


class ChangeError(ValueError):
    """A change Docker would refuse; the message is Docker's wording."""


def _env_map(env: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in env:
        key, sep, value = entry.partition("=")
        if sep:
            out[key] = value
    return out


def expand(word: str, env: list[str]) -> str:
    """One word with quotes and escapes processed and `$VAR`s replaced from `env`
    (KEY=value entries), as the Dockerfile's lexer does."""
    from barque.build.dockerfile.expand import expand_word
    try:
        return expand_word(word, _env_map(env))
    except ValueError as e:
        raise ChangeError(str(e)) from None


def _shell_or_exec(instr: Instruction) -> list[str] | None:
    args, json_form = commands.shell_or_exec(instr)
    if json_form:
        return args
    return commands.with_shell(args, None) if args else None


def _apply(cfg: dict[str, Any], instr: Instruction, state: dict[str, bool]) -> None:
    env = _env_map(cfg.get("Env") or [])
    kind = instr.keyword
    if kind == "CMD":
        if not instr.args and not instr.json_form:
            raise ChangeError("CMD requires at least one argument")
        cfg["Cmd"] = _shell_or_exec(instr)
        state["cmd_set"] = True
    elif kind == "ENTRYPOINT":
        cfg["Entrypoint"] = _shell_or_exec(instr)
        if not state.get("cmd_set"):
            cfg["Cmd"] = None  # Docker: a new ENTRYPOINT drops an inherited CMD
    elif kind == "ENV":
        new = cfg.get("Env") or []
        for key, value in commands.env_pairs(instr, env):
            new = [e for e in new if e.partition("=")[0] != key] + [f"{key}={value}"]
        cfg["Env"] = new
    elif kind == "LABEL":
        labels = dict(cfg.get("Labels") or {})
        labels.update(commands.label_pairs(instr, env))
        cfg["Labels"] = labels
    elif kind == "EXPOSE":
        ports = dict(cfg.get("ExposedPorts") or {})
        ports.update({p: {} for p in commands.ports(instr, env)})
        cfg["ExposedPorts"] = ports
    elif kind == "USER":
        cfg["User"] = commands.single_word(instr, env)
    elif kind == "WORKDIR":
        path = commands.single_word(instr, env)
        cfg["WorkingDir"] = posixpath.normpath(posixpath.join("/", cfg.get("WorkingDir") or "/",
                                                              path))
    elif kind == "VOLUME":
        volumes = dict(cfg.get("Volumes") or {})
        volumes.update({path: {} for path in commands.volumes(instr, env)})
        cfg["Volumes"] = volumes
    elif kind == "STOPSIGNAL":
        cfg["StopSignal"] = commands.stop_signal(instr, env)
    elif kind == "ONBUILD":
        cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), *instr.args]
    elif kind == "HEALTHCHECK":
        cfg["Healthcheck"] = commands.healthcheck(instr)


def _parse(line_no: int, text: str) -> Instruction:
    try:
        return parse_instruction(text, line=line_no)
    except ValueError as e:
        raise _located(line_no, e) from None


def _located(line_no: int, error: ValueError) -> ChangeError:
    message = str(error)
    prefix = f"dockerfile parse error on line {line_no}: "
    return ChangeError(message if message.startswith(prefix) else prefix + message)


def apply_changes(config: dict[str, Any] | None, changes: list[str]) -> dict[str, Any]:
    """A copy of the container config `config` with `changes` applied in order."""
    parsed = []
    for line_no, change in enumerate(changes, 1):
        text = change.strip()
        if not text or text.startswith("#"):
            continue
        keyword = text.split(None, 1)[0].lower()
        if keyword not in VALID:
            raise ChangeError(f"{keyword} is not a valid change command")
        parsed.append((line_no, _parse(line_no, text)))
    cfg = copy.deepcopy(config) if config else {}
    state: dict[str, bool] = {}
    for line_no, instr in parsed:
        try:
            _apply(cfg, instr, state)
        except ValueError as e:
            raise _located(line_no, e) from None
    return {k: v for k, v in cfg.items() if v is not None or k in (config or {})}
