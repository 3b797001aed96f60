"""`--change` for `import` and `commit`: Dockerfile instructions applied to an image's
container config, as Docker's builder does (moby builder/dockerfile BuildFromConfig).

Only metadata instructions are valid; anything else is "<instr> is not a valid change command".
Arguments get Dockerfile word processing: quotes, backslash escapes, `$VAR`/`${VAR}` (with
`:-` and `:+`) from the config's Env as it stands, except in CMD/ENTRYPOINT/HEALTHCHECK.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
import signal
from typing import Any

VALID = ("cmd", "entrypoint", "env", "expose", "healthcheck", "label", "onbuild", "stopsignal",
         "user", "volume", "workdir")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}
_HEALTH_FLAGS = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
                 "start-interval": "StartInterval", "retries": "Retries"}


class ChangeError(ValueError):
    """A change Docker would refuse; the message is Docker's wording."""


# --- word processing ---------------------------------------------------------------------

def split_words(text: str) -> list[str]:
    """Whitespace-separated words, quotes and escapes kept (buildkit's parseWords)."""
    words, word, quote, i = [], "", "", 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and quote != "'" and i + 1 < len(text):
            word += text[i:i + 2]
            i += 2
            continue
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch.isspace():
            if word:
                words.append(word)
            word = ""
            i += 1
            continue
        word += ch
        i += 1
    if word:
        words.append(word)
    return words


def _lookup(env: list[str], name: str) -> str | None:
    found = None
    for entry in env:
        key, sep, value = entry.partition("=")
        if sep and key == name:
            found = value
    return found


def _expansion(text: str, i: int, env: list[str]) -> tuple[str, int]:
    """The value of the `$…` at text[i] and the index after it."""
    if i + 1 < len(text) and text[i + 1] == "{":
        end = text.find("}", i + 2)
        if end < 0:
            raise ChangeError(f"missing '}}' in {text!r}")
        inner = text[i + 2:end]
        match = _NAME_RE.match(inner)
        if not match:
            raise ChangeError(f"bad substitution in {text!r}")
        name, rest = match.group(), inner[match.end():]
        value = _lookup(env, name)
        if not rest:
            return value or "", end + 1
        if rest.startswith(":-"):
            return (value if value else expand(rest[2:], env)), end + 1
        if rest.startswith(":+"):
            return (expand(rest[2:], env) if value else ""), end + 1
        raise ChangeError(f"unsupported modifier ({rest[:2]}) in substitution {text!r}")
    match = _NAME_RE.match(text, i + 1)
    if not match:
        return "$", i + 1
    return _lookup(env, match.group()) or "", match.end()


def expand(word: str, env: list[str]) -> str:
    """Quote removal, escapes and variable expansion of one word (buildkit's shell lexer)."""
    out, i = "", 0
    while i < len(word):
        ch = word[i]
        if ch == "\\":
            if i + 1 < len(word):
                out += word[i + 1]
            i += 2
        elif ch == "'":
            end = word.find("'", i + 1)
            if end < 0:
                raise ChangeError("unexpected end of statement while looking for matching "
                                  "single-quote")
            out += word[i + 1:end]
            i = end + 1
        elif ch == '"':
            i += 1
            while True:
                if i >= len(word):
                    raise ChangeError("unexpected end of statement while looking for matching "
                                      "double-quote")
                ch = word[i]
                if ch == '"':
                    i += 1
                    break
                if ch == "\\" and i + 1 < len(word) and word[i + 1] in '"\\$':
                    out += word[i + 1]
                    i += 2
                elif ch == "$":
                    value, i = _expansion(word, i, env)
                    out += value
                else:
                    out += ch
                    i += 1
        elif ch == "$":
            value, i = _expansion(word, i, env)
            out += value
        else:
            out += ch
            i += 1
    return out


def _json_list(rest: str) -> list[str] | None:
    """The exec (JSON array of strings) form, or None for the shell form."""
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return value


def _pairs(instr: str, rest: str, env: list[str]) -> list[tuple[str, str]]:
    """ENV/LABEL arguments: `k=v k2=v2` or the legacy `k v with spaces`."""
    words = split_words(rest)
    if not words:
        raise ChangeError(f"{instr} requires at least one argument")
    if "=" not in words[0]:
        parts = rest.split(None, 1)
        if len(parts) < 2:
            raise ChangeError(f"{instr} must have two arguments")
        return [(expand(parts[0], env), expand(parts[1].strip(), env))]
    out = []
    for word in words:
        if "=" not in word:
            raise ChangeError(f"Syntax error - can't find = in {word!r}. Must be of the form: "
                              "name=value")
        key, _, value = word.partition("=")
        key = expand(key, env)
        if not key:
            raise ChangeError(f"{instr} names can not be blank")
        out.append((key, expand(value, env)))
    return out


# --- instructions ------------------------------------------------------------------------

def _shell_or_exec(instr: str, rest: str) -> list[str]:
    args = _json_list(rest)
    if args is not None:
        return args
    if not rest:
        raise ChangeError(f"{instr} requires at least one argument")
    return ["/bin/sh", "-c", rest]


def _one_arg(instr: str, rest: str, env: list[str]) -> str:
    if not rest:
        raise ChangeError(f"{instr} requires exactly one argument")
    return expand(rest, env)


def _ports(specs: list[str]) -> list[str]:
    out = []
    for spec in specs:
        port, _, proto = spec.partition("/")
        proto = proto.lower() or "tcp"
        if proto not in ("tcp", "udp", "sctp"):
            raise ChangeError(f"invalid proto: {proto}")
        start, sep, end = port.partition("-")
        if not start.isdigit() or (sep and not end.isdigit()):
            raise ChangeError(f"invalid containerPort: {port}" if not sep else
                              f"invalid range format for --expose: {port}")
        first, last = int(start), int(end) if sep else int(start)
        if first > 65535 or last > 65535 or last < first:
            raise ChangeError(f"invalid containerPort: {port}")
        out += [f"{p}/{proto}" for p in range(first, last + 1)]
    return out


def _signal_ok(text: str) -> bool:
    if text.isdigit():
        return 0 < int(text) <= 64
    name = text.upper().removeprefix("SIG")
    if name in {s.name.removeprefix("SIG") for s in signal.Signals}:
        return True
    match = re.fullmatch(r"RTMIN(\+(\d+))?|RTMAX(-(\d+))?", name)
    return match is not None and int(match.group(2) or match.group(4) or 0) <= 15


def parse_duration(text: str) -> int:
    """A Go duration ("1m30s", "500ms") in nanoseconds."""
    if text == "0":
        return 0
    pos, total = 0, 0.0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ChangeError(f'time: invalid duration "{text}"')
    return int(total)


def _next_word(text: str) -> tuple[str, str]:
    parts = text.split(None, 1)
    return (parts[0], parts[1].strip() if len(parts) > 1 else "") if parts else ("", "")


def _healthcheck(rest: str) -> dict[str, Any]:
    health: dict[str, Any] = {}
    word, rest = _next_word(rest)
    while word.startswith("--"):
        flag, _, value = word[2:].partition("=")
        if flag not in _HEALTH_FLAGS:
            raise ChangeError(f"Unknown flag: {flag}")
        if flag == "retries":
            if not value.isdigit():
                raise ChangeError(f'strconv.ParseInt: parsing "{value}": invalid syntax')
            if int(value):
                health["Retries"] = int(value)
        else:
            duration = parse_duration(value)
            if duration and duration < 1_000_000:
                raise ChangeError(f"{_HEALTH_FLAGS[flag]} cannot be less than 1ms")
            if duration:
                health[_HEALTH_FLAGS[flag]] = duration
        word, rest = _next_word(rest)
    kind = word.upper()
    if not kind:
        raise ChangeError("HEALTHCHECK requires at least one argument")
    if kind == "NONE":
        if rest or health:
            raise ChangeError("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    if kind != "CMD":
        raise ChangeError(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    if not rest:
        raise ChangeError("HEALTHCHECK CMD requires at least one argument")
    args = _json_list(rest)
    return {"Test": ["CMD", *args] if args is not None else ["CMD-SHELL", rest], **health}


def _apply(cfg: dict[str, Any], instr: str, rest: str, state: dict[str, bool]) -> None:
    env: list[str] = cfg.get("Env") or []
    if instr == "cmd":
        cfg["Cmd"] = _shell_or_exec("CMD", rest)
        state["cmd_set"] = True
    elif instr == "entrypoint":
        args = _json_list(rest)
        cfg["Entrypoint"] = args if args is not None else (["/bin/sh", "-c", rest] if rest
                                                            else None)
        if not state.get("cmd_set"):
            cfg["Cmd"] = None  # Docker: a new ENTRYPOINT drops an inherited CMD
    elif instr == "env":
        for key, value in _pairs("ENV", rest, env):
            env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
        cfg["Env"] = env
    elif instr == "label":
        labels = dict(cfg.get("Labels") or {})
        labels.update(_pairs("LABEL", rest, env))
        cfg["Labels"] = labels
    elif instr == "expose":
        words = [expand(w, env) for w in split_words(rest)]
        if not words:
            raise ChangeError("EXPOSE requires at least one argument")
        ports = dict(cfg.get("ExposedPorts") or {})
        ports.update({p: {} for p in _ports(words)})
        cfg["ExposedPorts"] = ports
    elif instr == "user":
        cfg["User"] = _one_arg("USER", rest, env)
    elif instr == "workdir":
        path = _one_arg("WORKDIR", rest, env)
        cfg["WorkingDir"] = posixpath.normpath(posixpath.join("/", cfg.get("WorkingDir") or "/",
                                                              path))
    elif instr == "volume":
        args = _json_list(rest)
        paths = args if args is not None else [expand(w, env) for w in split_words(rest)]
        if not paths:
            raise ChangeError("VOLUME requires at least one argument")
        volumes = dict(cfg.get("Volumes") or {})
        for path in paths:
            if not path.strip():
                raise ChangeError("VOLUME specified can not be an empty string")
            volumes[path] = {}
        cfg["Volumes"] = volumes
    elif instr == "stopsignal":
        sig = _one_arg("STOPSIGNAL", rest, env)
        if not _signal_ok(sig):
            raise ChangeError(f"Invalid signal: {sig}")
        cfg["StopSignal"] = sig
    elif instr == "onbuild":
        trigger = rest.split(None, 1)[0].upper() if rest else ""
        if not trigger:
            raise ChangeError("ONBUILD requires at least one argument")
        if trigger == "ONBUILD":
            raise ChangeError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if trigger in ("FROM", "MAINTAINER"):
            raise ChangeError(f"{trigger} isn't allowed as an ONBUILD trigger")
        cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), rest]
    elif instr == "healthcheck":
        cfg["Healthcheck"] = _healthcheck(rest)


def apply_changes(config: dict[str, Any] | None, changes: list[str]) -> dict[str, Any]:
    """A copy of the container config `config` with `changes` applied in order."""
    parsed = []
    for line_no, change in enumerate(changes, 1):
        text = change.strip()
        if not text or text.startswith("#"):
            continue
        instr, rest = _next_word(text)
        instr = instr.lower()
        if instr not in VALID:
            raise ChangeError(f"{instr} is not a valid change command")
        parsed.append((line_no, instr, rest))
    cfg = copy.deepcopy(config) if config else {}
    state: dict[str, bool] = {}
    for line_no, instr, rest in parsed:
        try:
            _apply(cfg, instr, rest, state)
        except ChangeError as e:
            raise ChangeError(f"dockerfile parse error on line {line_no}: {e}") from None
    return {k: v for k, v in cfg.items() if v is not None or k in (config or {})}
