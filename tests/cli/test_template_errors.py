"""--format / -f templates that name a field Docker's types lack, or do not parse: exit 1
(64 for inspect's parse errors) with the docker CLI's words, never `<no value>` and exit 0.
Expected texts recorded from docker 28's CLI against Debian's dockerd 20.10."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]

_AT = 'template: :1:{col}: executing "" at <{node}>: '
_PS = "failed to execute template: " + _AT + "can't evaluate field {field} in type {type}"
_PARSE = "template parsing error: template: :1: unclosed action"
_NO_KEY = "template parsing error: " + _AT + 'map has no entry for key "{field}"'
_FIELD = "template parsing error: " + _AT + "can't evaluate field {field} in type {type}"
_CTX = "*formatter.ContainerContext"

# (argv, exit status, stdout, stderr)
CASES = [
    (["ps", "--format", "{{.Nope}}"], 1, "",
     _PS.format(col=2, node=".Nope", field="Nope", type=_CTX)),
    (["ps", "-a", "--format", "{{.State.Bogus}}"], 1, "",
     _PS.format(col=8, node=".State.Bogus", field="Bogus", type="string")),
    (["ps", "--format", "table\\t{{.Nope}}"], 1, "",  # the raw template: \t is 2 columns
     _PS.format(col=9, node=".Nope", field="Nope", type=_CTX)),
    (["ps", "--format", "{{.Nope"], 1, "",
     "failed to parse template: template: :1: unclosed action"),
    (["inspect", "-f", "{{.State.Bogus}}", "t1"], 1, "\n",
     _NO_KEY.format(col=8, node=".State.Bogus", field="Bogus")),
    (["container", "inspect", "-f", "{{.Name}}{{.Nope}}", "t1"], 1, "\n",
     _NO_KEY.format(col=11, node=".Nope", field="Nope")),
    (["inspect", "-f", "{{.Nope}}", "t1", "nonexist"], 1, "\n",
     _NO_KEY.format(col=2, node=".Nope", field="Nope") + "\nError: No such object: nonexist"),
    (["inspect", "-f", "{{.Config.Labels.nope}}", "t1"], 0, "<no value>\n", ""),  # a map
    (["inspect", "-f", "{{.State.Status}}", "t1"], 0, "created\n", ""),
    (["inspect", "-f", "{{.State.Bogus", "nonexist"], 64, "", _PARSE),
    # Fields Docker's structs have but their JSON omits when empty: the zero value, no error
    (["inspect", "-f", "{{if .State.Health}}h{{else}}none{{end}}|{{.State.Health}}", "t1"],
     0, "none|<nil>\n", ""),
    (["inspect", "-f", "{{.Config.StopSignal}}|{{.SizeRw}}", "t1"], 0, "|<nil>\n", ""),
    (["inspect", "-f", "{{.State.Health.Status}}", "t1"], 1, "\n",
     _NO_KEY.format(col=8, node=".State.Health.Status", field="Health")),
    (["image", "inspect", "-f", "{{.Nope}}", "busybox"], 1, "\n",
     _NO_KEY.format(col=2, node=".Nope", field="Nope")),
    (["image", "inspect", "-f", "{{.Nope", "busybox"], 64, "", _PARSE),
    (["network", "inspect", "-f", "{{.Nope}}", "none"], 1, "\n",
     _NO_KEY.format(col=2, node=".Nope", field="Nope")),
    (["volume", "inspect", "-f", "{{.Nope}}", "v1"], 1, "\n",
     _FIELD.format(col=2, node=".Nope", field="Nope", type="volume.Volume")),
    (["images", "--format", "{{.Nope}}"], 1, "",
     _FIELD.format(col=2, node=".Nope", field="Nope", type="*formatter.imageContext")),
    (["images", "--format", "{{.Nope"], 1, "", _PARSE),
    (["history", "--format", "{{.Nope}}", "busybox"], 1, "",
     _FIELD.format(col=2, node=".Nope", field="Nope", type="*image.historyContext")),
    (["volume", "ls", "--format", "{{.Nope}}"], 1, "",
     _FIELD.format(col=2, node=".Nope", field="Nope", type="*formatter.volumeContext")),
    (["network", "ls", "--format", "{{.Nope}}"], 1, "",
     _FIELD.format(col=2, node=".Nope", field="Nope", type="*network.networkContext")),
    (["system", "df", "--format", "{{.Nope}}"], 1, "",
     _FIELD.format(col=2, node=".Nope", field="Nope",
                   type="*formatter.diskUsageImagesContext")),
    (["info", "--format", "{{.Nope}}"], 1, "\n",
     _AT.format(col=2, node=".Nope") + "can't evaluate field Nope in type system.dockerInfo"),
    (["info", "--format", "{{.Nope"], 64, "", _PARSE),
    (["version", "--format", "{{.Client.Nope}}"], 1, "\n",
     'template: version:1:9: executing "version" at <.Client.Nope>: '
     "can't evaluate field Nope in type system.clientVersion"),
    (["version", "--format", "{{.Nope"], 64, "",
     "template parsing error: template: version:1: unclosed action"),
]


def test_ps_template_errors_even_with_nothing_to_list(barque: Barque) -> None:
    # docker ps runs the template over an empty row first
    argv, code, out, err = CASES[0]
    result = barque.run(*argv)
    assert (result.returncode, result.stdout, result.stderr) == (code, out, err + "\n")


def test_unknown_fields_and_parse_errors_as_docker(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("create", "--name", "t1", "--network", "none", "busybox", "true"))
    ok(b.run("volume", "create", "v1"))
    wrong = []
    for argv, code, out, err in CASES:
        result = b.run(*argv)
        got = (result.returncode, result.stdout, result.stderr)
        if got != (code, out, err + "\n" if err else ""):
            wrong.append((argv, got))
    assert not wrong, "\n".join(map(repr, wrong))


def test_stats_unknown_field(cleanup: Barque) -> None:
    b = cleanup
    ok(b.run("run", "-d", "--name", "st", "--network", "none", "busybox", "sleep", "60"))
    result = b.run("stats", "--no-stream", "--format", "{{.Nope}}", "st")
    assert (result.returncode, result.stdout, result.stderr) == (1, "", _FIELD.format(
        col=2, node=".Nope", field="Nope", type="*container.statsContext") + "\n")
    ok(b.run("rm", "-f", "st"))
