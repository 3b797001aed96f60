"""`barque explain --html FILE`: one self-contained page (inline CSS and an inline SVG diagram
of the three layers: namespaces, cgroups, union filesystem; nothing fetched from a network)."""

from __future__ import annotations

from html import escape

from barque.cli import explain_view as view

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from typing import Any

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#1d2330;
background:#f6f7f9}
h1{font-size:1.6em;margin:0 0 .2em}h2{margin:1.4em 0 .3em;font-size:1.2em}
.sub{color:#5a6270;margin:0 0 1em}
section{background:#fff;border:1px solid #d8dce3;border-radius:8px;padding:.8em 1.2em;
margin:1em 0}
table{border-collapse:collapse;width:100%}td{padding:.25em .6em;border-top:1px solid #eceef2;
vertical-align:top}td:first-child{font-weight:600;white-space:nowrap;width:11em}
td:nth-child(2){font-family:ui-monospace,monospace;word-break:break-all}
td:last-child{color:#4a5260}svg{width:100%;height:auto;background:#fff;border:1px solid #d8dce3;
border-radius:8px}
"""
_PRIVATE, _SHARED = "#2e9b5f", "#d98324"


def _svg_namespaces(facts: dict[str, Any]) -> list[str]:
    out = ['<text x="20" y="60" class="h">Namespaces: what it sees</text>']
    for i, ns in enumerate(facts["namespaces"]):
        y = 75 + i * 34
        private = ns["private"] and not ns["shared_with"]  # not with other containers either
        color = _PRIVATE if private else _SHARED
        label = "private" if private else "shared"
        out.append(f'<rect x="20" y="{y}" width="250" height="28" rx="5" fill="{color}"/>'
                   f'<text x="32" y="{y + 19}" class="w">{escape(ns["type"])}: {label}</text>')
    return out


def _bar(x: int, y: int, label: str, used: float, limit: float | None, text: str) -> str:
    width = 250
    share = min(used / limit, 1.0) if limit else 0.0
    fill = f'<rect x="{x}" y="{y}" width="{int(width * share)}" height="28" rx="5" ' \
        f'fill="#3b6fd4"/>' if limit else ""
    return (f'<rect x="{x}" y="{y}" width="{width}" height="28" rx="5" fill="#dfe6f5"/>{fill}'
            f'<text x="{x + 10}" y="{y + 19}">{escape(label)}: {escape(text)}</text>')


def _svg_cgroups(facts: dict[str, Any]) -> list[str]:
    cg = facts["cgroups"]
    mem, pids, cpu = cg["memory"], cg["pids"], cg["cpu"]
    limit_cpu = cpu["limit_cpus"] * 100 if cpu["limit_cpus"] else None
    rows = [
        ("memory", mem["current"], mem["limit"],
         f"{view.size(mem['current'])} / {view._limit(mem['limit'])}"),
        ("pids", pids["current"], pids["limit"],
         f"{pids['current']} / {view._limit(pids['limit'], str)}"),
        ("cpu", cpu["percent"], limit_cpu, f"{cpu['percent']:.1f}% / "
         f"{view._limit(cpu['limit_cpus'], lambda c: f'{c:g} CPUs')}"),
    ]
    out = ['<text x="320" y="60" class="h">cgroups: what it may use</text>']
    for i, (label, used, limit, text) in enumerate(rows):
        out.append(_bar(320, 75 + i * 40, label, float(used), limit, text))
    out.append(f'<text x="320" y="{75 + 3 * 40 + 19}">OOM kills: {cg["oom_kills"]}</text>')
    return out


def _svg_filesystem(facts: dict[str, Any]) -> list[str]:
    out = ['<text x="620" y="60" class="h">Union filesystem: what it stores</text>']
    overlay = facts["filesystem"]["overlay"]
    if overlay is None:
        return out + ['<text x="620" y="95">no overlay (a plain copy)</text>']
    cow = overlay["copy_on_write"] or {}
    boxes = [("#c94f4f", f"upper (writable): {view.size(cow.get('bytes'))}")]
    for layer in overlay["layers"]:
        name = layer["kind"] if layer["kind"] != "image" else view._short(layer["digest"] or "")
        boxes.append(("#7a8699", f"{name} {view.size(layer['size'])}"))
    for i, (color, text) in enumerate(boxes[:8]):
        y = 75 + i * 34
        out.append(f'<rect x="620" y="{y}" width="260" height="28" rx="5" fill="{color}"/>'
                   f'<text x="632" y="{y + 19}" class="w">{escape(text)}</text>')
    return out


def diagram(facts: dict[str, Any]) -> str:
    pid = facts["container"]["pid"]
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 900 370" role="img" '
        'aria-label="the three layers that isolate the container">',
        "<style>text{font:13px system-ui,sans-serif;fill:#1d2330}"
        ".h{font-weight:700;font-size:14px}.w{fill:#fff}.n{fill:#5a6270}</style>",
        f'<rect x="300" y="8" width="300" height="30" rx="15" fill="#1d2330"/>'
        f'<text x="450" y="28" text-anchor="middle" class="w">'
        f'process {escape(str(pid))}: an ordinary process</text>',
        *_svg_namespaces(facts), *_svg_cgroups(facts), *_svg_filesystem(facts),
        '<text x="20" y="362" class="n">green: private to the container; orange: shared '
        "with the host or another container; blue: use against the limit</text>",
        "</svg>",
    ]
    return "\n".join(parts)


def _section(section: view.Section) -> str:
    rows = "\n".join(f"<tr><td>{escape(a)}</td><td>{escape(b)}</td><td>{escape(c)}</td></tr>"
                     for a, b, c in section.rows)
    return (f'<section id="{section.key}"><h2>{escape(section.title)}</h2>'
            f'<p class="sub">{escape(section.intro)}</p><table>{rows}</table></section>')


def render(facts: dict[str, Any]) -> str:
    c = facts["container"]
    title = f"barque explain {c['name']}"
    body = "\n".join(_section(s) for s in view.sections(facts))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>\n"
            f"<h1>{escape(title)}</h1>"
            f'<p class="sub">{escape(c["id"][:12])} from {escape(c["image"])}: '
            f"{escape(' '.join(c['command']))}. A container is an ordinary process made "
            "separate by three kernel features.</p>\n"
            f'<figure id="diagram">{diagram(facts)}</figure>\n{body}\n</body></html>\n')
