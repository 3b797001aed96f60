"""Dockerfile text to a `Dockerfile` of stages, as BuildKit's parser reads it
(frontend/dockerfile/parser and instructions).

Two passes, as BuildKit: first the lines (parser directives, comments, continuations,
heredoc bodies) become nodes — errors there carry only their line —, then each node is
checked as an instruction (arguments, flags, FROM's stage name), and those errors read
`dockerfile parse error on line N: ...`. Words stay unexpanded: expand.py replaces their
variables when the builder reaches them.
"""

from __future__ import annotations

import re

from barque.build.dockerfile.expand import ExpandError, Options, process
from barque.build.dockerfile.instructions import (
    Dockerfile,
    DockerfileError,
    Heredoc,
    Instruction,
    Stage,
)
from barque.structs import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

INSTRUCTIONS = ("ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM",
                "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL",
                "USER", "VOLUME", "WORKDIR")
HEREDOC_INSTRUCTIONS = ("ADD", "COPY", "RUN")
DIRECTIVES = ("syntax", "escape", "check")
MAX_LINE = 65535  # BuildKit's scanner refuses longer lines

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=(.*)\Z")
_GO_SPACE = "\t\n\f\r "  # RE2's \s
_HEREDOC = re.compile(r"(\d*)<<(-?)[\t\n\f\r ]*([^<]*)\Z")
_LEADING_TABS = re.compile(r"^\t+", re.M)
_STAGE_NAME = re.compile(r"[a-z][a-z0-9\-_.]*\Z")
_ONBUILD_PREFIX = re.compile(r"^\s*ONBUILD\s*", re.I)

# The flags each instruction accepts: "b" a boolean (`--link`, `--link=false`), "s" a string
# given once, "m" a string that may repeat (`--mount`, `--exclude`).
FLAGS: dict[str, dict[str, str]] = {
    "ADD": {"chown": "s", "chmod": "s", "link": "b", "keep-git-dir": "b", "checksum": "s",
            "unpack": "b", "exclude": "m"},
    "COPY": {"chown": "s", "from": "s", "chmod": "s", "link": "b", "exclude": "m",
             "parents": "b"},
    "FROM": {"platform": "s"},
    "RUN": {"mount": "m", "network": "s", "security": "s", "device": "m"},
    "HEALTHCHECK": {"interval": "s", "timeout": "s", "start-period": "s",
                    "start-interval": "s", "retries": "s"},
}
NETWORKS = ("default", "none", "host")
SECURITY = ("sandbox", "insecure")


class _ParseError(Exception):
    """An instruction's own error, before `dockerfile parse error on line N:` is added."""


@dataclass
class _Node:
    keyword: str            # as written
    original: str           # the logical line, continuations joined
    flags: list[str]
    args: list[str]
    json_form: bool
    start: int
    end: int = 0
    heredocs: list[Heredoc] = field(default_factory=list)
    child: _Node | None = None   # ONBUILD's trigger


# --- directives and lines ----------------------------------------------------------------

class _Directives:
    """`# escape=`, `# syntax=`, `# check=`: only at the very top, each once."""

    def __init__(self) -> None:
        self.done = False
        self.values: dict[str, str] = {}
        self.set_escape("\\")

    def set_escape(self, token: str) -> None:
        if token not in ("`", "\\"):
            raise _ParseError(f"invalid escape token '{token}' does not match ` or \\")
        self.escape = token
        e = re.escape(token)
        # The escape token ends a line to continue it, unless it is itself escaped;
        # a token alone on its line continues too.
        self.continuation = re.compile(rf"([^{e}]){e}[ \t]*\Z|^{e}[ \t]*\Z")

    def feed(self, line: str) -> bool:
        """Take `line` (left-trimmed, no newline) as a possible directive."""
        if self.done:
            return False
        if not line.startswith("#"):
            self.done = True
            return False
        match = _DIRECTIVE.match(line[1:].lstrip())
        name = match.group(1).lower() if match else ""
        value = _directive_value(match.group(2)) if match else ""
        if not value or name not in DIRECTIVES:
            self.done = True
            return False
        if name in self.values:
            raise _ParseError(f"only one {name} parser directive can be used")
        self.values[name] = value
        if name == "escape":
            self.set_escape(value)
        return True


def _directive_value(rest: str) -> str:
    """What BuildKit's `\\s*=\\s*(.+?)\\s*$` captures after the `=`: the text without its
    surrounding whitespace, or, when there is only whitespace, its last character (the
    regex backs off one)."""
    value = rest.strip(_GO_SPACE)
    return value or rest[-1:]


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _process_line(d: _Directives, raw: str, strip_left: bool) -> str:
    line = raw.rstrip("\r\n")
    if strip_left:
        line = line.lstrip()
    d.feed(line)
    return "" if _is_comment(line) else line


def _trim_continuation(d: _Directives, line: str) -> tuple[str, bool]:
    """The line without its continuation token, and whether the instruction ends here."""
    if d.continuation.search(line):
        return d.continuation.sub(lambda m: m.group(1) or "", line), False
    return line, True


def _byte_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def _split_lines(text: str) -> list[str]:
    """Lines with their endings kept (BuildKit's scanLines)."""
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


# --- words -------------------------------------------------------------------------------

def parse_words(rest: str, escape: str) -> list[str]:
    """Whitespace-separated words, quotes and escapes kept (BuildKit's parseWords), for
    ENV, LABEL and ARG."""
    words: list[str] = []
    word, quote, blank_ok, in_word = "", "", False, False
    i, n = 0, len(rest)
    while i < n:
        ch = rest[i]
        if not in_word and not quote:
            if ch.isspace():
                i += 1
                continue
            in_word = True
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == n:
                    break
                word += ch
                i += 1
                ch = rest[i]
            word += ch
            i += 1
            continue
        if ch.isspace():
            if blank_ok or word:
                words.append(word)
            word, blank_ok, in_word = "", False, False
            i += 1
            continue
        if ch in "'\"":
            quote, blank_ok = ch, True
        elif ch == escape:
            if i + 1 == n:
                break
            word += ch
            i += 1
            ch = rest[i]
        word += ch
        i += 1
    if in_word and (blank_ok or word):
        words.append(word)
    return words


def _extract_flags(line: str, escape: str) -> tuple[str, list[str]]:
    """The leading `--name[=value]` words (quotes removed) and the rest of the line."""
    words: list[str] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i].isspace():
            i += 1
        if i >= n:
            return "", words
        if not line.startswith("--", i):
            return line[i:], words
        word, quote, blank_ok = "", "", False
        while i < n:
            ch = line[i]
            if quote:
                if ch == quote:
                    quote = ""
                    i += 1
                    continue
            elif ch.isspace():
                break
            elif ch in "'\"":
                quote, blank_ok = ch, True
                i += 1
                continue
            if ch == escape:
                if i + 1 == n:
                    i += 1
                    continue
                i += 1
                ch = line[i]
            word += ch
            i += 1
        if word == "--":
            return (line[i:], words) if i < n else ("", words)
        if blank_ok or word:
            words.append(word)


def _no_constant(name: str) -> None:
    raise ValueError(name)


def _json_array(rest: str) -> list[str] | None:
    """The exec form's strings; None when `rest` is not a JSON array (shell form)."""
    rest = rest.lstrip()
    if not rest.startswith("["):
        return None
    import json
    try:
        value = json.loads(rest, parse_constant=_no_constant)  # Go's JSON: no NaN
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise _ParseError("when using JSON array syntax, arrays must be comprised of "
                          "strings only")
    return value


def _name_values(rest: str, keyword: str, escape: str) -> list[str]:
    """ENV/LABEL: `k=v ...` as words, or the legacy `k value with spaces` as [k, value]."""
    words = parse_words(rest, escape)
    if not words:
        return []
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise _ParseError(f"{keyword} must have two arguments")
        return parts
    for word in words:
        if "=" not in word:
            raise _ParseError(f"Syntax error - can't find = in {go_quote(word)}. "
                              "Must be of the form: name=value")
    return words


def _split_first(rest: str) -> tuple[str, str]:
    """The first word (up to any whitespace) and the rest after the whitespace."""
    end = 0
    while end < len(rest) and not rest[end].isspace():
        end += 1
    return rest[:end], rest[end:].lstrip()


def _args(keyword: str, rest: str, escape: str) -> tuple[list[str], bool]:
    """An instruction's arguments as BuildKit's line parsers split them."""
    if keyword in ("ENV", "LABEL"):
        return _name_values(rest, keyword, escape), False
    if keyword == "ARG":
        return parse_words(rest, escape), False
    if keyword in ("RUN", "CMD", "ENTRYPOINT", "SHELL"):
        if not rest:
            return [], False
        array = _json_array(rest)
        return (array, True) if array is not None else ([rest], False)
    if keyword in ("ADD", "COPY", "VOLUME"):
        array = _json_array(rest)
        if array is not None:
            return array, True
        return (_WHITESPACE.split(rest) if rest else []), False
    if keyword in ("EXPOSE", "FROM"):
        return (_WHITESPACE.split(rest) if rest else []), False
    if keyword in ("MAINTAINER", "STOPSIGNAL", "USER", "WORKDIR"):
        return ([rest] if rest else []), False
    if keyword == "HEALTHCHECK":
        kind, cmd = _split_first(rest)
        if not kind:
            return [], False
        array = _json_array(cmd) if cmd else None
        if array is not None:
            return [kind, *array], True
        return ([kind, cmd] if cmd else [kind]), False
    return [], False  # unknown instructions: refused in the second pass


def _new_node(line: str, d: _Directives, start: int) -> _Node:
    stripped = line.strip()
    parts = _WHITESPACE.split(stripped, maxsplit=1)
    keyword, rest = parts[0], ""
    flags: list[str] = []
    if len(parts) == 2:
        rest, flags = _extract_flags(parts[1], d.escape)
        rest = rest.strip()
    upper = keyword.upper()
    if upper == "ONBUILD":
        child = _new_node(rest, d, start) if rest else None
        return _Node(keyword, line, flags, [rest] if rest else [], False, start, child=child)
    args, json_form = _args(upper, rest, d.escape)
    return _Node(keyword, line, flags, args, json_form, start)


# --- heredocs ----------------------------------------------------------------------------

def _lex_words(text: str, raw_quotes: bool = False,
               raw_escapes: bool = False) -> list[str] | None:
    """`text`'s shell words, variables left as written; None if the lexer refuses it."""
    opts = Options(raw_quotes=raw_quotes, raw_escapes=raw_escapes, skip_unset=True)
    try:
        return process(text, {}, opts).words
    except ExpandError:
        return None


def parse_heredoc(word: str) -> Heredoc | None:
    """The heredoc a word like `<<EOF`, `<<-"EOF"`, `3<<EOF` opens; None for others."""
    match = _HEREDOC.match(word)
    if not match or not match.group(3):
        return None
    rest = match.group(3)
    names = _lex_words(rest)
    raw = _lex_words(rest, raw_quotes=True)
    if names is None or raw is None or len(names) != 1 or len(raw) != 1:
        return None
    # Any quote in the word (<<"EOF", <<E'O'F) means: no expansion of the body.
    name, raw_name = names[0], raw[0]
    quoted = name.count("'") + name.count('"') != raw_name.count("'") + raw_name.count('"')
    return Heredoc(name=name, content="", expand=not quoted, chomp=match.group(2) == "-")


def _heredocs_in(line: str) -> list[Heredoc]:
    words = _lex_words(line, raw_quotes=True, raw_escapes=True) or []
    return [doc for doc in map(parse_heredoc, words) if doc is not None]


def _can_have_heredoc(node: _Node) -> bool:
    if node.keyword.upper() == "ONBUILD" and node.child is not None:
        node = node.child
    return node.keyword.upper() in HEREDOC_INSTRUCTIONS and not node.json_form


# --- pass 1: lines to nodes --------------------------------------------------------------

def _nodes(text: str, filename: str,
           escape: str | None = None) -> tuple[list[_Node], _Directives]:
    d = _Directives()
    if escape is not None:  # a fragment (an ONBUILD trigger): no directives
        d.set_escape(escape)
        d.done = True
    lines = _split_lines(text)
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    nodes: list[_Node] = []
    pos, current = 0, 0

    def fail(message: str, line: int) -> DockerfileError:
        return DockerfileError(message, filename, line)

    for number, raw in enumerate(lines, 1):
        if len(raw) > MAX_LINE // 4 and _byte_len(raw.rstrip("\n")) > MAX_LINE:
            raise fail(f"dockerfile line greater than max allowed size of {MAX_LINE}", number)
    while pos < len(lines):
        try:
            line = _process_line(d, lines[pos], True)
        except _ParseError as e:
            raise fail(str(e), current + 1) from None
        pos += 1
        current += 1
        start = current
        line, end_of_line = _trim_continuation(d, line)
        if end_of_line and not line:
            continue
        buf = [line]
        while not end_of_line and pos < len(lines):
            raw = lines[pos]
            try:
                more = _process_line(d, raw, False)
            except _ParseError as e:
                raise fail(str(e), current + 1) from None
            pos += 1
            current += 1
            if _is_comment(raw) or not more.strip():
                continue  # comment and empty lines inside a continuation are skipped
            more, end_of_line = _trim_continuation(d, more)
            buf.append(more)
        logical = "".join(buf)
        try:
            node = _new_node(logical, d, start)
        except _ParseError as e:
            raise fail(str(e), start) from None
        if _can_have_heredoc(node) and "<<" in logical:
            for doc in _heredocs_in(logical):
                body: list[str] = []
                while True:
                    if pos >= len(lines):
                        raise fail("unterminated heredoc", start)
                    raw = lines[pos]
                    pos += 1
                    current += 1
                    candidate = raw.rstrip("\r\n")
                    if doc.chomp:
                        candidate = candidate.lstrip("\t")
                    if candidate == doc.name:
                        break
                    body.append(raw)
                content = "".join(body)
                doc.content = _LEADING_TABS.sub("", content) if doc.chomp else content
                node.heredocs.append(doc)
        node.end = current
        nodes.append(node)
    if not nodes:
        raise fail("file with no instructions", current)
    return nodes, d


# --- pass 2: nodes to instructions -------------------------------------------------------

def go_quote(text: str) -> str:
    """A string as Go's %q prints it (close enough for messages)."""
    import json
    return json.dumps(text, ensure_ascii=False)


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def suggest(value: str, options: list[str] | tuple[str, ...], case_sensitive: bool) -> str:
    """BuildKit's ` (did you mean x?)` hint for a near miss, or ""."""
    val = value if case_sensitive else value.lower()
    match, best = "", 3
    for option in sorted(options):
        opt = option if case_sensitive else option.lower()
        if val == opt:
            return ""
        dist = _levenshtein(val, opt)
        if dist < best:
            best = dist
            if case_sensitive:
                match = opt
            elif value == value.lower():
                match = opt.lower()
            elif value == value.upper():
                match = opt.upper()
            else:
                match = opt
    return f" (did you mean {match}?)" if match else ""


def parse_flags(keyword: str, words: list[str]) -> dict[str, list[str]]:
    """BuildKit's BFlags.Parse: `--name=value` words checked against the instruction's
    flags; booleans become "true"/"false"."""
    known = FLAGS.get(keyword, {})
    out: dict[str, list[str]] = {}
    for word in words:
        if word == "--":
            break
        if not word.startswith("--"):
            raise _ParseError(f"arg should start with -- : {word}")
        flag_name, has_value, value = word.partition("=")
        name = flag_name[2:]
        kind = known.get(name)
        if kind is None:
            raise _ParseError(f"unknown flag: {flag_name}" + suggest(name, list(known), True))
        if name in out and kind != "m":
            raise _ParseError(f"duplicate flag specified: {flag_name}")
        if kind == "b":
            if has_value and not value:
                raise _ParseError(f"missing a value on flag: {flag_name}")
            if value.lower() not in ("true", "false", ""):
                raise _ParseError(f"expecting boolean value for flag {flag_name}, not: {value}")
            out[name] = ["false" if value.lower() == "false" else "true"]
        else:
            if not has_value:
                raise _ParseError(f"missing a value on flag: {flag_name}")
            out.setdefault(name, []).append(value)
    return out


def _exactly_one(keyword: str, args: list[str]) -> None:
    if len(args) != 1:
        raise _ParseError(f"{keyword} requires exactly one argument")


def _at_least_one(keyword: str, args: list[str]) -> None:
    if not args:
        raise _ParseError(f"{keyword} requires at least one argument")


def _check_pairs(keyword: str, args: list[str]) -> None:
    _at_least_one(keyword, args)
    keys = [args[0]] if "=" not in args[0] else [a.partition("=")[0] for a in args]
    if any(not key for key in keys):
        raise _ParseError(f"{keyword} names can not be blank")


def _check_sources(keyword: str, instr: Instruction, flags: Callable[[], None]) -> None:
    if len(instr.args) < 2:
        raise _ParseError(f"{keyword} requires at least two arguments, but only one was "
                          "provided. Destination could not be determined")
    flags()
    if parse_heredoc(instr.args[-1]) is not None:
        raise _ParseError(f"{keyword} cannot accept a heredoc as a destination")


def _check_onbuild(instr: Instruction, node: _Node) -> None:
    trigger = node.child.keyword.upper() if node.child else ""
    if trigger == "ONBUILD":
        raise _ParseError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise _ParseError(f"{trigger} isn't allowed as an ONBUILD trigger")
    # The trigger's text as the image config stores it (BuildKit's Expression).
    expression = _ONBUILD_PREFIX.sub("", node.original, count=1)
    for doc in instr.heredocs:
        expression += "\n" + doc.content + doc.name
    instr.args = [expression]


def _check_run(instr: Instruction) -> None:
    # BuildKit's RUN hooks run in this order: mounts, network, security.
    from barque.build.dockerfile import commands
    for spec in instr.flags.get("mount", []):
        try:
            commands.check_mount_syntax(spec)
        except ValueError as e:
            raise _ParseError(str(e)) from None
    network = instr.flags.get("network", ["default"])[0]
    if network not in NETWORKS:
        raise _ParseError(f"invalid network mode {go_quote(network)}")
    security = instr.flags.get("security", ["sandbox"])[0]
    if security not in SECURITY:
        raise _ParseError(f"security {go_quote(security)} is not valid")


def _check_healthcheck(instr: Instruction, node: _Node) -> None:
    _at_least_one("HEALTHCHECK", instr.args)
    if instr.args[0].upper() == "NONE":
        if len(instr.args) != 1:
            raise _ParseError("HEALTHCHECK NONE takes no arguments")
        return  # BuildKit reads no flags for NONE
    instr.flags = parse_flags("HEALTHCHECK", node.flags)
    from barque.build.dockerfile import commands
    try:
        commands.healthcheck(instr)
    except ValueError as e:
        raise _ParseError(str(e)) from None


def _stage_name(args: list[str]) -> str | None:
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise _ParseError(f"invalid name for build stage: {go_quote(args[2])}, name can't "
                              "start with a number or contain symbols")
        return name
    if len(args) != 1:
        raise _ParseError("FROM requires either one or three arguments")
    return None


def _check(instr: Instruction, node: _Node) -> None:
    """BuildKit's instructions.Parse checks for one instruction, in its order (which
    matters when a line has two faults)."""
    kw, args = instr.keyword, instr.args

    def flags() -> None:
        instr.flags = parse_flags(kw, node.flags)

    if kw not in INSTRUCTIONS:
        raise _ParseError(f"unknown instruction: {node.keyword}"
                          + suggest(node.keyword, INSTRUCTIONS, False))
    if kw in ("ENV", "LABEL"):
        flags()
        _check_pairs(kw, args)
    elif kw in ("MAINTAINER", "WORKDIR", "USER"):
        _exactly_one(kw, args)
        flags()
    elif kw == "STOPSIGNAL":  # BuildKit never reads STOPSIGNAL's flags
        _exactly_one(kw, args)
    elif kw in ("ADD", "COPY"):
        _check_sources(kw, instr, flags)
    elif kw == "FROM":
        _stage_name(args)
        flags()
    elif kw == "ONBUILD":
        _at_least_one(kw, args)
        flags()
        _check_onbuild(instr, node)
    elif kw == "RUN":
        flags()
        _check_run(instr)
    elif kw in ("CMD", "ENTRYPOINT"):
        flags()
    elif kw == "SHELL":
        flags()
        _at_least_one(kw, args)
        if not instr.json_form:
            raise _ParseError("SHELL requires the arguments to be in JSON form")
    elif kw == "EXPOSE":
        _at_least_one(kw, args)
        flags()
    elif kw == "VOLUME":
        _at_least_one(kw, args)
        flags()
        if any(not a.strip() for a in args):
            raise _ParseError("VOLUME specified can not be an empty string")
    elif kw == "ARG":  # BuildKit never reads ARG's flags either
        _at_least_one(kw, args)
        if any(a.startswith("=") for a in args):
            raise _ParseError("ARG names can not be blank")
    elif kw == "HEALTHCHECK":
        _check_healthcheck(instr, node)


def _stage(instr: Instruction, index: int) -> Stage:
    return Stage(index=index, name=_stage_name(instr.args), base=instr.args[0],
                 platform=instr.flags.get("platform", [None])[0], line=instr.line,
                 original=instr.original.strip())


def _instruction(node: _Node) -> Instruction:
    return Instruction(keyword=node.keyword.upper(), line=node.start, end_line=node.end,
                       original=node.original, flags={}, args=list(node.args),
                       json_form=node.json_form, heredocs=node.heredocs)


def parse(text: bytes | str, filename: str = "Dockerfile") -> Dockerfile:
    """The Dockerfile `text`; DockerfileError (with the line) when BuildKit refuses it."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="surrogateescape")
    nodes, d = _nodes(text, filename)
    result = Dockerfile(filename=filename, escape=d.escape, syntax=d.values.get("syntax"),
                        check=d.values.get("check"))
    for node in nodes:
        instr = _instruction(node)
        try:
            _check(instr, node)
            stage = _stage(instr, len(result.stages)) if instr.keyword == "FROM" else None
        except _ParseError as e:
            raise DockerfileError(f"dockerfile parse error on line {node.start}: {e}",
                                  filename, node.start) from None
        if stage is not None:
            result.stages.append(stage)
        elif not result.stages and instr.keyword == "ARG":
            result.meta_args.append(instr)
        elif not result.stages:
            raise DockerfileError("no build stage in current context", filename, node.start)
        else:
            result.stages[-1].instructions.append(instr)
    return result


def parse_instruction(text: str, *, escape: str = "\\", line: int = 1,
                      filename: str = "Dockerfile") -> Instruction:
    """One instruction on its own, e.g. an ONBUILD trigger from a base image's config."""
    nodes, _ = _nodes(text, filename, escape)
    if len(nodes) != 1:
        raise DockerfileError(f"dockerfile parse error on line {line}: expected one "
                              f"instruction, got {len(nodes)}", filename, line)
    node = nodes[0]
    node.start, node.end = line, line + node.end - node.start
    instr = _instruction(node)
    try:
        _check(instr, node)
    except _ParseError as e:
        raise DockerfileError(f"dockerfile parse error on line {line}: {e}", filename,
                              line) from None
    return instr
