"""`pull` and `push` progress printed as Docker prints it: renderers of barque/registry's
`Progress` events.

Pull and push call them from worker threads too, so renderers are thread-safe. `make_progress`
picks one: a live display (rich) on a terminal, Docker's plain lines otherwise, nothing but the
final reference with `-q`.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, TextIO

from barque.engine.units import progress_bar
from barque.image.reference import Reference
from barque.registry.progress import Progress

if TYPE_CHECKING:
    from rich.text import Text

PULL, PUSH = "pull", "push"
_WORDS = {  # event → (pull wording, push wording)
    "started": ("Pulling fs layer", "Preparing"),
    "waiting": ("Waiting", "Waiting"),
    "exists": ("Already exists", "Layer already exists"),
    "transfer": ("Downloading", "Pushing"),
    "done": ("Pull complete", "Pushed"),
}


def pull_status_lines(ref: Reference, digest: str, up_to_date: bool) -> list[str]:
    status = "Image is up to date for" if up_to_date else "Downloaded newer image for"
    return [f"Digest: {digest}", f"Status: {status} {ref.familiar}", str(ref)]


def pull_header(ref: Reference) -> str:
    return f"{ref.tag or ref.digest}: Pulling from {ref.path}"


def push_header(ref: Reference) -> str:
    return f"The push refers to repository [{ref.repository}]"


def push_footer(ref: Reference, digest: str, size: int) -> str:
    return f"{ref.tag or 'latest'}: digest: {digest} size: {size}"


class _Lines(Progress):
    """Shared state: pull or push, and a lock around output."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.mode = PULL
        self._pushing = ""  # the repository whose push was announced
        self.lock = threading.Lock()

    def word(self, event: str) -> str:
        return _WORDS[event][0 if self.mode == PULL else 1]

    def status(self, layer: str, text: str) -> None:
        raise NotImplementedError

    def println(self, text: str) -> None:
        with self.lock:
            self.out.write(text + "\n")
            self.out.flush()

    def pull_started(self, ref: Reference) -> None:
        self.mode = PULL
        self.println(pull_header(ref))

    def push_started(self, ref: Reference) -> None:
        self.mode = PUSH
        if ref.repository != self._pushing:  # once per repository, as dockerd's stream
            self._pushing = ref.repository
            self.println(push_header(ref))

    def layer_started(self, layer: str, size: int | None) -> None:
        self.status(layer, self.word("started"))

    def layer_waiting(self, layer: str) -> None:
        self.status(layer, self.word("waiting"))

    def layer_exists(self, layer: str) -> None:
        self.status(layer, self.word("exists"))

    def layer_verifying(self, layer: str) -> None:
        self.status(layer, "Verifying Checksum")
        self.status(layer, "Download complete")

    def layer_mounted(self, layer: str, from_repo: str) -> None:
        self.status(layer, f"Mounted from {from_repo}")

    def layer_done(self, layer: str) -> None:
        self.status(layer, self.word("done"))

    def pull_finished(self, ref: Reference, digest: str, up_to_date: bool) -> None:
        self.close()
        for line in pull_status_lines(ref, digest, up_to_date):
            self.println(line)

    def push_finished(self, ref: Reference, digest: str, size: int) -> None:
        self.close()
        self.println(push_footer(ref, digest, size))


class PlainProgress(_Lines):
    """Docker's output when stdout is not a terminal: one line per status change."""

    def status(self, layer: str, text: str) -> None:
        self.println(f"{layer}: {text}")


class RichProgress(_Lines):
    """A live block of one line per layer, redrawn in place (Docker's terminal output)."""

    def __init__(self, out: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text

        super().__init__(out)
        self._text = Text
        self.console = Console(file=self.out, highlight=False, markup=False)
        self.rows: dict[str, str] = {}
        self.live: Live | None = None
        self._live_class = Live

    def _render(self) -> Text:
        with self.lock:
            return self._text("\n".join(f"{k}: {v}" for k, v in self.rows.items()))

    def _ensure_live(self) -> None:
        if self.live is None:
            self.live = self._live_class(get_renderable=self._render, console=self.console,
                                         refresh_per_second=8, transient=False)
            self.live.start()

    def println(self, text: str) -> None:
        self.console.print(self._text(text))

    def status(self, layer: str, text: str) -> None:
        with self.lock:
            self.rows[layer] = text
        self._ensure_live()

    def layer_progress(self, layer: str, done: int, total: int | None) -> None:
        self.status(layer, f"{self.word('transfer')} {progress_bar(done, total)}")

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()  # draws the final state and leaves it on screen
            self.live = None


class QuietProgress(Progress):
    """`-q`: only the final reference."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def pull_finished(self, ref: Reference, digest: str, up_to_date: bool) -> None:
        self.out.write(f"{ref}\n")

    def push_finished(self, ref: Reference, digest: str, size: int) -> None:
        self.out.write(f"{ref}\n")


def make_progress(quiet: bool = False, out: TextIO | None = None) -> Progress:
    """The renderer the CLI should use for `out` (stdout by default)."""
    out = out or sys.stdout
    if quiet:
        return QuietProgress(out)
    if out.isatty():
        return RichProgress(out)
    return PlainProgress(out)
