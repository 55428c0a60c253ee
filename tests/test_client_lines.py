"""The Responses-API run on each llama-stack-client line (llama_stack_otel/backends/calls.py): the
pinned 0.2.12 (this venv) goes through its generic calls, today's 0.7.x (a Python 3.12 venv)
through its typed ones, and neither sends the client's version header, which Llama Stack 0.4–0.7
answer with HTTP 426 when its major.minor is not theirs. A loopback server stands in for Llama
Stack and records what arrives; the end-to-end runs on the real servers are in
test_agent_responses.py.
"""

from __future__ import annotations

import json
import subprocess
from urllib.parse import urlsplit

import httpx
import pytest

from llama_stack_otel.errors import translate_client_error
from local.stack import PROJECT_ROOT
from tests.support.collectors import QuietHandler, serving
from tests.support.http_reply import reply
from tests.support.script import CURRENT_CLIENT, PINNED_CLIENT, assert_one_line_error, client_python, run_script

# Every call the run makes that needs no upload or stream, through whichever calls the client gets.
PROBE = """
import json, sys
from llama_stack_client import LlamaStackClient
from llama_stack_otel.backends.calls import for_client

calls = for_client(LlamaStackClient(base_url=sys.argv[1], max_retries=0))
answers = [calls.models(), calls.vector_stores(), calls.responses(), calls.health(timeout=5)]
calls.delete_file("file-1", timeout=5)
print(json.dumps({"calls": type(calls).__name__, "answers": answers}))
"""
ANSWERS = {
    "/v1/models": {"data": [{"id": "llama-cpp/gemma3-270m", "object": "model", "created": 1, "owned_by": "ogx",
                             "custom_metadata": {"model_type": "llm"}}]},
    "/v1/vector_stores": {"object": "list", "data": [], "has_more": False},
    "/v1/responses": {"object": "list", "data": [], "has_more": False},
    "/v1/health": {"status": "OK"},
    "/v1/files/file-1": {"id": "file-1", "object": "file", "deleted": True},
}


@pytest.fixture
def llama_stack_stand_in():
    seen: list[tuple[str, str, dict[str, str]]] = []

    class Handler(QuietHandler):
        def answer(self) -> None:
            path = urlsplit(self.path).path
            seen.append((self.command, path, {k.lower(): v for k, v in self.headers.items()}))
            body = ANSWERS.get(path)
            reply(self, json.dumps(body or {"detail": "not found"}).encode(), content_type="application/json",
                  status=200 if body else 404)

        do_GET = do_DELETE = answer

    with serving(Handler) as url:
        yield url, seen


@pytest.mark.parametrize("client, calls", [(PINNED_CLIENT, "GenericCalls"), (CURRENT_CLIENT, "TypedCalls")])
def test_each_client_line_gets_its_calls_and_none_sends_the_version_header(llama_stack_stand_in, client, calls):
    url, seen = llama_stack_stand_in
    result = subprocess.run([client_python(client), "-c", PROBE, url], capture_output=True, text=True, timeout=120,
                            cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr
    probed = json.loads(result.stdout)
    assert probed["calls"] == calls
    models, stores, responses, health = probed["answers"]
    assert stores == [] and responses == [] and health["status"] == "OK"
    assert [m["id"] for m in models] == ["llama-cpp/gemma3-270m"]
    assert models[0]["custom_metadata"]["model_type"] == "llm"
    assert [(method, path) for method, path, _ in seen] == [
        ("GET", "/v1/models"), ("GET", "/v1/vector_stores"), ("GET", "/v1/responses"),
        ("GET", "/v1/health"), ("DELETE", "/v1/files/file-1")]
    for method, path, headers in seen:
        assert "x-llamastack-client-version" not in headers, (method, path, headers)
        assert headers["x-stainless-package-version"] == client, headers  # and it is that client that called


def test_an_error_event_in_a_stream_is_one_line():
    """llama-stack-client 0.7's stream raises an event whose data holds "error" as its APIError
    (0.2.12 has the same class): one line, exit 3, the server's words on the terminal only."""
    from llama_stack_client import APIError

    request = httpx.Request("POST", "http://127.0.0.1:8321/v1/responses")
    error = translate_client_error(APIError("model  overloaded\n", request, body={"message": "model overloaded"}),
                                   "http://127.0.0.1:8321")
    assert error is not None and error.exit_code == 3
    assert str(error) == ("Llama Stack at http://127.0.0.1:8321 reported an error in its answer to POST /v1/responses: "
                          "model overloaded")
    assert "overloaded" not in error.trace_message


def test_todays_client_told_to_use_the_agents_api_says_which_client_has_it(recording_server, otlp_receiver):
    """--api agents with llama-stack-client 0.7: one line, exit 2, and nothing sent to the server
    (the 0.2.12 server's own answer to /v1/version is test_local_stack.py's)."""
    url, seen = recording_server
    run = run_script("--api", "agents", "--llama-stack-url", url, "--otlp-endpoint", otlp_receiver.traces_url,
                     python=client_python(CURRENT_CLIENT))
    assert_one_line_error(run, exit_code=2, says=(
        f"the Agents API (--api agents, LLAMA_STACK_API=agents) is not in llama-stack-client {CURRENT_CLIENT} — "
        f"pip install 'llama-stack-client=={PINNED_CLIENT}' for it, or pass --api responses"))
    assert seen == []
