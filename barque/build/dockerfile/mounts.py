"""RUN --mount: the CSV of key=value fields BuildKit reads (commands_runmount.go), checked
before expansion (parse time) and after it, with dockerfile2llb's defaults (cache id = its
target, bind read-only, secret at /run/secrets/<id> mode 0400)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from barque.build.dockerfile.expand import expand_word
from barque.structs import dataclass


def _go_quote(text: str) -> str:
    from barque.build.dockerfile.parser import go_quote
    return go_quote(text)


MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES = ("shared", "private", "locked")


def _csv_fields(spec: str) -> list[str]:
    """Go's encoding/csv reading of one record (quotes allowed around a field)."""
    import csv
    try:
        rows = list(csv.reader([spec], strict=True))
    except csv.Error as e:
        raise ValueError(f"failed to parse csv mounts: {e}") from None
    return rows[0] if rows else []


def check_mount_syntax(spec: str) -> None:
    """What BuildKit checks of a --mount before expansion: its CSV, and `from` (a stage
    or image name) not using variables."""
    for item in _csv_fields(spec):
        key, sep, value = item.partition("=")
        if sep and key.lower() == "from":
            idx = value.find("$")
            if idx != -1 and idx != len(value) - 1:
                raise ValueError(f"'{key.lower()}' doesn't support variable expansion, "
                                 "define alias stage instead")


@dataclass
class MountSpec:
    """One RUN --mount after expansion, with BuildKit's defaults filled in."""
    type: str = "bind"
    target: str = ""                 # absolute (a relative one is joined to WORKDIR)
    source: str = ""                 # bind: path in the context or `from`; secret: id
    from_: str = ""                  # a stage name/index or image (bind, cache)
    readonly: bool = True            # bind and secret/ssh: read-only unless rw
    id: str = ""                     # cache: defaults to the target; secret: to source or
    #                                  the target's base name
    sharing: str = ""                # cache: shared (default), private, locked
    mode: int | None = None          # cache/secret/ssh: the file or dir mode (secret 0400)
    uid: int | None = None
    gid: int | None = None
    required: bool = False           # secret/ssh: fail when not given
    env: str | None = None           # secret: also (or only) as this environment variable
    size: int = 0                    # tmpfs: bytes, 0 = unlimited


_MOUNT_KEYS = ("type", "from", "source", "target", "readonly", "id", "sharing", "required",
               "size", "mode", "uid", "gid", "src", "dst", "destination", "ro", "rw",
               "readwrite", "env")
_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
               "p": 1 << 50}


def _parse_bool(key: str, value: str) -> bool:
    # Go's strconv.ParseBool
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"invalid value for {key}: {value}")


def _ram_in_bytes(text: str) -> int:
    """docker/go-units RAMInBytes: "64m", "1.5g", "1024", "10 KiB"."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?) ?([kKmMgGtTpP]?)(?:[iI]?[bB])?", text)
    if not match:
        raise ValueError(f"invalid size: '{text}'")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def _suggest(value: str, options: tuple[str, ...]) -> str:
    from barque.build.dockerfile.parser import suggest
    return suggest(value, options, True)


def _set_mount_field(m: MountSpec, key: str, value: str, item: str) -> None:
    if key == "type":
        kind = value.lower()
        if kind not in MOUNT_TYPES:
            raise ValueError(f"unsupported mount type {_go_quote(value)}"
                             + _suggest(value, MOUNT_TYPES))
        m.type = kind
    elif key == "from":
        m.from_ = value
    elif key in ("source", "src"):
        m.source = value
    elif key in ("target", "dst", "destination"):
        m.target = value
    elif key in ("readonly", "ro"):
        m.readonly = _parse_bool(key, value)
    elif key in ("readwrite", "rw"):
        m.readonly = not _parse_bool(key, value)
    elif key == "required":
        if m.type not in ("secret", "ssh"):
            raise ValueError(f"unexpected key '{key}' for mount type '{m.type}'")
        m.required = _parse_bool(key, value)
    elif key == "size":
        if m.type != "tmpfs":
            raise ValueError(f"unexpected key '{key}' for mount type '{m.type}'")
        try:
            m.size = _ram_in_bytes(value)
        except ValueError:
            raise ValueError(f"invalid value for {key}: {value}") from None
    elif key == "id":
        m.id = value
    elif key == "sharing":
        sharing = value.lower()
        if sharing not in SHARING_MODES:
            raise ValueError(f"unsupported sharing value {_go_quote(value)}"
                             + _suggest(value, SHARING_MODES))
        m.sharing = sharing
    elif key in ("mode", "uid", "gid"):
        base = 8 if key == "mode" else 10
        try:
            number = int(value, base)
            if number < 0 or number >= 1 << 32 or value.startswith(("+", "-")):
                raise ValueError
        except ValueError:
            raise ValueError(f"invalid value {value} for {key}") from None
        setattr(m, key, number)
    elif key == "env":
        m.env = value
    else:
        raise ValueError(f"unexpected key '{key}' in '{item}'" + _suggest(key, _MOUNT_KEYS))


def parse_mount(spec: str, env: Mapping[str, str], escape: str = "\\",
                workdir: str = "/") -> MountSpec:
    """One --mount value (CSV of key=value), values expanded, checked and defaulted as
    BuildKit's parseMount and dispatchRunMounts do."""
    m = MountSpec()
    ro_auto = True
    for item in _csv_fields(spec):
        key, sep, value = item.partition("=")
        key = key.lower()
        if not sep:
            if key in ("readonly", "ro"):
                m.readonly, ro_auto = True, False
            elif key in ("readwrite", "rw"):
                m.readonly, ro_auto = False, False
            elif key == "required" and m.type in ("secret", "ssh"):
                m.required = True
            elif key == "required":
                raise ValueError(f"unexpected key '{key}' for mount type '{m.type}'")
            else:
                raise ValueError(f"invalid field '{item}' must be a key=value pair")
            continue
        _set_mount_field(m, key, expand_word(value, env, escape), item)
        if key in ("readonly", "ro", "readwrite", "rw"):
            ro_auto = False
    _check_mount(m)
    if ro_auto:
        m.readonly = m.type not in ("cache", "tmpfs")
    _mount_defaults(m, workdir)
    return m


def _check_mount(m: MountSpec) -> None:
    if m.type not in ("secret", "ssh", "cache"):
        for key in ("mode", "uid", "gid"):
            if getattr(m, key) is not None:
                raise ValueError(f"{key} not allowed for {_go_quote(m.type)} type mounts")
    if m.type == "secret":
        if m.from_:
            raise ValueError("secret mount should not have a from")
        if m.sharing:
            raise ValueError("secret mount should not define sharing")
        if not m.source and not m.target and not m.id:
            raise ValueError("invalid secret mount. one of source, target required")
        if m.source and m.id:
            raise ValueError("both source and id can't be set")
    if m.sharing and m.type != "cache":
        raise ValueError(f"invalid cache sharing set for {m.type} mount")


def _mount_defaults(m: MountSpec, workdir: str) -> None:
    import posixpath
    if m.type in ("secret", "ssh"):
        # BuildKit: the id is `source`, else `id`, else the target's base name; the file
        # goes to the target, else /run/secrets/<id>.
        if m.type == "secret":
            m.id = m.source or m.id or posixpath.basename(m.target)
            if not m.target and m.env is None:
                m.target = "/run/secrets/" + posixpath.basename(m.id)
            m.source = ""
            if m.mode is None:
                m.mode = 0o400
        else:
            m.id = m.id or "default"
            m.target = m.target or "/run/buildkit/ssh_agent.0"
            if m.mode is None:
                m.mode = 0o600
        m.uid = m.uid or 0
        m.gid = m.gid or 0
        return
    if m.type == "cache":  # BuildKit names the cache by the target as written
        m.id = m.id or posixpath.normpath(m.target or ".")
        m.sharing = m.sharing or "shared"
    # A relative (or empty) target is in the working directory.
    target = posixpath.normpath(posixpath.join("/", workdir, m.target))
    m.target = "/" + target.lstrip("/")
    if m.target == "/":
        raise ValueError(f"invalid mount target {_go_quote(m.target)}")


def run_mounts(flags: Mapping[str, list[str]], env: Mapping[str, str], escape: str = "\\",
               workdir: str = "/") -> list[MountSpec]:
    """RUN's --mount flags, expanded with `env` (ARGs and ENV in scope)."""
    return [parse_mount(spec, env, escape, workdir) for spec in flags.get("mount", [])]
