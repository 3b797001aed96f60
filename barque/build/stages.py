"""The stage graph of a Dockerfile: which stages a target needs and in what order.

A stage depends on the stage its FROM names (by `AS` name or index) and on those its
`COPY --from` / `ADD --from` / `RUN --mount=...,from=` name; anything else such a word names
is an image. The meta ARGs (before the first FROM, with the build args and the automatic
platform ARGs) expand the FROM words. Only the stages the target needs are built, each as
soon as those it depends on are done (the builder runs independent ones in parallel).
"""

from __future__ import annotations

from barque.build.dockerfile import commands
from barque.build.imageconfig import ConfigError, expand
from barque.structs import dataclass, field

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from barque.build.dockerfile.instructions import Dockerfile, Instruction, Stage


class StageError(ValueError):
    """A stage graph BuildKit refuses (unknown target, a stage naming itself...)."""


@dataclass
class Plan:
    stage: Stage
    prefix: str                     # "stage-1 " / "builder " / "" for one stage: the display
    base: str                       # the FROM word expanded ("scratch", an image)
    base_stage: int | None = None   # the index of the stage FROM names
    deps: set[int] = field(default_factory=set)  # stages it needs (base and --from)
    platform: str | None = None
    total: int = 1                  # the steps the display counts: FROM, RUN, COPY, ADD, WORKDIR


def platform_args(platform: str | None, host: dict[str, str]) -> dict[str, str]:
    """BuildKit's automatic platform ARGs (TARGET* for the build's --platform, BUILD* for
    this host)."""
    def split(p: dict[str, str], prefix: str) -> dict[str, str]:
        text = f"{p['os']}/{p['architecture']}" + (f"/{p['variant']}" if p.get("variant")
                                                    else "")
        return {f"{prefix}PLATFORM": text, f"{prefix}OS": p["os"],
                f"{prefix}ARCH": p["architecture"], f"{prefix}VARIANT": p.get("variant", "")}

    target = dict(host)
    if platform:
        parts = platform.split("/")
        target = {"os": parts[0], "architecture": parts[1] if len(parts) > 1 else "",
                  "variant": parts[2] if len(parts) > 2 else ""}
    return {**split(target, "TARGET"), **split(host, "BUILD")}


def meta_scope(dockerfile: Dockerfile, build_args: dict[str, str],
               auto: dict[str, str]) -> dict[str, str | None]:
    """The ARGs before the first FROM, with their values (build args win), over the
    automatic platform ARGs: what FROM words and stage ARGs without a default see."""
    scope: dict[str, str | None] = dict(auto)
    for instr in dockerfile.meta_args:
        for word in instr.args:
            name, sep, default = word.partition("=")
            known = {k: v for k, v in scope.items() if v is not None}
            value: str | None = expand(default, known, dockerfile.escape) if sep else None
            if name in build_args:
                value = build_args[name]
            scope[name] = value
    return scope


_COUNTED = ("RUN", "COPY", "ADD", "WORKDIR")


def _from_flags(instr: Instruction) -> list[str]:
    """The stage-or-image words an instruction takes files from."""
    if instr.keyword in ("COPY", "ADD"):
        return list(instr.flags.get("from", []))
    if instr.keyword == "RUN":
        found = []
        for spec in instr.flags.get("mount", []):
            for part in spec.split(","):
                key, _, value = part.partition("=")
                if key.strip() == "from" and value:
                    found.append(value.strip())
        return found
    return []


def find_stage(stages: list[Stage], word: str, before: int, *,
               by_index: bool = True) -> int | None:
    """The index of the stage `word` names (a name, or for --from an index), among those
    before `before`; None when it names none (it is an image)."""
    lowered = word.lower()
    for stage in stages[:before]:
        if stage.name is not None and stage.name == lowered:
            return stage.index
    if by_index and word.isdigit() and int(word) < before:
        return int(word)
    return None


def plan(dockerfile: Dockerfile, target: str | None,
         scope: dict[str, str | None]) -> list[Plan]:
    """The stages the target (by default the last stage) needs, in Dockerfile order."""
    stages = dockerfile.stages
    if not stages:
        raise StageError("dockerfile contains no stages to build")
    known = {k: v for k, v in scope.items() if v is not None}
    multi = len(stages) > 1
    plans: list[Plan] = []
    for stage in stages:
        try:
            base = commands.base_name(stage, known, dockerfile.escape)
            platform = commands.platform(stage, known, dockerfile.escape)
        except ValueError as e:
            raise StageError(str(e)) from None
        p = Plan(stage, "", base, platform=platform)
        if multi:
            p.prefix = (stage.name or f"stage-{stage.index}") + " "
        p.base_stage = find_stage(stages, base, stage.index, by_index=False)
        if p.base_stage is not None:
            p.deps.add(p.base_stage)
        for instr in stage.instructions:
            for word in _from_flags(instr):
                try:
                    word = expand(word, known, dockerfile.escape)
                except ConfigError:
                    pass
                dep = find_stage(stages, word, stage.index)
                if dep is not None:
                    p.deps.add(dep)
                elif find_stage(stages, word, len(stages)) is not None:
                    raise StageError(f"circular dependency detected on stage: {word}")
        p.total = 1 + sum(1 for i in stage.instructions if i.keyword in _COUNTED)
        plans.append(p)
    last = len(stages) - 1
    if target is not None:
        found = find_stage(stages, target, len(stages)) if not target.isdigit() else None
        if found is None:
            raise StageError(f'target stage "{target}" could not be found')
        last = found
    needed: set[int] = set()
    todo = [last]
    while todo:
        i = todo.pop()
        if i not in needed:
            needed.add(i)
            todo.extend(plans[i].deps)
    return [p for p in plans if p.stage.index in needed]
