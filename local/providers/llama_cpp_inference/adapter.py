from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncGenerator

from llama_stack.apis.common.content_types import TextDelta, ToolCallDelta, ToolCallParseStatus
from llama_stack.apis.inference import (
    ChatCompletionResponse,
    ChatCompletionResponseEvent,
    ChatCompletionResponseEventType,
    ChatCompletionResponseStreamChunk,
    CompletionMessage,
    LogProbConfig,
    Message,
    ResponseFormat,
    SamplingParams,
    ToolChoice,
    ToolConfig,
    ToolDefinition,
    ToolPromptFormat,
)
from llama_stack.models.llama.datatypes import StopReason, ToolCall
from llama_stack.providers.remote.inference.vllm.vllm import VLLMInferenceAdapter
from llama_stack.providers.utils.inference.openai_compat import convert_message_to_openai_dict

from llama_cpp_grammar import object_grammar

from .config import LlamaCppInferenceConfig

log = logging.getLogger(__name__)


def tool_name(tool: ToolDefinition) -> str:
    return tool.tool_name if isinstance(tool.tool_name, str) else tool.tool_name.value


def requested_tool(tools: list[ToolDefinition], choice: ToolChoice | str | None) -> ToolDefinition | None:
    """The tool the agent insists on, or None when the model may answer directly."""
    if choice in (None, ToolChoice.auto, ToolChoice.none, "auto", "none"):
        return None
    if choice in (ToolChoice.required, "required"):
        return tools[0]
    return next((tool for tool in tools if tool_name(tool) == choice), None)


def has_tool_result_for_question(messages: list[Message]) -> bool:
    """True once a tool answered after the latest user message: the forced call is done."""
    for message in reversed(messages):
        if message.role == "tool":
            return True
        if message.role == "user":
            return False
    return False


def arguments_grammar(tool: ToolDefinition) -> str:
    """A llama.cpp grammar that admits exactly one JSON object of the tool's required arguments."""
    params = [(name, p.param_type) for name, p in (tool.parameters or {}).items() if p.required]
    if not params and tool.parameters:
        name, param = next(iter(tool.parameters.items()))
        params = [(name, param.param_type)]
    return object_grammar(params)


def current_question(messages: list[Message]) -> list[Message]:
    """The system prompt and the latest question: earlier turns only pull a small model's
    search query towards what it searched for before."""
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=0)
    return [m for m in messages[:last_user] if m.role == "system"] + messages[last_user:]


def last_user_text(messages: list[Message]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return message.content if isinstance(message.content, str) else str(message.content)
    return ""


class LlamaCppInferenceAdapter(VLLMInferenceAdapter):
    config: LlamaCppInferenceConfig

    async def chat_completion(
        self,
        model_id: str,
        messages: list[Message],
        sampling_params: SamplingParams | None = None,
        tools: list[ToolDefinition] | None = None,
        tool_choice: ToolChoice | None = ToolChoice.auto,
        tool_prompt_format: ToolPromptFormat | None = None,
        response_format: ResponseFormat | None = None,
        stream: bool | None = False,
        logprobs: LogProbConfig | None = None,
        tool_config: ToolConfig | None = None,
    ):
        choice = tool_config.tool_choice if tool_config is not None else tool_choice
        tool = requested_tool(tools or [], choice)
        if tool is not None and not has_tool_result_for_question(messages):
            call = await self.forced_tool_call(model_id, messages, tool)
            return stream_tool_call(call) if stream else ChatCompletionResponse(
                completion_message=CompletionMessage(content="", stop_reason=StopReason.end_of_turn, tool_calls=[call])
            )
        sampling_params = sampling_params or SamplingParams()
        if self.config.stop and not sampling_params.stop:
            sampling_params = sampling_params.model_copy(update={"stop": list(self.config.stop)})
        # Tools stay out of the request: the model makes no tool call of its own (see the
        # package docstring), and llama-server would otherwise try to parse one from its text.
        return await super().chat_completion(
            model_id,
            messages,
            sampling_params=sampling_params,
            response_format=response_format,
            stream=stream,
            logprobs=logprobs,
        )

    async def forced_tool_call(self, model_id: str, messages: list[Message], tool: ToolDefinition) -> ToolCall:
        self._lazy_initialize_client()
        model = await self._get_model(model_id)
        name = tool_name(tool)
        response = await self.client.chat.completions.create(
            model=model.provider_resource_id,
            messages=[await convert_message_to_openai_dict(m, download=True) for m in current_question(messages)],
            max_tokens=self.config.tool_call_max_tokens,
            temperature=0.0,
            extra_body={"grammar": arguments_grammar(tool)},
        )
        text = response.choices[0].message.content or ""
        try:
            arguments = json.loads(text)
            if not isinstance(arguments, dict):
                raise ValueError("not a JSON object")
        except ValueError as error:
            # Cut off by the token budget, typically. The question itself is a usable query.
            log.warning("llama-cpp: tool arguments %r unusable (%s); searching for the question", text[:200], error)
            first = next(iter(tool.parameters or {"query": None}))
            arguments = {first: last_user_text(messages)}
        return ToolCall(
            call_id=f"call-{uuid.uuid4().hex[:16]}",
            tool_name=name,
            arguments=arguments,
            arguments_json=json.dumps(arguments),
        )


async def stream_tool_call(call: ToolCall) -> AsyncGenerator[ChatCompletionResponseStreamChunk, None]:
    def chunk(event_type: ChatCompletionResponseEventType, delta, stop_reason=None):
        return ChatCompletionResponseStreamChunk(
            event=ChatCompletionResponseEvent(event_type=event_type, delta=delta, stop_reason=stop_reason)
        )

    yield chunk(ChatCompletionResponseEventType.start, TextDelta(text=""))
    yield chunk(
        ChatCompletionResponseEventType.progress,
        ToolCallDelta(tool_call=call, parse_status=ToolCallParseStatus.succeeded),
    )
    yield chunk(ChatCompletionResponseEventType.complete, TextDelta(text=""), StopReason.end_of_turn)
