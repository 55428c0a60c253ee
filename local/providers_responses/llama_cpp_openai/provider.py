"""The provider spec Llama Stack 0.7.3 and OGX 1.x import for `module: llama_cpp_openai`."""

from __future__ import annotations

from .server_api import SERVER_PACKAGE, api


def get_provider_spec() -> api.RemoteProviderSpec:
    return api.RemoteProviderSpec(
        api=api.Api.inference,
        adapter_type="llama-cpp",
        provider_type="remote::llama-cpp",
        pip_packages=[],
        module="llama_cpp_openai",
        config_class="llama_cpp_openai.config.LlamaCppOpenAIConfig",
        # The vLLM adapter reads an optional per-request API token through it.
        provider_data_validator=f"{SERVER_PACKAGE}.providers.remote.inference.vllm.VLLMProviderDataValidator",
        description="llama.cpp's server through the vLLM adapter, with forced tool calls and stop sequences.",
    )
