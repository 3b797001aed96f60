"""What a parsed Dockerfile holds: stages of instructions, each with its words still
unexpanded (a word's variables are replaced when the builder reaches it, with the ARG and
ENV values in scope there: see expand.py).

Every instruction keeps its line range and its original text, for error messages
(`Dockerfile:7`) and for the progress display (`[stage-1 2/3] RUN echo hi`)."""

from __future__ import annotations

from barque.structs import dataclass, field


class DockerfileError(ValueError):
    """A malformed Dockerfile: the message names the file and line as BuildKit does
    (`dockerfile parse error on line 3: unknown instruction: FRM`) and `line` holds it."""

    def __init__(self, message: str, filename: str = "Dockerfile", line: int = 0) -> None:
        super().__init__(message)
        self.filename = filename
        self.line = line


@dataclass
class Heredoc:
    name: str             # the delimiter word: EOF
    content: str          # the body, with a trailing newline; tabs stripped for <<-
    expand: bool = True   # False when the delimiter was quoted (<<"EOF"): no substitution
    chomp: bool = False   # <<- : leading tabs were removed


@dataclass
class Instruction:
    keyword: str                    # upper case: RUN, COPY, ...
    line: int                       # first line (1-based)
    end_line: int                   # last line, continuations and heredocs included
    original: str                   # the instruction as written, continuations joined
    flags: dict[str, list[str]] = field(default_factory=dict)  # --name=value, repeatable
    # The arguments, unexpanded: for a JSON (exec) form the list's strings; for a shell
    # form of RUN/CMD/ENTRYPOINT/SHELL-using instructions one string (the command line);
    # for the others the words split as Docker splits them (quotes kept for expand.py).
    args: list[str] = field(default_factory=list)
    json_form: bool = False
    heredocs: list[Heredoc] = field(default_factory=list)


@dataclass
class Stage:
    index: int                      # 0-based position
    name: str | None                # `AS name`, lower-cased as BuildKit does
    base: str                       # the FROM image word, unexpanded ("scratch", a stage)
    platform: str | None            # FROM --platform=..., unexpanded
    line: int
    original: str                   # the FROM line, for the progress display
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    filename: str
    escape: str = "\\"
    syntax: str | None = None
    check: str | None = None
    meta_args: list[Instruction] = field(default_factory=list)  # ARGs before the first FROM
    stages: list[Stage] = field(default_factory=list)
