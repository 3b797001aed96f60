"""`barque explain`: the terminal view, --format json against the schema and the kernel's
files, --html rendered in headless Chromium, and a stopped container's error."""

from __future__ import annotations

import json
import os
import subprocess
from html.parser import HTMLParser

import pytest

from barque.engine.explain import SCHEMA_FILE
from tests.cli.conftest import Barque, inspect_container, ok, until
from tests.support import png
from tests.support.marks import needs_busybox
from tests.support.tools import require

pytestmark = [pytest.mark.root, needs_busybox]

SECTIONS = ("namespaces", "cgroups", "filesystem", "security", "cost")


def _explain_json(b: Barque, name: str, *more: str) -> dict:
    import jsonschema

    facts = json.loads(ok(b.run("explain", "--format", "json", "--interval", "0.2", *more,
                                name)))
    with open(SCHEMA_FILE) as f:
        jsonschema.validate(facts, json.load(f))
    return facts


def test_json_reports_the_limits_given_and_the_view_says_them(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "-d", "--name", "lim", "-m", "64m", "--pids-limit", "20", "--cap-drop",
             "ALL", "--network", "none", "busybox", "sleep", "1000"))
    pid = int(inspect_container(b, "lim")["State"]["Pid"])
    facts = _explain_json(b, "lim")
    assert facts["container"]["pid"] == pid
    assert facts["cgroups"]["memory"]["limit"] == 64 << 20
    assert facts["cgroups"]["pids"]["limit"] == 20
    with open(f"/proc/{pid}/status") as f:
        cap_eff = next(line.split()[1] for line in f if line.startswith("CapEff:"))
    assert int(cap_eff, 16) == 0 and facts["security"]["capabilities"]["effective"] == []
    net = next(ns for ns in facts["namespaces"] if ns["type"] == "net")
    assert net["private"] and net["inode"] == int(os.readlink(f"/proc/{pid}/ns/net")[5:-1])

    view = ok(b.run("explain", "--interval", "0.2", "lim"))
    for title in ("Namespaces", "cgroups (v", "Union filesystem", "Security",
                  "Beside the host"):
        assert title in view
    assert f"PID 1 inside is PID {pid} outside" in view
    assert "64.0 MiB" in view and "1 / 20" in view
    assert "no limit" in view  # the CPU: no --cpus


def test_no_limits_say_no_limit(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "-d", "--name", "free", "--network", "none", "busybox", "sleep", "1000"))
    view = ok(b.run("explain", "--interval", "0.2", "free"))
    memory = next(line for line in view.splitlines() if line.strip().startswith("memory "))
    pids = next(line for line in view.splitlines() if line.strip().startswith("pids "))
    assert "/ no limit" in memory and "/ no limit" in pids


def test_a_stopped_container_is_a_clear_error(barque: Barque) -> None:
    b = barque
    cid = ok(b.run("create", "--name", "idle", "busybox", "true")).strip()
    result = b.run("explain", "idle")
    assert result.returncode == 1
    assert result.stderr == f"Error response from daemon: Container {cid} is not running\n"
    assert result.stdout == ""
    missing = b.run("explain", "nosuch")
    assert missing.returncode == 1
    assert missing.stderr == "Error response from daemon: No such container: nosuch\n"


class _Page(HTMLParser):
    """The ids of the sections, whether there is an inline svg, and every URL the page would
    fetch (src, href, CSS url()) — there must be none."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.svg = False
        self.fetches: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "section" and values.get("id"):
            self.ids.append(str(values["id"]))
        if tag == "svg":
            self.svg = True
        for key in ("src", "href"):
            if values.get(key):
                self.fetches.append(str(values[key]))
        if tag == "link":
            self.fetches.append(str(values))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.mark.slow
def test_html_page_renders_in_headless_chromium(barque: Barque, tmp_path: str) -> None:
    require("chromium")
    b = barque
    ok(b.run("run", "-d", "--name", "web", "-m", "64m", "--network", "none", "busybox",
             "sleep", "1000"))
    page = os.path.join(str(tmp_path), "explain.html")
    facts = _explain_json(b, "web", "--html", page)
    with open(page, encoding="utf-8") as f:
        html = f.read()
    parser = _Page()
    parser.feed(html)
    assert parser.ids == list(SECTIONS)
    assert parser.svg and parser.fetches == []
    assert "url(" not in html and "@import" not in html
    text = "".join(parser.text)
    assert f"PID 1 inside is PID {facts['container']['pid']} outside" in text

    shot = os.path.join(str(tmp_path), "shot.png")
    home = os.path.join(str(tmp_path), "home")  # chromium's profile: nowhere else
    os.makedirs(home)
    result = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={home}", f"--screenshot={shot}", "--window-size=1000,900",
         "file://" + page],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": home})
    assert result.returncode == 0 and os.path.exists(shot), result.stderr[-2000:]
    with open(shot, "rb") as f:
        variance, levels = png.grey_variance(f.read())
    # A blank page is one grey level; this one has text, coloured boxes and tables.
    assert variance > 200 and levels > 20, (variance, levels)


def test_names_from_the_container_reach_the_terminal_inert(barque: Barque) -> None:
    """A file name (and a command) with rich markup and a terminal escape is shown as text:
    no markup applied, no escape sequence written to the user's terminal."""
    b = barque
    ok(b.run("run", "-d", "--name", "evil", "--network", "none", "busybox", "sh", "-c",
             "dd if=/dev/zero of=\"/$(printf '[red]big\\033[2J')\" bs=1k count=64 "
             "2>/dev/null; touch /done; exec sleep 1000"))
    upper = inspect_container(b, "evil")["GraphDriver"]["Data"]["UpperDir"]
    until(lambda: os.path.exists(os.path.join(upper, "done")))
    view = ok(b.run("explain", "--interval", "0.2", "evil"))
    assert "\x1b" not in view
    assert "/[red]big\\x1b[2J" in view
