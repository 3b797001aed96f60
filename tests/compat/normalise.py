"""What legitimately differs between two runs of one command line, replaced by placeholders
before the outputs are compared: IDs, generated names, times, sizes, the program's name and
the column padding that follows from their widths."""

from __future__ import annotations

import re

_RULES: list[tuple[re.Pattern[str], str]] = [
    # RFC 3339 stamps (inspect, logs -t, events) and Go's time.Time (images' CreatedAt).
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"), "<stamp>"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? [+-]\d{4} \w+"), "<date>"),
    # sha256 digests and IDs, full and short (container hostnames are short IDs).
    (re.compile(r"\b(sha256:)?[0-9a-f]{64}\b"), "<id>"),
    (re.compile(r"\b[0-9a-f]{12}\b"), "<id>"),
    # go-units' HumanDuration, with and without "ago" (ps' CREATED and STATUS).
    (re.compile(r"\b(Less than a second|About a minute|About an hour|"
                r"\d+ (second|minute|hour|day|week|month|year)s?)\b"), "<time>"),
    # go-units' HumanSize and BytesSize, and the sizes of ps -s ("0B (virtual 1.2MB)").
    (re.compile(r"\b\d+(\.\d+)?\s?(B|kB|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\b"), "<size>"),
    # The OCI runtime's name in its own errors, which dockerd (and Barque) quote: runc's
    # "runc create failed: ...", barque-runtime's "barque-runtime run failed: ..." (Barque's
    # monitor creates and starts in one `run --detach`; dockerd's shim calls `create`).
    # Before the next rule, which would make "barque-runtime" "docker-runtime".
    (re.compile(r"\bbarque-runtime run failed: "), "runc create failed: "),
    # `docker run --rm` or `start -a` of a container that cannot start: the docker CLI's wait
    # for its end races the start's error and may log its cancelling (the command cancels the
    # wait's context as it returns the error): a line of the client's, there or not from run
    # to run, in any case whose start fails. Barque never prints it.
    (re.compile(r'(?m)^time="<stamp>" level=error msg="error waiting for container: '
                r'context canceled"\n?'), ""),
    # The program's name in usage lines and hints ("See 'docker run --help'.").
    (re.compile(r"\bbarque\b"), "docker"),
    # ... and in the help's words ("Manage Docker", `system --help`): the product's name.
    (re.compile(r"\bBarque\b"), "Docker"),
]
_GENERATED_NAME = re.compile(r"\b[a-z]+_[a-z]+\b")
_PADDING = re.compile(r"(?<=\S) {2,}(?=\S)")


def normalise(text: str, generated_names: bool = False,
              extra: tuple[tuple[str, str], ...] = ()) -> str:
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    if generated_names:
        text = _GENERATED_NAME.sub("<name>", text)
    for pattern_text, placeholder in extra:
        text = re.sub(pattern_text, placeholder, text)
    # Table columns are padded to their widest cell: once cells are placeholders the widths
    # say nothing, so any run of padding becomes one gap.
    lines = [_PADDING.sub("   ", line).rstrip() for line in text.splitlines()]
    return "\n".join(lines)
