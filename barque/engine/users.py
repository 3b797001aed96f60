"""Users and groups as a container sees them: Docker's (runc's GetExecUser) reading of
`--user` against the container's own /etc/passwd and /etc/group, resolved safely inside its
root filesystem."""

from __future__ import annotations

from barque.linux import paths
from barque.storage.rootfs_files import RootfsError, read_rootfs_file
from barque.structs import dataclass


@dataclass(frozen=True)
class ExecUser:
    uid: int
    gid: int
    additional_gids: list[int]
    home: str


def secure_join(root: str, path: str) -> str:
    """Resolve `path` as if `root` were `/`: nothing can lead outside it. A string, so racy:
    for `cp`'s own checks only; what creates, reads or copies uses barque.linux.paths' fds."""
    try:
        return paths.secure_join(root, path)
    except OSError as e:
        raise RootfsError(f"resolving {path!r}: {e.strerror}") from None


def resolve_user(rootfs: str, spec: str) -> ExecUser:
    """Docker's (runc's GetExecUser) reading of `USER`/`--user`: name|uid[:group|gid]."""
    user, _, group = (spec or "").partition(":")
    uid, gid, home, name = 0, 0, "/", "root"
    passwd = [r for r in read_rootfs_file(rootfs, "/etc/passwd") if len(r) >= 7]
    if user:
        entry = next((r for r in passwd if r[0] == user), None)
        if entry is None and user.isdigit():
            entry = next((r for r in passwd if r[2] == user), None)
        if entry is not None:
            name, uid, gid, home = entry[0], int(entry[2]), int(entry[3]), entry[5]
        elif user.isdigit():
            uid, name = int(user), ""
        else:
            raise RootfsError(f"unable to find user {user}: no matching entries in passwd file")
    else:
        entry = next((r for r in passwd if r[2] == "0"), None)
        if entry is not None:
            home = entry[5]
    groups = [r for r in read_rootfs_file(rootfs, "/etc/group") if len(r) >= 4]
    if group:
        match = next((r for r in groups if r[0] == group), None)
        if match is None and group.isdigit():
            match = next((r for r in groups if r[2] == group), None)
        if match is not None:
            gid = int(match[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise RootfsError(f"unable to find group {group}: no matching entries in group file")
    # Supplementary groups as Docker sets them: the primary group always, and the /etc/group
    # entries listing a named user when no group was given (runc's implicit form only).
    listed = {int(r[2]) for r in groups
              if name and not group and name in r[3].split(",") and r[2].isdigit()}
    extra = sorted(listed | {gid})
    return ExecUser(uid=uid, gid=gid, additional_gids=extra, home=home or "/")


def group_id(rootfs: str, group: str) -> int:
    """`--group-add`: a gid, or a group name of the container's /etc/group."""
    if group.isdigit():
        return int(group)
    for record in read_rootfs_file(rootfs, "/etc/group"):
        if len(record) >= 3 and record[0] == group and record[2].isdigit():
            return int(record[2])
    raise RootfsError(f"Unable to find group {group}: no matching entries in group file")
