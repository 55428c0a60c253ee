"""The instrumentor as a user installs it: ``pip install ./instrumentation`` and a client, in a fresh
venv, and nothing else of this project — then ``opentelemetry-instrument python app.py``.

Per client: llama-stack-client 0.2.12 (on the Python running the suite) and ogx-client 1.1.3 (on
Python 3.12, where its users are), each alone: the other client is not installed.
The app is plain client code against the instrumentor's canned server; spans go to the console
exporter. What must hold: the app's own GenAI spans arrive (its entry point loaded, the other
client's entry point did nothing), and the HTTPX instrumentation loaded after it works too (its
span, and the traceparent the server got) — the failure of issue 18 was the loader stopping there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from canned_llama_stack import serving
from local.stack import PROJECT_ROOT, StackError, find_python
from tests.support.script import clean_env

APP = '''
import sys
from {package} import {client}

client = {client}(base_url=sys.argv[1], max_retries=0)
print(client.chat.completions.create(model="m", messages=[{{"role": "user", "content": "hi"}}]).id)
for chunk in client.chat.completions.create(model="m", messages=[{{"role": "user", "content": "hi"}}], stream=True):
    pass
print("done")
'''
CLIENTS = {
    "llama-stack-client": (None, ["llama-stack-client==0.2.12", "fire==0.7.1", "requests==2.34.2"],
                           "llama_stack_client", "LlamaStackClient"),
    "ogx-client": ("3.12", ["ogx-client==1.1.3"], "ogx_client", "OgxClient"),
}
OTEL = ["opentelemetry-distro==0.66b2", "opentelemetry-instrumentation-httpx==0.66b2"]


@pytest.fixture(scope="module", params=sorted(CLIENTS))
def installed(request, tmp_path_factory):
    """(venv, client): the instrumentor from a copy of its folder, one client, the OTel distro."""
    python_version, pins, package, client = CLIENTS[request.param]
    try:
        python = Path(sys.executable) if python_version is None else find_python(python_version,
                                                                                     needed_by=request.param)
    except StackError as error:
        pytest.skip(str(error))
    work = tmp_path_factory.mktemp(f"installed-{request.param}")
    source = work / "instrumentation"
    shutil.copytree(PROJECT_ROOT / "instrumentation", source,
                    ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info", "tests"))
    venv = work / "venv"
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                             "--disable-pip-version-check", str(source), *pins, *OTEL],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    (work / "app.py").write_text(APP.format(package=package, client=client))
    return venv, work / "app.py"


def test_opentelemetry_instrument_traces_an_app_with_only_the_instrumentor_installed(installed):
    venv, app = installed
    with serving() as canned:
        result = subprocess.run([str(venv / "bin" / "opentelemetry-instrument"), str(venv / "bin" / "python"),
                                 str(app), canned.url], env=clean_env({
                                     "OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "none",
                                     "OTEL_LOGS_EXPORTER": "none", "OTEL_SERVICE_NAME": "installed-app"}),
                                capture_output=True, text=True, timeout=120, cwd=app.parent)
        traceparents = [seen.headers.get("traceparent") for seen in canned.seen]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "done" in result.stdout and "Instrumenting of" not in result.stderr, result.stderr
    spans = [json.loads(block) for block in split_console_spans(result.stdout)]
    names = [span["name"] for span in spans]
    assert names.count("chat m") == 2, names  # the instrumentor's entry point loaded
    assert names.count("POST") == 2, names  # and the HTTPX instrumentation after it
    assert all(traceparents), traceparents  # the server was told the trace
    chat = next(span for span in spans if span["name"] == "chat m")
    assert chat["attributes"]["gen_ai.operation.name"] == "chat"


def split_console_spans(stdout: str) -> list[str]:
    """The console exporter's spans: one indented JSON object each, among the app's own lines."""
    blocks, current = [], []
    for line in stdout.splitlines():
        if line == "{":
            current = [line]
        elif current:
            current.append(line)
            if line == "}":
                blocks.append("\n".join(current))
                current = []
    return blocks
