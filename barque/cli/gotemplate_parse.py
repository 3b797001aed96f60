"""Lexer and parser of Go's text/template (lex.go, parse.go, node.go) with Go's messages.

parse() turns template text into a tree of the node classes below; gotemplate executes it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from barque.cli import gofmt


class TemplateError(Exception):
    """A template that does not parse or fails while executing; the message is Go's.

    `partial` holds the output written before an execution error (Go writes it too)."""

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


# --- lexer ---------------------------------------------------------------------------------

_KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "range", "nil",
             "template", "with"}
_SPACE = " \t\r\n"


@dataclass(frozen=True)
class _Tok:
    typ: str  # "text", "left", "right", "field", ... or a keyword ("if", "nil", ...)
    val: str
    pos: int
    line: int

    def __str__(self) -> str:
        """item.String() from lex.go, used in "unexpected X in Y" messages."""
        if self.typ == "eof":
            return "EOF"
        if self.typ == "error":
            return self.val
        if self.typ in _KEYWORDS or self.typ == "dot":
            return f"<{self.val}>"
        if len(self.val) > 10:
            return gofmt.quote(self.val[:10]) + "..."
        return gofmt.quote(self.val)


class _LexError(Exception):
    pass


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdigit()


def _go_u(ch: str) -> str:
    """Go's %#U of a rune: U+0023 '#'."""
    text = f"U+{ord(ch):04X}"
    return text + f" '{ch}'" if ch.isprintable() else text


class _Lexer:
    """lex.go as a loop of state functions over the whole text; ends with eof or error."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.paren_depth = 0
        self.items: list[_Tok] = []

    def run(self) -> list[_Tok]:
        state: Callable[[], Any] | None = self.lex_text
        try:
            while state is not None:
                state = state()
        except _LexError as e:
            self.items.append(_Tok("error", str(e), self.start, self.line_at(self.start)))
        return self.items

    # helpers
    def line_at(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def emit(self, typ: str) -> None:
        self.items.append(_Tok(typ, self.text[self.start:self.pos], self.start,
                               self.line_at(self.start)))
        self.start = self.pos

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def accept(self, valid: str) -> bool:
        if self.peek() and self.peek() in valid:
            self.pos += 1
            return True
        return False

    def accept_run(self, valid: str) -> None:
        while self.accept(valid):
            pass

    def has_left_trim(self, pos: int) -> bool:
        return self.text[pos:pos + 1] == "-" and self.text[pos + 1:pos + 2] in tuple(_SPACE)

    def at_right_delim(self) -> tuple[bool, bool]:
        t, p = self.text, self.pos
        if t[p:p + 1] in tuple(_SPACE) and t[p + 1:p + 2] == "-" and t.startswith("}}", p + 2):
            return True, True
        return t.startswith("}}", p), False

    def at_terminator(self) -> bool:
        # Go also accepts the first rune of the right delimiter ("{{.ID}" lexes .ID, "}").
        ch = self.peek()
        return ch == "" or ch in _SPACE or ch in ".,|:()}"

    def skip_left_trim(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _SPACE:
            self.pos += 1
        self.start = self.pos

    # states
    def lex_text(self) -> Callable[[], Any] | None:
        x = self.text.find("{{", self.pos)
        if x < 0:
            self.pos = len(self.text)
            if self.pos > self.start:
                self.emit("text")
            self.items.append(_Tok("eof", "", self.pos, self.line_at(self.pos)))
            return None
        end = x
        if self.has_left_trim(x + 2):
            end = self.start + len(self.text[self.start:x].rstrip(_SPACE))
        if end > self.start:
            self.pos = end
            self.emit("text")
        self.pos = self.start = x
        return self.lex_left_delim

    def lex_left_delim(self) -> Callable[[], Any]:
        self.pos += 2
        after = 2 if self.has_left_trim(self.pos) else 0
        if self.text.startswith("/*", self.pos + after):
            self.pos += after
            self.start = self.pos
            return self.lex_comment
        self.emit("left")
        self.pos += after
        self.start = self.pos
        self.paren_depth = 0
        return self.lex_inside

    def lex_comment(self) -> Callable[[], Any]:
        self.pos += 2
        x = self.text.find("*/", self.pos)
        if x < 0:
            raise _LexError("unclosed comment")
        self.pos = x + 2
        delim, trim = self.at_right_delim()
        if not delim:
            raise _LexError("comment ends before closing delimiter")
        self.pos += 4 if trim else 2
        if trim:
            self.skip_left_trim()
        self.start = self.pos
        return self.lex_text

    def lex_right_delim(self) -> Callable[[], Any]:
        _, trim = self.at_right_delim()
        if trim:
            self.pos += 2
            self.start = self.pos
        self.pos += 2
        self.emit("right")
        if trim:
            self.skip_left_trim()
        return self.lex_text

    def lex_inside(self) -> Callable[[], Any]:
        delim, _ = self.at_right_delim()
        if delim:
            if self.paren_depth == 0:
                return self.lex_right_delim
            raise _LexError("unclosed left paren")
        ch = self.peek()
        if ch == "":
            raise _LexError("unclosed action")
        if ch in _SPACE:
            return self.lex_space
        self.pos += 1
        simple = {"=": "assign", "|": "pipe"}
        if ch in simple:
            self.emit(simple[ch])
        elif ch == ":":
            if not self.accept("="):
                raise _LexError("expected :=")
            self.emit("declare")
        elif ch in "\"`'":
            return {'"': self.lex_quote, "`": self.lex_raw_quote, "'": self.lex_char}[ch]
        elif ch == "$":
            return self.lex_variable
        elif ch == "." and self.peek() != "" and not "0" <= self.peek() <= "9":
            return self.lex_field
        elif ch in "+-." or "0" <= ch <= "9":
            self.pos -= 1
            return self.lex_number
        elif _is_alnum(ch):
            self.pos -= 1
            return self.lex_identifier
        elif ch == "(":
            self.paren_depth += 1
            self.emit("lparen")
        elif ch == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                raise _LexError("unexpected right paren")
            self.emit("rparen")
        elif ch <= "\x7f" and ch.isprintable():
            self.emit("char")
        else:
            raise _LexError(f"unrecognized character in action: {_go_u(ch)}")
        return self.lex_inside

    def lex_space(self) -> Callable[[], Any]:
        count = 0
        while self.peek() and self.peek() in _SPACE:
            self.pos += 1
            count += 1
        # A trim-marked right delimiter (" -}}") starts with the last space.
        self.pos -= 1
        if self.at_right_delim() == (True, True):
            if count == 1:
                return self.lex_right_delim
        else:
            self.pos += 1
        self.emit("space")
        return self.lex_inside

    def lex_identifier(self) -> Callable[[], Any]:
        while self.peek() and _is_alnum(self.peek()):
            self.pos += 1
        word = self.text[self.start:self.pos]
        if not self.at_terminator():
            raise _LexError(f"bad character {_go_u(self.peek())}")
        if word in _KEYWORDS:
            self.emit(word)
        elif word in ("true", "false"):
            self.emit("bool")
        else:
            self.emit("ident")
        return self.lex_inside

    def lex_field_or_variable(self, typ: str) -> Callable[[], Any]:
        if self.at_terminator():
            self.emit("variable" if typ == "variable" else "dot")
            return self.lex_inside
        while self.peek() and _is_alnum(self.peek()):
            self.pos += 1
        if not self.at_terminator():
            raise _LexError(f"bad character {_go_u(self.peek())}")
        self.emit(typ)
        return self.lex_inside

    def lex_field(self) -> Callable[[], Any]:
        return self.lex_field_or_variable("field")

    def lex_variable(self) -> Callable[[], Any]:
        return self.lex_field_or_variable("variable")

    def lex_quoted(self, closing: str, typ: str, what: str) -> Callable[[], Any]:
        while True:
            ch = self.peek()
            self.pos += 1
            if ch == "\\":
                nxt = self.peek()
                self.pos += 1
                if nxt not in ("", "\n"):
                    continue
                ch = nxt
            if ch in ("", "\n"):
                raise _LexError(f"unterminated {what}")
            if ch == closing:
                self.emit(typ)
                return self.lex_inside

    def lex_quote(self) -> Callable[[], Any]:
        return self.lex_quoted('"', "string", "quoted string")

    def lex_char(self) -> Callable[[], Any]:
        return self.lex_quoted("'", "charconst", "character constant")

    def lex_raw_quote(self) -> Callable[[], Any]:
        x = self.text.find("`", self.pos)
        if x < 0:
            raise _LexError("unterminated raw quoted string")
        self.pos = x + 1
        self.emit("rawstring")
        return self.lex_inside

    def scan_number(self) -> bool:
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        if self.peek() and _is_alnum(self.peek()):
            self.pos += 1
            return False
        return True

    def lex_number(self) -> Callable[[], Any]:
        if not self.scan_number():
            raise _LexError(f"bad number syntax: {gofmt.quote(self.text[self.start:self.pos])}")
        if self.peek() and self.peek() in "+-":
            if not self.scan_number() or self.text[self.pos - 1] != "i":
                bad = gofmt.quote(self.text[self.start:self.pos])
                raise _LexError(f"bad number syntax: {bad}")
            self.emit("complex")
        else:
            self.emit("number")
        return self.lex_inside


# --- literals ------------------------------------------------------------------------------

_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
                   "v": "\v", "\\": "\\", "'": "'", '"': '"'}


def _unquote_char(s: str, i: int, quote: str) -> tuple[str, int]:
    """strconv.UnquoteChar: one (possibly escaped) character of a quoted literal."""
    ch = s[i]
    if ch != "\\":
        if ch == quote and quote == "'":
            raise ValueError("invalid syntax")
        return ch, i + 1
    esc = s[i + 1:i + 2]
    if esc in _SIMPLE_ESCAPES:
        if (esc == "'" and quote == '"') or (esc == '"' and quote == "'"):
            raise ValueError("invalid syntax")
        return _SIMPLE_ESCAPES[esc], i + 2
    sizes = {"x": 2, "u": 4, "U": 8}
    if esc in sizes:
        digits = s[i + 2:i + 2 + sizes[esc]]
        if len(digits) != sizes[esc] or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise ValueError("invalid syntax")
        code = int(digits, 16)
        if esc != "x" and (code > 0x10FFFF or 0xD800 <= code <= 0xDFFF):
            raise ValueError("invalid syntax")
        # \xNN is a byte; bytes >= 0x80 are kept as surrogateescape code points.
        return chr(code if esc != "x" or code < 0x80 else 0xDC00 + code), i + 2 + sizes[esc]
    if esc and esc in "01234567":
        digits = s[i + 1:i + 4]
        if len(digits) != 3 or not all(c in "01234567" for c in digits) or int(digits, 8) > 255:
            raise ValueError("invalid syntax")
        code = int(digits, 8)
        return chr(code if code < 0x80 else 0xDC00 + code), i + 4
    raise ValueError("invalid syntax")


def _fix_bytes(s: str) -> str:
    """Join \\xNN byte escapes that together form valid UTF-8 into real characters."""
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")


def _unquote(token: str) -> str:
    """strconv.Unquote for "..." and `...` literals."""
    if token.startswith("`"):
        return token[1:-1].replace("\r", "")
    body = token[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch, i = _unquote_char(body, i, '"')
        out.append(ch)
    return _fix_bytes("".join(out))


def _parse_go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64), or None."""
    sign, body = 1, text
    if body[:1] in ("+", "-"):
        sign, body = (-1 if body[0] == "-" else 1), body[1:]
    try:
        if len(body) > 1 and body[0] == "0" and body[1] not in "xXoObB":
            if not re.fullmatch(r"0_?[0-7]+(_[0-7]+)*", body):
                return None
            value = int(body.replace("_", ""), 8)  # a leading 0 means octal in Go
        else:
            value = int(body, 0)
    except ValueError:
        return None
    value *= sign
    return value if -(1 << 63) <= value < (1 << 63) else None


def _parse_go_float(text: str) -> float | None:
    body = text.replace("_", "")
    try:
        if re.match(r"[+-]?0[xX]", body):
            return float.fromhex(body)
        return float(body)
    except ValueError:
        return None


# --- nodes ---------------------------------------------------------------------------------

class Node:
    pos: int

    def __str__(self) -> str:  # pragma: no cover - every node overrides it
        return ""


@dataclass(eq=False)
class Text(Node):
    pos: int
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(eq=False)
class List(Node):
    pos: int
    nodes: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


@dataclass(eq=False)
class Identifier(Node):
    pos: int
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(eq=False)
class Variable(Node):
    pos: int
    idents: list[str]

    def __str__(self) -> str:
        return ".".join(self.idents)


@dataclass(eq=False)
class Dot(Node):
    pos: int

    def __str__(self) -> str:
        return "."


@dataclass(eq=False)
class Nil(Node):
    pos: int

    def __str__(self) -> str:
        return "nil"


@dataclass(eq=False)
class Field(Node):
    pos: int
    idents: list[str]

    def __str__(self) -> str:
        return "".join("." + i for i in self.idents)


@dataclass(eq=False)
class Bool(Node):
    pos: int
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(eq=False)
class Number(Node):
    pos: int
    text: str
    int_value: int | None = None
    float_value: float | None = None
    complex_value: complex | None = None

    def __str__(self) -> str:
        return self.text


@dataclass(eq=False)
class String(Node):
    pos: int
    quoted: str
    text: str

    def __str__(self) -> str:
        return self.quoted


@dataclass(eq=False)
class Command(Node):
    pos: int
    args: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, Pipe) else str(a) for a in self.args)


@dataclass(eq=False)
class Pipe(Node):
    pos: int
    decl: list[Variable] = field(default_factory=list)
    is_assign: bool = False
    cmds: list[Command] = field(default_factory=list)

    def __str__(self) -> str:
        text = ""
        if self.decl:
            text = ", ".join(str(v) for v in self.decl) + (" = " if self.is_assign else " := ")
        return text + " | ".join(str(c) for c in self.cmds)


@dataclass(eq=False)
class Chain(Node):
    pos: int
    node: Node
    fields: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        base = f"({self.node})" if isinstance(self.node, Pipe) else str(self.node)
        return base + "".join("." + f for f in self.fields)


@dataclass(eq=False)
class Action(Node):
    pos: int
    pipe: Pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass(eq=False)
class Control(Node):
    """{{if}}, {{with}} or {{range}} with its body and optional else branch."""

    pos: int
    kind: str
    pipe: Pipe
    body: List
    else_body: List | None

    def __str__(self) -> str:
        text = "{{" + self.kind + " " + str(self.pipe) + "}}" + str(self.body)
        if self.else_body is not None:
            text += "{{else}}" + str(self.else_body)
        return text + "{{end}}"


@dataclass(eq=False)
class Keyword(Node):
    """{{end}}, {{else}}, {{break}} or {{continue}}."""

    pos: int
    word: str

    def __str__(self) -> str:
        return "{{" + self.word + "}}"


LITERALS = (Bool, Dot, Nil, Number, String)


# --- parser --------------------------------------------------------------------------------

class _Parser:
    """parse.go: recursive descent over the token list with Go's error messages."""

    def __init__(self, name: str, text: str, funcs: Callable[[str], bool]) -> None:
        self.name = name
        self.tokens = _Lexer(text).run()
        self.index = 0
        self.seen = 0
        self.has_function = funcs
        self.vars = ["$"]
        self.range_depth = 0

    # token stream
    def next(self) -> _Tok:
        tok = self.tokens[min(self.index, len(self.tokens) - 1)]
        self.index += 1
        self.seen = max(self.seen, min(self.index, len(self.tokens)) - 1)
        return tok

    def backup(self, count: int = 1) -> None:
        self.index -= count

    def peek(self) -> _Tok:
        tok = self.next()
        self.backup()
        return tok

    def next_non_space(self) -> _Tok:
        tok = self.next()
        while tok.typ == "space":
            tok = self.next()
        return tok

    def peek_non_space(self) -> _Tok:
        tok = self.next_non_space()
        self.backup()
        return tok

    def errorf(self, message: str) -> NoReturn:
        line = self.tokens[self.seen].line
        raise TemplateError(f"template: {self.name}:{line}: {message}")

    def unexpected(self, tok: _Tok, context: str) -> NoReturn:
        if tok.typ == "error":
            self.errorf(str(tok))
        self.errorf(f"unexpected {tok} in {context}")

    def expect(self, typ: str, context: str) -> _Tok:
        tok = self.next_non_space()
        if tok.typ != typ:
            self.unexpected(tok, context)
        return tok

    # grammar
    def parse(self) -> List:
        root = List(0)
        while self.peek().typ != "eof":
            node = self.text_or_action()
            if isinstance(node, Keyword) and node.word in ("end", "else"):
                self.errorf(f"unexpected {node}")
            root.nodes.append(node)
        return root

    def item_list(self) -> tuple[List, Node]:
        nodes = List(self.peek_non_space().pos)
        while self.peek_non_space().typ != "eof":
            node = self.text_or_action()
            if isinstance(node, Keyword) and node.word in ("end", "else"):
                return nodes, node
            nodes.nodes.append(node)
        self.errorf("unexpected EOF")

    def text_or_action(self) -> Node:
        tok = self.next_non_space()
        if tok.typ == "text":
            return Text(tok.pos, tok.val)
        if tok.typ == "left":
            return self.action()
        self.unexpected(tok, "input")

    def action(self) -> Node:
        tok = self.next_non_space()
        if tok.typ in ("if", "with", "range"):
            return self.control(tok.typ)
        if tok.typ == "else":
            return self.else_control()
        if tok.typ == "end":
            return Keyword(self.expect("right", "end").pos, "end")
        if tok.typ in ("break", "continue"):
            return self.loop_control(tok)
        if tok.typ in ("define", "template", "block"):
            self.errorf(f"{{{{{tok.typ}}}}} is not supported")
        self.backup()
        start = self.peek()
        return Action(start.pos, self.pipeline("command"))

    def loop_control(self, tok: _Tok) -> Node:
        after = self.next_non_space()
        if after.typ != "right":
            self.unexpected(after, "{{" + tok.typ + "}}")
        if self.range_depth == 0:
            self.errorf(f"{{{{{tok.typ}}}}} outside {{{{range}}}}")
        return Keyword(tok.pos, tok.typ)

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.typ in ("if", "with"):
            # "{{else if ...}}" is read as "{{else}}{{if ...}}" with a shared {{end}}.
            return Keyword(peek.pos, "else")
        return Keyword(self.expect("right", "else").pos, "else")

    def control(self, kind: str) -> Control:
        mark = len(self.vars)
        try:
            pipe = self.pipeline(kind)
            body, end = self.range_body() if kind == "range" else self.item_list()
            else_body = None
            if isinstance(end, Keyword) and end.word == "else":
                if kind in ("if", "with") and self.peek().typ == kind:
                    self.next()
                    else_body = List(end.pos, [self.control(kind)])
                else:
                    else_body, end = self.item_list()
                    if not (isinstance(end, Keyword) and end.word == "end"):
                        self.errorf(f"expected end; found {end}")
        finally:
            del self.vars[mark:]
        return Control(pipe.pos, kind, pipe, body, else_body)

    def range_body(self) -> tuple[List, Node]:
        """{{break}} and {{continue}} are allowed in a range's body, not in its else."""
        self.range_depth += 1
        try:
            return self.item_list()
        finally:
            self.range_depth -= 1

    def pipeline(self, context: str) -> Pipe:
        pipe = Pipe(self.peek_non_space().pos)
        self.declarations(pipe, context)
        while True:
            tok = self.next_non_space()
            if tok.typ in ("right", "rparen"):
                self.check_pipeline(pipe, context)
                if tok.typ == "rparen":
                    self.backup()
                return pipe
            if tok.typ in ("bool", "charconst", "complex", "dot", "field", "ident", "number",
                           "nil", "rawstring", "string", "variable", "lparen"):
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(tok, context)

    def declarations(self, pipe: Pipe, context: str) -> None:
        while True:
            if self.peek_non_space().typ != "variable":
                return
            var = self.next_non_space()
            var_index = self.index - 1
            nxt = self.peek_non_space()
            if nxt.typ in ("assign", "declare"):
                pipe.is_assign = nxt.typ == "assign"
                self.next_non_space()
                pipe.decl.append(Variable(var.pos, [var.val]))
                self.vars.append(var.val)
                return
            if nxt.typ == "char" and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(Variable(var.pos, [var.val]))
                self.vars.append(var.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in ("variable", "right", "rparen"):
                        continue
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            self.index = var_index  # not a declaration: the variable is an operand
            return

    def check_pipeline(self, pipe: Pipe, context: str) -> None:
        if not pipe.cmds:
            self.errorf(f"missing value for {context}")
        for i, cmd in enumerate(pipe.cmds[1:]):
            if isinstance(cmd.args[0], LITERALS):
                self.errorf(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> Command:
        cmd = Command(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.typ == "space":
                continue
            if tok.typ == "error":
                self.errorf(tok.val)
            if tok.typ in ("right", "rparen"):
                self.backup()
            elif tok.typ != "pipe":
                self.errorf(f"unexpected {tok} in operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None or self.peek().typ != "field":
            return node
        chain = Chain(self.peek().pos, node)
        while self.peek().typ == "field":
            chain.fields.append(self.next().val[1:])
        if isinstance(node, Field):
            return Field(chain.pos, node.idents + chain.fields)
        if isinstance(node, Variable):
            return Variable(chain.pos, node.idents + chain.fields)
        if isinstance(node, LITERALS):
            self.errorf(f"unexpected . after term {gofmt.quote(str(node))}")
        return chain

    def term(self) -> Node | None:
        tok = self.next_non_space()
        typ = tok.typ
        if typ == "error":
            self.errorf(tok.val)
        if typ == "ident":
            if not self.has_function(tok.val):
                self.errorf(f"function {gofmt.quote(tok.val)} not defined")
            return Identifier(tok.pos, tok.val)
        if typ == "dot":
            return Dot(tok.pos)
        if typ == "nil":
            return Nil(tok.pos)
        if typ == "variable":
            if tok.val not in self.vars:
                self.errorf(f"undefined variable {gofmt.quote(tok.val)}")
            return Variable(tok.pos, [tok.val])
        if typ == "field":
            return Field(tok.pos, [tok.val[1:]])
        if typ == "bool":
            return Bool(tok.pos, tok.val == "true")
        if typ in ("charconst", "complex", "number"):
            return self.number(tok)
        if typ == "lparen":
            pipe = self.pipeline("parenthesized pipeline")
            close = self.next()
            if close.typ != "rparen":
                self.errorf(f"unclosed right paren: unexpected {close}")
            return pipe
        if typ in ("string", "rawstring"):
            try:
                return String(tok.pos, tok.val, _unquote(tok.val))
            except ValueError as e:
                self.errorf(str(e))
        self.backup()
        return None

    def number(self, tok: _Tok) -> Number:
        """newNumber from node.go: which of int, float and complex the literal can be."""
        text = tok.val
        node = Number(tok.pos, text)
        if tok.typ == "charconst":
            try:
                ch, end = _unquote_char(text, 1, "'")
            except (ValueError, IndexError):
                self.errorf("invalid syntax")
            if text[end:] != "'":
                self.errorf(f"malformed character constant: {text}")
            node.int_value = ord(ch) if not 0xDC80 <= ord(ch) <= 0xDCFF else ord(ch) - 0xDC00
            node.float_value = float(node.int_value)
            return node
        if tok.typ == "complex" or text.endswith("i"):
            try:
                node.complex_value = complex(text.replace("_", "").replace("i", "j"))
            except ValueError:
                self.errorf(f"illegal number syntax: {gofmt.quote(text)}")
            return node
        node.int_value = _parse_go_int(text)
        if node.int_value is not None:
            node.float_value = float(node.int_value)
            return node
        value = _parse_go_float(text)
        if value is None:
            self.errorf(f"illegal number syntax: {gofmt.quote(text)}")
        if not any(c in text for c in ".eEpP"):
            self.errorf(f"integer overflow: {gofmt.quote(text)}")
        node.float_value = value
        if value.is_integer() and -(1 << 63) <= value < (1 << 63):
            node.int_value = int(value)
        return node


def parse(name: str, text: str, has_function: Callable[[str], bool]) -> List:
    """The tree of a template; has_function says which identifiers are functions."""
    return _Parser(name, text, has_function).parse()
