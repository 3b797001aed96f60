"""How each Dockerfile instruction changes a stage's image config, as BuildKit does it:
ENV, ARG (scoping, build args, the predefined proxy ARGs), LABEL, EXPOSE, VOLUME, USER,
WORKDIR (relative to the previous one), CMD, ENTRYPOINT (which drops a CMD the stage did not
set itself), SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER; and the history entry each
instruction leaves (`created_by` in BuildKit's words, `empty_layer` when it made no layer).

The instructions are read by the Dockerfile package (dockerfile/commands.py), their words
expanded with the ARGs in scope and the stage's ENV (ENV winning) where the reference says.
"""

from __future__ import annotations

import posixpath

from barque.structs import dataclass, field

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from barque.build.dockerfile.instructions import Instruction

# Usable in every stage without an ARG, never in the image's history (BuildKit's list).
PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
              "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")
DEFAULT_SHELL = ["/bin/sh", "-c"]
COMMENT = "buildkit.dockerfile.v0"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ConfigError(ValueError):
    """An instruction BuildKit refuses once its words are expanded."""


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """A word with its variables replaced and its quotes and escapes processed."""
    from barque.build.dockerfile.expand import expand_word

    try:
        return expand_word(word, env, escape)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _read(fn: Callable[..., Any], *args: Any) -> Any:
    """One of commands.py's readers, its ValueError a ConfigError."""
    try:
        return fn(*args)
    except ValueError as e:
        raise ConfigError(str(e)) from None


@dataclass
class StageState:
    """A stage's image config as its instructions change it, and its ARG scope."""

    config: dict[str, Any]                 # the whole image config (config, history, ...)
    args: dict[str, str | None] = field(default_factory=dict)  # declared ARGs in scope
    build_args: dict[str, str] = field(default_factory=dict)   # --build-arg
    meta_args: dict[str, str | None] = field(default_factory=dict)  # ARGs before FROM
    escape: str = "\\"
    cmd_set: bool = False
    used_build_args: set[str] = field(default_factory=set)

    @property
    def cfg(self) -> dict[str, Any]:
        cfg = self.config.setdefault("config", {})
        assert isinstance(cfg, dict)
        return cfg

    def env_list(self) -> list[str]:
        return list(self.cfg.get("Env") or [])

    def env(self) -> dict[str, str]:
        out = {}
        for item in self.env_list():
            key, _, value = item.partition("=")
            out[key] = value
        return out

    def arg_values(self) -> dict[str, str]:
        """The ARGs in scope that have a value (the proxy ARGs given as build args too)."""
        out = {k: v for k, v in self.args.items() if v is not None}
        for name in PROXY_ARGS:
            if name in self.build_args and name not in self.args:
                out[name] = self.build_args[name]
        return out

    def scope(self) -> dict[str, str]:
        """What a word's variables see: the ARGs, then ENV over them."""
        return {**self.arg_values(), **self.env()}

    def run_env(self) -> list[str]:
        """A RUN's environment: ENV, and the ARGs ENV does not set (BuildKit)."""
        env = self.env_list()
        names = {e.partition("=")[0] for e in env}
        return env + [f"{k}={v}" for k, v in sorted(self.arg_values().items())
                      if k not in names]

    def word(self, text: str) -> str:
        return expand(text, self.scope(), self.escape)

    @property
    def workdir(self) -> str:
        return str(self.cfg.get("WorkingDir") or "/")

    @property
    def shell(self) -> list[str]:
        return list(self.cfg.get("Shell") or DEFAULT_SHELL)


def declare_arg(state: StageState, name: str, default: str | None) -> str:
    """ARG name[=default] in a stage: a --build-arg wins, then the default (expanded), then
    (with no default) a meta ARG's value. Returns the history text."""
    value: str | None
    expanded = state.word(default) if default is not None else None
    if name in state.build_args:
        value = state.build_args[name]
        state.used_build_args.add(name)
    elif expanded is not None:
        value = expanded
    else:
        value = state.meta_args.get(name)
    state.args[name] = value
    # History shows the declaration (its default), not a --build-arg's value (BuildKit).
    return f"{name}={expanded}" if expanded is not None else name


def go_list(items: list[str]) -> str:
    """Go's %v of a []string: [a b c]."""
    return "[" + " ".join(items) + "]"


def go_quoted_list(items: list[str]) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    import json

    return "[" + " ".join(json.dumps(i, ensure_ascii=False) for i in items) + "]"


def apply(state: StageState, instr: Instruction) -> str | None:
    """Apply a metadata instruction to the config; the history entry's created_by."""
    from barque.build.dockerfile import commands as c

    kw = instr.keyword
    cfg = state.cfg
    scope, esc = state.scope(), state.escape
    if kw == "ENV":
        pairs = _read(c.env_pairs, instr, scope, esc)
        env = state.env_list()
        for key, value in pairs:
            env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
        cfg["Env"] = env
        return "ENV " + " ".join(f"{k}={v}" for k, v in pairs)
    if kw == "LABEL":
        pairs = _read(c.label_pairs, instr, scope, esc)
        cfg["Labels"] = {**(cfg.get("Labels") or {}), **dict(pairs)}
        return "LABEL " + " ".join(f"{k}={v}" for k, v in pairs)
    if kw == "ARG":
        texts = [declare_arg(state, name, default)
                 for name, default in _read(c.arg_decls, instr)]
        return "ARG " + " ".join(texts)
    if kw == "EXPOSE":
        ports = _read(c.ports, instr, scope, esc)
        cfg["ExposedPorts"] = {**(cfg.get("ExposedPorts") or {}), **{p: {} for p in ports}}
        return "EXPOSE map[" + " ".join(f"{p}:{{}}" for p in sorted(set(ports))) + "]"
    if kw == "VOLUME":
        paths = list(instr.args) if instr.json_form else _read(c.volumes, instr, scope, esc)
        cfg["Volumes"] = {**(cfg.get("Volumes") or {}), **{p: {} for p in paths}}
        return "VOLUME " + go_list(paths)
    if kw == "USER":
        cfg["User"] = _read(c.single_word, instr, scope, esc)
        return "USER " + cfg["User"]
    if kw == "WORKDIR":
        path = _read(c.single_word, instr, scope, esc)
        cfg["WorkingDir"] = posixpath.normpath(posixpath.join(state.workdir, path))
        return "WORKDIR " + cfg["WorkingDir"]
    if kw == "CMD":
        cfg["Cmd"] = c.command(instr, state.shell)
        state.cmd_set = True
        return "CMD " + go_quoted_list(cfg["Cmd"] or [])
    if kw == "ENTRYPOINT":
        cfg["Entrypoint"] = c.command(instr, state.shell)
        if not state.cmd_set:
            cfg["Cmd"] = None
        return "ENTRYPOINT " + go_quoted_list(cfg["Entrypoint"] or [])
    if kw == "SHELL":
        cfg["Shell"] = _read(c.shell, instr)
        return "SHELL " + go_list(cfg["Shell"])
    if kw == "STOPSIGNAL":
        cfg["StopSignal"] = _read(c.stop_signal, instr, scope, esc)
        return "STOPSIGNAL " + cfg["StopSignal"]
    if kw == "HEALTHCHECK":
        cfg["Healthcheck"] = _read(c.healthcheck, instr)
        return "HEALTHCHECK " + _health_text(cfg["Healthcheck"])
    if kw == "ONBUILD":
        trigger = " ".join(instr.args)
        cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), trigger]
        return "ONBUILD " + trigger
    if kw == "MAINTAINER":
        state.config["author"] = " ".join(instr.args)
        return "MAINTAINER " + state.config["author"]
    raise ConfigError(f"unknown instruction: {kw}")


def _health_text(health: dict[str, Any]) -> str:
    test = health.get("Test") or []
    return "&{" + go_quoted_list(test) + " " + " ".join(
        str(health.get(k, 0)) for k in ("Interval", "Timeout", "StartPeriod",
                                          "StartInterval", "Retries")) + "}"


def history(state: StageState, created_by: str, created: str, *, empty: bool) -> None:
    entry: dict[str, Any] = {"created": created, "created_by": created_by,
                             "comment": COMMENT}
    if empty:
        entry["empty_layer"] = True
    state.config["history"] = [*(state.config.get("history") or []), entry]


def run_created_by(state: StageState, argv: list[str], json_form: bool) -> str:
    """A RUN's history text, as BuildKit's: the build args it ran with first (`|2 A=1 B=2`)."""
    args = sorted(f"{k}={v}" for k, v in state.arg_values().items()
                  if k not in PROXY_ARGS)
    prefix = f"|{len(args)} " + " ".join(args) + " " if args else ""
    command = go_list(argv) if json_form else " ".join(argv)
    return f"RUN {prefix}{command} # buildkit"
