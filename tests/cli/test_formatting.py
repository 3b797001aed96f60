"""Docker's --format rules, Go's tabwriter and docker/go-units, against Go/Docker's outputs.

Expected values come from the upstream tests: docker/cli formatter/tabwriter/tabwriter_test.go
(a copy of Go's text/tabwriter tests with rune widths), docker/cli formatter/volume_test.go,
and docker/go-units size_test.go and duration_test.go.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from barque.cli import formatting as fmt

# --- tabwriter (cases from tabwriter_test.go; minwidth, tabwidth, padding, padchar) -------

TABWRITER_CASES = [
    ("1a", 8, 0, 1, ".", False, "", ""),
    ("2", 8, 0, 1, ".", False, "\n\n\n", "\n\n\n"),
    ("3", 8, 0, 1, ".", False, "a\nb\nc", "a\nb\nc"),
    ("4a", 8, 0, 1, ".", False, "\t", ""),
    ("4b", 8, 0, 1, ".", True, "\t", ""),
    ("5", 8, 0, 1, ".", False, "*\t*", "*.......*"),
    ("5b", 8, 0, 1, ".", False, "*\t*\n", "*.......*\n"),
    ("5c", 8, 0, 1, ".", False, "*\t*\t", "*.......*"),
    ("5d", 8, 0, 1, ".", True, "*\t*\t", ".......**"),
    ("6", 8, 0, 1, ".", False, "\t\n", "........\n"),
    ("7a", 8, 0, 1, ".", False, "a) foo", "a) foo"),
    ("7b", 8, 0, 1, " ", False, "b) foo\tbar", "b) foo  bar"),
    ("7c", 8, 0, 1, ".", False, "c) foo\tbar\t", "c) foo..bar"),
    ("7d", 8, 0, 1, ".", False, "d) foo\tbar\n", "d) foo..bar\n"),
    ("7e", 8, 0, 1, ".", False, "e) foo\tbar\t\n", "e) foo..bar.....\n"),
    ("8", 8, 0, 1, "*", False, "Hello, world!\n", "Hello, world!\n"),
    ("9a", 1, 0, 0, ".", False, "1\t2\t3\t4\n11\t222\t3333\t44444\n",
     "1.2..3...4\n11222333344444\n"),
    ("9c", 1, 0, 0, ".", False, "1\t2\t3\t4\f11\t222\t3333\t44444\n",
     "1234\n11222333344444\n"),
    ("10a", 5, 0, 0, ".", False, "1\t2\t3\t4\n", "1....2....3....4\n"),
    ("10b", 5, 0, 0, ".", False, "1\t2\t3\t4\t\n", "1....2....3....4....\n"),
    ("11", 8, 0, 1, ".", False, "本\tb\tc\naa\t本本本\tcccc\tddddd\naaa\tbbbb\n",
     "本......b.......c\naa......本本本..cccc....ddddd\naaa.....bbbb\n"),
    ("12a", 8, 0, 1, " ", True, "a\tè\tc\t\naa\tèèè\tcccc\tddddd\t\naaa\tèèèè\t\n",
     "       a       è       c\n      aa     èèè    cccc   ddddd\n     aaa    èèèè\n"),
    ("12b", 2, 0, 0, " ", False, "a\tb\tc\naa\tbbb\tcccc\naaa\tbbbb\n",
     "a  b  c\naa bbbcccc\naaabbbb\n"),
    ("12c", 8, 0, 1, "_", False, "a\tb\tc\naa\tbbb\tcccc\naaa\tbbbb\n",
     "a_______b_______c\naa______bbb_____cccc\naaa_____bbbb\n"),
    ("13a", 4, 0, 1, "-", False,
     "4444\t日本語\t22\t1\t333\n999999999\t22\n7\t22\n\t\t\t88888888\n\n"
     "666666\t666666\t666666\t4444\n1\t1\t999999999\t0000000000\n",
     "4444------日本語-22--1---333\n999999999-22\n7---------22\n------------------88888888\n\n"
     "666666-666666-666666----4444\n1------1------999999999-0000000000\n"),
    ("13b", 4, 0, 3, ".", False,
     "4444\t333\t22\t1\t333\n999999999\t22\n7\t22\n\t\t\t88888888\n\n"
     "666666\t666666\t666666\t4444\n1\t1\t999999999\t0000000000\n",
     "4444........333...22...1...333\n999999999...22\n7...........22\n"
     "....................88888888\n\n666666...666666...666666......4444\n"
     "1........1........999999999...0000000000\n"),
    ("14", 1, 0, 2, " ", True,
     ".0\t.3\t2.4\t-5.1\t\n23.0\t12345678.9\t2.4\t-989.4\t\n5.1\t12.0\t2.4\t-7.0\t\n"
     ".0\t0.0\t332.0\t8908.0\t\n.0\t-.3\t456.4\t22.1\t\n.0\t1.2\t44.4\t-13.3\t\t",
     "    .0          .3    2.4    -5.1\n  23.0  12345678.9    2.4  -989.4\n"
     "   5.1        12.0    2.4    -7.0\n    .0         0.0  332.0  8908.0\n"
     "    .0         -.3  456.4    22.1\n    .0         1.2   44.4   -13.3"),
    ("15a", 4, 0, 0, ".", False, "a\t\tb", "a.......b"),
    ("16a", 100, 100, 0, "\t", False,
     "a\tb\t\td\na\tb\t\td\te\na\na\tb\tc\td\na\tb\tc\td\te\n",
     "a\tb\t\td\na\tb\t\td\te\na\na\tb\tc\td\na\tb\tc\td\te\n"),
]


@pytest.mark.parametrize("name,minwidth,tabwidth,padding,padchar,right,src,expected",
                         TABWRITER_CASES, ids=[c[0] for c in TABWRITER_CASES])
def test_tabwrite_matches_go(name: str, minwidth: int, tabwidth: int, padding: int,
                             padchar: str, right: bool, src: str, expected: str) -> None:
    got = fmt.tabwrite(src, minwidth, tabwidth, padding, padchar, align_right=right)
    assert got == expected


def test_tabwrite_lines_use_dockers_settings() -> None:
    # minwidth 10, padding 3; the last cell of a line is never padded.
    assert fmt.tabwrite(["A\tBB", "CCCCCCCCCCCC\tD"]) == (
        "A              BB\n"
        "CCCCCCCCCCCC   D\n")


def test_tabwrite_rejects_negative_settings() -> None:
    with pytest.raises(fmt.FormatError, match="negative"):
        fmt.tabwrite("a\tb", minwidth=-1)


# --- format_table (docker/cli formatter/volume_test.go) -----------------------------------

VOLUMES = [{"Name": "foobar_baz", "Driver": "foo"}, {"Name": "foobar_bar", "Driver": "bar"}]
VOLUME_TABLE = "table {{.Driver}}\t{{.Name}}"
VOLUME_HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER"}


@pytest.mark.parametrize("format_,quiet,expected", [
    ("table", None, "DRIVER    VOLUME NAME\nfoo       foobar_baz\nbar       foobar_bar\n"),
    (None, None, "DRIVER    VOLUME NAME\nfoo       foobar_baz\nbar       foobar_bar\n"),
    ("table", "Name", "foobar_baz\nfoobar_bar\n"),
    ("table {{.Name}}", None, "VOLUME NAME\nfoobar_baz\nfoobar_bar\n"),
    ("table {{.Name}}", "Name", "VOLUME NAME\nfoobar_baz\nfoobar_bar\n"),
    ("{{.Name}}", None, "foobar_baz\nfoobar_bar\n"),
])
def test_volume_formats_as_docker(format_: str | None, quiet: str | None,
                                  expected: str) -> None:
    got = fmt.format_table(VOLUMES, format_, VOLUME_TABLE, VOLUME_HEADERS, quiet_field=quiet)
    assert got == expected


@pytest.mark.parametrize("format_,message", [
    ("{{InvalidFunction}}",
     'template parsing error: template: :1: function "InvalidFunction" not defined'),
    ("{{nil}}",
     'template parsing error: template: :1:2: executing "" at <nil>: nil is not a command'),
    ("{{.Name}",
     'template parsing error: template: :1: unexpected "}" in operand'),
])
def test_format_errors_are_dockers(format_: str, message: str) -> None:
    with pytest.raises(fmt.FormatError) as info:
        fmt.format_table(VOLUMES, format_, VOLUME_TABLE, VOLUME_HEADERS)
    assert str(info.value) == message


def test_json_format_is_one_object_per_row() -> None:
    assert fmt.format_table(VOLUMES, "json", VOLUME_TABLE) == (
        '{"Driver":"foo","Name":"foobar_baz"}\n{"Driver":"bar","Name":"foobar_bar"}\n')
    assert fmt.format_table(VOLUMES, "{{json .Name}}", VOLUME_TABLE) == (
        '"foobar_baz"\n"foobar_bar"\n')


def test_typed_escapes_and_spaces_around_the_format() -> None:
    # preFormat trims spaces and turns a typed \t or \n into the real character.
    assert fmt.format_table(VOLUMES, "  {{.Driver}}\\t{{.Name}}  ", VOLUME_TABLE) == (
        "foo\tfoobar_baz\nbar\tfoobar_bar\n")
    assert fmt.format_table(VOLUMES[:1], "{{.Driver}}\\n{{.Name}}", VOLUME_TABLE) == (
        "foo\nfoobar_baz\n")


def test_header_keeps_titles_through_header_functions() -> None:
    rows = [{"ID": "sha256:0123456789abcdef", "Names": ["a", "b"]}]
    got = fmt.format_table(rows, 'table {{truncate .ID 5}}\t{{upper (join .Names ",")}}|',
                           "", {"ID": "IMAGE ID", "Names": "NAMES"})
    assert got == "IMAGE ID   NAMES|\nsha25      A,B|\n"


def test_unknown_fields_get_a_derived_title() -> None:
    got = fmt.format_table([{"RunningFor": "x"}], "table {{.RunningFor}}\t{{.ID}}", "")
    assert got == "RUNNING FOR   ID\nx             <no value>\n"


def test_empty_table_prints_only_the_header() -> None:
    assert fmt.format_table([], None, VOLUME_TABLE, VOLUME_HEADERS) == (
        "DRIVER    VOLUME NAME\n")
    assert fmt.format_table([], "{{.Name}}", VOLUME_TABLE) == ""


def test_object_rows_are_structs() -> None:
    @dataclass
    class Volume:
        Name: str
        Driver: str

    rows = [Volume("v1", "local")]
    assert fmt.format_table(rows, None, VOLUME_TABLE, VOLUME_HEADERS) == (
        "DRIVER    VOLUME NAME\nlocal     v1\n")
    with pytest.raises(fmt.FormatError,
                       match=r"at <\.Size>: can't evaluate field Size in type Volume"):
        fmt.format_table(rows, "{{.Size}}", VOLUME_TABLE)


def test_wide_characters_align_by_display_width() -> None:
    rows = [{"A": "日本", "B": "x"}, {"A": "ab", "B": "y"}]
    assert fmt.format_table(rows, "table {{.A}}\t{{.B}}", "", {"A": "A", "B": "B"}) == (
        "A         B\n日本      x\nab        y\n")


# --- go-units -----------------------------------------------------------------------------

KB, MB, GB, TB, PB = 1000, 1000**2, 1000**3, 1000**4, 1000**5
KiB, MiB, GiB, TiB, PiB = 1024, 1024**2, 1024**3, 1024**4, 1024**5


@pytest.mark.parametrize("size,expected", [
    (1000, "1kB"), (1024, "1.024kB"), (1000000, "1MB"), (1048576, "1.049MB"), (2 * MB, "2MB"),
    (3.42 * GB, "3.42GB"), (5.372 * TB, "5.372TB"), (2.22 * PB, "2.22PB"),
    (10000000000000 * PB, "1e+04YB"),
])
def test_human_size_precision_4_matches_go_units(size: float, expected: str) -> None:
    assert fmt.human_size(size, precision=4) == expected  # units.HumanSize


@pytest.mark.parametrize("size,expected", [
    (0, "0B"), (999, "999B"), (1500, "1.5kB"), (4260000, "4.26MB"), (1234567890, "1.23GB"),
    (4_257_332, "4.26MB"), (123_456_789, "123MB"), (999_999, "1e+03kB"),
])
def test_human_size_is_dockers_precision_3(size: int, expected: str) -> None:
    assert fmt.human_size(size) == expected


@pytest.mark.parametrize("size,expected", [
    (1024, "1KiB"), (1024 * 1024, "1MiB"), (2 * MiB, "2MiB"), (3.42 * GiB, "3.42GiB"),
    (5.372 * TiB, "5.372TiB"), (2.22 * PiB, "2.22PiB"),
    (KiB**5 * PiB, "1.049e+06YiB"), (1.5 * MiB, "1.5MiB"), (64 * MiB, "64MiB"), (0, "0B"),
])
def test_bytes_size_matches_go_units(size: float, expected: str) -> None:
    assert fmt.bytes_size(size) == expected


SECOND, MINUTE, HOUR = 1, 60, 3600
DAY, WEEK, MONTH, YEAR = 24 * HOUR, 7 * 24 * HOUR, 30 * 24 * HOUR, 365 * 24 * HOUR


@pytest.mark.parametrize("seconds,expected", [
    (0.45, "Less than a second"), (1, "1 second"), (45, "45 seconds"), (59, "59 seconds"),
    (60, "About a minute"), (3 * MINUTE, "3 minutes"), (35 * MINUTE + 40, "35 minutes"),
    (59 * MINUTE, "59 minutes"), (HOUR, "About an hour"), (HOUR + 29 * MINUTE, "About an hour"),
    (HOUR + 31 * MINUTE, "2 hours"), (3 * HOUR + 29 * MINUTE, "3 hours"),
    (3 * HOUR + 31 * MINUTE, "4 hours"), (24 * HOUR, "24 hours"), (DAY + 12 * HOUR, "36 hours"),
    (2 * DAY, "2 days"), (7 * DAY, "7 days"), (13 * DAY + 5 * HOUR, "13 days"),
    (2 * WEEK, "2 weeks"), (2 * WEEK + 4 * DAY, "2 weeks"), (MONTH, "4 weeks"),
    (MONTH + 2 * WEEK, "6 weeks"), (2 * MONTH, "2 months"), (3 * MONTH + WEEK, "3 months"),
    (13 * MONTH, "13 months"), (24 * MONTH, "24 months"), (24 * MONTH + 2 * WEEK, "2 years"),
    (3 * YEAR + 2 * MONTH, "3 years"), (-5, "Less than a second"),
])
def test_human_duration_matches_go_units(seconds: float, expected: str) -> None:
    assert fmt.human_duration(seconds) == expected


def test_time_ago_accepts_datetimes_epochs_and_rfc3339() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    then = now - timedelta(minutes=5)
    assert fmt.time_ago(then, now=now.timestamp()) == "5 minutes ago"
    assert fmt.time_ago(then.timestamp(), now=now.timestamp()) == "5 minutes ago"
    assert fmt.time_ago(then.replace(tzinfo=None), now=now.timestamp()) == "5 minutes ago"
    assert fmt.time_ago_iso("2024-05-01T11:55:00.123456789Z", now=now.timestamp()) == (
        "4 minutes ago")
    assert fmt.time_ago_iso("2024-05-01T13:00:00+02:00", now=now.timestamp()) == (
        "About an hour ago")
    assert fmt.time_ago_iso("", now=now.timestamp()) == ""
    assert fmt.time_ago_iso("0001-01-01T00:00:00Z") == ""


def test_bad_timestamps_are_rejected() -> None:
    with pytest.raises(fmt.FormatError, match="expected RFC 3339"):
        fmt.time_ago_iso("yesterday")
    with pytest.raises(fmt.FormatError, match="invalid timestamp"):
        fmt.parse_timestamp("2024-13-01T00:00:00Z")


def test_go_time_string_shape() -> None:
    text = fmt.go_time("2024-05-01T12:34:56Z")
    date, clock, offset, zone = text.split(" ")
    assert len(date) == 10 and len(clock) == 8 and offset[0] in "+-" and len(offset) == 5
    assert zone
    assert "." in fmt.go_time("2024-05-01T12:34:56.5Z").split(" ")[1]


@pytest.mark.parametrize("image_id,expected", [
    ("sha256:a416a98b71e224a31ee99cff8e16063554498227d2b696152a9c3e0aa65e5824", "a416a98b71e2"),
    ("a416a98b71e224a31ee99cff8e16063554498227d2b696152a9c3e0aa65e5824", "a416a98b71e2"),
    ("abc", "abc"),
])
def test_truncate_id(image_id: str, expected: str) -> None:
    assert fmt.truncate_id(image_id) == expected
