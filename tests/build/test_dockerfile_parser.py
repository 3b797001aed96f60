"""The Dockerfile parser: directives, lines, argument forms, flags, stages, argument checks
and heredocs, on Barque's own inputs, with BuildKit's (Docker's) error texts. The first
pass on whole files and per-feature tables is in test_dockerfile_nodes.py."""

from __future__ import annotations

import pytest

from barque.build.dockerfile import parser
from barque.build.dockerfile.instructions import DockerfileError, Heredoc
from barque.build.dockerfile.parser import parse, parse_instruction


def one(text: str):
    """The only instruction of the only stage of `FROM base` + text."""
    df = parse("FROM base\n" + text)
    (stage,) = df.stages
    (instr,) = stage.instructions
    return instr


def error(text: str | bytes) -> DockerfileError:
    with pytest.raises(DockerfileError) as info:
        parse(text)
    return info.value


# --- directives --------------------------------------------------------------------------

def test_directives_at_the_top():
    df = parse("# syntax = docker/dockerfile:1.7\n# ESCAPE=`\n#check=skip=all\nFROM a\n")
    assert (df.syntax, df.escape, df.check) == ("docker/dockerfile:1.7", "`", "skip=all")


@pytest.mark.parametrize("text", [
    "# comment\n# escape=`\nFROM a\n",       # after a comment
    "\n# escape=`\nFROM a\n",                # after a blank line
    "FROM a\n# escape=`\n",                  # after an instruction
    "# unknown=x\n# escape=`\nFROM a\n",     # after an unknown directive
])
def test_directives_elsewhere_are_comments(text):
    assert parse(text).escape == "\\"


def test_directive_twice_refused():
    e = error("# escape=`\n# Escape=\\\nFROM a\n")
    assert str(e) == "only one escape parser directive can be used"
    assert e.line == 2


def test_bad_escape_token():
    assert str(error("# escape=x\nFROM a\n")) == "invalid escape token 'x' does not match ` or \\"


def test_bom_stripped():
    df = parse(b"\xef\xbb\xbf# escape=`\nFROM a\n")
    assert df.escape == "`"


# --- lines -------------------------------------------------------------------------------

def test_continuation_and_comments_inside():
    instr = one("RUN echo a \\\n  # a comment\n\n   b\n")
    assert instr.args == ["echo a    b"]
    assert (instr.line, instr.end_line) == (2, 5)


def test_backtick_escape_continuation():
    df = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo\n")
    instr = df.stages[0].instructions[0]
    assert instr.args == ["dir c:\\   && echo"]


def test_escaped_escape_does_not_continue_with_backtick_directive():
    # with ` as escape, a trailing backslash is an ordinary character
    df = parse("# escape=`\nFROM a\nWORKDIR c:\\\nRUN x\n")
    assert [i.args for i in df.stages[0].instructions] == [["c:\\"], ["x"]]


def test_continuation_at_eof():
    assert one("RUN a \\").args == ["a"]


def test_lone_escape_line():
    assert one("RUN a \\\n\\\nb\n").args == ["a b"]


def test_crlf_and_leading_whitespace():
    instr = one("   run   echo hi\r\n")
    assert (instr.keyword, instr.args) == ("RUN", ["echo hi"])


def test_line_numbers_and_original():
    df = parse("# c\n\nFROM a AS b\n\nENV x=1 \\\n    y=2\nUSER me\n")
    stage = df.stages[0]
    assert (stage.line, stage.original, stage.name) == (3, "FROM a AS b", "b")
    env, user = stage.instructions
    assert (env.line, env.end_line, env.original) == (5, 6, "ENV x=1     y=2")
    assert (user.line, user.end_line) == (7, 7)


# --- forms -------------------------------------------------------------------------------

@pytest.mark.parametrize("text,args,json_form", [
    ('CMD ["a", "b c"]', ["a", "b c"], True),
    ("CMD [\"a\"] ", ["a"], True),
    ("CMD []", [], True),
    ("CMD ['a']", ["['a']"], False),                 # single quotes: not JSON
    ('CMD ["a", "b"', ['["a", "b"'], False),         # unterminated
    ('CMD [ "echo", "[\\"a\\"]" ]', ["echo", '["a"]'], True),
    ("CMD echo hi there", ["echo hi there"], False),
    ('ENTRYPOINT {"a": 1}', ['{"a": 1}'], False),
    ('RUN ["sh", "-c", "x"]', ["sh", "-c", "x"], True),
    ('SHELL ["/bin/bash", "-c"]', ["/bin/bash", "-c"], True),
    ('COPY ["a b", "/c/"]', ["a b", "/c/"], True),
    ("COPY a  b\t/c/", ["a", "b", "/c/"], False),
    ('VOLUME ["/a", "/b"]', ["/a", "/b"], True),
    ("VOLUME /a /b", ["/a", "/b"], False),
    ("EXPOSE 80 443/udp", ["80", "443/udp"], False),
    ("USER a b", ["a b"], False),
    ("WORKDIR /a b", ["/a b"], False),
    ("MAINTAINER Me <me@x>", ["Me <me@x>"], False),
    ("STOPSIGNAL SIGKILL", ["SIGKILL"], False),
    ("ARG a b=c d=\"e f\"", ["a", "b=c", 'd="e f"'], False),
    ("ENV a=b c=\"d e\" f='g h' i=j\\ k", ["a=b", 'c="d e"', "f='g h'", "i=j\\ k"], False),
    ("ENV a  b  c", ["a", "b  c"], False),
    ("LABEL \"com.example\"=\"v 1\"", ['"com.example"="v 1"'], False),
    ("HEALTHCHECK CMD curl -f x", ["CMD", "curl -f x"], False),
    ('HEALTHCHECK CMD ["curl", "x"]', ["CMD", "curl", "x"], True),
    ("HEALTHCHECK NONE", ["NONE"], False),
])
def test_argument_forms(text, args, json_form):
    instr = one(text + "\n")
    assert (instr.args, instr.json_form) == (args, json_form)


def test_json_of_non_strings_refused():
    e = error('FROM a\nCMD ["a", 1]\n')
    assert str(e) == "when using JSON array syntax, arrays must be comprised of strings only"
    assert e.line == 2


def test_keyword_case_and_unknown():
    assert one("wOrKdIr /x\n").keyword == "WORKDIR"
    e = error("FROM a\n\nFRM b\n")
    assert str(e) == ("dockerfile parse error on line 3: unknown instruction: FRM "
                      "(did you mean FROM?)")
    assert e.line == 3
    assert str(error("FROM a\nrunn x\n")).endswith("unknown instruction: runn (did you mean run?)")
    assert str(error("FROM a\nFOOBAR x\n")).endswith("unknown instruction: FOOBAR")


# --- flags -------------------------------------------------------------------------------

def test_flags():
    instr = one("COPY --from=build --chown='1:2' --link --parents=false --exclude=*.md "
                "--exclude=x a /b\n")
    assert instr.flags == {"from": ["build"], "chown": ["1:2"], "link": ["true"],
                           "parents": ["false"], "exclude": ["*.md", "x"]}
    assert instr.args == ["a", "/b"]


def test_double_dash_ends_flags():
    instr = one("RUN --network=none -- --not-a-flag\n")
    assert instr.flags == {"network": ["none"]}
    assert instr.args == ["--not-a-flag"]


def test_run_flags():
    instr = one("RUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t "
                "--network=host echo\n")
    assert instr.flags == {"mount": ["type=cache,target=/c", "type=tmpfs,target=/t"],
                           "network": ["host"]}


@pytest.mark.parametrize("text,message", [
    ("COPY --foo=x a b", "unknown flag: --foo (did you mean from?)"),
    ("COPY --nope a b", "unknown flag: --nope"),
    ("COPY --from=a --from=b a b", "duplicate flag specified: --from"),
    ("COPY --from a b", "missing a value on flag: --from"),
    ("COPY --link= a b", "missing a value on flag: --link"),
    ("COPY --link=maybe a b", "expecting boolean value for flag --link, not: maybe"),
    ("ENV --x=1 a=b", "unknown flag: --x"),
    ("RUN --network=bridge x", 'invalid network mode "bridge"'),
    ("RUN --security=root x", 'security "root" is not valid'),
    ("RUN --mount=type=bind,from=$X x",
     "'from' doesn't support variable expansion, define alias stage instead"),
    ("MAINTAINER --nope me", "unknown flag: --nope"),
])
def test_flag_errors(text, message):
    assert str(error("FROM a\n" + text + "\n")) == f"dockerfile parse error on line 2: {message}"


def test_stopsignal_flags_ignored_as_buildkit():
    assert one("STOPSIGNAL --x=1 9\n").args == ["9"]


# --- FROM and stages ---------------------------------------------------------------------

def test_stages_and_meta_args():
    df = parse("ARG V=1\nARG B\nFROM --platform=$BUILDPLATFORM busybox:$V AS Builder\n"
               "RUN x\nFROM builder\nFROM scratch as last\n")
    assert [a.args for a in df.meta_args] == [["V=1"], ["B"]]
    assert [(s.index, s.name, s.base, s.platform) for s in df.stages] == [
        (0, "builder", "busybox:$V", "$BUILDPLATFORM"), (1, None, "builder", None),
        (2, "last", "scratch", None)]
    assert [i.keyword for i in df.stages[0].instructions] == ["RUN"]


@pytest.mark.parametrize("text,message", [
    ("FROM", "FROM requires either one or three arguments"),
    ("FROM a b", "FROM requires either one or three arguments"),
    ("FROM a AS b c", "FROM requires either one or three arguments"),
    ("FROM a FOR b", "FROM requires either one or three arguments"),
    ("FROM a AS 1x", 'invalid name for build stage: "1x", name can\'t start with a number or '
                     "contain symbols"),
    ("FROM a AS x$y", 'invalid name for build stage: "x$y", name can\'t start with a number or '
                      "contain symbols"),
    ("FROM --plat=x a", "unknown flag: --plat"),
    ("FROM --platfrom=x a", "unknown flag: --platfrom (did you mean platform?)"),
])
def test_from_errors(text, message):
    assert str(error(text + "\n")) == f"dockerfile parse error on line 1: {message}"


def test_instruction_before_from():
    e = error("ARG a\n# x\nRUN x\nFROM a\n")
    assert (str(e), e.line) == ("no build stage in current context", 3)


@pytest.mark.parametrize("text", ["", "\n\n", "# just a comment\n", "# escape=`\n"])
def test_no_instructions(text):
    assert str(error(text)) == "file with no instructions"


# --- argument checks ---------------------------------------------------------------------

@pytest.mark.parametrize("text,message", [
    ("ENV", "ENV requires at least one argument"),
    ("ENV =x", "ENV names can not be blank"),
    ("LABEL", "LABEL requires at least one argument"),
    ("LABEL =x", "LABEL names can not be blank"),
    ("ARG", "ARG requires at least one argument"),
    ("ARG =x", "ARG names can not be blank"),
    ("WORKDIR", "WORKDIR requires exactly one argument"),
    ("USER", "USER requires exactly one argument"),
    ("MAINTAINER", "MAINTAINER requires exactly one argument"),
    ("STOPSIGNAL", "STOPSIGNAL requires exactly one argument"),
    ("EXPOSE", "EXPOSE requires at least one argument"),
    ("VOLUME", "VOLUME requires at least one argument"),
    ('VOLUME ["/a", " "]', "VOLUME specified can not be an empty string"),
    ("COPY a", "COPY requires at least two arguments, but only one was provided. "
               "Destination could not be determined"),
    ("ADD a", "ADD requires at least two arguments, but only one was provided. "
              "Destination could not be determined"),
    ("COPY a <<EOF\nEOF", "COPY cannot accept a heredoc as a destination"),
    ("SHELL", "SHELL requires at least one argument"),
    ("SHELL []", "SHELL requires at least one argument"),
    ("SHELL /bin/sh -c", "SHELL requires the arguments to be in JSON form"),
    ("ONBUILD", "ONBUILD requires at least one argument"),
    ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("ONBUILD from x", "FROM isn't allowed as an ONBUILD trigger"),
    ("ONBUILD MAINTAINER x", "MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
    ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
    ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
    ("HEALTHCHECK CMD []", "Missing command after HEALTHCHECK CMD"),
    ("HEALTHCHECK BLAH x", 'Unknown type "BLAH" in HEALTHCHECK (try CMD)'),
    ("HEALTHCHECK --interval=1ns CMD x", 'Interval "interval" cannot be less than 1ms'),
    ("HEALTHCHECK --timeout=xx CMD x", 'time: invalid duration "xx"'),
    ("HEALTHCHECK --retries=x CMD x", 'strconv.ParseInt: parsing "x": invalid syntax'),
    ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)"),
])
def test_argument_errors(text, message):
    e = error("FROM a\n" + text + "\n")
    assert (str(e), e.line) == (f"dockerfile parse error on line 2: {message}", 2)


@pytest.mark.parametrize("text,message", [
    ("ENV a", "ENV must have two arguments"),
    ("LABEL a", "LABEL must have two arguments"),
    ("ENV a=1 b", "Syntax error - can't find = in \"b\". Must be of the form: name=value"),
])
def test_line_parser_errors(text, message):
    # BuildKit's line parsers' errors carry the line but no "parse error on line" prefix
    e = error("FROM a\n" + text + "\n")
    assert (str(e), e.line) == (message, 2)


def test_maintainer_accepted():
    assert one("MAINTAINER someone\n").args == ["someone"]


def test_onbuild_keeps_trigger_expression():
    instr = one("ONBUILD  RUN --mount=type=cache,target=/c echo hi\n")
    assert instr.args == ["RUN --mount=type=cache,target=/c echo hi"]
    trigger = parse_instruction(instr.args[0])
    assert (trigger.keyword, trigger.args) == ("RUN", ["echo hi"])
    assert trigger.flags == {"mount": ["type=cache,target=/c"]}


def test_onbuild_with_heredoc():
    instr = one("ONBUILD RUN <<EOF\necho a\nEOF\n")
    assert instr.args == ["RUN <<EOF\necho a\nEOF"]
    trigger = parse_instruction(instr.args[0])
    assert trigger.heredocs == [Heredoc("EOF", "echo a\n", True, False)]


# --- heredocs ----------------------------------------------------------------------------

def test_heredocs_basic():
    df = parse("FROM a\nRUN <<EOF\necho hi\n\n# not a comment\nEOF\nRUN x\n")
    run, after = df.stages[0].instructions
    assert run.args == ["<<EOF"]
    assert run.heredocs == [Heredoc("EOF", "echo hi\n\n# not a comment\n", True, False)]
    assert (run.line, run.end_line, after.line) == (2, 6, 7)


@pytest.mark.parametrize("word,name,expand,chomp", [
    ("<<EOF", "EOF", True, False),
    ("<<-EOF", "EOF", True, True),
    ('<<"EOF"', "EOF", False, False),
    ("<<'EOF'", "EOF", False, False),
    ("<<-'EOF'", "EOF", False, True),
    ('<<E"O"F', "EOF", False, False),
    ("3<<EOF", "EOF", True, False),
    ("<< EOF", "EOF", True, False),   # BuildKit's lexer keeps `<< EOF` one word
    ("<<$X", "$X", True, False),
])
def test_heredoc_words(word, name, expand, chomp):
    instr = one(f"RUN cat {word}\n\tx\n{name}\n")
    (doc,) = instr.heredocs
    assert (doc.name, doc.expand, doc.chomp) == (name, expand, chomp)
    assert doc.content == ("x\n" if chomp else "\tx\n")


def test_heredoc_chomp_terminator_with_tabs():
    instr = one("RUN <<-EOT\n\t\tline\n\tEOT\n")
    assert instr.heredocs[0].content == "line\n"


def test_several_heredocs_on_a_line():
    instr = one("RUN <<A cat - /dev/fd/3 3<<B\na\nA\nb\nB\n")
    assert [(d.name, d.content) for d in instr.heredocs] == [("A", "a\n"), ("B", "b\n")]
    assert instr.end_line == 6


def test_copy_heredoc():
    instr = one('COPY <<one <<"two" /dest/\n1 $x\none\n2 $x\ntwo\n')
    assert instr.args == ["<<one", '<<"two"', "/dest/"]
    assert [(d.name, d.content, d.expand) for d in instr.heredocs] == [
        ("one", "1 $x\n", True), ("two", "2 $x\n", False)]


@pytest.mark.parametrize("text", [
    'RUN "<<NOHEREDOC"\n',
    "RUN echo '<<EOF'\n",
    'RUN ["cat", "<<EOF"]\n',
    "USER <<EOF\n",
    "RUN a<<EOF\n",
])
def test_not_heredocs(text):
    instr = one(text)
    assert instr.heredocs == []


def test_unterminated_heredoc():
    e = error("FROM a\nRUN <<EOF\necho\nEOF \n")
    assert (str(e), e.line) == ("unterminated heredoc", 2)


def test_heredoc_keeps_escapes_and_continuations():
    instr = one("RUN <<EOF\nline \\\nnext\nEOF\n")
    assert instr.heredocs[0].content == "line \\\nnext\n"


# --- heredoc bodies in a whole file ------------------------------------------------------

HEREDOC_FILE = """FROM debian

ENV WHO=you

RUN true

WORKDIR <<DIR
DIR

RUN <<NOTHING
NOTHING

RUN 5<<NOTHING5
NOTHING5

RUN 'cat <<QUOTED'

RUN <<KEEP
\tone
\t\ttwo
KEEP

RUN <<-STRIP
\t\tthree
\tfour
STRIP

RUN <<-STRIP2
\tfive
\t\tSTRIP2

RUN <<-SUB
\thello $WHO
SUB

RUN <<-"NOSUB"
\tbye $WHO
NOSUB

RUN <<ENV
ENV X=1
RUN echo
ENV

RUN <<HASH
#!/bin/sh
# still the body
echo ok # trailing
HASH

RUN --network=none <<NET
ping -c1 127.0.0.1
NET

COPY <<A.conf <<B.conf /etc/
a=1
A.conf
b=2
B.conf

COPY <<END /q
'single' "double" `back`
END

COPY <<P <<Q /pair
Q
P
P
Q

RUN <<SCRIPT node
console.log("hi")
SCRIPT

RUN <<s"cr"ipt
echo partial
script

RUN <<sc\\"ript
echo escaped
sc"ript

RUN <<"s"c\\"ript
echo mixed
sc"ript

RUN <<"two words"
echo spaced
two words

RUN <<${END}
${END}

RUN <<   SPACED
SPACED

RUN <<   LAST   2>/dev/null
LAST
\t"""

# (name, content, expand, chomp) of each node's heredocs, after FROM
HEREDOC_EXPECTED = [
    [],  # ENV
    [],  # RUN true
    [],  # WORKDIR takes no heredoc ...
    [],  # ... so DIR is a node of its own (an unknown instruction, refused in pass 2)
    [("NOTHING", "", True, False)],
    [("NOTHING5", "", True, False)],
    [],  # a quoted <<
    [("KEEP", "\tone\n\t\ttwo\n", True, False)],
    [("STRIP", "three\nfour\n", True, True)],
    [("STRIP2", "five\n", True, True)],       # <<- lets the terminator be indented
    [("SUB", "hello $WHO\n", True, True)],
    [("NOSUB", "bye $WHO\n", False, True)],
    [("ENV", "ENV X=1\nRUN echo\n", True, False)],  # instructions inside are body
    [("HASH", "#!/bin/sh\n# still the body\necho ok # trailing\n", True, False)],
    [("NET", "ping -c1 127.0.0.1\n", True, False)],
    [("A.conf", "a=1\n", True, False), ("B.conf", "b=2\n", True, False)],
    [("END", "'single' \"double\" `back`\n", True, False)],
    [("P", "Q\n", True, False), ("Q", "P\n", True, False)],  # read in order
    [("SCRIPT", 'console.log("hi")\n', True, False)],
    [("script", "echo partial\n", False, False)],   # any quoting: no expansion
    [('sc"ript', "echo escaped\n", True, False)],   # an escaped quote is no quoting
    [('sc"ript', "echo mixed\n", False, False)],
    [("two words", "echo spaced\n", False, False)],
    [("${END}", "", True, False)],
    [("SPACED", "", True, False)],
    [("LAST", "", True, False)],
]


def test_heredoc_extraction():
    nodes, _ = parser._nodes(HEREDOC_FILE, "Dockerfile")
    got = [[(d.name, d.content, d.expand, d.chomp) for d in n.heredocs] for n in nodes[1:]]
    assert got == HEREDOC_EXPECTED


@pytest.mark.parametrize("word", ["<<BODY", "<<'BODY'", '<<"BODY"', "<<-BODY", "<<-'BODY'",
                                  '<<-"BODY"', "<<B'OD'Y", '<<BO"DY"', "<<  BODY",
                                  "<<-\tBODY"])
def test_heredoc_words_valid(word):
    doc = parser.parse_heredoc(word)
    assert doc is not None and doc.name == "BODY"


@pytest.mark.parametrize("word", ["", "BODY", "<<", "<<-", "<BODY", "<<<BODY", "<<A<B",
                                  "<<BODY cat", "<<'BODY", '<<-"BODY', "<<BODY'", '<<BODY"'])
def test_heredoc_words_not_heredocs(word):
    # An unterminated quote makes no heredoc: a whole line with one would not even lex.
    assert parser.parse_heredoc(word) is None


@pytest.mark.parametrize("line,names", [
    ("COPY <<IN /out", ["IN"]),
    ("RUN <<-IN", ["IN"]),
    ("RUN <<- IN", []),      # the lexer makes `<<-` and `IN` two words: neither is one
    ("RUN << -IN", ["-IN"]),  # ... but keeps `<< -IN` one word, named -IN
    ("RUN <<'IN'", ["IN"]),
    ('RUN <<"IN"', ["IN"]),
    ("RUN <<A <<B", ["A", "B"]),
    ("RUN <<-A <<B", ["A", "B"]),
    ("RUN python3 <<PY > out.txt", ["PY"]),
    ("RUN sh <<S 2>/dev/null", ["S"]),
    ("RUN tr a-z A-Z <<T | tee x", ["T"]),
    ('RUN echo "<<T"', []),
])
def test_heredocs_from_line(line, names):
    assert [d.name for d in parser._heredocs_in(line)] == names


def test_json_forms_have_no_heredocs():
    df = parse('FROM a\nRUN ["id", "-u"]\nRUN ["cat", "<<IN"]\nCOPY ["<<\'IN\'", "/d"]\n')
    assert all(i.heredocs == [] for i in df.stages[0].instructions)


def test_line_too_long():
    e = error("FROM a\nRUN " + "x" * 70000 + "\n")
    assert (str(e), e.line) == ("dockerfile line greater than max allowed size of 65535", 2)
    assert one("RUN " + "x" * 60000 + "\n").args == ["x" * 60000]


def test_invalid_utf8_kept():
    df = parse(b"FROM a\nLABEL a=\xff\n")
    assert df.stages[0].instructions[0].args[0].encode("utf-8", "surrogateescape") == b"a=\xff"


def test_large_heredoc_is_fast():
    import time
    body = "y" * 60000 + "\n"
    start = time.thread_time()  # CPU, as the bound means: a busy machine stretches wall time
    instr = one(f"COPY <<EOF /f\n{body * 20}EOF\n")
    from barque.build.dockerfile.commands import heredoc_content
    assert heredoc_content(instr.heredocs[0], {}) == body * 20
    assert time.thread_time() - start < 2


@pytest.mark.parametrize("text,message", [
    # two faults on one line: the one BuildKit checks first is reported
    ("FROM --bad a b", "FROM requires either one or three arguments"),
    ("COPY --bad a", "COPY requires at least two arguments, but only one was provided. "
                     "Destination could not be determined"),
    ("COPY --bad a <<EOF\nEOF", "unknown flag: --bad"),
    ("WORKDIR --bad", "WORKDIR requires exactly one argument"),
    ("SHELL --bad echo", "unknown flag: --bad"),
    ("RUN --mount=from=$X --network=bad x",
     "'from' doesn't support variable expansion, define alias stage instead"),
    ("HEALTHCHECK --bad NONE x", "HEALTHCHECK NONE takes no arguments"),
])
def test_error_order(text, message):
    assert str(error("FROM a\n" + text + "\n")).endswith(": " + message)


def test_arg_and_healthcheck_none_flags_ignored_as_buildkit():
    assert one("ARG --x=1 a\n").args == ["a"]
    assert one("HEALTHCHECK --bad NONE\n").args == ["NONE"]


def test_healthcheck_type_split_at_any_whitespace():
    assert one("HEALTHCHECK CMD\tcurl x\n").args == ["CMD", "curl x"]
    assert one('HEALTHCHECK CMD\t["a"]\n').args == ["CMD", "a"]


def test_json_constants_are_not_json():
    # Go's JSON has no NaN/Infinity: the line is a shell form
    assert one("CMD [NaN]\n").args == ["[NaN]"]


def test_directive_with_long_spaces_is_fast():
    import time
    start = time.thread_time()  # CPU, as the bound means: a busy machine stretches wall time
    df = parse("# syntax=a" + " " * 50000 + "b  \nFROM a\n")
    assert df.syntax == "a" + " " * 50000 + "b"
    assert time.thread_time() - start < 1
    assert parse("# escape = `   \nFROM a\n").escape == "`"
    assert parse("# escape=\nFROM a\n").escape == "\\"   # no value: a comment
    # only spaces: BuildKit's regex takes one of them as the value
    assert str(error("# escape =   \nFROM a\n")) == \
        "invalid escape token ' ' does not match ` or \\"
