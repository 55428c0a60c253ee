"""Open a page in headless Chromium and read the text it rendered once its JavaScript ran.

Phoenix's trace link is a client-side redirect inside a React app that then fetches the
trace over GraphQL: fetching the URL shows none of it. `chromium --dump-dom` with a
virtual-time budget runs the page's scripts (virtual time waits while requests are in
flight) and prints the DOM it ended with; a load takes ~4 s here.

Each load gets a fresh profile, its own process group and a hard timeout; afterwards the
browser and every process of its group are stopped, however the load ended. (Chromium's
crash handler double-forks out of the group and exits by itself once the browser is gone.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

from local import chromium

# The machine's network is closed: without these Chromium keeps trying its own services.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
VIRTUAL_TIME_BUDGET_MS = 10_000
LOAD_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0


class VisibleText(HTMLParser):
    """The text nodes a reader sees: scripts, styles and attribute values left out."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in ("script", "style", "template", "noscript"):
            self.hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template", "noscript") and self.hidden:
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden and data.strip():
            self.parts.append(data.strip())


def visible_text(dom: str) -> str:
    parser = VisibleText()
    parser.feed(dom)
    parser.close()
    return "\n".join(parser.parts)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group pgid, read from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            state, _ppid, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if int(group) == pgid and state != "Z":
                members.append(int(stat.parent.name))
    return members


def stop(process: subprocess.Popen) -> None:
    """The browser, then anything left of its group (renderers, zygotes), by PID."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    for pid in group_members(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def render(url: str, *, profile: Path, log_path: Path) -> str:
    """One headless load of url: the visible text of the DOM Chromium dumped."""
    binary = chromium.chromium_path()
    if not binary.exists():
        raise RuntimeError(f"{binary} is missing — run `python3 -m local.chromium` (make test does)")
    command = [str(binary), *FLAGS, f"--user-data-dir={profile}",
               f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}", "--dump-dom", url]
    with log_path.open("a") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                   text=True, start_new_session=True)
        try:
            dom, _ = process.communicate(timeout=LOAD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"Chromium did not finish loading {url} in {LOAD_TIMEOUT_S:.0f} s "
                               f"(log: {log_path})") from None
        finally:
            stop(process)
    if process.returncode != 0:
        raise RuntimeError(f"Chromium exited {process.returncode} loading {url} (log: {log_path})")
    return visible_text(dom)


def wait_for_text(url: str, expected: str, *, after: str = "", tmp_dir: Path, timeout: float = 60.0) -> str:
    """Load url until expected is in its rendered text (somewhere after the first `after`, if
    given) or timeout seconds passed, with a fresh browser and profile each time; the last text
    rendered, for the caller to assert on."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        text = render(url, profile=tmp_dir / f"chromium-profile-{attempt}", log_path=tmp_dir / "chromium.log")
        if expected in (text.partition(after)[2] if after else text) or time.monotonic() > deadline:
            return text
        time.sleep(1)
