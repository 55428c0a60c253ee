"""The server's own modules under either of its names: Llama Stack 0.7.3 (`llama_stack`,
`llama_stack_api`) or OGX 1.x (`ogx`, `ogx_api`), whichever this venv has. One provider serves both."""

from __future__ import annotations

try:  # OGX: Llama Stack's current release, renamed after 0.7.1
    import ogx_api as api
    from ogx.providers.remote.inference.vllm.config import VLLMInferenceAdapterConfig
    from ogx.providers.remote.inference.vllm.vllm import VLLMInferenceAdapter

    SERVER_PACKAGE = "ogx"
except ImportError:  # Llama Stack 0.7.x
    import llama_stack_api as api  # type: ignore[no-redef]
    from llama_stack.providers.remote.inference.vllm.config import VLLMInferenceAdapterConfig  # type: ignore[no-redef]
    from llama_stack.providers.remote.inference.vllm.vllm import VLLMInferenceAdapter  # type: ignore[no-redef]

    SERVER_PACKAGE = "llama_stack"

# OGX's router hands the adapter the provider's own model id; 0.7.3's hands it the registered
# one, which the adapter looks up.
ROUTER_GIVES_PROVIDER_MODEL_ID = SERVER_PACKAGE == "ogx"

__all__ = ["ROUTER_GIVES_PROVIDER_MODEL_ID", "SERVER_PACKAGE", "VLLMInferenceAdapter", "VLLMInferenceAdapterConfig",
           "api"]
