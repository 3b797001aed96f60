"""Go's path rules, which Dockerfiles and .dockerignore files are written against:
`path.Clean` and `path.Match` / `filepath.Match` (`*`, `?`, `[...]` with `^` negation and
ranges, `\\` escapes; `*` and `?` never match `/`). Same results and the same syntax errors
as Go (checked against Go's own on random patterns), so a pattern Docker accepts is accepted
here and one it refuses is refused with its words."""

from __future__ import annotations


class BadPattern(ValueError):
    """Go's filepath.ErrBadPattern."""

    def __init__(self) -> None:
        super().__init__("syntax error in pattern")


def clean(path: str) -> str:
    """Go's path.Clean: the shortest equivalent path ("" -> ".", "//a/./b/.." -> "/a")."""
    if not path:
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    joined = "/".join(parts)
    if rooted:
        return "/" + joined
    return joined or "."


def has_wildcards(name: str) -> bool:
    """Whether `name` has a `*`, `?` or `[` that is not escaped (BuildKit's test)."""
    i = 0
    while i < len(name):
        c = name[i]
        if c in "*?[":
            return True
        if c == "\\":
            i += 1
        i += 1
    return False


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    """(stars before the chunk, the chunk up to the next unbracketed star, the rest)."""
    star = False
    while pattern.startswith("*"):
        pattern = pattern[1:]
        star = True
    in_range = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif c == "[":
            in_range = True
        elif c == "]":
            in_range = False
        elif c == "*" and not in_range:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _range_char(chunk: str) -> tuple[str, str]:
    """One (possibly escaped) character of a bracket expression, and what follows it."""
    if not chunk or chunk[0] in "-]":
        raise BadPattern()
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise BadPattern()
    rest = chunk[1:]
    if not rest:
        raise BadPattern()
    return chunk[0], rest


def _match_chunk(chunk: str, s: str) -> str | None:
    """Match `chunk` (no stars) at the start of `s`: the rest of `s`, or None. The whole
    chunk is read even after a mismatch, so a malformed one raises BadPattern either way."""
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        c = chunk[0]
        if c == "[":
            r = ""
            if not failed:
                r, s = s[0], s[1:]
            chunk = chunk[1:]
            negated = chunk.startswith("^")
            if negated:
                chunk = chunk[1:]
            matched = False
            count = 0
            while True:
                if chunk.startswith("]") and count > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _range_char(chunk)
                hi = lo
                if chunk[0] == "-":
                    hi, chunk = _range_char(chunk[1:])
                if lo <= r <= hi:
                    matched = True
                count += 1
            if matched == negated:
                failed = True
        elif c == "?":
            if not failed:
                if s[0] == "/":
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
        else:
            if c == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise BadPattern()
            if not failed:
                if chunk[0] != s[0]:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
    return None if failed else s


def match(pattern: str, name: str, *, check_rest: bool = True) -> bool:
    """Go's path.Match: raises BadPattern for a malformed pattern. With `check_rest` false,
    Go's filepath.Match, which stops at the first chunk that fails to match and so does not
    see a syntax error after it (moby/patternmatcher validates with that one)."""
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name  # a trailing star matches the rest but no separator
        rest = _match_chunk(chunk, name)
        if rest is not None and (not rest or pattern):
            name = rest
            continue
        if star:
            found = False
            for i in range(len(name)):
                if name[i] == "/":
                    break
                rest = _match_chunk(chunk, name[i + 1:])
                if rest is not None:
                    if not pattern and rest:
                        continue  # the last chunk must use up the name
                    name, found = rest, True
                    break
            if found:
                continue
        while pattern and check_rest:  # no match: the rest must still be well-formed
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "")
        return False
    return not name


def validate(pattern: str, *, check_rest: bool = True) -> None:
    """Raise BadPattern if Go would refuse `pattern`: path.Match's full check, or with
    `check_rest` false what patternmatcher.New checks (filepath.Match(pattern, "."))."""
    match(pattern, ".", check_rest=check_rest)
