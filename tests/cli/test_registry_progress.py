"""The progress renderers print what Docker prints."""

from __future__ import annotations

import io

from barque.cli.registry_progress import (
    PlainProgress,
    QuietProgress,
    RichProgress,
    make_progress,
)
from barque.engine.units import human_size, progress_bar
from barque.image.reference import parse

DIGEST = "sha256:" + "ab" * 32


def test_layer_size() -> None:  # a progress bar's sizes: 4 significant digits
    assert human_size(0, 4) == "0B"
    assert human_size(999, 4) == "999B"
    assert human_size(1234567, 4) == "1.235MB"
    assert human_size(3_400_000, 4) == "3.4MB"
    assert human_size(999_960) == "1e+03kB"  # Go's %.3g, as docker prints it


def test_progress_bar() -> None:
    bar = progress_bar(1_200_000, 3_400_000)
    assert bar == "[=================>" + " " * 33 + "]    1.2MB/3.4MB"
    assert progress_bar(5, 5).startswith("[" + "=" * 50 + ">]")


def test_plain_pull_and_push_lines() -> None:
    out = io.StringIO()
    p = PlainProgress(out)
    ref = parse("busybox")
    p.pull_started(ref)
    p.layer_started("abababababab", 10)
    p.layer_progress("abababababab", 5, 10)  # not shown without a terminal
    p.layer_verifying("abababababab")
    p.layer_done("abababababab")
    p.pull_finished(ref, DIGEST, up_to_date=False)
    assert out.getvalue().splitlines() == [
        "latest: Pulling from library/busybox",
        "abababababab: Pulling fs layer",
        "abababababab: Verifying Checksum",
        "abababababab: Download complete",
        "abababababab: Pull complete",
        f"Digest: {DIGEST}",
        "Status: Downloaded newer image for busybox:latest",
        "docker.io/library/busybox:latest"]

    out = io.StringIO()
    p = PlainProgress(out)
    ref = parse("127.0.0.1:5000/x:v2")
    p.push_started(ref)
    p.layer_started("111111111111", None)
    p.layer_exists("111111111111")
    p.layer_mounted("222222222222", "library/busybox")
    p.push_finished(ref, DIGEST, 528)
    assert out.getvalue().splitlines() == [
        "The push refers to repository [127.0.0.1:5000/x]",
        "111111111111: Preparing",
        "111111111111: Layer already exists",
        "222222222222: Mounted from library/busybox",
        f"v2: digest: {DIGEST} size: 528"]


def test_quiet_prints_only_the_reference() -> None:
    out = io.StringIO()
    p = QuietProgress(out)
    p.pull_started(parse("busybox"))
    p.layer_started("abababababab", 1)
    p.pull_finished(parse("busybox"), DIGEST, True)
    assert out.getvalue() == "docker.io/library/busybox:latest\n"


def test_rich_renderer_draws_layers() -> None:
    out = io.StringIO()
    p = RichProgress(out)
    p.pull_started(parse("busybox"))
    p.layer_started("abababababab", 3_400_000)
    p.layer_progress("abababababab", 1_200_000, 3_400_000)
    assert "abababababab: Downloading [=================>" in p._render().plain
    p.layer_verifying("abababababab")
    p.layer_done("abababababab")
    p.pull_finished(parse("busybox"), DIGEST, False)
    text = out.getvalue()
    assert "abababababab: Pull complete" in text
    assert "Status: Downloaded newer image for busybox:latest" in text


def test_make_progress_picks_by_terminal() -> None:
    assert isinstance(make_progress(out=io.StringIO()), PlainProgress)
    assert isinstance(make_progress(quiet=True, out=io.StringIO()), QuietProgress)
