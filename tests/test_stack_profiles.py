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

from local import credentials, stack
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
    monkeypatch.setattr(stack, "wait_healthy", lambda component, url, **kwargs: None)
    monkeypatch.setattr(stack, "ensure_tiktoken_cache", lambda python: tmp_path / "tiktoken")
    monkeypatch.setattr(stack, "embedding_model_path", lambda python: str(tmp_path / "minilm"))
    # What a user's shell may hold for the script, or for something else entirely.
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    monkeypatch.setenv("OTEL_PYTHON_DISTRO", "distro")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=the-script")

    def start(version: str, secure: credentials.Credentials | None = None) -> tuple[list[str], dict[str, str]]:
        python = tmp_path / "venv" / "bin" / "python"
        component = stack.start_llama_stack(
            PROFILES[version], python, port=8999, otlp_endpoint="http://127.0.0.1:4318", state_dir=tmp_path,
            logs=tmp_path / "logs", llama_server_url="http://127.0.0.1:1", embedding_server_url="http://127.0.0.1:2",
            secure=secure)
        seen["url"] = component.url
        return seen["command"], seen["env"]

    start.seen = seen

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


def test_ogx_runs_insecure_on_the_stacks_port_with_its_own_stop_sequence(spawned, monkeypatch):
    monkeypatch.setenv("LOCAL_STACK_API_KEY", "canary-from-the-shell")  # only the launcher secures a server
    command, env = spawned("1.5.0")
    profile = PROFILES["1.5.0"]
    assert command[1:] == [str(Path(command[0]).parent / "ogx"), "run", "--port", "8999",
                           str(profile.run_config), "--insecure"]
    assert not set(stack.SECURE_SERVER_SETTINGS) & set(env)
    assert spawned.seen["url"] == "http://127.0.0.1:8999"
    assert {"<untrusted_tool_output>", "</untrusted_tool_output>"} <= set(json.loads(env["LLAMA_SERVER_STOP"]))
    assert env["EMBEDDING_SERVER_URL"] == "http://127.0.0.1:2/v1" and env["LLAMA_SERVER_URL"] == "http://127.0.0.1:1/v1"


def test_secure_ogx_gets_its_certificate_and_key_and_no_insecure_flag(spawned, tmp_path):
    made = credentials.make(tmp_path / "secure")
    command, env = spawned("1.5.0", made)
    assert "--insecure" not in command
    assert env["LOCAL_STACK_TLS_CERTFILE"] == str(made.certfile) and env["LOCAL_STACK_TLS_KEYFILE"] == str(made.keyfile)
    assert env["LOCAL_STACK_API_KEY"] == made.api_key()
    assert env["OGX_LOGGING"] == "core=warning"  # its INFO lines name the key as the resources' owner
    assert spawned.seen["url"] == "https://127.0.0.1:8999"
    assert oct((tmp_path / "llama-stack").stat().st_mode & 0o777) == "0o700"  # its database names the key


@pytest.mark.parametrize("version", ["0.2.12", "0.7.3"])
def test_only_ogx_is_run_securely(version, monkeypatch):
    monkeypatch.delenv("LLAMA_STACK_VERSION", raising=False)
    with pytest.raises(stack.StackError, match=r"LLAMA_STACK_SECURE=1 .* LLAMA_STACK_VERSION=1\.5\.0, not"):
        stack.choose_profile(version, secure=True)
    assert stack.choose_profile(secure=True).version == "1.5.0"  # the one setting is enough


@pytest.mark.parametrize("value, secure", [("1", True), ("yes", True), ("0", False), ("", False)])
def test_the_secure_setting(monkeypatch, value, secure):
    monkeypatch.setenv("LLAMA_STACK_SECURE", value)
    assert stack.secure_setting() is secure
    monkeypatch.setenv("LLAMA_STACK_SECURE", "maybe")
    with pytest.raises(stack.StackError, match="LLAMA_STACK_SECURE='maybe'"):
        stack.secure_setting()


def test_a_secure_stack_tells_the_url_and_ca_and_gives_the_key_only_from_its_file(tmp_path):
    made = credentials.make(tmp_path / "secure")
    running = stack.Stack(state_dir=str(tmp_path), trace_backend="external", otlp_endpoint="http://127.0.0.1:4318",
                          trace_ui="", llama_stack_url="https://127.0.0.1:8999", llama_stack_version="1.5.0",
                          ca_file=str(made.ca_file), api_key_file=str(made.api_key_file))
    running.save()
    again = stack.Stack.load(tmp_path)
    assert again.secure and again.script_env()["SSL_CERT_FILE"] == str(made.ca_file)
    assert made.api_key() not in json.dumps(again.script_env()) and made.api_key() not in again.state_file.read_text()
    assert again.api_key() == {"LLAMA_STACK_API_KEY": made.api_key()}


def test_credentials_are_made_once_in_the_cache_and_keep_their_key(tmp_path, monkeypatch):
    monkeypatch.setenv("LLAMA_STACK_OTEL_CACHE", str(tmp_path))
    first = credentials.ensure()
    assert first.folder == tmp_path / "secure"
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in first.folder.iterdir() if p.suffix != ".crt"} == {
        "api-key": "0o600", "ca.key": "0o600", "server.key": "0o600"}
    key, certificate = first.api_key(), first.certfile.read_bytes()
    assert credentials.ensure().certfile.read_bytes() == certificate  # reused
    first.certfile.unlink()  # as when it is about to expire: made again, the key kept
    assert credentials.ensure().api_key() == key


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
auth = config.server.auth and config.server.auth.provider_config
print(json.dumps({"host": config.server.host, "insecure": config.server.insecure,
                  "tls": [config.server.tls_certfile, config.server.tls_keyfile],
                  "auth": auth and [str(auth.type.value), len(auth.api_keys)],
                  "apis": sorted(str(a) for a in config.apis),
                  "inference": [p.provider_type for p in config.providers["inference"]]}))
"""


@pytest.mark.server
@pytest.mark.parametrize("secure", [False, True], ids=["plain", "secure"])
def test_ogx_run_config_passes_ogx_s_own_validation_and_binds_loopback(tmp_path, secure):
    profile = PROFILES["1.5.0"]
    python = stack.prepare("external", profile).server_python
    env = {**{k: v for k, v in os.environ.items() if k not in stack.SECURE_SERVER_SETTINGS},
           "PYTHONPATH": os.pathsep.join(str(p) for p in profile.provider_paths),
           "LOCAL_STACK_STATE_DIR": str(tmp_path), "LLAMA_SERVER_URL": "http://127.0.0.1:1/v1",
           "EMBEDDING_SERVER_URL": "http://127.0.0.1:2/v1"}
    if secure:
        env.update(LOCAL_STACK_TLS_CERTFILE="/tls/server.crt", LOCAL_STACK_TLS_KEYFILE="/tls/server.key",
                   LOCAL_STACK_API_KEY="canary-key")
    result = subprocess.run([str(python), "-c", VALIDATE_OGX, str(profile.run_config)], capture_output=True, text=True,
                            env=env, timeout=180, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads(result.stdout.strip().splitlines()[-1])
    assert config["host"] == "127.0.0.1"
    assert config["insecure"] is False  # TLS is waived on the command line (--insecure), not in the file
    if secure:
        assert config["tls"] == ["/tls/server.crt", "/tls/server.key"] and config["auth"] == ["local_api_key", 1]
    else:
        assert config["tls"] == [None, None] and config["auth"] is None  # plain HTTP, no key asked for
    assert config["inference"] == ["remote::llama-cpp", "remote::vllm"]
    assert "file_processors" in " ".join(config["apis"])
