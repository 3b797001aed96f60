"""Help pages and command-line errors in the docker CLI's layout (cobra's, with Docker's
templates), rendered from the argparse tree so they never go stale.

- `--help`: "Usage:  PATH [OPTIONS] ARGS", the one-line description, "Options:",
  "Management Commands:"/"Commands:", "Run 'PATH COMMAND --help' for more information on a
  command." for groups.
- a wrong number of arguments: `"barque run" requires at least 1 argument.`, the hint, the usage
  line and the description, exit 1 (docker/cli's cli/required.go).
- a bad flag: `unknown flag: --bogus` and "See 'barque run --help'.", exit 125 (the CLI's
  FlagErrorFunc); a group's usage follows for a group.
"""

from __future__ import annotations

import argparse
import re
import sys

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import NoReturn

EXIT_USAGE = 1  # cobra's argument errors: docker's main exits 1
EXIT_FLAG = 125  # FlagErrorFunc's StatusError

_WIDTH = 80  # pflag wraps flag descriptions at the terminal's width, 80 for a pipe


def set_arg_range(parser: argparse.ArgumentParser, least: int, most: int | None) -> None:
    """Where cobra's count differs from the positionals' (exec: CONTAINER COMMAND, two
    required though argparse takes the command as a possibly empty remainder)."""
    parser.arg_range = (least, most)  # type: ignore[attr-defined]


def _positionals(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions
            if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS
            and not isinstance(a, argparse._HelpAction)]


def _group(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def arg_range(parser: argparse.ArgumentParser) -> tuple[int, int | None]:
    """(least, most or None for no limit) positional arguments, from the parser's."""
    fixed = getattr(parser, "arg_range", None)
    if fixed is not None:
        return fixed
    least, most = 0, 0
    unbounded = False
    for action in _positionals(parser):
        if action.nargs is None:
            least, most = least + 1, most + 1
        elif isinstance(action.nargs, int):
            least, most = least + action.nargs, most + action.nargs
        elif action.nargs == "?":
            most += 1
        else:  # "+", "*", REMAINDER
            least += action.nargs == "+"
            unbounded = True
    return least, None if unbounded else most


def count_given(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> int:
    count = 0
    for action in _positionals(parser):
        value = getattr(ns, action.dest, None)
        count += len(value) if isinstance(value, list) else int(value is not None)
    return count


def _metavar(action: argparse.Action) -> str:
    return str(action.metavar or action.dest.upper())


def _use_positionals(parser: argparse.ArgumentParser) -> str:
    words = []
    for action in _positionals(parser):
        name = _metavar(action)
        if action.nargs is None:
            words.append(name)
        elif action.nargs == "?":
            words.append(f"[{name}]")
        elif action.nargs == "+":
            words.append(f"{name} [{name}...]")
        elif action.nargs == argparse.REMAINDER:
            words.append(f"[{name}] [ARG...]")
        else:
            words.append(f"[{name}...]")
    return " ".join(words)


def use_line(parser: argparse.ArgumentParser) -> str:
    """cobra's UseLine: "barque run [OPTIONS] IMAGE [COMMAND] [ARG...]"."""
    if parser.usage:
        return parser.usage % {"prog": parser.prog}
    words = [parser.prog]
    if _options(parser):
        words.append("[OPTIONS]")
    if _group(parser) is not None:
        words.append("COMMAND")
    else:
        words.append(_use_positionals(parser))
    return " ".join(w for w in words if w)


def short(parser: argparse.ArgumentParser) -> str:
    return _sentence(parser.description or "")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _flag_type(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if isinstance(action, argparse._AppendAction):
        return "list"
    if action.type is int:
        return "int"
    return "string"


def _default(action: argparse.Action) -> str:
    """pflag's " (default …)" for a value other than its type's zero."""
    value = action.default
    if action.nargs == 0 or isinstance(action, argparse.BooleanOptionalAction):
        return " (default true)" if value is True else ""
    if isinstance(value, str) and value:
        return f' (default "{value}")'
    if isinstance(value, int) and not isinstance(value, bool) and value:
        return f" (default {value})"
    return ""


def _option_rows(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    rows = []
    for action in _options(parser):
        shorts = [o for o in action.option_strings if not o.startswith("--")]
        longs = [o for o in action.option_strings if o.startswith("--")]
        flag = f"{shorts[0]}, " if shorts else "    "
        flag += longs[0] if longs else shorts[0]
        kind = _flag_type(action)
        left = f"  {flag} {kind}".rstrip()
        text = action.help or ""
        if "%(" in text:
            text = text % {"default": action.default, "prog": parser.prog}
        rows.append((left, _sentence(text) + _default(action)))
    return rows


def _options_section(parser: argparse.ArgumentParser) -> str:
    import textwrap  # only a help page needs it, not every command's start

    rows = _option_rows(parser)
    if not rows:
        return ""
    width = max(len(left) for left, _ in rows) + 3
    lines = []
    for left, text in rows:
        wrapped = textwrap.wrap(text, max(_WIDTH - width, 20)) or [""]
        lines.append(left.ljust(width) + wrapped[0])
        lines += [" " * width + more for more in wrapped[1:]]
    return "\n\nOptions:\n" + "\n".join(lines)


def _commands_section(title: str, entries: list[tuple[str, str]]) -> str:
    if not entries:
        return ""
    # cobra's rpad to NamePadding: the longest name, at least 11 columns
    pad = max(11, max(len(name) for name, _ in entries))
    return f"\n\n{title}:\n" + "\n".join(f"  {name.ljust(pad)} {_sentence(text)}".rstrip()
                                         for name, text in entries)


def _subcommands(group: argparse._SubParsersAction) -> tuple[list[tuple[str, str]],
                                                              list[tuple[str, str]]]:
    """(management commands: the groups, other commands), each (name, description)."""
    groups: list[tuple[str, str]] = []
    others: list[tuple[str, str]] = []
    for action in group._get_subactions():
        child = group.choices.get(action.dest)
        is_group = getattr(action, "is_group", False) or \
            (child is not None and _group(child) is not None)
        (groups if is_group else others).append((action.dest, action.help or ""))
    return groups, others


def usage_string(parser: argparse.ArgumentParser, root: bool = False) -> str:
    """cobra's UsageString with Docker's usage template."""
    text = f"Usage:  {use_line(parser)}\n\n{short(parser)}"
    aliases = getattr(parser, "aliases", [])
    if len(aliases) > 1:
        text += "\n\nAliases:\n  " + ", ".join(aliases)
    text += _options_section(parser)
    group = _group(parser)
    if group is not None:
        groups, others = _subcommands(group)
        if root:
            text += _commands_section("Management Commands", groups)
        else:
            others = sorted(groups + others)
        text += _commands_section("Commands", others)
        text += f"\n\nRun '{parser.prog} COMMAND --help' for more information on a command."
    return text + "\n"


def help_text(parser: argparse.ArgumentParser, root: bool = False) -> str:
    return "\n" + usage_string(parser, root)


def _stderr(text: str) -> None:
    sys.stderr.write(text if text.endswith("\n") else text + "\n")


def arg_count_error(parser: argparse.ArgumentParser) -> NoReturn:
    least, most = arg_range(parser)
    path = parser.prog
    if _group(parser) is not None:
        # cobra's NoArgs of a command with subcommands: its usage, exit 1
        _stderr("\n" + usage_string(parser).rstrip("\n"))
        sys.exit(EXIT_USAGE)
    if most == 0:
        need = "accepts no arguments"
    elif most == least:
        need = f"requires exactly {_count(least)}"
    elif most is None:
        need = f"requires at least {_count(least)}"
    elif least == 0:
        need = f"requires at most {_count(most)}"
    else:
        need = f"requires at least {least} and at most {_count(most)}"
    _stderr(f'"{path}" {need}.\nSee \'{path} --help\'.\n\nUsage:  {use_line(parser)}\n\n'
            f"{short(parser)}")
    sys.exit(EXIT_USAGE)


def invalid_arg(parser: argparse.ArgumentParser, message: str) -> None:
    """A positional argument outside its choices (`completion fish`): cobra's OnlyValidArgs
    words, exit 1; nothing if the message is about something else."""
    value = re.match(r"argument [^-/ ]\S*: invalid choice: '(.*?)'", message)
    if value:
        _stderr(f'invalid argument "{value.group(1)}" for "{parser.prog}"\n'
                f"See '{parser.prog} --help'.")
        sys.exit(EXIT_USAGE)


def _count(n: int) -> str:
    return f"{n} argument" if n == 1 else f"{n} arguments"


def flag_error(parser: argparse.ArgumentParser, message: str, root: bool = False) -> NoReturn:
    text = f"{message}\nSee '{parser.prog} --help'."
    if _group(parser) is not None:
        text += "\n\n" + usage_string(parser, root)
    _stderr(text)
    sys.exit(EXIT_FLAG)


def unknown_flag(word: str) -> str:
    """pflag's words for an option no parser knows."""
    if word.startswith("--"):
        return f"unknown flag: {word.split('=', 1)[0]}"
    return f"unknown shorthand flag: '{word[1:2]}' in {word}"


def check_words(args: list[str], root: argparse.ArgumentParser, ns: argparse.Namespace,
                extras: list[str]) -> None:
    """What argparse leaves over, as cobra reports it: an unknown flag blames the command it
    follows ("unknown flag: --foo", "See 'barque run --help'."), a word too many the command's
    argument count, a group without its command shows its help; and the counts argparse
    cannot express (exec's COMMAND)."""
    command: argparse.ArgumentParser = getattr(ns, "parser", root)
    if extras:
        word = extras[0]
        if word.startswith("-") and word != "-":
            before = ns.command in args and args.index(word) < args.index(ns.command)
            blamed = root if before else command
            flag_error(blamed, unknown_flag(word), root=blamed is root)
        arg_count_error(command)
    group = _group(command)
    if group is not None:
        if getattr(ns, group.dest, None) is None:
            # docker's ShowHelp(dockerCli.Err()): a group's help on stderr, exit 0
            sys.stderr.write(help_text(command, root=command is root))
            sys.exit(0)
        return
    least, most = arg_range(command)
    given = count_given(command, ns)
    if given < least or (most is not None and given > most):
        arg_count_error(command)


def flag_words(message: str) -> str:
    """pflag's (or cobra's) words for argparse's message about an argument."""
    match = re.match(r"argument (\S+): (.*)", message)
    if match is None:
        return message
    names, what = match.group(1).split("/"), match.group(2)
    if not names[0].startswith("-"):
        return message
    shown = names[0] if names[0].startswith("--") else ", ".join(names[:2])
    if what == "expected one argument":
        return f"flag needs an argument: {_typed_flag(names)}"
    value = re.match(r"ignored explicit argument '(.*)'", what)
    if value:
        given = value.group(1)
        longs = [n for n in names if n.startswith("--")]
        if any(word.startswith(f"{n}=") for word in sys.argv[1:] for n in longs):
            return (f'invalid argument "{given}" for "{shown}" flag: strconv.ParseBool: '
                    f'parsing "{given}": invalid syntax')
        # `-itz`: argparse took -i and -t, pflag names what it could not take
        return f"unknown shorthand flag: '{given[0]}' in -{given}"
    value = re.match(r"invalid (int|float) value: '(.*)'", what)
    if value:
        parse = "ParseInt" if value.group(1) == "int" else "ParseFloat"
        return (f'invalid argument "{value.group(2)}" for "{shown}" flag: strconv.{parse}: '
                f'parsing "{value.group(2)}": invalid syntax')
    value = re.match(r"invalid choice: '(.*?)' \(choose from (.*)\)", what)
    if value:
        return (f'invalid argument "{value.group(1)}" for "{shown}" flag: must be one of '
                f"{value.group(2)}")
    return f'invalid argument for "{shown}" flag: {what}'


def _typed_flag(names: list[str]) -> str:
    """The flag as typed: "'m' in -m" for a shorthand, "--memory" for a long one."""
    for word in reversed(sys.argv[1:]):
        for name in names:
            if word == name or word.startswith(name + "="):
                return name if name.startswith("--") else f"'{name[1:]}' in {name}"
    return names[-1]
