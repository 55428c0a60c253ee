"""OGX 1.5.0 as it runs in production: the local stack with LLAMA_STACK_SECURE=1 (the
`secure_stack` fixture) serves HTTPS with a certificate for 127.0.0.1 from a CA of its own and
wants an API key. The script, run as a user runs it:

- with the key (LLAMA_STACK_API_KEY) and the CA (SSL_CERT_FILE): a whole trace, --verify says so;
- without the key, with a wrong one, trusting another CA, or at a host name the certificate does
  not name: one line saying what to set, exit 3, no traceback.

The key — the stack's and a wrong canary — is in no span (the script's or the server's), in
nothing the script prints, and in no log of the stack's.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from local import credentials
from tests.support.agent_run import tree_and_verdict
from tests.support.script import ScriptRun, assert_one_line_error, run_script

pytestmark = pytest.mark.server

QUESTION = "Should I use npm to start a node.js application?"
WRONG_KEY = "canary-wrong-api-key-4c1e77a0"


@pytest.fixture(scope="module")
def small_docs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("one-doc")
    (folder / "start.md").write_text("# Starting\n\nRun `node server.js`, not `npm start`, in production: npm "
                                     "does not pass SIGTERM on to the node process.\n")
    return folder


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory) -> credentials.Credentials:
    """A CA that did not sign the server's certificate."""
    return credentials.make(tmp_path_factory.mktemp("other-ca"), ca_name="a CA the server does not use")


def env_for(secure_stack, otlp_receiver, **changes: str | None) -> dict[str, str]:
    """What the stack tells a client (URL, CA file, key), the trace going to the suite's receiver;
    a change of None leaves that variable out."""
    env = {**secure_stack.script_env(), **secure_stack.api_key(), "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url,
           "TRACE_UI_URL": otlp_receiver.base_url, "TRACE_BACKEND": "jaeger", "OTEL_METRICS_EXPORTER": "none"}
    env.pop("LLAMA_STACK_VERSION", None)  # the script finds out by itself
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(secure_stack, otlp_receiver, small_docs, *args: str, **changes: str | None) -> ScriptRun:
    return run_script("--docs", str(small_docs), *args, env=env_for(secure_stack, otlp_receiver, **changes),
                      timeout=300)


def assert_no_key_anywhere(secure_stack, otlp_receiver, run: ScriptRun, *, trace_id: str | None = None) -> None:
    secrets = [secure_stack.api_key()["LLAMA_STACK_API_KEY"], WRONG_KEY]
    printed = run.stdout + run.stderr
    assert not [s for s in secrets if s in printed]
    spans = otlp_receiver.spans(trace_id) if trace_id else otlp_receiver.spans()
    leaking = [span.name for span in spans
               if any(secret in repr((span.attributes, span.events, span.status_message)) for secret in secrets)]
    assert leaking == []
    logs = Path(secure_stack.state_dir) / "logs"
    for log in logs.iterdir():
        text = log.read_text(errors="replace")
        assert not [s for s in secrets if s in text], f"a key in {log}"


def test_the_stack_tells_a_client_the_url_and_the_ca_and_keeps_the_key_in_a_private_file(secure_stack):
    env = secure_stack.script_env()
    assert env["LLAMA_STACK_URL"].startswith("https://127.0.0.1:")
    assert Path(env["SSL_CERT_FILE"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert "LLAMA_STACK_API_KEY" not in env  # script_env() is what `up` prints
    assert stat.S_IMODE(Path(secure_stack.api_key_file).stat().st_mode) == 0o600


def test_with_the_key_and_the_ca_the_run_is_one_whole_trace(secure_stack, otlp_receiver, small_docs):
    result = run(secure_stack, otlp_receiver, small_docs, f"--question={QUESTION}", "--verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RESPONSE: " in result.stdout
    _, verdict = tree_and_verdict(result.stdout)
    assert " · 1 root(s) · 0 orphan(s) · " in verdict[1] and verdict[2] == "trace OK", verdict
    spans = otlp_receiver.wait_for(lambda ss: any(s.service == "ogx" for s in ss), trace_id=result.trace_id, timeout=30)
    assert any(s.service == "ogx" and s.name.startswith("POST /v1/responses") for s in spans), \
        sorted({(s.service, s.name) for s in spans})
    assert_no_key_anywhere(secure_stack, otlp_receiver, result, trace_id=result.trace_id)


def test_without_a_key_the_line_names_the_key_variable(secure_stack, otlp_receiver, small_docs):
    result = run(secure_stack, otlp_receiver, small_docs, "--no-questions", LLAMA_STACK_API_KEY=None)
    assert_one_line_error(result, exit_code=3, says="HTTP 401")
    assert "the server wants an API key: set LLAMA_STACK_API_KEY" in result.stderr, result.stderr


def test_a_wrong_key_is_named_and_never_shown(secure_stack, otlp_receiver, small_docs):
    result = run(secure_stack, otlp_receiver, small_docs, "--no-questions", LLAMA_STACK_API_KEY=WRONG_KEY)
    assert_one_line_error(result, exit_code=3, says="HTTP 401")
    assert "the server refused the key in LLAMA_STACK_API_KEY" in result.stderr, result.stderr
    otlp_receiver.wait_for_span(name="check_server", trace_id=result.trace_id, timeout=15)
    assert_no_key_anywhere(secure_stack, otlp_receiver, result)


def test_a_ca_that_did_not_sign_the_certificate_names_ssl_cert_file_and_the_host(
        secure_stack, otlp_receiver, small_docs, other_ca):
    result = run(secure_stack, otlp_receiver, small_docs, "--no-questions", SSL_CERT_FILE=str(other_ca.ca_file))
    assert_one_line_error(result, exit_code=3, says="is not trusted")
    assert "set SSL_CERT_FILE" in result.stderr and "for 127.0.0.1" in result.stderr, result.stderr


def test_a_host_name_the_certificate_does_not_name_is_said(secure_stack, otlp_receiver, small_docs):
    """The certificate names 127.0.0.1; `localhost` reaches the same server and does not match."""
    url = secure_stack.llama_stack_url.replace("127.0.0.1", "localhost")
    result = run(secure_stack, otlp_receiver, small_docs, "--no-questions", LLAMA_STACK_URL=url)
    assert_one_line_error(result, exit_code=3, says="is not valid for localhost")
    assert "SSL_CERT_FILE" in result.stderr, result.stderr


def test_plain_http_to_the_https_server_is_said(secure_stack, otlp_receiver, small_docs):
    url = secure_stack.llama_stack_url.replace("https://", "http://")
    result = run(secure_stack, otlp_receiver, small_docs, "--no-questions", LLAMA_STACK_URL=url)
    assert_one_line_error(result, exit_code=3, says=f"speaks HTTPS, not plain HTTP — use {secure_stack.llama_stack_url}")
