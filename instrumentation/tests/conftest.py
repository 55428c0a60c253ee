"""The instrumentation tests run in one venv per client release (make test-instrumentation);
client_under_test says which. Fixtures: a canned server with the instrumentor on in-memory
providers (``traced``), taken off again after each test."""

from __future__ import annotations

import pytest
from client_under_test import DISTRIBUTION, VERSION, Traced
from in_memory import no_content_variable, taken_off_after  # noqa: F401 - the fixture is used from here

from canned_llama_stack import rag_response, rag_turn, serving

QUESTION = "QCANARY-20b1: how do I stop a node process?"
CHUNK_TEXT = "DCANARY-4c7d: send SIGTERM and close the server"
ANSWER = ["ACANARY-9e02: ", "send SIGTERM."]


def pytest_report_header() -> str:
    return f"client under test: {DISTRIBUTION} {VERSION}"


@pytest.fixture
def traced():
    """make(**kwargs) -> Traced, over one canned server; every instrumentor made is taken off."""
    with serving() as canned:
        canned.turn = rag_turn(question=QUESTION, chunk_text=CHUNK_TEXT, answer=ANSWER)
        canned.response = rag_response(question=QUESTION, chunk_text=CHUNK_TEXT, answer=ANSWER)
        with taken_off_after(lambda **kwargs: Traced(canned, **kwargs)) as make:
            yield make
