"""Reading one instruction's arguments and flags as BuildKit's dockerfile2llb does, after
the parser (parser.py) checked their shape: ENV/LABEL pairs, ARG declarations, RUN's
--mount/--network, COPY/ADD's flags, HEALTHCHECK, EXPOSE, and the exec/shell forms.
Errors are ValueError with BuildKit's words; the builder adds the line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from barque.build.dockerfile.expand import ExpandError, Options, expand_word, expand_words, process
from barque.build.dockerfile.instructions import Heredoc, Instruction, Stage

# RUN --mount lives in its own module; the builder reads it here too.
from barque.build.dockerfile.mounts import MOUNT_TYPES as MOUNT_TYPES
from barque.build.dockerfile.mounts import SHARING_MODES as SHARING_MODES
from barque.build.dockerfile.mounts import MountSpec as MountSpec
from barque.build.dockerfile.mounts import check_mount_syntax as check_mount_syntax
from barque.build.dockerfile.mounts import parse_mount as parse_mount
from barque.build.dockerfile.mounts import run_mounts as run_mounts
from barque.structs import dataclass, field

# The instructions whose words the builder expands (the reference's "Environment
# replacement" list; ONBUILD's trigger is expanded when it runs). ARG's default is expanded
# too, but only when no --build-arg overrides it (see arg_decls). RUN, CMD and ENTRYPOINT
# are left to the shell, except RUN's --mount values.
EXPANDED = frozenset(("ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER",
                      "VOLUME", "WORKDIR"))
DEFAULT_SHELL = ("/bin/sh", "-c")


def expands(keyword: str) -> bool:
    """Whether the builder replaces variables in this instruction's words."""
    return keyword.upper() in EXPANDED


# --- Go's time.ParseDuration -------------------------------------------------------------

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
          "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")


def _suggest(value: str, options: tuple[str, ...]) -> str:
    from barque.build.dockerfile.parser import suggest
    return suggest(value, options, True)


def _go_quote(text: str) -> str:
    from barque.build.dockerfile.parser import go_quote
    return go_quote(text)


def parse_duration(text: str) -> int:
    """A Go duration ("1m30s", "1.5h", "-2s", "0") in nanoseconds; ValueError with Go's
    words otherwise."""
    orig, s, sign = text, text, 1
    if s[:1] in ("-", "+"):
        sign, s = (-1 if s[0] == "-" else 1), s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"time: invalid duration {_go_quote(orig)}")
    total = 0
    while s:
        match = _DURATION_PART.match(s)
        assert match is not None
        whole, frac, unit = match.groups()
        if not whole and not frac:
            raise ValueError(f"time: invalid duration {_go_quote(orig)}")
        if not unit:
            raise ValueError(f"time: missing unit in duration {_go_quote(orig)}")
        if unit not in _UNITS:
            raise ValueError(f"time: unknown unit {_go_quote(unit)} in duration "
                             f"{_go_quote(orig)}")
        scale = _UNITS[unit]
        # integers, as Go: 0.3s is 300000000ns exactly
        total += int(whole or 0) * scale + int(frac or 0) * scale // 10 ** len(frac or "")
        s = s[match.end():]
    return sign * total


def _parse_int32(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f"strconv.ParseInt: parsing {_go_quote(text)}: invalid syntax")
    value = int(text)
    if not -2**31 <= value < 2**31:
        raise ValueError(f"strconv.ParseInt: parsing {_go_quote(text)}: value out of range")
    return value


# --- HEALTHCHECK -------------------------------------------------------------------------

_HEALTH_FLAGS = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
                 "start-interval": "StartInterval"}


def healthcheck(instr: Instruction) -> dict[str, object]:
    """The image config's Healthcheck: {"Test": [...], "Interval": ns, ...} (zero values
    left out, as the image config's omitempty does)."""
    if not instr.args:
        raise ValueError("HEALTHCHECK requires at least one argument")
    kind, args = instr.args[0].upper(), instr.args[1:]
    if kind == "NONE":
        if args:
            raise ValueError("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    if kind != "CMD":
        raise ValueError(f"Unknown type {_go_quote(kind)} in HEALTHCHECK (try CMD)")
    if not instr.json_form and args:
        args = [" ".join(args)]
    if not args:
        raise ValueError("Missing command after HEALTHCHECK CMD")
    health: dict[str, object] = {"Test": ["CMD" if instr.json_form else "CMD-SHELL", *args]}
    for flag, key in _HEALTH_FLAGS.items():
        value = instr.flags.get(flag, [""])[-1]
        duration = parse_duration(value) if value else 0
        if duration and duration < 1_000_000:
            raise ValueError(f"Interval {_go_quote(flag)} cannot be less than 1ms")
        if duration:
            health[key] = duration
    retries = instr.flags.get("retries", [""])[-1]
    if retries:
        count = _parse_int32(retries)
        if count < 0:
            raise ValueError(f"--retries cannot be negative ({count})")
        if count:
            health["Retries"] = count
    return health


# --- FROM --------------------------------------------------------------------------------

def base_name(stage: Stage, meta_env: Mapping[str, str], escape: str = "\\") -> str:
    """FROM's image (or stage) expanded with the ARGs before the first FROM."""
    name = expand_word(stage.base, meta_env, escape)
    if not name:
        raise ValueError(f"base name ({stage.base}) should not be blank")
    return name


def platform(stage: Stage, meta_env: Mapping[str, str], escape: str = "\\") -> str | None:
    """FROM --platform expanded with the ARGs before the first FROM (None: not given)."""
    if not stage.platform:
        return None
    try:
        value = expand_word(stage.platform, meta_env, escape)
    except ExpandError as e:
        raise ValueError(f"failed to process arguments for platform {stage.platform}: "
                         f"{e}") from None
    if not value:
        raise ValueError(f"empty platform value from expression {stage.platform}")
    return value


# --- ENV, LABEL, ARG ---------------------------------------------------------------------

def _pairs(instr: Instruction, env: Mapping[str, str], escape: str) -> list[tuple[str, str]]:
    args = instr.args
    if not args:
        raise ValueError(f"{instr.keyword} requires at least one argument")
    if "=" not in args[0]:          # the legacy `ENV name value with spaces`
        raw = [(args[0], args[1] if len(args) > 1 else "")]
    else:
        raw = [(k, v) for k, _, v in (a.partition("=") for a in args)]
    # Every word sees the values from before the instruction (`ENV a=2 b=$a`: b is the
    # old a), as the reference says.
    out = []
    for key, value in raw:
        key = expand_word(key, env, escape)
        if not key:
            raise ValueError(f"{instr.keyword} names can not be blank")
        out.append((key, expand_word(value, env, escape)))
    return out


def env_pairs(instr: Instruction, env: Mapping[str, str],
              escape: str = "\\") -> list[tuple[str, str]]:
    """ENV's (name, value) pairs, expanded with `env` (the stage's ENV and ARGs)."""
    return _pairs(instr, env, escape)


def label_pairs(instr: Instruction, env: Mapping[str, str],
                escape: str = "\\") -> list[tuple[str, str]]:
    """LABEL's (key, value) pairs, expanded with `env`."""
    return _pairs(instr, env, escape)


def arg_decls(instr: Instruction) -> list[tuple[str, str | None]]:
    """ARG's (name, default) declarations, the default unexpanded (None: no default). The
    builder expands a default with expand_word only when no --build-arg sets the name."""
    out: list[tuple[str, str | None]] = []
    for word in instr.args:
        name, sep, value = word.partition("=")
        if not name:
            raise ValueError("ARG names can not be blank")
        out.append((name, value if sep else None))
    return out


# --- one-word instructions ---------------------------------------------------------------

def single_word(instr: Instruction, env: Mapping[str, str], escape: str = "\\") -> str:
    """WORKDIR's path, USER's user, STOPSIGNAL's signal, expanded."""
    if len(instr.args) != 1:
        raise ValueError(f"{instr.keyword} requires exactly one argument")
    return expand_word(instr.args[0], env, escape)


def stop_signal(instr: Instruction, env: Mapping[str, str], escape: str = "\\") -> str:
    """STOPSIGNAL's signal, checked as moby's signal.ParseSignal does."""
    sig = single_word(instr, env, escape)
    if not signal_ok(sig):
        raise ValueError(f"Invalid signal: {sig}")
    return sig


def signal_ok(text: str) -> bool:
    import signal
    if text.isdigit():
        return 0 < int(text) <= 64
    name = text.upper().removeprefix("SIG")
    if name in {s.name.removeprefix("SIG") for s in signal.Signals}:
        return True
    match = re.fullmatch(r"RTMIN(\+(\d+))?|RTMAX(-(\d+))?", name)
    return match is not None and int(match.group(2) or match.group(4) or 0) <= 15


def volumes(instr: Instruction, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """VOLUME's paths, expanded."""
    if not instr.args:
        raise ValueError("VOLUME requires at least one argument")
    out = []
    for word in instr.args:
        path = expand_word(word.strip(), env, escape)
        if not path:
            raise ValueError("VOLUME specified can not be an empty string")
        out.append(path)
    return out


# --- EXPOSE ------------------------------------------------------------------------------

def _port_number(text: str) -> int:
    if not text:
        raise ValueError("value is empty")
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError("invalid syntax")
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError("value out of range (0–65535)")
    return port


def _port_range(text: str) -> tuple[int, int]:
    if not text:
        raise ValueError("empty string specified for ports")
    start, sep, end = text.partition("-")
    first = _port_number(start)
    if not sep or start == end:
        return first, first
    last = _port_number(end)
    if last < first:
        raise ValueError("invalid port range: " + text)
    return first, last


def parse_port(raw: str) -> list[str]:
    """One EXPOSE spec ("80", "80/udp", "8000-8002/tcp", even "ip:host:ctr") as the
    "port/proto" list BuildKit's portSpecs gives."""
    parts = raw.split(":")
    ip, host, ctr = (":".join(parts[:-2]), parts[-2], parts[-1]) if len(parts) >= 3 else \
        ("", parts[0], parts[1]) if len(parts) == 2 else ("", "", parts[0])
    port, _, proto = ctr.partition("/")
    if not port:
        raise ValueError(f"invalid port: {_go_quote(raw)}: no port specified")
    if proto.lower() not in ("", "tcp", "udp", "sctp"):
        raise ValueError(f"invalid port: {_go_quote(raw)}: invalid proto: {proto}")
    proto = proto or "tcp"
    if ip:
        import ipaddress
        bare = ip[1:-1] if ip.startswith("[") and ip.endswith("]") else ip
        try:
            ipaddress.ip_address(bare)
        except ValueError:
            raise ValueError("invalid IP address: " + ip) from None
    try:
        first, last = _port_range(port)
    except ValueError:
        raise ValueError("invalid containerPort: " + port) from None
    if host:
        try:
            hfirst, hlast = _port_range(host)
        except ValueError:
            raise ValueError("invalid hostPort: " + host) from None
        if last - first != hlast - hfirst and last != first:
            raise ValueError("invalid ranges specified for container and host Ports: "
                             f"{port} and {host}")
    return [f"{p}/{proto.lower()}" for p in range(first, last + 1)]


def ports(instr: Instruction, env: Mapping[str, str] | None = None,
          escape: str = "\\") -> list[str]:
    """EXPOSE's ports as "port/proto" (words expanded with `env` and split as BuildKit
    does)."""
    if not instr.args:
        raise ValueError("EXPOSE requires at least one argument")
    out: list[str] = []
    for word in sorted(instr.args):
        for spec in expand_words(word, env or {}, escape):
            out += parse_port(spec)
    return out


# --- CMD, ENTRYPOINT, RUN, SHELL ---------------------------------------------------------

def shell_or_exec(instr: Instruction) -> tuple[list[str], bool]:
    """The command words and whether they are the exec (JSON) form; a shell form is one
    string that with_shell() wraps."""
    args = list(instr.args[1:] if instr.keyword == "HEALTHCHECK" else instr.args)
    if not instr.json_form and args:
        args = [" ".join(args)]
    return args, instr.json_form


def with_shell(args: list[str], shell: list[str] | None) -> list[str]:
    """A shell form's command line behind the stage's SHELL (default /bin/sh -c)."""
    return [*(shell or DEFAULT_SHELL), " ".join(args)]


def command(instr: Instruction, shell: list[str] | None) -> list[str] | None:
    """CMD's or ENTRYPOINT's value for the image config: the exec form as is, the shell
    form behind SHELL; ENTRYPOINT [] is None (no entrypoint), as BuildKit."""
    args, json_form = shell_or_exec(instr)
    if json_form:
        return None if (instr.keyword == "ENTRYPOINT" and not args) else args
    return with_shell(args, shell)


def shell(instr: Instruction) -> list[str]:
    """SHELL's new shell (exec form only)."""
    if not instr.args:
        raise ValueError("SHELL requires at least one argument")
    if not instr.json_form:
        raise ValueError("SHELL requires the arguments to be in JSON form")
    return list(instr.args)


@dataclass
class InlineFile:
    """A file a RUN needs made for it: a heredoc script with a `#!` line."""
    path: str        # where it is mounted read-only in the container
    data: str
    mode: int = 0o755


@dataclass
class RunCommand:
    args: list[str]                       # the process's argv
    files: list[InlineFile] = field(default_factory=list)


def run_command(instr: Instruction, shell: list[str] | None) -> RunCommand:
    """RUN's process as BuildKit's dispatchRun makes it: the exec form as is; the shell
    form behind SHELL; `RUN <<EOF` alone runs the heredoc's body with the shell (or, when
    it starts with `#!`, as a script mounted at /dev/pipes/<name>); heredocs used by a
    command line (`RUN cat <<EOF > f`) go to the shell as a heredoc script."""
    args, json_form = shell_or_exec(instr)
    files: list[InlineFile] = []
    if instr.heredocs:
        if len(args) != 1 or json_form:
            raise ValueError(f"parsing produced an invalid run command: {args}")
        from barque.build.dockerfile.parser import parse_heredoc
        first = instr.heredocs[0]
        if parse_heredoc(args[0]) is not None:
            if first.content.startswith("#!"):
                # The name is the file's name in its own directory, never a path out of it.
                name = first.name.replace("/", "_")
                path = "/dev/pipes/" + (name if name not in ("", ".", "..") else "_")
                return RunCommand([path], [InlineFile(path, first.content)])
            args = [first.content]
        else:
            args = [args[0] + "".join(f"\n{d.content}{d.name}" for d in instr.heredocs)]
    if json_form:
        return RunCommand(args, files)
    return RunCommand(with_shell(args, shell), files)


def heredoc_content(doc: Heredoc, env: Mapping[str, str]) -> str:
    """A COPY/ADD heredoc's file content: variables expanded unless the delimiter was
    quoted (`<<"EOF"`); quotes are kept, backslash escapes apply (BuildKit's ExpandRaw)."""
    if not doc.expand:
        return doc.content
    return process(doc.content, env, Options(skip_quotes=True)).word


def display(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """An instruction as the progress shows it: known variables replaced, the rest as
    written (BuildKit's processCmdEnv); the text itself if the lexer refuses it."""
    try:
        return process(text, env, Options(escape=escape, raw_quotes=True,
                                          skip_unset=True)).word
    except ExpandError:
        return text


# --- RUN --network, --security -----------------------------------------------------------

def run_network(flags: Mapping[str, list[str]]) -> str:
    """RUN --network: "default", "none" or "host"."""
    value = flags.get("network", ["default"])[-1]
    if value not in ("default", "none", "host"):
        raise ValueError(f"invalid network mode {_go_quote(value)}")
    return value


def run_security(flags: Mapping[str, list[str]]) -> str:
    """RUN --security: "sandbox" or "insecure"."""
    value = flags.get("security", ["sandbox"])[-1]
    if value not in ("sandbox", "insecure"):
        raise ValueError(f"security {_go_quote(value)} is not valid")
    return value


# --- COPY and ADD ------------------------------------------------------------------------

@dataclass
class CopyFlags:
    from_: str = ""
    chown: str = ""
    chmod: str = ""                  # as written, expanded: octal or symbolic (see chmod())
    link: bool = False
    parents: bool = False
    excludes: list[str] = field(default_factory=list)
    checksum: str = ""               # ADD only
    keep_git_dir: bool | None = None  # ADD only
    unpack: bool | None = None       # ADD only: None = ADD's default (local tars unpacked)


def copy_flags(instr: Instruction, env: Mapping[str, str] | None = None,
               escape: str = "\\") -> CopyFlags:
    """COPY's or ADD's flags: unknown or repeated ones refused (as the parser does),
    --chown/--chmod/--checksum expanded with `env` when given, --chmod checked; --from is
    a stage name, index or image as written (BuildKit refuses variables there)."""
    from barque.build.dockerfile.parser import FLAGS
    known = FLAGS[instr.keyword]
    for name, values in instr.flags.items():
        if name not in known:
            raise ValueError(f"unknown flag: --{name}" + _suggest(name, tuple(known)))
        if len(values) > 1 and known[name] != "m":
            raise ValueError(f"duplicate flag specified: --{name}")

    def text(name: str) -> str:
        value = instr.flags.get(name, [""])[-1]
        return expand_word(value, env, escape) if env is not None and value else value

    def boolean(name: str) -> bool | None:
        values = instr.flags.get(name)
        return None if values is None else values[-1] == "true"

    source = instr.flags.get("from", [""])[-1]
    if source and process(source, {}).word != source:
        raise ValueError("variable expansion is not supported for --from, define a new "
                         "stage with FROM using ARG from global scope as a workaround")
    flags = CopyFlags(from_=source, chown=text("chown"), chmod=text("chmod"),
                      link=bool(boolean("link")), parents=bool(boolean("parents")),
                      excludes=list(instr.flags.get("exclude", [])),
                      checksum=text("checksum"), keep_git_dir=boolean("keep-git-dir"),
                      unpack=boolean("unpack"))
    if flags.chmod:
        chmod(flags.chmod)
    if flags.checksum and instr.keyword == "COPY":
        raise ValueError("checksum can't be specified for COPY")
    return flags


def copy_sources(instr: Instruction, env: Mapping[str, str],
                 escape: str = "\\") -> tuple[list[str], list[Heredoc], str]:
    """COPY's or ADD's source paths and heredoc sources (in order of the heredocs) and the
    destination, expanded."""
    from barque.build.dockerfile.parser import parse_heredoc
    if len(instr.args) < 2:
        raise ValueError(f"{instr.keyword} requires at least two arguments, but only one was "
                         "provided. Destination could not be determined")
    docs = {doc.name: doc for doc in instr.heredocs}
    paths: list[str] = []
    heredocs: list[Heredoc] = []
    for word in instr.args[:-1]:
        opened = None if instr.json_form else parse_heredoc(word)
        if opened is not None and opened.name in docs:
            heredocs.append(docs[opened.name])
        else:
            paths.append(expand_word(word, env, escape))
    return paths, heredocs, expand_word(instr.args[-1], env, escape)


def is_git_source(src: str) -> bool:
    """A git repository URL (BuildKit's ParseGitRef, roughly): git@host:..., git://, ssh://,
    or an http(s) URL whose path ends in .git."""
    if src.startswith(("git@", "git://", "ssh://")):
        return True
    if src.startswith(("http://", "https://")):
        return src.split("#", 1)[0].rstrip("/").endswith(".git")
    return False


def is_http_source(src: str) -> bool:
    """ADD's http(s) download source (a git URL is not one)."""
    return src.startswith(("http://", "https://")) and not is_git_source(src)


def check_add_checksum(flags: CopyFlags, sources: list[str]) -> None:
    """ADD --checksum's rules: one source, downloaded over http(s) or git."""
    if not flags.checksum:
        return
    if len(sources) != 1:
        raise ValueError("checksum can't be specified for multiple sources")
    if not is_http_source(sources[0]) and not is_git_source(sources[0]):
        raise ValueError("checksum requires HTTP(S) or Git sources")


def chmod(text: str) -> int | str:
    """--chmod's value checked as BuildKit does: an int for octal ("755"), the text for a
    symbolic mode ("u+x,go-w", applied per entry by barque/build/modes.py); ValueError
    with BuildKit's words otherwise."""
    from barque.build import modes
    octal_error = (f"invalid chmod parameter: '{text}'. it should be octal string and "
                   "between 0 and 07777")
    if re.fullmatch(r"[0-7]+", text):
        value = int(text, 8)
        if value > 0o7777:
            raise ValueError(octal_error)
        return value
    if text[:1].isdigit():
        raise ValueError(octal_error)
    try:
        modes.Chmod(text)
    except modes.ChmodError:
        raise ValueError("invalid syntax") from None
    return text
