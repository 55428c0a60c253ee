"""The two-question run the end-to-end tests make on each Llama Stack generation, and how its
output is read: the questions, the answers (clean text, no chat-template leftovers) and the
tree and verdict that --verify prints."""

from __future__ import annotations

import re

QUESTIONS = (
    "Should I use npm to start a node.js application?",
    "How should a Node.js service handle SIGTERM?",
)
# What leaks when the chat template or the stop sequences are wrong.
TEMPLATE_LEFTOVERS = ("<|im_end|>", "<|im_start|>", "<start_of_turn>", "<end_of_turn>", "<eos>", "<bos>",
                      "Question:", "Notes:", "Answer:")
ROOT_PREFIX = "Python LlamaStack request - "


def question_args() -> list[str]:
    return [f"--question={q}" for q in QUESTIONS]


def answers(stdout: str) -> list[str]:
    return [a.strip() for a in re.findall(r"^RESPONSE: (.*?)(?=^QUESTION: |^Trace ID: |\Z)", stdout, re.S | re.M)]


def assert_clean_answers(stdout: str) -> None:
    found = answers(stdout)
    assert len(found) == len(QUESTIONS), stdout
    assert "RESPONSE:  " not in stdout  # the model's leading blank is not printed
    for answer in found:
        assert answer, f"empty answer in:\n{stdout}"
        leftovers = [t for t in TEMPLATE_LEFTOVERS if t in answer]
        assert not leftovers, f"template text {leftovers} in answer {answer!r}"


def tree_and_verdict(stdout: str) -> tuple[list[str], list[str]]:
    """--verify's output: the tree's lines (from the root's line on) and the three verdict lines."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(ROOT_PREFIX))
    end = next(i for i, line in enumerate(lines) if line.startswith("services: "))
    return lines[start:end], lines[end:end + 3]
