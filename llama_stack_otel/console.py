"""Where a run's lines go: stdout for what the user asked for, stderr for warnings and errors."""

from __future__ import annotations

import sys
import threading


class Console:
    """Where one run's lines go. A single run prints straight through and streams its answers;
    with --concurrency every line starts with the run's number and an answer prints whole once
    its turn ends (eight streams at once would interleave mid-word)."""

    _lock = threading.Lock()  # one line at a time, whichever run it comes from

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.streaming = not prefix
        self.answer_open = False  # "RESPONSE: " printed and its line not ended yet

    def line(self, text: str, *, error: bool = False) -> None:
        with self._lock:
            print(f"{self.prefix}{text}", file=sys.stderr if error else sys.stdout, flush=True)

    def begin_answer(self) -> None:
        if self.streaming:
            self.answer_open = True  # first: a signal landing in the print below still ends the line
            print("RESPONSE: ", end="", flush=True)

    def answer_part(self, text: str) -> None:
        if self.streaming:
            print(text, end="", flush=True)

    def end_answer(self, answer: str) -> None:
        if self.streaming:
            if self.answer_open:  # end the answer's line, also when the turn failed or was interrupted
                self.answer_open = False
                print(flush=True)
        else:
            self.line(f"RESPONSE: {answer}")
