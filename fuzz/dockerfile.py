"""Fuzz the Dockerfile language (barque/build/dockerfile: parser.py, expand.py, commands.py).

Property: `parse` raises only DockerfileError, with a line inside the file; the shell lexer
raises only ExpandError; each per-instruction reader (commands.py) raises only ValueError;
what parses is consistent (instructions in line order, inside the file, stage indexes in
order, stage names valid); and a word without `$`, quotes or escapes expands to itself.

    python fuzz/dockerfile.py -runs=200000
    python fuzz/dockerfile.py --iterations 200000
"""

from __future__ import annotations

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz import _driver  # noqa: E402

with _driver.instrumented():
    from barque.build.dockerfile import commands, parser
    from barque.build.dockerfile.expand import ExpandError, Options, expand_word, process
    from barque.build.dockerfile.instructions import DockerfileError, Instruction

# Pieces of real Dockerfiles, so that most inputs get past the first checks.
PIECES = ("FROM ", "busybox", " AS ", "build", "RUN ", "COPY ", "ADD ", "ENV ", "ARG ",
          "LABEL ", "EXPOSE ", "WORKDIR ", "USER ", "VOLUME ", "CMD ", "ENTRYPOINT ", "SHELL ",
          "STOPSIGNAL ", "HEALTHCHECK ", "ONBUILD ", "MAINTAINER ", "NONE", "CMD",
          "--mount=type=", "cache", "bind", "secret", "tmpfs", ",target=/x", ",id=",
          ",sharing=locked", ",mode=0700", ",size=1m", ",from=", "--network=none", "--from=",
          "--chown=1:1", "--chmod=", "u+x", "755", "--link", "--parents", "--exclude=*.md",
          "--interval=", "1s", "--retries=", "--platform=", "$", "${", "}", ":-", ":+", ":?",
          "#", "##", "%", "%%", "/", "//", "'", '"', "\\", "`", "=", " ", "\t", "\n", "\r\n",
          "\\\n", "<<", "<<-", "EOF", "\nEOF\n", "'EOF'", "[", "]", '["a", "b"]', ",", "80",
          "-", "/udp", ":", "# escape=`\n", "# syntax=x\n", "# check=y\n", "A", "a=b", "*",
          "?", "\x00", "é", "\ufeff", "x" * 70)
_NAME = re.compile(r"[a-z][a-z0-9\-_.]*")
_PLAIN = re.compile(r"[^$'\"\\`<\s]*")


def read_instruction(instr: Instruction, escape: str, env: dict[str, str]) -> None:
    """Every commands.py reader that applies, for its documented errors only."""
    kw = instr.keyword
    readers = {
        "ENV": lambda: commands.env_pairs(instr, env, escape),
        "LABEL": lambda: commands.label_pairs(instr, env, escape),
        "ARG": lambda: commands.arg_decls(instr),
        "EXPOSE": lambda: commands.ports(instr, env, escape),
        "VOLUME": lambda: commands.volumes(instr, env, escape),
        "STOPSIGNAL": lambda: commands.stop_signal(instr, env, escape),
        "USER": lambda: commands.single_word(instr, env, escape),
        "WORKDIR": lambda: commands.single_word(instr, env, escape),
        "CMD": lambda: commands.command(instr, None),
        "ENTRYPOINT": lambda: commands.command(instr, ["/bin/sh", "-c"]),
        "SHELL": lambda: commands.shell(instr),
        "HEALTHCHECK": lambda: commands.healthcheck(instr),
        "RUN": lambda: (commands.run_command(instr, None), commands.run_network(instr.flags),
                        commands.run_mounts(instr.flags, env, escape, "/w")),
        "COPY": lambda: (commands.copy_flags(instr, env, escape),
                         commands.copy_sources(instr, env, escape)),
        "ADD": lambda: (commands.copy_flags(instr, env, escape),
                        commands.copy_sources(instr, env, escape)),
    }
    reader = readers.get(kw)
    if reader is None:
        return
    try:
        reader()
    except ValueError:  # ExpandError included
        pass
    for doc in instr.heredocs:
        try:
            commands.heredoc_content(doc, env)
        except ExpandError:
            pass
    commands.display(instr.original, env, escape)


def check_parse(text: str, env: dict[str, str]) -> None:
    lines = text.count("\n") + 1
    try:
        df = parser.parse(text.encode("utf-8", "surrogateescape"))
    except DockerfileError as e:
        assert 0 <= e.line <= lines, (e.line, lines, str(e))
        return
    last = 0
    for i, stage in enumerate(df.stages):
        assert stage.index == i
        assert stage.name is None or _NAME.fullmatch(stage.name), stage.name
        assert stage.line > last
        last = stage.line
        for instr in stage.instructions:
            assert last < instr.line <= instr.end_line <= lines, (instr, lines)
            last = instr.end_line
            read_instruction(instr, df.escape, env)
            if instr.keyword == "ONBUILD":
                try:
                    parser.parse_instruction(instr.args[0], escape=df.escape)
                except DockerfileError:
                    pass


def check_word(word: str, env: dict[str, str], p: _driver.Provider) -> None:
    opts = Options(escape=p.pick("\\`"), raw_quotes=p.bool(), raw_escapes=p.bool(),
                   skip_unset=p.bool(), skip_quotes=p.bool())
    try:
        result = process(word, env, opts)
    except ExpandError:
        return
    assert all(w for w in result.words), result
    assert result.matched <= set(env) and not result.unmatched & set(env)
    if _PLAIN.fullmatch(word) and "`" not in word:
        assert expand_word(word, env) == word


KEYWORDS = [k + " " for k in parser.INSTRUCTIONS] + ["ONBUILD RUN ", "RUN <<EOF ", "# "]


def structured(p: _driver.Provider) -> str:
    """A file of lines that mostly start with an instruction, after a FROM."""
    lines = ["FROM busybox" + (" AS b" if p.bool() else "")]
    for _ in range(p.int(0, 8)):
        words = "".join(p.pick(PIECES) if p.chance(85) else p.text(3)
                        for _ in range(p.int(0, 6)))
        lines.append(p.pick(KEYWORDS) + words)
    return "\n".join(lines) + "\n"


def target(data: bytes) -> None:
    p = _driver.Provider(data)
    env = {"A": p.text(5), "B": "", "PATH": "/bin"}
    kind = p.int(0, 9)
    if kind < 2:
        text = p.text(400)
    elif kind < 5:
        text = "".join(p.pick(PIECES) if p.chance(80) else p.text(4)
                       for _ in range(p.int(0, 40)))
    else:
        text = structured(p)
    if p.chance(20):
        check_word(text, env, p)
    else:
        check_parse(text, env)


if __name__ == "__main__":
    _driver.main("dockerfile", target, max_len=2048)
