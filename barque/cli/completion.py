"""`barque completion bash|zsh`: the shell's completion script, as `docker completion` prints.

The scripts hold no list of commands or flags: on each TAB they run `barque __complete WORDS`,
which walks the argparse tree that parses those words (so the candidates never go stale) and
names the containers, images, networks and volumes of the root the words name.
"""

from __future__ import annotations

import argparse
import os

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from collections.abc import Iterator

BASH = r"""# bash completion for barque.   source <(barque completion bash)
# (or save it as /etc/bash_completion.d/barque). Candidates come from `barque __complete`.
_barque() {
    local line=${COMP_LINE:0:COMP_POINT} words c
    read -ra words <<<"$line"
    [[ $line == *[[:space:]] || ${#words[@]} -eq 0 ]] && words+=("")
    local cur=${words[${#words[@]}-1]}
    # bash replaces only what follows the word's last = or : (COMP_WORDBREAKS)
    local pre=${cur%"${cur##*[=:]}"}
    local IFS=$'\n'
    COMPREPLY=()
    for c in $("${words[0]}" __complete "${words[@]:1}" 2>/dev/null); do
        c=${c%%$'\t'*}
        COMPREPLY+=("${c#"$pre"}")
    done
}
complete -o default -o bashdefault -F _barque barque
"""

ZSH = r"""#compdef barque
# zsh completion for barque.   source <(barque completion zsh)   (after compinit), or save it
# as _barque in a directory of $fpath. Candidates come from `barque __complete`.
_barque() {
    local -a lines cands descs
    local line
    lines=("${(@f)$(${words[1]} __complete "${(@Q)words[2,CURRENT]}" 2>/dev/null)}")
    for line in $lines; do
        [[ -n $line ]] || continue
        cands+=("${line%%$'\t'*}")
        if [[ $line == *$'\t'* ]]; then
            descs+=("${line%%$'\t'*}  -- ${line#*$'\t'}")
        else
            descs+=("$line")
        fi
    done
    if (( ${#cands} )); then
        compadd -l -d descs -a cands
    else
        _files
    fi
}
if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
    _barque "$@"
else
    compdef _barque barque
fi
"""


def script(shell: str) -> str:
    """The completion script for `shell` (bash or zsh: `barque completion`'s choices)."""
    return BASH if shell == "bash" else ZSH


# Positional arguments that name existing objects, by metavar (a new object's name, dest
# "name", is not completed).
_KINDS = {"CONTAINER": "containers", "NAME|ID": "containers", "IMAGE": "images",
          "SOURCE_IMAGE[:TAG]": "images", "NAME[:TAG]": "images", "NETWORK": "networks",
          "VOLUME": "volumes"}
_LISTS = {"containers": ["ps", "-a", "--format", "{{.Names}}"],
          "images": ["images", "--format", "{{.Repository}}:{{.Tag}}"],
          "networks": ["network", "ls", "--format", "{{.Name}}"],
          "volumes": ["volume", "ls", "--format", "{{.Name}}"]}


class _Node:
    """One parser of the tree: its subcommands, options and positional arguments."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.subs: dict[str, tuple[argparse.ArgumentParser, str]] = {}
        self.options: dict[str, argparse.Action] = {}
        self.positionals: list[argparse.Action] = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {a.dest: a.help or "" for a in action._choices_actions}
                for name, sub in action.choices.items():
                    text = helps.get(name, "")
                    internal = f"{text}{sub.description or ''}".startswith("(internal)")
                    if text != argparse.SUPPRESS and not internal:
                        self.subs[name] = (sub, text)
            elif action.option_strings:
                if action.help != argparse.SUPPRESS:
                    self.options.update(dict.fromkeys(action.option_strings, action))
            else:
                self.positionals.append(action)

    def positional(self, index: int) -> argparse.Action | None:
        for action in self.positionals:
            if action.nargs in ("+", "*", argparse.REMAINDER, argparse.PARSER):
                return action
            if index == 0:
                return action
            index -= 1
        return None


def candidates(words: list[str]) -> list[str]:
    """What may replace the last of `words` (the words after `barque`; the last is the one
    being completed, maybe ""): "candidate" or "candidate<TAB>description" lines."""
    from barque.cli import argv_scan
    from barque.cli.main import build_parser

    argv_scan.scan([])  # every command's parser
    node = _Node(build_parser())
    cur, done = words[-1], words[:-1]
    globals_: list[str] = []  # --root, --runroot: where the names come from
    count, i, at_top, options = 0, 0, True, True
    while i < len(done):
        word = done[i]
        if word == "--":
            options = False
        elif options and word.startswith("-") and word != "-":
            action = node.options.get(word.split("=", 1)[0])
            takes = action is not None and action.nargs != 0 and "=" not in word
            if at_top and action is not None and action.dest in ("root", "runroot"):
                globals_ += done[i:i + 2] if takes else [word]
            if takes and action is not None and i + 1 == len(done):
                return _values(action, cur, "", globals_)
            i += 1 if takes else 0
        elif count == 0 and word in node.subs:
            node, at_top = _Node(node.subs[word][0]), False
        else:
            count += 1
            # The container's command and its arguments (run, exec) are not barque's.
            rest = node.positional(count)
            options = options and not (rest is not None and rest.nargs == argparse.REMAINDER)
        i += 1
    if not options:
        return []
    if cur.startswith("--") and "=" in cur:
        flag, _, value = cur.partition("=")
        action = node.options.get(flag)
        if action is None or action.nargs == 0:
            return []
        return _values(action, value, f"{flag}=", globals_)
    if cur.startswith("-"):
        return [f"{flag}\t{_help(action)}" for flag, action in sorted(node.options.items())
                if flag.startswith(cur)]
    if node.subs and count == 0:
        return [f"{name}\t{text}" for name, (_, text) in node.subs.items()
                if name.startswith(cur)]
    action = node.positional(count)
    if action is None or action.dest == "name":
        return []
    return _values(action, cur, "", globals_)


def _help(action: argparse.Action) -> str:
    try:
        return (action.help or "") % vars(action)  # as argparse expands %(default)s
    except (KeyError, TypeError, ValueError):
        return action.help or ""


def _values(action: argparse.Action, cur: str, prefix: str, globals_: list[str]) -> list[str]:
    """The values an option or positional argument may take: its choices, or the names of
    the objects it names; none (the shell then completes file names) for the rest."""
    if action.choices is not None:
        found: Iterator[str] = (str(c) for c in action.choices)
    elif action.dest == "network" and action.option_strings:
        found = iter(["bridge", "host", "none", *_names("networks", globals_)])
    else:
        kind = _KINDS.get(str(action.metavar)) if not action.option_strings else None
        found = iter(_names(kind, globals_) if kind else [])
    return [prefix + v for v in dict.fromkeys(found) if v.startswith(cur)]


def _names(kind: str, globals_: list[str]) -> list[str]:
    """The object names `barque GLOBALS ls-command` prints, or none if that fails (no such
    root, no permission): completion must never make a root or say anything."""
    import contextlib
    import io

    from barque.cli.main import main
    from barque.engine.paths import DEFAULT_ROOT

    root = os.environ.get("BARQUE_ROOT", DEFAULT_ROOT)
    for flag, value in zip(globals_, [*globals_[1:], ""], strict=False):
        if flag == "--root" or flag.startswith("--root="):
            root = value if flag == "--root" else flag.partition("=")[2]
    if not os.path.exists(os.path.join(root, "barque.db")):
        return []
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main([*globals_, *_LISTS[kind]])
    except (Exception, SystemExit):
        return []
    names = out.getvalue().split() if code == 0 else []
    return [n for n in names if "<none>" not in n]


def run(words: list[str]) -> int:
    """`barque __complete WORDS`: one candidate a line."""
    for line in candidates(words or [""]):
        print(line.replace("\n", " "))
    return 0
