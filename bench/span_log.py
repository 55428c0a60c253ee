"""Run a Python script with one more span processor on every TracerProvider it makes: each
span that ends appends a line to $BENCH_SPAN_LOG (wall-clock end time, and whether it is a
root), written at once so that the file holds every ended span even when the process is
killed. The benchmarks count spans created from it and take the last end as the moment the
run's work was over.

    BENCH_SPAN_LOG=/tmp/spans.log PYTHONPATH=<SCRIPT's folder> python bench/span_log.py SCRIPT [ARGS...]

The script's own modules are found through PYTHONPATH (bench/run.py sets it to the script's
folder, where `python SCRIPT` would look for them).
"""

from __future__ import annotations

import os
import runpy
import sys
import time
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider


class EndLog(SpanProcessor):
    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def on_end(self, span: ReadableSpan) -> None:
        os.write(self._fd, f"{time.time():.6f} {int(span.parent is None)}\n".encode())


def read_span_log(path: Path) -> tuple[int, float | None]:
    """(spans ended, wall-clock time the last root span ended or None)."""
    lines = path.read_text().split() if path.exists() else []
    ends = [(float(lines[i]), lines[i + 1] == "1") for i in range(0, len(lines) - 1, 2)]
    root_ends = [t for t, is_root in ends if is_root]
    return len(ends), (max(root_ends) if root_ends else None)


def main() -> None:
    log_path = os.environ["BENCH_SPAN_LOG"]
    original_init = TracerProvider.__init__

    def init_with_log(self: TracerProvider, *args: object, **kwargs: object) -> None:
        original_init(self, *args, **kwargs)
        self.add_span_processor(EndLog(log_path))

    TracerProvider.__init__ = init_with_log  # type: ignore[method-assign]
    script = Path(sys.argv[1]).resolve()
    sys.argv = [str(script), *sys.argv[2:]]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
