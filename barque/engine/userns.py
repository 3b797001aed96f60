"""Docker's userns-remap: every container in a user namespace of its own whose root is an
unprivileged range of the host's ids, unless it opts out with `--userns=host`.

`<root>/daemon.json`'s "userns-remap" is dockerd's: "default" (the user `dockremap`, made
with its ranges when missing, as dockerd does), "USER", "USER:GROUP" or numeric ids; the
ranges come from /etc/subuid and /etc/subgid, the user's lines (by name or uid) in file
order, container ids 0.. laid over them one after another. Barque's own keys
"userns-remap-subuid" and "userns-remap-subgid" name other files than /etc/subuid and
/etc/subgid (tests give their own ranges without touching the host's files).

A container's maps are fixed when it is made: its snapshot records them (storage/snapshot.py),
and its spec at each start takes them from there.
"""

from __future__ import annotations

import json
import os
import pwd

from barque.engine.errors import EngineError
from barque.structs import dataclass

IdMap = list[tuple[int, int, int]]  # (inside, outside, count)

DEFAULT_USER = "dockremap"  # dockerd's name for "default"
SUBUID, SUBGID = "/etc/subuid", "/etc/subgid"
# dockerd's search for a free range for dockremap: 65536 ids from 100000 on.
_FIRST_FREE, _RANGE = 100000, 65536


@dataclass
class Remap:
    user: str      # as daemon.json names it (its user part; "dockremap" for "default")
    uids: IdMap
    gids: IdMap

    @property
    def root(self) -> tuple[int, int]:
        """The host's (uid, gid) of the container's root."""
        return self.uids[0][1], self.gids[0][1]


def _daemon_json(root: str) -> dict:
    path = os.path.join(root, "daemon.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise EngineError(f"unable to configure the Barque daemon with file {path}: {e}") \
            from None
    return data if isinstance(data, dict) else {}


def load(root: str) -> Remap | None:
    """The root's remap setting; None when daemon.json asks for none."""
    data = _daemon_json(root)
    setting = data.get("userns-remap") or ""
    if not setting:
        return None
    if not isinstance(setting, str):
        raise EngineError("userns-remap must be a string: \"default\" or USER[:GROUP]")
    files = (str(data.get("userns-remap-subuid") or SUBUID),
             str(data.get("userns-remap-subgid") or SUBGID))
    if setting == "default":
        _ensure_default_user(files)
        user, group = DEFAULT_USER, DEFAULT_USER
    else:
        user, _, group = setting.partition(":")
        group = group or user
    user_name, uid = _lookup_user(user)
    group_name, gid = _lookup_group(group)
    uids = _ranges(files[0], user_name, uid)
    gids = _ranges(files[1], group_name, gid)
    if not uids:
        raise EngineError(f"No subuid ranges found for user {user_name!r} in {files[0]}")
    if not gids:
        raise EngineError(f"No subgid ranges found for group {group_name!r} in {files[1]}")
    return Remap(user=user_name, uids=uids, gids=gids)


def _lookup_user(user: str) -> tuple[str, int]:
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except (KeyError, ValueError):
        raise EngineError(f"Error during uid lookup for {user!r}: user not found") from None
    return entry.pw_name, entry.pw_uid


def _lookup_group(group: str) -> tuple[str, int]:
    import grp

    try:
        entry = grp.getgrgid(int(group)) if group.isdigit() else grp.getgrnam(group)
    except (KeyError, ValueError):
        raise EngineError(f"Error during gid lookup for {group!r}: group not found") from None
    return entry.gr_name, entry.gr_gid


def _ranges(path: str, name: str, ident: int) -> IdMap:
    """The lines of `name` (or its id) in a subordinate id file, as consecutive maps."""
    maps: IdMap = []
    inside = 0
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise EngineError(f"reading {path}: {e}") from None
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] not in (name, str(ident)):
            continue
        try:
            start, count = int(parts[1]), int(parts[2])
        except ValueError:
            raise EngineError(f"{path}: invalid line {line!r}") from None
        if start < 0 or count <= 0:
            raise EngineError(f"{path}: invalid line {line!r}")
        maps.append((inside, start, count))
        inside += count
    return maps


def _ensure_default_user(files: tuple[str, str]) -> None:
    """dockerd's "default": the system user dockremap, with a free range of 65536 ids in
    both files when it has none (useradd and usermod do the editing, as for dockerd)."""
    host_files = files == (SUBUID, SUBGID)  # only the host's own are edited
    try:
        entry = pwd.getpwnam(DEFAULT_USER)
    except KeyError:
        if not host_files:
            raise EngineError(f"userns-remap default: no user {DEFAULT_USER}") from None
        _tool("useradd", "-r", "-s", "/bin/false", DEFAULT_USER)
        entry = pwd.getpwnam(DEFAULT_USER)
    if _ranges(files[0], DEFAULT_USER, entry.pw_uid) and \
            _ranges(files[1], DEFAULT_USER, entry.pw_gid):
        return
    if not host_files:
        raise EngineError(f"No subordinate id ranges for {DEFAULT_USER} in {files[0]} and "
                          f"{files[1]}")
    start = _free_start(files)
    end = start + _RANGE - 1
    _tool("usermod", "-v", f"{start}-{end}", "-w", f"{start}-{end}", DEFAULT_USER)


def _free_start(files: tuple[str, str]) -> int:
    """The first 65536 ids from 100000 on that no line of either file uses."""
    taken: list[tuple[int, int]] = []
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    parts = line.strip().split(":")
                    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                        taken.append((int(parts[1]), int(parts[1]) + int(parts[2])))
        except FileNotFoundError:
            continue
    start = _FIRST_FREE
    for begin, end in sorted(taken):
        if begin < start + _RANGE and start < end:
            start = end
    return start


def _tool(*argv: str) -> None:
    import subprocess  # here: only "default"'s first use runs a tool

    try:
        subprocess.run(argv, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        raise EngineError(f"userns-remap default: {' '.join(argv)}: {detail.strip()}") \
            from None


def check(remap: Remap | None, host_config: dict) -> None:
    """dockerd's checks of a container's settings against the remap (400s in its words)."""
    mode = str(host_config.get("UsernsMode") or "")
    if mode.split(":")[0] not in ("", "host"):
        raise EngineError(f"invalid USER mode: {mode}", status=400)
    if remap is None or mode == "host":
        return
    if host_config.get("Privileged"):
        raise EngineError("privileged mode is incompatible with user namespaces.  You must "
                          "run the container in the host namespace when running privileged "
                          "mode", status=400)
    if host_config.get("NetworkMode") == "host":
        raise EngineError("cannot share the host's network namespace when user namespaces "
                          "are enabled", status=400)
    if host_config.get("PidMode") == "host":
        raise EngineError("cannot share the host PID namespace when user namespaces are "
                          "enabled", status=400)


def root_of(id_maps: tuple[IdMap, IdMap] | None) -> tuple[int, int] | None:
    """The host's (uid, gid) of a user-namespaced container's root (its snapshot's maps);
    None: not one."""
    if id_maps is None:
        return None
    from barque.linux.idmap import shift

    uid, gid = shift(0, id_maps[0]), shift(0, id_maps[1])
    return None if uid is None or gid is None else (uid, gid)


def check_root_path(root: str, owner: tuple[int, int]) -> None:
    """dockerd's check at start-up: the runtime mounts the container's root from inside its
    user namespace, so every dir above the root dir must let the mapped root through."""
    path = os.path.abspath(root)
    while True:
        path = os.path.dirname(path)
        if path == "/":
            return
        st = os.stat(path)
        if st.st_uid == owner[0]:
            allowed = st.st_mode & 0o100
        elif st.st_gid == owner[1]:
            allowed = st.st_mode & 0o010
        else:
            allowed = st.st_mode & 0o001
        if not allowed:
            raise EngineError(f"a subdirectory in your graphroot path ({root}) restricts "
                              "access to the remapped root uid/gid; please fix by allowing "
                              "'o+x' permissions on existing directories")


def let_root_in(root: str, containers: str, container_dir: str,
                owner: tuple[int, int]) -> None:
    """The runtime mounts the container's root from inside its user namespace, where the
    mapped root has no rights over the host root's dirs: it must pass through the root dir,
    the containers dir and the container's own dir. The root dir (which also holds the state
    DB and the volumes) opens to the mapped root's group only (0710, as dockerd's remapped
    root dir); the containers dir, whose every entry is closed, to all (0711); the
    container's dir to its group (0710, as dockerd's). A root dir another remap's group
    already owns is an error: a dir has one group."""
    check_root_path(root, owner)
    gid = owner[1]
    st = os.stat(root)
    mode = st.st_mode & 0o7777
    if not mode & 0o001 and not (st.st_gid == gid and mode & 0o010):
        if st.st_gid not in (0, gid):
            raise EngineError(f"userns-remap: the root dir {root} belongs to group "
                              f"{st.st_gid}, not the remapped root's ({gid}); remove the "
                              "containers of the other remap or give the dir 'o+x'")
        os.chown(root, -1, gid)
        os.chmod(root, mode | 0o010)
    mode = os.stat(containers).st_mode & 0o7777
    if not mode & 0o001:
        os.chmod(containers, mode | 0o011)
    os.chown(container_dir, 0, gid)
    os.chmod(container_dir, 0o710)


def for_container(root: str, host_config: dict) -> Remap | None:
    """The remap a new container gets: the root's, unless it asked for `--userns=host`."""
    if str(host_config.get("UsernsMode") or "") == "host":
        return None
    return load(root)
