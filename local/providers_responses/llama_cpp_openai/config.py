from __future__ import annotations

from pydantic import Field, field_validator

from llama_cpp_grammar import stop_list

from .server_api import VLLMInferenceAdapterConfig


class LlamaCppOpenAIConfig(VLLMInferenceAdapterConfig):
    """The vLLM adapter's settings (base_url, max_tokens, ...) and what a small local model needs."""

    stop: list[str] = Field(default_factory=list,
                            description="Stop sequences added to every request that sets none of its own.")
    tool_call_max_tokens: int = Field(default=64, description="Token budget for the arguments of a forced tool call.")

    @field_validator("stop", mode="before")
    @classmethod
    def stop_from_json(cls, value):
        return stop_list(value)
