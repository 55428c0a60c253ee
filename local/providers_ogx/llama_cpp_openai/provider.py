"""The provider spec OGX 1.5 imports for `module: llama_cpp_openai`."""

from __future__ import annotations

from ogx_api import Api, RemoteProviderSpec


def get_provider_spec() -> RemoteProviderSpec:
    return RemoteProviderSpec(
        api=Api.inference,
        adapter_type="llama-cpp",
        provider_type="remote::llama-cpp",
        pip_packages=[],
        module="llama_cpp_openai",
        config_class="llama_cpp_openai.config.LlamaCppOpenAIConfig",
        # The vLLM adapter reads an optional per-request API token through it.
        provider_data_validator="ogx.providers.remote.inference.vllm.VLLMProviderDataValidator",
        description="llama.cpp's server through the vLLM adapter, with forced tool calls and stop sequences.",
    )
