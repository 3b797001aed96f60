"""How each Dockerfile instruction changes a stage's image config, as BuildKit does it:
ENV, ARG (scoping, build args, the predefined proxy ARGs), LABEL, EXPOSE, VOLUME, USER,
WORKDIR (relative to the previous one), CMD, ENTRYPOINT (which drops a CMD the stage did not
set itself), SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER; and the history entry each
instruction leaves (`created_by` in BuildKit's words, `empty_layer` when it made no layer).

The words are expanded (Part A's expand.py: BuildKit's shell lexer) with the ARGs in scope
and the stage's ENV, ENV winning, in the instructions the reference lists.
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


_expander: Callable[[str, Mapping[str, str], str], str] | None = None


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """A word with its variables replaced and its quotes and escapes processed."""
    global _expander
    if _expander is None:
        import importlib

        try:
            module: Any = importlib.import_module("barque.build.dockerfile.expand")
            _expander = module.expand_word
        except ModuleNotFoundError:  # until the Dockerfile lexer lands: commit's reader
            from barque.image import changes

            def fallback(w: str, e: Mapping[str, str], _escape: str) -> str:
                return changes.expand(w, [f"{k}={v}" for k, v in e.items()])

            _expander = fallback
    assert _expander is not None
    try:
        return _expander(word, env, escape)
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


def shell_or_exec(state: StageState, instr: Instruction) -> list[str]:
    """A RUN/CMD/ENTRYPOINT's argv: the JSON form as written, the shell form in SHELL."""
    if instr.json_form:
        return list(instr.args)
    return [*state.shell, " ".join(instr.args)]


def _pairs(state: StageState, instr: Instruction) -> list[tuple[str, str]]:
    args = instr.args
    if len(args) == 2 and "=" not in args[0]:  # the legacy `ENV k value with spaces`
        return [(state.word(args[0]), state.word(args[1]))]
    out = []
    for word in args:
        key, sep, value = word.partition("=")
        if not sep:
            raise ConfigError(f"Syntax error - can't find = in \"{word}\". Must be of the "
                              "form: name=value")
        key = state.word(key)
        if not key:
            raise ConfigError(f"{instr.keyword} names can not be blank")
        out.append((key, state.word(value)))
    return out


def declare_arg(state: StageState, word: str) -> str:
    """ARG name[=default] in a stage: a --build-arg wins, then the default, then (with no
    default) a meta ARG's value. Returns the history text."""
    name, sep, default = word.partition("=")
    value: str | None = state.word(default) if sep else None
    if name in state.build_args:
        value = state.build_args[name]
        state.used_build_args.add(name)
    elif not sep and name in state.meta_args:
        value = state.meta_args[name]
    state.args[name] = value
    return f"{name}={value}" if value is not None else name


def go_list(items: list[str]) -> str:
    """Go's %v of a []string: [a b c]."""
    return "[" + " ".join(items) + "]"


def go_quoted_list(items: list[str]) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    import json

    return "[" + " ".join(json.dumps(i, ensure_ascii=False) for i in items) + "]"


def apply(state: StageState, instr: Instruction) -> str | None:
    """Apply a metadata instruction to the config; the history entry's created_by, or
    None for an instruction that leaves none (ARG)."""
    kw = instr.keyword
    cfg = state.cfg
    if kw == "ENV":
        env = state.env_list()
        for key, value in _pairs(state, instr):
            env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
            cfg["Env"] = env
        return "ENV " + " ".join(f"{k}={v}" for k, v in _env_pairs_now(cfg, instr))
    if kw == "LABEL":
        pairs = _pairs(state, instr)
        labels = dict(cfg.get("Labels") or {})
        labels.update(pairs)
        cfg["Labels"] = labels
        return "LABEL " + " ".join(f"{k}={v}" for k, v in pairs)
    if kw == "ARG":
        texts = [declare_arg(state, w) for w in instr.args]
        return "ARG " + " ".join(texts)
    if kw == "EXPOSE":
        from barque.image.changes import ChangeError, _ports

        try:
            ports = _ports([state.word(w) for w in instr.args])
        except ChangeError as e:
            raise ConfigError(str(e)) from None
        exposed = dict(cfg.get("ExposedPorts") or {})
        exposed.update({p: {} for p in ports})
        cfg["ExposedPorts"] = exposed
        return "EXPOSE map[" + " ".join(f"{p}:{{}}" for p in sorted(set(ports))) + "]"
    if kw == "VOLUME":
        paths = list(instr.args) if instr.json_form else [state.word(w) for w in instr.args]
        volumes = dict(cfg.get("Volumes") or {})
        for path in paths:
            if not path.strip():
                raise ConfigError("VOLUME specified can not be an empty string")
            volumes[path] = {}
        cfg["Volumes"] = volumes
        return "VOLUME " + go_list(paths)
    if kw == "USER":
        cfg["User"] = state.word(instr.args[0])
        return "USER " + cfg["User"]
    if kw == "WORKDIR":
        path = state.word(instr.args[0])
        cfg["WorkingDir"] = posixpath.normpath(posixpath.join(state.workdir, path))
        return "WORKDIR " + cfg["WorkingDir"]
    if kw == "CMD":
        cfg["Cmd"] = shell_or_exec(state, instr)
        state.cmd_set = True
        return "CMD " + go_quoted_list(cfg["Cmd"])
    if kw == "ENTRYPOINT":
        cfg["Entrypoint"] = shell_or_exec(state, instr) if instr.args else None
        if not state.cmd_set:
            cfg["Cmd"] = None
        return "ENTRYPOINT " + go_quoted_list(cfg["Entrypoint"] or [])
    if kw == "SHELL":
        cfg["Shell"] = list(instr.args)
        return "SHELL " + go_list(cfg["Shell"])
    if kw == "STOPSIGNAL":
        from barque.image.changes import _signal_ok

        sig = state.word(instr.args[0])
        if not _signal_ok(sig):
            raise ConfigError(f"Invalid signal: {sig}")
        cfg["StopSignal"] = sig
        return "STOPSIGNAL " + sig
    if kw == "HEALTHCHECK":
        cfg["Healthcheck"] = healthcheck(instr)
        return "HEALTHCHECK " + _health_text(cfg["Healthcheck"])
    if kw == "ONBUILD":
        trigger = " ".join(instr.args)
        cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), trigger]
        return "ONBUILD " + trigger
    if kw == "MAINTAINER":
        state.config["author"] = state.word(instr.args[0])
        return "MAINTAINER " + state.config["author"]
    raise ConfigError(f"unknown instruction: {kw}")


def _env_pairs_now(cfg: dict[str, Any], instr: Instruction) -> list[tuple[str, str]]:
    """The ENV instruction's keys with their values as set (history shows them expanded)."""
    env = dict(e.partition("=")[::2] for e in cfg.get("Env") or [])
    keys = []
    if len(instr.args) == 2 and "=" not in instr.args[0]:
        keys = [instr.args[0]]
    else:
        keys = [w.partition("=")[0] for w in instr.args]
    return [(k, env.get(k, "")) for k in keys]


def healthcheck(instr: Instruction) -> dict[str, Any]:
    from barque.image.changes import ChangeError, _healthcheck

    flags = " ".join(f"--{k}={v}" for k, vs in instr.flags.items() for v in vs)
    if instr.json_form:
        import json

        rest = f"{instr.args[0]} {json.dumps(instr.args[1:])}"
    else:
        rest = " ".join(instr.args)
    try:
        return _healthcheck(f"{flags} {rest}".strip())
    except ChangeError as e:
        raise ConfigError(str(e)) from None


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
