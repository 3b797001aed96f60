"""`barque build`'s front end without a build: its flags, and the progress printers fed with
synthetic vertices, checked line by line against BuildKit's progressui formats."""

from __future__ import annotations

import argparse
import io
import json
import os

import pytest

from barque.build.events import Vertex
from barque.cli import build as cli
from barque.cli.build_progress import (
    PlainDisplay,
    QuietDisplay,
    format_bytes,
    log_stamp,
    make_display,
    source_excerpt,
    view_lines,
)
from tests.cli.conftest import Barque, ok


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def plain(description: str | None = None) -> tuple[PlainDisplay, io.StringIO, Clock]:
    out, clock = io.StringIO(), Clock()
    display = PlainDisplay(out, description=description)
    display.clock = clock
    return display, out, clock


# --- formats ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("size", "text"), [
    (0, "0B"), (2, "2B"), (87, "87B"), (999, "999B"), (1000, "1.00kB"), (16500, "16.50kB"),
    (5632, "5.63kB"), (2_110_000, "2.11MB"), (3 * 10**9, "3.00GB"),
])
def test_bytes_as_buildkit_prints_them(size: int, text: str) -> None:
    assert format_bytes(size) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0, "0.000"), (0.2154, "0.215"), (1.5, "1.500"), (9.9994, "9.999"), (12.345, "12.35"),
    (99.5, "99.50"), (123.45, "123.5"), (1234.5, "1234.5"),
])
def test_log_line_stamps(seconds: float, text: str) -> None:
    assert log_stamp(seconds) == text


DOCKERFILE = b"FROM busybox\nCOPY a /a\nRUN exit 3\n"


def test_excerpt_of_one_line_shows_lines_around_it() -> None:
    assert source_excerpt(DOCKERFILE, "Dockerfile", 3) == (
        "Dockerfile:3\n"
        "--------------------\n"
        "   1 |     FROM busybox\n"
        "   2 |     COPY a /a\n"
        "   3 | >>> RUN exit 3\n"
        "   4 |     \n"
        "--------------------\n")


def test_excerpt_of_several_lines_marks_each() -> None:
    text = "\n".join(f"RUN {i}" for i in range(1, 11))
    assert source_excerpt(text, "Dockerfile.dev", 5, 6) == (
        "Dockerfile.dev:5\n"
        "--------------------\n"
        "   4 |     RUN 4\n"
        "   5 | >>> RUN 5\n"
        "   6 | >>> RUN 6\n"
        "   7 |     RUN 7\n"
        "--------------------\n")


def test_excerpt_at_the_top_widens_downwards() -> None:
    text = "\n".join(f"L{i}" for i in range(1, 11))
    lines = source_excerpt(text, "Dockerfile", 1).splitlines()
    # BuildKit's loop counts each round as a line too: two below, not four
    assert lines[2:-1] == ["   1 | >>> L1", "   2 |     L2", "   3 |     L3"]


def test_excerpt_of_a_line_not_in_the_file_is_empty() -> None:
    assert source_excerpt(DOCKERFILE, "Dockerfile", 0) == ""
    assert source_excerpt(DOCKERFILE, "Dockerfile", 40) == ""


# --- the plain printer -----------------------------------------------------------------------

def test_plain_sequence_of_steps() -> None:
    display, out, clock = plain('building with "default" instance using barque driver')
    load = Vertex(1, "[internal] load build definition from Dockerfile", started=1000.0)
    display.vertex(load)
    display.status(load, "transferring dockerfile:", current=87, started=1000.0,
                   completed=1000.001)
    load.completed = 1000.02
    display.vertex(load)
    display.vertex(Vertex(2, "[1/2] FROM docker.io/library/busybox:latest", started=1000.1,
                          completed=1000.1, cached=True))
    run = Vertex(3, "[2/2] RUN echo hi", started=1000.2)
    display.vertex(run)
    clock.now = 1000.4154
    display.log(run, 1, b"hi\n")
    clock.now = 1001.5
    display.log(run, 2, b"warn\n")
    run.completed = 1001.6
    display.vertex(run)
    export = Vertex(4, "exporting to image", started=1001.7)
    display.vertex(export)
    export.completed = 1001.9
    display.vertex(export)
    display.exported("sha256:" + "ab" * 32, ["docker.io/library/x:latest"])
    display.close()
    assert out.getvalue() == (
        '#0 building with "default" instance using barque driver\n'
        "\n"
        "#1 [internal] load build definition from Dockerfile\n"
        "#1 transferring dockerfile: 87B done\n"
        "#1 DONE 0.0s\n"
        "\n"
        "#2 [1/2] FROM docker.io/library/busybox:latest\n"
        "#2 CACHED\n"
        "\n"
        "#3 [2/2] RUN echo hi\n"
        "#3 0.215 hi\n"
        "#3 1.300 warn\n"
        "#3 DONE 1.4s\n"
        "\n"
        "#4 exporting to image\n"
        "#4 exporting layers 0.2s done\n"
        f"#4 writing image sha256:{'ab' * 32} done\n"
        "#4 naming to docker.io/library/x:latest done\n"
        "#4 DONE 0.2s\n")


def test_plain_interleaved_steps_close_and_reopen_blocks() -> None:
    display, out, clock = plain()
    a = Vertex(5, "[a 2/2] RUN one", started=1000.0)
    b = Vertex(6, "[b 2/2] RUN two", started=1000.0)
    display.vertex(a)
    display.vertex(b)           # a is shown: b's header waits for its output
    display.log(a, 1, b"a1\n")
    clock.now = 1000.5
    display.log(b, 1, b"b1\n")
    b.completed = 1000.6
    display.vertex(b)           # a still runs: its header comes back
    clock.now = 1001.0
    display.log(a, 1, b"a2\n")
    a.completed = 1001.2
    display.vertex(a)
    display.close()
    assert out.getvalue() == (
        "#5 [a 2/2] RUN one\n"
        "#5 0.000 a1\n"
        "#5 ...\n"
        "\n"
        "#6 [b 2/2] RUN two\n"
        "#6 0.500 b1\n"
        "#6 DONE 0.6s\n"
        "\n"
        "#5 [a 2/2] RUN one\n"
        "#5 1.000 a2\n"
        "#5 DONE 1.2s\n")


def test_plain_partial_lines_join_and_end_before_the_next_block() -> None:
    display, out, clock = plain()
    a = Vertex(1, "[1/1] RUN a", started=1000.0)
    b = Vertex(2, "[internal] other", started=1000.0)
    display.vertex(a)
    display.log(a, 1, b"par")
    display.log(a, 1, b"tial\nnext")
    display.log(b, 1, b"x\n")
    assert out.getvalue() == (
        "#1 [1/1] RUN a\n"
        "#1 0.000 partial\n"
        "#1 0.000 next\n"
        "#1 ...\n"
        "\n"
        "#2 [internal] other\n"
        "#2 0.000 x\n")


def test_plain_failure_then_error_block_with_last_ten_lines() -> None:
    display, out, clock = plain()
    run = Vertex(7, "[stage-1 3/3] RUN seq 12; exit 3", started=1000.0)
    display.vertex(run)
    display.log(run, 1, b"".join(b"%d\n" % i for i in range(1, 13)))
    run.completed = 1000.3
    run.error = 'process "/bin/sh -c seq 12; exit 3" did not complete successfully: exit code: 3'
    display.vertex(run)
    display.close(failed=True)
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["#7 [stage-1 3/3] RUN seq 12; exit 3", "#7 0.000 1"]
    assert lines[13] == ("#7 ERROR: process \"/bin/sh -c seq 12; exit 3\" did not complete "
                         "successfully: exit code: 3")
    assert lines[14:] == ["------", " > [stage-1 3/3] RUN seq 12; exit 3:",
                          *[f"0.000 {i}" for i in range(3, 13)], "------"]


def test_plain_canceled_step() -> None:
    display, out, _ = plain()
    display.vertex(Vertex(2, "[1/2] RUN sleep 9", started=1000.0, completed=1000.1,
                          error="context canceled"))
    display.close(failed=True)
    assert out.getvalue() == "#2 [1/2] RUN sleep 9\n#2 CANCELED\n"


def test_plain_status_lines_are_throttled_until_done() -> None:
    display, out, clock = plain()
    pull = Vertex(3, "[1/2] FROM docker.io/library/alpine:latest", started=1000.0)
    display.vertex(pull)
    layer = "sha256:" + "cd" * 32
    display.status(pull, layer, current=0, total=2_000_000, started=1000.0)
    clock.now = 1000.5
    display.status(pull, layer, current=50_000, total=2_000_000, started=1000.0)  # < 5%
    clock.now = 1001.0
    display.status(pull, layer, current=1_000_000, total=2_000_000, started=1000.0)
    display.status(pull, layer, current=2_000_000, total=2_000_000, started=1000.0,
                   completed=1001.2)
    assert out.getvalue().splitlines()[1:] == [
        f"#3 {layer} 0B / 2.00MB",
        f"#3 {layer} 1.00MB / 2.00MB 1.0s",
        f"#3 {layer} 2.00MB / 2.00MB 1.2s done",
    ]


def test_export_step_reported_by_the_builder_is_not_repeated() -> None:
    display, out, _ = plain()
    export = Vertex(9, "exporting to image", started=1000.0)
    display.vertex(export)
    display.status(export, "writing image sha256:1", started=1000.0, completed=1000.0)
    export.completed = 1000.0
    display.vertex(export)
    display.exported("sha256:1", ["docker.io/library/x:latest"])
    display.close()
    assert out.getvalue() == ("#9 exporting to image\n#9 writing image sha256:1 done\n"
                              "#9 DONE 0.0s\n")


def test_quiet_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    display = QuietDisplay()
    run = Vertex(1, "[1/1] RUN x", started=1.0, completed=2.0, error="boom")
    display.vertex(run)
    display.log(run, 1, b"out\n")
    display.close(failed=True)
    assert capsys.readouterr() == ("", "")


def test_auto_is_plain_off_a_terminal() -> None:
    assert isinstance(make_display("auto", io.StringIO()), PlainDisplay)
    assert isinstance(make_display("plain", io.StringIO()), PlainDisplay)
    assert isinstance(make_display("quiet", io.StringIO()), QuietDisplay)


# --- the tty view ----------------------------------------------------------------------------

def test_tty_view_lines() -> None:
    display, _, _ = plain()
    display.vertex(Vertex(1, "[internal] load build definition from Dockerfile",
                          started=1000.0, completed=1000.02))
    display.vertex(Vertex(2, "[1/2] FROM docker.io/library/busybox", started=1000.1,
                          completed=1000.1, cached=True))
    display.vertex(Vertex(3, "[2/2] RUN make", started=1000.2))
    lines = view_lines(display, 60, 20, False, now=1001.4)
    assert lines[0] == (f"{'[+] Building 1.4s (2/3) ':<59} ", None)
    assert lines[1] == (f"{' => [internal] load build definition from Dockerfile':<53}  0.0s",
                        "blue")
    assert lines[2] == (f"{' => CACHED [1/2] FROM docker.io/library/busybox':<53}  0.0s",
                        "blue")
    assert lines[3] == (f"{' => [2/2] RUN make':<53}  1.2s", None)
    failed = Vertex(3, "[2/2] RUN make", started=1000.2, completed=1001.5, error="x")
    display.vertex(failed)
    lines = view_lines(display, 60, 20, True, now=1002.0)
    assert lines[0][0].startswith("[+] Building 2.0s (3/3) FINISHED")
    assert lines[3] == (f"{' => ERROR [2/2] RUN make':<53}  1.3s", "red")


def test_tty_view_keeps_the_last_lines_that_fit() -> None:
    display, _, _ = plain()
    for n in range(1, 21):
        display.vertex(Vertex(n, f"step {n}", started=1000.0 + n))
    lines = view_lines(display, 80, 10, False, now=1030.0)
    assert len(lines) == 9
    assert lines[1][0].startswith(" => step 13 ")
    assert len(view_lines(display, 80, 10, True, now=1030.0)) == 21


def test_tty_display_draws_with_rich() -> None:
    from barque.cli.build_progress import TtyDisplay

    out = io.StringIO()
    display = TtyDisplay(out)
    run = Vertex(1, "[1/1] RUN true", started=display.clock())
    display.vertex(run)
    run.completed = display.clock()
    display.vertex(run)
    display.close()
    assert "[+] Building" in out.getvalue() and "(1/1) FINISHED" in out.getvalue()
    assert "=> [1/1] RUN true" in out.getvalue()


# --- flags -----------------------------------------------------------------------------------

def ns(**kwargs: object) -> argparse.Namespace:
    defaults: dict[str, object] = dict(
        progress=None, quiet=False, tag=[], build_arg=[], label=[], no_cache=False,
        no_cache_filter=[], pull=False, platform=None, secret=[], network="default",
        cache_from=[], cache_to=[], output=[], target=None)
    defaults.update(kwargs)
    return argparse.Namespace(**defaults)


def test_progress_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUILDKIT_PROGRESS", raising=False)
    assert cli.progress_mode(ns()) == "auto"
    assert cli.progress_mode(ns(progress="plain")) == "plain"
    assert cli.progress_mode(ns(progress="plain", quiet=True)) == "quiet"
    monkeypatch.setenv("BUILDKIT_PROGRESS", "plain")
    assert cli.progress_mode(ns()) == "plain"
    with pytest.raises(cli.BuildError, match="invalid progress mode fancy"):
        cli.progress_mode(ns(progress="fancy"))


def test_build_args_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_ENV", "e")
    monkeypatch.delenv("UNSET_ONE", raising=False)
    assert cli.key_values(["A=1", "B=", "C=x=y", "FROM_ENV", "UNSET_ONE"], True) == \
        {"A": "1", "B": "", "C": "x=y", "FROM_ENV": "e"}
    assert cli.key_values(["k", "l=v"], False) == {"k": "", "l": "v"}


@pytest.mark.parametrize(("values", "outputs"), [
    (["out"], [("local", "out")]),
    (["-"], [("tar", "-")]),
    (["type=local,dest=/tmp/x"], [("local", "/tmp/x")]),
    (["type=tar,dest=img.tar"], [("tar", "img.tar")]),
    (["type=image"], [("image", None)]),
    (['type=local,"dest=a,b"'], [("local", "a,b")]),
    (["dest=x"], [("local", "dest=x")]),      # one field without type=: a directory
])
def test_outputs(values: list[str], outputs: list[tuple[str, str | None]]) -> None:
    assert [(o.type, o.dest) for o in cli.parse_outputs(values)] == outputs


@pytest.mark.parametrize(("value", "message"), [
    ("dest=x,dest=y", "type is required for output"),
    ("type=local", "dest is required for local exporter"),
    ("type=registry,dest=x", "output type 'registry' is not supported"),
    ("type=local,dest", "invalid value dest"),
])
def test_bad_outputs(value: str, message: str) -> None:
    with pytest.raises(cli.BuildError, match=message):
        cli.parse_outputs([value])


def test_secrets(tmp_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    src = os.path.join(tmp_path, "token")
    with open(src, "w") as f:
        f.write("s3cret")
    monkeypatch.setenv("API_KEY", "from-env")
    monkeypatch.chdir(tmp_path)
    scratch: list[str] = []
    secrets = cli.parse_secrets([f"id=tok,src={src}", "id=key,env=API_KEY",
                                 "type=env,id=k2,src=API_KEY", "id=token"],
                                scratch)
    assert secrets["tok"] == src
    assert secrets["token"] == src      # a bare id with no such variable: a file
    for ident in ("key", "k2"):
        with open(secrets[ident]) as f:
            assert f.read() == "from-env"
        assert os.stat(secrets[ident]).st_mode & 0o777 == 0o600
    assert len(scratch) == 2
    for path in scratch:
        os.unlink(path)


@pytest.mark.parametrize(("value", "message"), [
    ("src=/etc/hostname", "secret missing ID"),
    ("id=a,src=/nonexistent/x", "failed to stat /nonexistent/x: no such file or directory"),
    ("id=a,type=ssh", 'unsupported secret type "ssh"'),
    ("id=a,mode=0400", "unexpected key 'mode' in 'mode=0400'"),
    ("id=a,src", "invalid field 'src' must be a key=value pair"),
])
def test_bad_secrets(value: str, message: str) -> None:
    with pytest.raises(cli.BuildError, match=message):
        cli.parse_secrets([value], [])


def test_source_date_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert cli.source_date_epoch({}) is None
    args = {"SOURCE_DATE_EPOCH": "1700000000"}
    assert cli.source_date_epoch(args) == 1700000000
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "12")
    args = {}
    assert cli.source_date_epoch(args) == 12 and args == {"SOURCE_DATE_EPOCH": "12"}
    with pytest.raises(cli.BuildError, match="invalid SOURCE_DATE_EPOCH: x"):
        cli.source_date_epoch({"SOURCE_DATE_EPOCH": "x"})


def test_options_from_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    options = cli.options_from(
        ns(tag=["app:1", "app"], build_arg=["V=2"], label=["l=1"], no_cache=True,
           no_cache_filter=["a,b", "c"], pull=True, platform="linux/amd64", network="none",
           target="final", cache_from=["type=registry,ref=x", "app:0", "type=local,src=/c"],
           cache_to=["type=local,dest=/d,mode=max"], output=["out"]),
        [])
    assert options.tags == ["app:1", "app"] and options.target == "final"
    assert options.build_args == {"V": "2"} and options.labels == {"l": "1"}
    assert options.no_cache and options.pull and options.network == "none"
    assert options.no_cache_filter == ["a", "b", "c"]
    assert options.platform == "linux/amd64"
    assert options.cache_from == ["x", "app:0"]
    assert options.cache_from_local == ["/c"]
    assert [(c.dest, c.mode) for c in options.cache_to] == [("/d", "max")]
    assert [(o.type, o.dest) for o in options.outputs] == [("local", "out")]


def test_bad_tag_and_network() -> None:
    with pytest.raises(cli.BuildError, match='invalid tag "App": invalid reference format: '
                                             "repository name must be lowercase"):
        cli.options_from(ns(tag=["App"]), [])
    with pytest.raises(cli.BuildError, match='network mode "bridge" not supported'):
        cli.options_from(ns(network="bridge"), [])


# --- the command line ------------------------------------------------------------------------

def test_usage_errors_as_docker(barque: Barque) -> None:
    """A bad flag exits 125, a missing context 1 with the docker CLI's words."""
    result = barque.run("build", "--bogus", ".")
    assert result.returncode == 125
    assert "unknown flag: --bogus" in result.stderr
    result = barque.run("build")
    assert result.returncode == 1
    assert result.stderr.startswith('"barque build" requires exactly 1 argument.\n')


def test_bad_progress_exits_1(barque: Barque) -> None:
    result = barque.run("build", "--progress", "fancy", ".")
    assert (result.returncode, result.stderr) == (1, "ERROR: invalid progress mode fancy\n")


def test_aliases_parse(barque: Barque) -> None:
    for argv in (["image", "build", "--help"], ["builder", "build", "--help"],
                 ["builder", "prune", "--help"]):
        result = barque.run(*argv)
        assert result.returncode == 0, result.stderr


def test_system_df_verbose_sections(barque: Barque) -> None:
    ok(barque.run("image", "build-default"))
    out = ok(barque.run("system", "df", "-v"))
    assert out.startswith("Images space usage:\n\nREPOSITORY   TAG       IMAGE ID")
    image_row = out.splitlines()[3].split()
    assert image_row[:2] == ["busybox", "latest"] and image_row[-1] == "0"
    for title in ("\nContainers space usage:\n\nCONTAINER ID   IMAGE",
                  "\nLocal Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\n",
                  "\nBuild cache usage: 0B\n\nCACHE ID   CACHE TYPE   SIZE"):
        assert title in out
    row = json.loads(ok(barque.run("system", "df", "--format", "json")).splitlines()[3])
    assert row == {"Active": "0", "Reclaimable": "0B", "Size": "0B", "TotalCount": "0",
                   "Type": "Build Cache"}


def test_plain_output_split_inside_a_character() -> None:
    display, out, _ = plain()
    run = Vertex(1, "[1/1] RUN x", started=1000.0)
    display.vertex(run)
    data = "héllo\n".encode()
    display.log(run, 1, data[:2])
    display.log(run, 1, data[2:])
    assert out.getvalue() == "#1 [1/1] RUN x\n#1 0.000 héllo\n"


def test_plain_truncates_long_names_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "[1/1] RUN " + "x" * 80
    display, out, _ = plain()
    display.vertex(Vertex(1, name, started=1000.0))
    assert out.getvalue() == f"#1 {name}\n"
    monkeypatch.setenv("PROGRESS_NO_TRUNC", "0")
    display, out, _ = plain()
    display.vertex(Vertex(1, name, started=1000.0))
    assert out.getvalue() == f"#1 {name[:72]}...\n"


def test_plain_and_quiet_never_import_rich() -> None:
    """rich costs ~25 ms (rich.console and rich.live, measured): only the tty view loads it."""
    import subprocess
    import sys

    code = ("import io, sys\n"
            "from barque.cli.main import build_parser\n"
            "from barque.cli import build, build_progress\n"
            "for mode in ('plain', 'quiet', 'auto'):\n"
            "    build_progress.make_display(mode, io.StringIO()).close()\n"
            "assert 'rich' not in sys.modules, 'rich imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_builder_du_summary_as_buildx_tabwriter() -> None:
    from types import SimpleNamespace as Entry

    entries = [Entry(size=2_000_000, shared=False, in_use=False),
               Entry(size=500, shared=False, in_use=True)]
    assert cli._du_summary(entries) == "Reclaimable:\t2MB\nTotal:\t\t2MB\n"
    entries.append(Entry(size=1000, shared=True, in_use=False))
    assert cli._du_summary(entries) == ("Shared:\t\t1kB\nPrivate:\t2MB\n"
                                        "Reclaimable:\t2MB\nTotal:\t\t2MB\n")


def test_builder_du_empty(barque: Barque) -> None:
    assert ok(barque.run("builder", "du")) == ("ID        RECLAIMABLE   SIZE      LAST ACCESSED\n"
                                               "Reclaimable:\t0B\nTotal:\t\t0B\n")
    result = barque.run("builder", "du", "--verbose", "--format", "x")
    assert result.returncode == 1
    assert result.stderr == "--format and --verbose cannot be used together\n"
