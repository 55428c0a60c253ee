"""What each Llama Stack generation's profile (local/profiles.py) makes local/stack.py start: the
server's command line and environment, read off the process it would spawn (nothing starts),
and, with the server's own config loader, the OGX run config. The servers themselves run end to
end in test_agent_responses.py and test_local_stack.py."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
from pathlib import Path

import pytest

from local import stack
from local.profiles import LOCAL_STACK_DISTRO, OPENTELEMETRY_INSTRUMENT, OTEL_DISTRO_DIR, PROFILES

INSTRUMENTED = [version for version, profile in PROFILES.items() if profile.telemetry == OPENTELEMETRY_INSTRUMENT]


@pytest.fixture
def spawned(monkeypatch, tmp_path):
    """start_llama_stack(version) with spawn and the health wait stubbed: (command, environment)."""
    seen: dict = {}

    def spawn(name, command, *, env, log_path, url, executable=None):
        seen.update(command=command, env=env, executable=executable)
        return stack.Component(name=name, pid=0, url=url, log=str(log_path), executable=executable or command[0])

    monkeypatch.setattr(stack, "spawn", spawn)
    monkeypatch.setattr(stack, "wait_healthy", lambda component, url: None)
    monkeypatch.setattr(stack, "ensure_tiktoken_cache", lambda python: tmp_path / "tiktoken")
    monkeypatch.setattr(stack, "embedding_model_path", lambda python: str(tmp_path / "minilm"))
    # What a user's shell may hold for the script, or for something else entirely.
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    monkeypatch.setenv("OTEL_PYTHON_DISTRO", "distro")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=the-script")

    def start(version: str) -> tuple[list[str], dict[str, str]]:
        python = tmp_path / "venv" / "bin" / "python"
        stack.start_llama_stack(PROFILES[version], python, port=8999, otlp_endpoint="http://127.0.0.1:4318",
                                state_dir=tmp_path, logs=tmp_path / "logs", llama_server_url="http://127.0.0.1:1",
                                embedding_server_url="http://127.0.0.1:2")
        return seen["command"], seen["env"]

    return start


@pytest.mark.parametrize("version", INSTRUMENTED)
def test_the_server_runs_under_opentelemetry_instrument_with_the_stacks_distro(spawned, version):
    command, env = spawned(version)
    assert Path(command[0]).name == "opentelemetry-instrument"
    assert env["OTEL_PYTHON_DISTRO"] == LOCAL_STACK_DISTRO  # the shell's "distro" does not win
    assert str(OTEL_DISTRO_DIR) in env["PYTHONPATH"].split(os.pathsep)
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert env["OTEL_SERVICE_NAME"] == PROFILES[version].service_name
    # The script's content opt-in and resource are the script's: the server's spans hold no content.
    assert "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT" not in env
    assert "OTEL_RESOURCE_ATTRIBUTES" not in env
    assert json.loads(env["LLAMA_SERVER_STOP"])[:3] == stack.STOP_SEQUENCES


def test_ogx_runs_insecure_on_the_stacks_port_with_its_own_stop_sequence(spawned):
    command, env = spawned("1.5.0")
    profile = PROFILES["1.5.0"]
    assert command[1:] == [str(Path(command[0]).parent / "ogx"), "run", "--insecure", "--port", "8999",
                           str(profile.run_config)]
    assert {"<untrusted_tool_output>", "</untrusted_tool_output>"} <= set(json.loads(env["LLAMA_SERVER_STOP"]))
    assert env["EMBEDDING_SERVER_URL"] == "http://127.0.0.1:2/v1" and env["LLAMA_SERVER_URL"] == "http://127.0.0.1:1/v1"


def test_the_distro_is_found_on_the_python_path_alone():
    """The dist-info beside the module registers `local_stack` as an OpenTelemetry distro; no
    venv has it installed."""
    [distribution] = importlib.metadata.distributions(path=[str(OTEL_DISTRO_DIR)])
    [entry_point] = [e for e in distribution.entry_points if e.group == "opentelemetry_distro"]
    assert entry_point.name == LOCAL_STACK_DISTRO
    module, attribute = entry_point.value.split(":")
    assert (OTEL_DISTRO_DIR / f"{module}.py").is_file()
    assert f"class {attribute}(" in (OTEL_DISTRO_DIR / f"{module}.py").read_text()


# OGX's own checks of a run config (what `ogx run --dry-run` does, with the registry built from
# the config: --dry-run itself rejects `module:` providers such as remote::llama-cpp).
VALIDATE_OGX = """
import json, sys, yaml
from ogx.core.configure import parse_and_maybe_upgrade_config
from ogx.core.distribution import builtin_automatically_routed_apis, get_provider_registry
from ogx.core.resolver import validate_and_prepare_providers
config = parse_and_maybe_upgrade_config(yaml.safe_load(open(sys.argv[1])))
routed = builtin_automatically_routed_apis()
validate_and_prepare_providers(run_config=config, provider_registry=get_provider_registry(config),
                               routing_table_apis={x.routing_table_api for x in routed},
                               router_apis={x.router_api for x in routed})
print(json.dumps({"host": config.server.host, "insecure": config.server.insecure,
                  "apis": sorted(str(a) for a in config.apis),
                  "inference": [p.provider_type for p in config.providers["inference"]]}))
"""


@pytest.mark.server
def test_ogx_run_config_passes_ogx_s_own_validation_and_binds_loopback(tmp_path):
    profile = PROFILES["1.5.0"]
    python = stack.prepare("external", profile).server_python
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in profile.provider_paths),
           "LOCAL_STACK_STATE_DIR": str(tmp_path), "LLAMA_SERVER_URL": "http://127.0.0.1:1/v1",
           "EMBEDDING_SERVER_URL": "http://127.0.0.1:2/v1"}
    result = subprocess.run([str(python), "-c", VALIDATE_OGX, str(profile.run_config)], capture_output=True, text=True,
                            env=env, timeout=180, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads(result.stdout.strip().splitlines()[-1])
    assert config["host"] == "127.0.0.1"
    assert config["insecure"] is False  # TLS is waived on the command line (--insecure), not in the file
    assert config["inference"] == ["remote::llama-cpp", "remote::vllm"]
    assert "file_processors" in " ".join(config["apis"])
