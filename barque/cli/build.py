"""`barque build` (docker build with BuildKit: `docker buildx build`'s flags, output and exit
codes) and `barque builder prune`. The CLI reads the flags and the context, hands the engine
BuildOptions (barque.engine.build.build) and prints its Events as BuildKit's progress.

A fully cached rebuild takes well under 0.1 s; this module's start stays small for it: the
engine, the context reader and rich (only for the tty view) are imported when used.
"""

from __future__ import annotations

import os
import sys

from barque.build.options import BuildOptions, CacheExport, Output

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from barque.cli.build_progress import Display
    from barque.engine.context import Engine
    from barque.engine.paths import Paths

EXIT_FAILED = 1               # buildx: every failed build, bad input included
EXIT_CANCELED = 130
PROGRESS_MODES = ("auto", "plain", "tty", "quiet")
NETWORK_MODES = ("default", "none", "host")
MAX_SECRET_SIZE = 500 * 1024  # BuildKit's


class BuildError(Exception):
    """Bad input found before the build starts: printed as `ERROR: <message>`."""


# --- reading the flags ------------------------------------------------------------------------

def progress_mode(ns: argparse.Namespace) -> str:
    mode = ns.progress or os.environ.get("BUILDKIT_PROGRESS") or "auto"
    if ns.quiet:
        return "quiet"
    if mode == "rawjson":
        raise BuildError("progress mode rawjson is not supported yet")
    if mode not in PROGRESS_MODES:
        raise BuildError(f"invalid progress mode {mode}")
    return mode


def key_values(values: list[str], from_env: bool) -> dict[str, str]:
    """`--build-arg`/`--label` lists: KEY=value; a bare KEY takes the environment's value
    (--build-arg: left out when unset) or "" (--label), as buildx's listToMap."""
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if sep:
            out[key] = value
        elif not from_env:
            out[key] = ""
        elif key in os.environ:
            out[key] = os.environ[key]
    return out


def csv_fields(text: str) -> list[str]:
    """A flag value in Go's CSV (`id=a,"src=/x,y"`): fields split at commas, quotes kept
    around commas."""
    import csv

    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as e:
        raise BuildError(f"failed to parse csv: {e}") from None
    return rows[0] if rows else []


def parse_outputs(values: list[str]) -> list[Output]:
    """`-o` entries as buildx reads them: `type=local,dest=DIR`, `type=tar,dest=FILE|-`,
    `type=image`; a bare `DIR` is a local output and `-` a tar on stdout."""
    outputs = []
    for value in values:
        if not value:
            continue
        fields = csv_fields(value)
        if len(fields) == 1 and fields[0] == value and not value.startswith("type="):
            outputs.append(Output("tar" if value == "-" else "local", value))
            continue
        kind, dest = "", None
        for field in fields:
            key, sep, val = field.partition("=")
            if not sep:
                raise BuildError(f"invalid value {field}")
            key = key.strip().lower()
            if key == "type":
                kind = val
            elif key == "dest":
                dest = val
            else:
                raise BuildError(f"output attribute {key!r} is not supported")
        if not kind:
            raise BuildError("type is required for output")
        if kind not in ("local", "tar", "image", "docker"):
            raise BuildError(f"output type {kind!r} is not supported (local, tar, image)")
        if kind in ("local", "tar") and not dest:
            raise BuildError(f"dest is required for {kind} exporter")
        outputs.append(Output("image" if kind == "docker" else kind, dest))
    return outputs


def parse_secrets(values: list[str], scratch: list[str], tmp_dir: str | None = None
                  ) -> dict[str, str]:
    """`--secret id=ID[,src=FILE|,env=VAR][,type=file|env]` to id -> host file. A secret
    from the environment is written to a private file in `tmp_dir` (listed in `scratch`,
    for the caller to remove) since the builder takes files; the rules are buildx's and
    BuildKit's (a bare id names an environment variable if one is set, else a file)."""
    out: dict[str, str] = {}
    for value in values:
        if not value:
            continue
        ident = source = env = kind = ""
        for field in csv_fields(value):
            key, sep, val = field.partition("=")
            if not sep:
                raise BuildError(f"invalid field '{field}' must be a key=value pair")
            key = key.lower()
            if key == "type":
                if val not in ("file", "env"):
                    raise BuildError(f'unsupported secret type "{val}"')
                kind = val
            elif key == "id":
                ident = val
            elif key in ("source", "src"):
                source = val
            elif key == "env":
                env = val
            else:
                raise BuildError(f"unexpected key '{key}' in '{field}'")
        if kind == "env" and not env:
            env, source = source, ""
        if not ident:
            raise BuildError("secret missing ID")
        if not env and not source:
            if ident in os.environ:
                env = ident
            else:
                source = ident
        out[ident] = _env_secret(os.environ.get(env, ""), scratch, tmp_dir) if env else \
            _file_secret(ident, source)
    return out


def _file_secret(ident: str, path: str) -> str:
    try:
        size = os.stat(path).st_size
    except OSError as e:
        raise BuildError(f"failed to stat {path}: {(e.strerror or str(e)).lower()}") from None
    if size > MAX_SECRET_SIZE:
        raise BuildError(f"secret {ident} too big. max size 500KiB")
    return os.path.abspath(path)


def _env_secret(value: str, scratch: list[str], tmp_dir: str | None) -> str:
    import tempfile

    if tmp_dir is not None:
        os.makedirs(tmp_dir, mode=0o700, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="build-secret-", dir=tmp_dir)   # 0600, only ours
    scratch.append(path)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return path


# What BuildKit's cache exporters take besides `dest` and `mode`: accepted, nothing to do
# (the local cache is always OCI media types in an image manifest, its layers as stored).
_CACHE_TO_IGNORED = frozenset({"oci-mediatypes", "image-manifest", "compression",
                               "compression-level", "force-compression"})
# Go's strconv.ParseBool, which BuildKit reads `ignore-error` with.
_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
             "0": False, "f": False, "F": False, "FALSE": False, "false": False,
             "False": False}


def _cache_attrs(value: str) -> dict[str, str]:
    """A --cache-to/--cache-from entry's fields as buildx reads them: `type` and the rest
    lowercased keys; a bare `REF` is `type=registry,ref=REF`."""
    fields = csv_fields(value)
    if len(fields) == 1 and "=" not in fields[0]:
        return {"type": "registry", "ref": fields[0]}
    attrs: dict[str, str] = {}
    for field in fields:
        key, sep, val = field.partition("=")
        if not sep:
            raise BuildError(f"invalid value {field}")
        attrs[key.strip().lower()] = val
    if not attrs.get("type"):
        raise BuildError(f'type required form> "{value}"')
    return attrs


def parse_cache_to(values: list[str]) -> list[CacheExport]:
    """--cache-to entries: `type=local,dest=DIR` or `type=registry,ref=REF` (a bare `REF`),
    `[,mode=min|max][,ignore-error=BOOL]`; `type=inline` is what every build does anyway;
    other exporters (gha, s3) are BuildKit's without them."""
    out = []
    for value in values:
        if not value:
            continue
        attrs = _cache_attrs(value)
        kind = attrs.pop("type")
        if kind == "inline":
            continue
        if kind == "local":
            dest = attrs.pop("dest", "")
            if not dest:
                raise BuildError("local cache exporter requires dest")
            dest = os.path.abspath(dest)
        elif kind == "registry":
            dest = _cache_ref(attrs.pop("ref", ""))
        else:
            raise BuildError(f'unknown cache exporter: "{kind}"')
        mode = attrs.pop("mode", "min") or "min"
        if mode not in ("min", "max"):
            raise BuildError(f'invalid cache mode "{mode}": min or max')
        ignore = attrs.pop("ignore-error", "false")
        if ignore not in _GO_BOOLS:
            raise BuildError(f'failed to parse ignore-error: strconv.ParseBool: parsing '
                             f'"{ignore}": invalid syntax')
        unknown = sorted(set(attrs) - _CACHE_TO_IGNORED)
        if unknown:
            raise BuildError(f"cache-to attribute {unknown[0]!r} is not supported")
        out.append(CacheExport(dest, mode, _GO_BOOLS[ignore], kind))
    return out


def _cache_ref(text: str) -> str:
    from barque.image import reference

    if not text:
        raise BuildError("registry cache exporter requires ref")
    try:
        return str(reference.parse(text))
    except reference.ReferenceError as e:
        raise BuildError(f"invalid reference {text!r}: {e}") from None


def local_cache_sources(values: list[str]) -> list[str]:
    """The directories of --cache-from's `type=local,src=DIR` entries."""
    out = []
    for value in values:
        if value and "=" in value:
            attrs = _cache_attrs(value)
            if attrs["type"] == "local":
                if not attrs.get("src"):
                    raise BuildError("local cache importer requires src")
                out.append(os.path.abspath(attrs["src"]))
    return out


def cache_source(item: str) -> str:
    """A --cache-from value as the image it names: `app:cache` or buildx's
    `type=registry,ref=app:cache`; `type=local` ones are local_cache_sources'; other kinds
    (gha, s3) are kept whole, for the builder to refuse."""
    if "=" not in item:
        return item
    attrs = dict(field.partition("=")[::2] for field in csv_fields(item))
    if attrs.get("type", "registry") == "registry" and attrs.get("ref"):
        return attrs["ref"]
    if attrs.get("type") == "local":
        return ""  # local_cache_sources'
    return item


def check_tags(tags: list[str]) -> None:
    from barque.image import reference

    for tag in tags:
        try:
            reference.parse(tag)
        except reference.ReferenceError as e:
            raise BuildError(f'invalid tag "{tag}": {e}') from None


def source_date_epoch(build_args: dict[str, str]) -> int | None:
    """SOURCE_DATE_EPOCH from --build-arg, else from the environment (buildx passes it on
    as a build arg)."""
    if "SOURCE_DATE_EPOCH" not in build_args and "SOURCE_DATE_EPOCH" in os.environ:
        build_args["SOURCE_DATE_EPOCH"] = os.environ["SOURCE_DATE_EPOCH"]
    text = build_args.get("SOURCE_DATE_EPOCH")
    if text is None or text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        raise BuildError(f"invalid SOURCE_DATE_EPOCH: {text}") from None
    if value < 0:
        raise BuildError(f"invalid SOURCE_DATE_EPOCH: {text}")
    return value


def options_from(ns: argparse.Namespace, scratch: list[str], tmp_dir: str | None = None
                 ) -> BuildOptions:
    """The flags as BuildOptions, the context's fields left for the caller (bad flags raise
    BuildError, before the context is read)."""
    if ns.network not in NETWORK_MODES:
        raise BuildError(f'network mode "{ns.network}" not supported by buildkit')
    check_tags(ns.tag)
    build_args = key_values(ns.build_arg, True)
    return BuildOptions(
        context_dir="", dockerfile=b"", tags=list(ns.tag), target=ns.target or None,
        build_args=build_args,
        labels=key_values(ns.label, False), no_cache=ns.no_cache,
        no_cache_filter=[name for item in ns.no_cache_filter for name in item.split(",")
                         if name],
        pull=ns.pull, platform=ns.platform or None,
        secrets=parse_secrets(ns.secret, scratch, tmp_dir), network=ns.network,
        cache_from=[ref for item in ns.cache_from if (ref := cache_source(item))],
        cache_from_local=local_cache_sources(ns.cache_from),
        cache_to=parse_cache_to(ns.cache_to),
        outputs=parse_outputs(ns.output), source_date_epoch=source_date_epoch(build_args))


# --- the command -------------------------------------------------------------------------------

def cmd_build(ns: argparse.Namespace, paths: Paths) -> int:
    """docker build: the progress on stderr, `-q`'s image ID on stdout; every failure exits
    1 with `ERROR: ...` (BuildKit's words), as buildx does."""
    scratch: list[str] = []
    display: Display | None = None
    source: tuple[bytes, str] | None = None
    try:
        mode = progress_mode(ns)
        if ns.iidfile:
            _remove(ns.iidfile)   # no stale ID left if this build fails
        # secrets from the environment: in the runroot (a tmpfs, as a rule), not on disk
        options = options_from(ns, scratch, paths.runroot)
        context = _open_context(ns, paths, options.build_args)
        try:
            options.context_dir, options.dockerfile = context.dir, context.dockerfile
            options.dockerfile_name = context.dockerfile_name
            source = (context.dockerfile, context.dockerfile_name)
            from barque.cli.build_progress import make_display

            display = make_display(mode)
            result = _run(paths, options, display)
        finally:
            context.close()
    except BuildError as e:
        return _fail(display, str(e))
    except KeyboardInterrupt:
        if display is not None:
            display.close(failed=True)
        sys.stderr.write("ERROR: failed to build: failed to solve: Canceled: context "
                         "canceled\n")
        return EXIT_CANCELED
    except Exception as e:   # noqa: BLE001 (the builder's, the engine's, the context's)
        if not _is_build_error(e):
            if display is not None:
                display.close(failed=True)   # the tty view's cursor back, at least
            raise
        return _fail(display, _message(e), e, source)
    finally:
        for path in scratch:
            _remove(path)
    _finish(display, result, options, mode)
    if ns.iidfile:
        with open(ns.iidfile, "w") as f:
            f.write(result.image_id or "")
    return 0


def _finish(display: Display, result: Any, options: BuildOptions, mode: str) -> None:
    from barque.image import reference

    names = [str(reference.parse(tag)) for tag in (result.tags or options.tags)]
    display.exported(result.image_id, names)
    display.close()
    if mode == "quiet" and result.image_id:
        print(result.image_id)


def _run(paths: Paths, options: BuildOptions, display: Display) -> Any:
    from barque.engine.build import build
    from barque.engine.context import Engine

    with Engine(paths) as engine:
        return build(engine, options, display)


def _open_context(ns: argparse.Namespace, paths: Paths, build_args: dict[str, str]) -> Any:
    """The context (Part B's reader). An archive is unpacked under the root's tmp, after
    what killed builds left there is removed; a directory is read where it is; a git URL
    is checked out under the root's tmp, an http(s) URL's body downloaded there."""
    from barque.build.context import keep_git_dir, open_context, reclaim

    tmp_dir = None
    if not os.path.isdir(ns.context):
        tmp_dir = os.path.join(paths.root, "tmp")
        os.makedirs(tmp_dir, mode=0o700, exist_ok=True)
        reclaim(tmp_dir)
    return open_context(ns.context, dockerfile=ns.file, stdin=sys.stdin.buffer,
                        tmp_dir=tmp_dir, keep_git=keep_git_dir(build_args))


def _is_build_error(e: Exception) -> bool:
    """Errors that end a build with `ERROR: ...`: the engine's, the builder's (its modules
    are barque.build.*), bad files."""
    from barque.engine.errors import EngineError

    module = type(e).__module__
    return isinstance(e, (EngineError, OSError, ValueError)) or module.startswith("barque.build")


def _message(e: Exception) -> str:
    if isinstance(e, OSError) and e.filename and e.strerror:
        return f"open {e.filename}: {e.strerror.lower()}"
    return str(e)


def _fail(display: Display | None, message: str, error: Exception | None = None,
          source: tuple[bytes, str] | None = None) -> int:
    """After a failure: the display's end (the failed steps' last lines), the Dockerfile
    lines the error points at, and `ERROR: failed to build: failed to solve: <why>` (only
    `ERROR: <why>` for what failed before the build began: flags, the context)."""
    if display is not None:
        display.close(failed=True)
    if error is not None and display is not None:
        if source is not None:
            sys.stderr.write(_excerpt(error, *source))
        if message.startswith("failed to solve"):
            message = f"failed to build: {message}"
        elif not message.startswith("failed to build"):
            message = f"failed to build: failed to solve: {message}"
    sys.stderr.write(f"ERROR: {message}\n")
    sys.stderr.flush()
    return EXIT_FAILED


def _excerpt(error: Exception, text: bytes, dockerfile_name: str) -> str:
    """The Dockerfile lines an error names (DockerfileError's `line`, the builder's error's
    `line`/`end_line`), as BuildKit prints a source location."""
    from barque.cli.build_progress import source_excerpt

    line = getattr(error, "line", 0)
    if not isinstance(line, int) or line < 1:
        return ""
    end = getattr(error, "end_line", None)
    name = getattr(error, "filename", None) or dockerfile_name
    return source_excerpt(text, os.path.basename(name) or "Dockerfile", line,
                          end if isinstance(end, int) else None)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        raise BuildError(f"remove {path}: is a directory") from None


# --- builder prune -----------------------------------------------------------------------------

def cmd_builder_prune(ns: argparse.Namespace, engine: Engine) -> int:
    """docker builder prune: the entries removed, then the space they took."""
    from barque.cli import formatting as fmt
    from barque.cli.containers import CommandError
    from barque.engine.system import prune_build_cache
    from barque.engine.units import ram_in_bytes

    until = None
    for item in ns.filter:
        key, sep, value = item.partition("=")
        if not sep:
            raise CommandError(f'bad format of filter (expected name=value): "{item}"')
        if key not in ("until", "unused-for"):
            raise CommandError(f"invalid filter '{key}'")
        until = _until(value, CommandError)
    try:
        keep = ram_in_bytes(ns.keep_storage) if ns.keep_storage else 0
    except ValueError:
        raise CommandError(f'invalid argument "{ns.keep_storage}" for "--keep-storage" '
                           f"flag: invalid size: '{ns.keep_storage}'") from None
    what = "all build cache" if ns.all else "all dangling build cache"
    if not ns.force and not _confirm(f"WARNING! This will remove {what}. Are you sure you "
                                     "want to continue?"):
        return 0
    removed, reclaimed = prune_build_cache(engine, all_entries=ns.all, until=until,
                                           keep_storage=keep)
    if removed:
        print("Deleted build cache objects:\n" + "\n".join(removed) + "\n")
    print(f"Total reclaimed space: {fmt.human_size(reclaimed)}")
    return 0


DU_TABLE = "table {{.ID}}\t{{.Reclaimable}}\t{{.Size}}\t{{.LastUsedAt}}"
DU_HEADERS = {"ID": "ID", "Reclaimable": "RECLAIMABLE", "Size": "SIZE",
              "LastUsedAt": "LAST ACCESSED", "CreatedAt": "CREATED AT", "Shared": "SHARED",
              "Description": "DESCRIPTION", "UsageCount": "USAGE COUNT", "Type": "TYPE"}


def cmd_builder_du(ns: argparse.Namespace, engine: Engine) -> int:
    """`docker builder du` (buildx du): the cache's entries, largest first, then the
    totals (not after a filter or a custom format)."""
    from barque.cli import formatting as fmt
    from barque.cli.containers import CommandError
    from barque.engine.system import build_cache_usage

    if ns.format and ns.verbose:
        raise CommandError("--format and --verbose cannot be used together")
    until = None
    for item in ns.filter:
        key, sep, value = item.partition("=")
        if not sep or key not in ("until", "unused-for"):
            raise CommandError(f"invalid filter '{item}'")
        until = _until(value, CommandError)
    entries = [e for e in build_cache_usage(engine) if until is None or e.last_used < until]
    entries.sort(key=lambda e: (e.size, e.id), reverse=True)
    pretty = ns.verbose or ns.format == "pretty"
    rows = [{"ID": e.id, "Reclaimable": "false" if e.in_use else "true",
             "Size": fmt.human_size(e.size) + ("*" if e.shared and not pretty else ""),
             "LastUsedAt": fmt.time_ago(e.last_used), "CreatedAt": _go_time(e.created_at),
             "Shared": "true" if e.shared else "false", "Description": e.description,
             "UsageCount": e.usage_count, "Type": "regular", "Mutable": "false"}
            for e in entries]
    if pretty:
        sys.stdout.write("".join(_du_pretty(row) for row in rows))
    else:
        sys.stdout.write(fmt.format_table(rows, ns.format, DU_TABLE, DU_HEADERS))
    if not ns.filter and ns.format in (None, "", "table", "pretty"):
        sys.stdout.write(_du_summary(entries))
    return 0


def _du_pretty(row: dict[str, Any]) -> str:
    return (f"ID:           {row['ID']}\n"
            f"Created at:   {row['CreatedAt']}\n"
            f"Mutable:      {row['Mutable']}\n"
            f"Reclaimable:  {row['Reclaimable']}\n"
            f"Shared:       {row['Shared']}\n"
            f"Size:         {row['Size']}\n"
            + (f"Description:  {row['Description']}\n" if row["Description"] else "")
            + f"Usage count:  {row['UsageCount']}\n"
            f"Last used:    {row['LastUsedAt']}\n"
            f"Type:         {row['Type']}\n\n")


def _du_summary(entries: list[Any]) -> str:
    """buildx's totals, as its tabwriter (tab padding, 8 wide) lays them out."""
    from barque.cli import formatting as fmt

    total = sum(e.size for e in entries)
    shared = sum(e.size for e in entries if e.shared)
    reclaimable = sum(e.size for e in entries if not e.in_use)
    lines = []
    if shared:
        lines += [("Shared:", shared), ("Private:", total - shared)]
    lines += [("Reclaimable:", reclaimable), ("Total:", total)]
    width = (max(len(label) for label, _ in lines) + 1 + 7) // 8 * 8
    return "".join(label + "\t" * ((width - len(label) + 7) // 8) + fmt.human_size(size) + "\n"
                   for label, size in lines)


def _go_time(ts: float) -> str:
    """Go's time.String() of a local time: `2026-12-05 05:50:42.123456789 +0000 UTC`."""
    import time

    t = time.localtime(ts)
    zone = time.strftime("%z", t)
    return (time.strftime("%Y-%m-%d %H:%M:%S", t) + f".{int(ts % 1 * 1e9):09d}".rstrip("0")
            .rstrip(".") + f" {zone} {time.strftime('%Z', t)}")


def _until(value: str, error: type[Exception]) -> float:
    from barque.engine.logs import parse_since

    try:
        return parse_since(value)
    except ValueError as e:
        raise error(str(e).replace('"since"', '"until"')) from None


def _confirm(question: str) -> bool:
    """The docker CLI's PromptForConfirmation: the question and ` [y/N] ` on one line."""
    sys.stdout.write(f"{question} [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")
