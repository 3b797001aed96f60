"""What a build is asked to do (the CLI's flags, /build's query), and what it made."""

from __future__ import annotations

from barque.structs import dataclass, field


@dataclass
class Output:
    type: str                       # "image" (the default), "local", "tar"
    dest: str | None = None         # a directory (local), a file or "-" (tar)


@dataclass
class CacheExport:
    """A --cache-to entry: BuildKit's `local` cache exporter (cache_local.py) or its
    `registry` one."""

    dest: str                       # the directory (type local) or the reference (registry)
    mode: str = "min"               # min: the final stage's steps; max: every stage's
    ignore_error: bool = False      # a failed export only shown, the build still succeeds
    type: str = "local"             # local or registry (engine/build_cache.py)


@dataclass
class BuildOptions:
    context_dir: str                # a directory on the host: the context (a tarball or
    #                                 stdin context is unpacked to one first, see context.py)
    dockerfile: bytes               # the Dockerfile's text
    dockerfile_name: str = "Dockerfile"    # its name relative to the context, for messages
    #                                        and for `<name>.dockerignore`
    tags: list[str] = field(default_factory=list)
    target: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    no_cache_filter: list[str] = field(default_factory=list)   # stage names
    pull: bool = False
    platform: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)      # id -> host file
    network: str = "default"        # RUN's default: default (the default bridge), none, host
    cache_from: list[str] = field(default_factory=list)        # images or cache manifests
    cache_from_local: list[str] = field(default_factory=list)  # cache dirs (cache_local.py)
    cache_to: list[CacheExport] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)        # empty: an image
    source_date_epoch: int | None = None


@dataclass
class BuildResult:
    image_id: str | None            # sha256:..., None when only exported
    tags: list[str] = field(default_factory=list)
