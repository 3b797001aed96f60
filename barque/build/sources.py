"""The files a COPY or ADD names: its source patterns matched inside a root (the build
context, or another stage's root filesystem: both hostile, resolved inside their root),
and their content checksum (BuildKit's: names, modes, owners and contents, never mtimes),
which keys the cache."""

from __future__ import annotations

from barque.structs import dataclass, field


@dataclass
class Source:
    pattern: str                     # as written in the instruction ("src/*.py", "a.txt")
    paths: list[str] = field(default_factory=list)  # what it matched: root-relative,
    #                                  posix, no leading "/", sorted; "" is the root itself
