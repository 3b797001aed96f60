"""The parser's first pass (lines to instruction nodes: continuations, comments, directives,
argument forms, raw flags, heredoc bodies) on Barque's own inputs: a table of small inputs
per feature, and a few whole Dockerfiles under data/dockerfiles/ with the nodes expected
from each written out below. The rules come from the Dockerfile reference and Docker's
observed behaviour; the inputs are ours."""

from __future__ import annotations

import os

import pytest

from barque.build.dockerfile import parser
from barque.build.dockerfile.instructions import DockerfileError
from barque.build.dockerfile.parser import parse

DATA = os.path.join(os.path.dirname(__file__), "data", "dockerfiles")

Shape = tuple  # (keyword, flags, args, json_form) or ("onbuild", child shape)


def sh(keyword: str, *args: str, flags: tuple[str, ...] = ()) -> Shape:
    """A node whose arguments are not a JSON array."""
    return (keyword, flags, args, False)


def js(keyword: str, *args: str, flags: tuple[str, ...] = ()) -> Shape:
    """A node in JSON (exec) form."""
    return (keyword, flags, args, True)


def onbuild(child: Shape) -> Shape:
    return ("onbuild", child)


def _shape(node) -> Shape:
    if node.keyword.upper() == "ONBUILD" and node.child is not None:
        return onbuild(_shape(node.child))
    return (node.keyword.lower(), tuple(node.flags), tuple(node.args), node.json_form)


def shapes(text: str | bytes) -> list[Shape]:
    if isinstance(text, bytes):
        text = text.decode()
    nodes, _ = parser._nodes(text, "Dockerfile")
    return [_shape(n) for n in nodes]


# --- small inputs, one rule each ---------------------------------------------------------

NODE_CASES = [
    # continuations: the next line's leading whitespace is kept, the text before the escape
    # is kept as is (with or without a space), whitespace after the escape is ignored
    ("RUN make \\\n    all", [sh("run", "make     all")]),
    ("RUN ma\\\nke all", [sh("run", "make all")]),
    ("RUN make  \\\t  \nall", [sh("run", "make  all")]),
    ("RUN a\\\n  b  \\\n\tc\\\nd", [sh("run", "a  b  \tcd")]),
    # a line holding only the escape adds nothing; one with spaces before it adds those
    ("RUN x\\\n\\\ny", [sh("run", "xy")]),
    ("RUN x\\\n  \\\ny", [sh("run", "x  y")]),
    ("RUN x \\\n\\\n  \\\n y", [sh("run", "x    y")]),
    # blank and comment lines inside a continuation are dropped; the next text line ends it
    ("RUN a \\\n\n# note\n\n   # indented note\nb\nRUN c",
     [sh("run", "a b"), sh("run", "c")]),
    ("RUN a \\\n# only comments follow\n", [sh("run", "a")]),
    # a comment ending in the escape continues nothing
    ("# note \\\nRUN a\n#\\\nRUN b", [sh("run", "a"), sh("run", "b")]),
    # an escaped escape at the end is text, not a continuation
    ("ENV P c:\\\\\nENV Q 1", [sh("env", "P", "c:\\\\"), sh("env", "Q", "1")]),
    # trailing whitespace of an instruction is dropped, inner whitespace kept
    ("RUN echo  a\t b   \t", [sh("run", "echo  a\t b")]),
    ("  copy\ta\t\tb  ", [sh("copy", "a", "b")]),
    # a continuation inside quotes keeps the next line's indentation in the word
    ("RUN sh -c 'echo one \\\n      two'", [sh("run", "sh -c 'echo one       two'")]),
    ('ENV MSG="hello \\\n      world" N=1', [sh("env", 'MSG="hello       world"', "N=1")]),
    # ENV/LABEL: `key value` (the rest of the line is the value) or key=value words with
    # quotes and escapes kept for the expansion step
    ("ENV K v w  x", [sh("env", "K", "v w  x")]),
    ("ENV K\t\tv", [sh("env", "K", "v")]),
    ('ENV K "a b" c', [sh("env", "K", '"a b" c')]),
    ("ENV K=v\\ w L=x", [sh("env", "K=v\\ w", "L=x")]),
    ('ENV K="it\'s" L=\'say "hi"\'', [sh("env", 'K="it\'s"', "L='say \"hi\"'")]),
    ('ENV K="a\\"b" L="c\\\'d"', [sh("env", 'K="a\\"b"', 'L="c\\\'d"')]),
    ('ENV K="x\\\\ny" L="\\n"', [sh("env", 'K="x\\\\ny"', 'L="\\n"')]),
    ('ENV K="\'\'" L=\'""\'', [sh("env", "K=\"''\"", "L='\"\"'")]),
    # inside single quotes the escape is plain text: the second quote closes, and a quote
    # left open runs to the end of the line, spaces included
    ("ENV K='it\\'s' L=1", [sh("env", "K='it\\'s' L=1")]),
    ("ENV K='a\\'b''", [sh("env", "K='a\\'b''")]),
    ("ENV K='a\\\"b'", [sh("env", "K='a\\\"b'")]),
    # outside quotes an escaped quote opens nothing
    ("ENV K=a\\'b L=c", [sh("env", "K=a\\'b", "L=c")]),
    ("LABEL a.b=1 \"c d\"=\"e f\"", [sh("label", "a.b=1", '"c d"="e f"')]),
    ('LABEL owner Ann "ann@example.org"', [sh("label", "owner", 'Ann "ann@example.org"')]),
    # ARG keeps its words as written, with or without values
    ('ARG V W=1 X="2 3"', [sh("arg", "V", "W=1", 'X="2 3"')]),
    # other word lists split on whitespace only: quotes and escapes are plain characters
    ('COPY "a b" \\c\\\\" /d', [sh("copy", '"a', 'b"', "\\c\\\\\"", "/d")]),
    ("EXPOSE 1\t2  3/udp", [sh("expose", "1", "2", "3/udp")]),
    ("VOLUME /v1 /v2 /v3 /v4 /v5 /v6", [sh("volume", "/v1", "/v2", "/v3", "/v4", "/v5",
                                            "/v6")]),
    ("USER nobody:nogroup", [sh("user", "nobody:nogroup")]),
    # JSON forms: any spacing inside, strings only, Go's JSON escapes
    ("CMD [\t\"a\" ,\"b\"\t]\t", [js("cmd", "a", "b")]),
    ('CMD [""]', [js("cmd", "")]),
    ("CMD []", [js("cmd")]),
    ('CMD ["x\\by\\fz\\n\\r\\u0000\\u263a"]', [js("cmd", "x\by\fz\n\r\x00\u263a")]),
    ('ENTRYPOINT ["caf\u00e9", "\u2603"]', [js("entrypoint", "caf\u00e9", "\u2603")]),
    ('RUN [ "echo", "\'quoted\'" ]', [js("run", "echo", "'quoted'")]),
    ('ADD [ "with space", "/to/with space" ]', [js("add", "with space", "/to/with space")]),
    # not JSON: kept as one shell string
    ("CMD ['sh', '-c']", [sh("cmd", "['sh', '-c']")]),
    ('CMD ["sh", "-c"', [sh("cmd", '["sh", "-c"')]),
    ('CMD ["sh", "-c]', [sh("cmd", '["sh", "-c]')]),
    ('CMD \'["sh"]\'', [sh("cmd", '\'["sh"]\'')]),
    ('CMD "[\\"sh\\"]"', [sh("cmd", '"[\\"sh\\"]"')]),
    ('CMD ["a"] x', [sh("cmd", '["a"] x')]),
    # raw flags: any --name[=value] before the arguments; `--` ends them and is dropped
    ("COPY --owner=me --fast a /b", [sh("copy", "a", "/b", flags=("--owner=me", "--fast"))]),
    ("COPY --fast -- --a /b", [sh("copy", "--a", "/b", flags=("--fast",))]),
    ("COPY -- a /b", [sh("copy", "a", "/b")]),
    ('CMD --quiet [ "x" ]', [js("cmd", "x", flags=("--quiet",))]),
    ("CMD --v=1 -- [ ]", [js("cmd", flags=("--v=1",))]),
    ("RUN --x=1 echo --y", [sh("run", "echo --y", flags=("--x=1",))]),
    # HEALTHCHECK: its type word, then the command in either form
    ("HEALTHCHECK", [sh("healthcheck")]),
    ("HEALTHCHECK CMD", [sh("healthcheck", "CMD")]),
    ("HEALTHCHECK \t CMD   ls  -l", [sh("healthcheck", "CMD", "ls  -l")]),
    ("HEALTHCHECK PING host 1", [sh("healthcheck", "PING", "host 1")]),
    ('HEALTHCHECK --retries=0 --timeout=0s CMD [ "ls" ]',
     [js("healthcheck", "CMD", "ls", flags=("--retries=0", "--timeout=0s"))]),
    # ONBUILD holds a whole instruction
    ('ONBUILD ADD [ "a", "b" ]', [onbuild(js("add", "a", "b"))]),
    ("ONBUILD  workdir /w", [onbuild(sh("workdir", "/w"))]),
    # a continuation at the end of the file ends the instruction
    ("RUN a \\", [sh("run", "a")]),
    ("ENV K v \\\n", [sh("env", "K", "v")]),
]


@pytest.mark.parametrize("text,expected", NODE_CASES)
def test_nodes(text, expected):
    assert shapes(text) == expected


@pytest.mark.parametrize("text,expected", [
    # a different escape character: the backslash becomes plain text
    ("# escape=`\nRUN dir C:\\ `\n  /s\n", [sh("run", "dir C:\\   /s")]),
    ("# escape=`\nENV D `\n\\data\\\n", [sh("env", "D", "\\data\\")]),
    ("# escape=`\nENV D=a``b E=c` d\n", [sh("env", "D=a``b", "E=c` d")]),
    ("#escape=\\\nRUN a \\\n b\n", [sh("run", "a  b")]),
    # a directive after a comment is a comment: the default escape stays
    ("# hello\n# escape=`\nENV D \\\n`x\n", [sh("env", "D", "`x")]),
    ("# syntax=x\n#escape =   `\nFROM `\n  img\n", [sh("from", "img")]),
])
def test_nodes_with_directives(text, expected):
    assert shapes(text) == expected


@pytest.mark.parametrize("text,message,line", [
    ('FROM a\nCMD [ "sh", [ "-c" ] ]\n',
     "when using JSON array syntax, arrays must be comprised of strings only", 2),
    ('FROM a\nRUN ["a", {"b": 1}]\n',
     "when using JSON array syntax, arrays must be comprised of strings only", 2),
    ('FROM a\nRUN ["a", null]\n',
     "when using JSON array syntax, arrays must be comprised of strings only", 2),
    ("FROM a\n\nLABEL version\n", "LABEL must have two arguments", 3),
    ("FROM a\nENV HOME \\\n\n", "ENV must have two arguments", 2),
    ("\n# a file of comments\n  # and blank lines\n\n", "file with no instructions", 4),
    ("# escape=`\n\t\n", "file with no instructions", 2),
])
def test_first_pass_errors(text, message, line):
    with pytest.raises(DockerfileError) as info:
        parser._nodes(text, "Dockerfile")
    assert (str(info.value), info.value.line) == (message, line)


def test_raw_flags_checked_in_second_pass():
    with pytest.raises(DockerfileError, match="unknown flag: --owner$"):
        parse("FROM a\nCOPY --owner=me a /b\n")


# --- whole files -------------------------------------------------------------------------

WEBAPP = [
    sh("from", "python:3.12-slim"),
    sh("label", "org.example.owner", 'Platform Team "platform@example.org" (ops)'),
    sh("env", "APP_HOME", "/srv/app"),
    sh("env", "EXTRAS", "redis postgres \tcelery"),
    sh("env", "PATH=/srv/venv/bin:$PATH", "LANG=C.UTF-8"),
    sh("run", "apt-get update && apt-get install -y --no-install-recommends \tcurl "
              "\tca-certificates=2024* \ttini     && rm -rf /var/lib/apt/lists/*"),
    sh("add", "https://example.org/files/wheel.tar.gz?sig=a%2Fb", "/tmp/"),
    js("copy", "requirements dev.txt", "/srv/app/"),
    sh("run", 'python -m venv /srv/venv && /srv/venv/bin/pip install -r '
              '"/srv/app/requirements dev.txt"'),
    sh("run", "printf '[server]\\nport=$PORT\\n' > /etc/app.ini"),
    sh("expose", "8000", "9100/udp"),
    js("volume", "/srv/data", "/var/log/app"),
    sh("workdir", "$APP_HOME"),
    sh("user", "app:app"),
    js("entrypoint", "/usr/bin/tini", "--"),
    js("cmd", "gunicorn", "-b", "0.0.0.0:8000"),
]

WINBUILD = [
    sh("from", "mcr.example.com/windows/servercore:ltsc2022", "AS", "tools"),
    js("shell", "powershell", "-Command", "$ErrorActionPreference = 'Stop';"),
    sh("workdir", "C:\\tools\\"),
    sh("run", "New-Item -ItemType Directory C:\\cache ;     Write-Host done"),
    sh("env", "TOOLS_DIR=C:\\tools\\", 'CACHE="C:\\cache dir"', "NOTE=back``tick"),
    sh("copy", "C:\\tools\\", "C:\\app\\", flags=("--from=tools",)),
    js("cmd", "C:\\app\\run.exe", "`n"),
    sh("env", "SHARE", "\\\\fileserver\\share"),
    sh("stopsignal", "SIGINT"),
]

BASEKIT = [
    sh("arg", "BASE=alpine:3.20", "REGISTRY"),
    sh("arg", 'FLAVOUR="slim variant"'),
    sh("from", "${REGISTRY:-docker.io}/$BASE"),
    onbuild(sh("copy", ".", "/src")),
    onbuild(js("run", "make", "-C", "/src")),
    onbuild(sh("run", "make install      PREFIX=/usr")),
    sh("env", "VERSION", "2.1 RELEASE=candidate"),
    sh("env", "QUOTED", '"2.1 RELEASE=candidate"'),
    sh("env", "A=1", 'B="two words"', "C='single $quoted'", "D=esc\\ aped"),
    sh("label", 'description="base \\"kit\\""', "multi=linetwo"),
    sh("healthcheck", "CMD", "wget -qO- http://127.0.0.1:8080/health || exit 1",
       flags=("--interval=30s", "--timeout=2s", "--retries=4")),
    js("healthcheck", "CMD", "true", flags=("--start-period=0s", "--retries=0")),
    sh("healthcheck", "NONE"),
    sh("stopsignal", "SIGQUIT"),
    sh("user", "1000:1000"),
    js("volume", "/cache"),
    sh("volume", "/a", "/b", "/c"),
    sh("expose", "53/udp", "53/tcp", "8080"),
    sh("workdir", "/src"),
    js("cmd", "sh"),
]

QUIRKS = [
    sh("from", "scratch"),
    sh("label", "note", r'C:\\temp \"quoted\" and \\\\server'),
    sh("run", r'printf "%s\n" \x \"y\" &&   echo ' + r"'a \b'"),
    sh("add", r'\in\\"', "/out"),
    js("cmd", "/bin\\sh", "-c", 'echo "\u00e9" \tA'),
    sh("entrypoint", "['/bin/sh', '-c']"),
    sh("cmd", '["echo", "never closed"'),
    sh("cmd", '["echo", "quote never closed]'),
    sh("cmd", r'"[\"echo\", \"inside a string\"]"'),
    sh("cmd", '\'["echo", "inside single quotes"]\''),
    js("cmd"),
    js("cmd", "", ""),
    sh("env", "WIN", r"c:\\path\\"),
    sh("env", "AFTER", "not joined to WIN"),
    sh("env", "GLUED", "onetwo"),
    sh("env", "SPACED", "one   two"),
    sh("copy", "--odd-name", "/dst/", flags=("--chown=1:1",)),
    sh("copy", "plain", "/dst/"),
    sh("run", "cat /etc/os-release   | head -1"),
]

FILES = {"webapp": WEBAPP, "winbuild": WINBUILD, "basekit": BASEKIT, "quirks": QUIRKS}


def _read(name: str) -> bytes:
    with open(os.path.join(DATA, name, "Dockerfile"), "rb") as f:
        return f.read()


def test_every_file_has_expectations():
    assert sorted(os.listdir(DATA)) == sorted(FILES)


@pytest.mark.parametrize("name", sorted(FILES))
def test_file_nodes(name):
    assert shapes(_read(name)) == FILES[name]


@pytest.mark.parametrize("name", sorted(FILES))
def test_file_parses(name):
    # the second pass accepts them too, with the same instructions in its stages
    df = parse(_read(name))
    got = len(df.meta_args) + sum(1 + len(s.instructions) for s in df.stages)
    assert got == len(FILES[name])


def test_file_directives():
    assert (parse(_read("webapp")).escape, parse(_read("webapp")).syntax) == ("\\", None)
    win = parse(_read("winbuild"))
    assert (win.escape, win.syntax) == ("`", "docker/dockerfile:1")
    assert win.stages[0].name == "tools"
    meta = parse(_read("basekit")).meta_args
    assert [a.args for a in meta] == [["BASE=alpine:3.20", "REGISTRY"],
                                      ['FLAVOUR="slim variant"']]


def test_file_lines():
    # each node's first and last line, continuations, comments and blanks counted
    nodes, _ = parser._nodes(_read("quirks").decode(), "Dockerfile")
    assert [(n.start, n.end) for n in nodes][-3:] == [(23, 23), (24, 24), (25, 29)]
    nodes, _ = parser._nodes(_read("webapp").decode(), "Dockerfile")
    assert [(n.start, n.end) for n in nodes][3:6] == [(7, 9), (10, 10), (13, 19)]
