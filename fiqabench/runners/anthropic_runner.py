"""Anthropic messages API (Claude models).

No temperature or top_p is sent: API version 2026-10-21, which the anthropic SDK 2.x sends by
default, rejects every sampling parameter with HTTP 400 (even at default values), and the SDK
no longer accepts them. Claude's answers therefore use the server's sampling, whatever the
task's GenerationConfig asks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fiqabench.benchmark.schema import ImagePart, Message, Request, TextPart, Usage
from fiqabench.extras import require
from fiqabench.runners.api_common import (
    API_EXTRA,
    ApiRunner,
    Reply,
    json_object,
    malformed,
    plain_text,
    token_count,
)

if TYPE_CHECKING:
    import anthropic
    import httpx2
else:
    httpx2 = require("httpx2", API_EXTRA)  # the SDK's own HTTP client
    anthropic = require("anthropic", API_EXTRA)

PATH = "/v1/messages"


class AnthropicRunner(ApiRunner):
    """`identity.model_id` is the model name sent to the API. See ApiRunner for the rest."""

    sdk = anthropic
    default_key_env = "ANTHROPIC_API_KEY"
    _client: anthropic.AsyncAnthropic

    def _connect(self, api_key: str, base_url: str | None, timeout_s: float) -> str:
        # SDK retries off: ours classify failures, honour Retry-After and report exhaustion.
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )
        return str(self._client.base_url)

    def _payload(self, request: Request) -> dict[str, Any]:
        generation = request.generation
        system = [m for m in request.messages if m.role == "system"]
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [self._message(m) for m in request.messages if m.role != "system"],
            "max_tokens": generation.max_new_tokens,
        }
        if system:  # the API takes the system prompt as a parameter, not as a turn
            payload["system"] = "\n\n".join(plain_text(m) for m in system)
        if generation.stop:
            payload["stop_sequences"] = list(generation.stop)
        return payload

    def _message(self, message: Message) -> dict[str, Any]:
        return {"role": message.role, "content": [self._block(part) for part in message.content]}

    def _block(self, part: TextPart | ImagePart) -> dict[str, Any]:
        if isinstance(part, TextPart):
            return {"type": "text", "text": part.text}
        media_type, data = self.image_base64(part)
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }

    async def _send(self, payload: dict[str, Any]) -> Reply:
        # Custom-request path and raw body, as in OpenAIRunner._send (and for the same reasons).
        response = await self._client.post(PATH, body=payload, cast_to=httpx2.Response)
        return parse_message(response.text)

    async def _disconnect(self) -> None:
        await self._client.close()


def parse_message(body: str) -> Reply:
    """The text blocks of the reply, joined, and the token usage. No text blocks gives ""
    (the task marks it parse_fail); a missing `content` list is a malformed response."""
    data = json_object(body)
    content = data.get("content")
    if not isinstance(content, list):
        raise malformed("no 'content' list")
    texts = [
        block.get("text")
        for block in content
        if isinstance(block, dict) and block.get("type") == "text"
    ]
    if not all(isinstance(text, str) for text in texts):
        raise malformed("a text block without 'text'")
    usage = data.get("usage")
    # Cache reads and writes are input tokens too, billed and counted against the budget.
    input_tokens = sum(
        token_count(usage, field)
        for field in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    return Reply(
        text="".join(str(text) for text in texts),
        usage=Usage(input_tokens=input_tokens, output_tokens=token_count(usage, "output_tokens")),
    )
