"""A model behind an OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, ...).

`OpenAIModel` only translates: our Message/ToolSpec into the `messages`/`tools` of a
`POST {base_url}/chat/completions`, and the answer (a JSON body, or server-sent events when
streaming) back into ModelResponse or StreamChunk items. It keeps one httpx.AsyncClient;
close it with `aclose()` or `async with`.

Everything that goes wrong becomes a ModelError whose message names the model, and the
HTTP status and the provider's own error message when there is one. The API key is never
in a message: it is redacted even when a provider echoes it back.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import httpx

from .._url_masking import mask_userinfo
from .models import (
    Finish,
    Message,
    ModelError,
    ModelResponse,
    StreamChunk,
    TextDelta,
    ToolCall,
    ToolCallChunk,
    ToolSpec,
    Usage,
)

__all__ = ["DEFAULT_BASE_URL", "OpenAIModel"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Keys the adapter owns in the request body; `params` may not override them.
_OWN_KEYS = frozenset({"model", "messages", "tools", "stream", "stream_options"})


class OpenAIModel:
    """`OpenAIModel("gpt-4o-mini")`, or any compatible server with `base_url=`.

    api_key   default $OPENAI_API_KEY; sent as `Authorization: Bearer`. Required for the
              default OpenAI URL; a local server may need none.
    base_url  default $OPENAI_BASE_URL, else https://api.openai.com/v1.
    timeout   seconds allowed for connecting and for each read (so a stream may run longer,
              as long as it keeps sending).
    headers   extra request headers (e.g. OpenAI-Organization).
    params    extra body fields, e.g. {"temperature": 0}.
    env       where the defaults are read from, once, here (os.environ unless given).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        if not model:
            raise ValueError("OpenAIModel needs a model name")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        clashing = _OWN_KEYS.intersection(params or {})
        if clashing:
            raise ValueError(f"params may not set {', '.join(sorted(clashing))}")
        base_url = (base_url or env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL, not {mask_userinfo(base_url)!r}")
        api_key = api_key if api_key is not None else env.get("OPENAI_API_KEY", "")
        if not api_key and base_url == DEFAULT_BASE_URL:
            raise ValueError("OpenAIModel needs an API key: pass api_key= or set OPENAI_API_KEY")

        self.model = model
        self.base_url = base_url
        self.timeout = timeout
        self.params: dict[str, Any] = dict(params or {})
        self._api_key = api_key
        host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        # What messages and repr show: the URL without any user:password@ part.
        self._shown_url = urlunsplit(parts._replace(netloc=host))
        self._id = f"openai/{model}" if base_url == DEFAULT_BASE_URL else f"{host}/{model}"
        sent_headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        sent_headers.update(headers or {})
        self._client = httpx.AsyncClient(
            base_url=base_url, headers=sent_headers, timeout=httpx.Timeout(timeout)
        )

    @property
    def id(self) -> str:
        return self._id

    def __repr__(self) -> str:  # no key in logs
        return f"OpenAIModel({self.model!r}, base_url={self._shown_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- the protocol ---------------------------------------------------------------------

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelResponse:
        body = self._body(messages, tools, stream=False)
        try:
            response = await self._client.post("/chat/completions", json=body)
            if response.status_code >= 400:
                raise _Unusable(_status_detail(response.status_code, response.content))
            return _parse_completion(response.content)
        except (httpx.HTTPError, _Unusable) as exc:
            raise self._error(exc) from None

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[StreamChunk]:
        body = self._body(messages, tools, stream=True)
        try:
            async with self._client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    raise _Unusable(_status_detail(response.status_code, await response.aread()))
                if response.headers.get("content-type", "").startswith("application/json"):
                    # A server that ignored `stream: true` sends one whole answer.
                    for chunk in _chunks_of(_parse_completion(await response.aread())):
                        yield chunk
                    return
                assembly = _StreamAssembly()
                async for data in _sse_data(response.aiter_lines()):
                    if data == "[DONE]":
                        assembly.done = True
                        break
                    for text in assembly.feed(_json_object(data.encode())):
                        yield TextDelta(text)
                for chunk in assembly.finish():
                    yield chunk
        except (httpx.HTTPError, _Unusable) as exc:
            raise self._error(exc) from None

    def _body(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, stream: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {**self.params, "model": self.model}
        body["messages"] = [_wire_message(m) for m in messages]
        if tools:
            body["tools"] = [_wire_tool(t) for t in tools]
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _error(self, exc: httpx.HTTPError | _Unusable) -> ModelError:
        """The one place a failure becomes a ModelError: named after the model, key redacted.

        httpx messages name the URL at most, never the headers; providers may echo the key
        (OpenAI masks it in its 401 message, others might not), hence the redaction.
        """
        if isinstance(exc, httpx.TimeoutException):
            what = f"no answer within {self.timeout:g}s ({type(exc).__name__})"
        elif isinstance(exc, httpx.ConnectError):
            what = f"cannot connect to {self._shown_url}: {exc}"
        elif isinstance(exc, httpx.HTTPError):
            what = f"request failed ({type(exc).__name__}): {exc}"
        else:
            what = str(exc)
        message = f"model {self._id}: {what}"
        if self._api_key:
            message = message.replace(self._api_key, "[redacted]")
        return ModelError(message)


# --- the wire format, without I/O -------------------------------------------------------------


class _Unusable(Exception):
    """The provider's answer cannot be used; the message says why."""


def _wire_message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        if not message.tool_call_id:
            raise ValueError("a tool message needs the tool_call_id it answers")
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name:
        wire["name"] = message.name
    if message.tool_calls:
        # OpenAI's own assistant turns carry `content: null` beside tool calls.
        wire["content"] = message.content or None
        wire["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in message.tool_calls
        ]
    return wire


def _wire_tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise _Unusable("the answer is not valid JSON") from None
    if not isinstance(body, dict):
        raise _Unusable("the answer is not a JSON object")
    if "error" in body:
        raise _Unusable(f"the provider answered an error: {_provider_message(body)}")
    return body


def _parse_completion(raw: bytes) -> ModelResponse:
    body = _json_object(raw)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _Unusable("the answer has no choices")
    choice: dict[str, Any] = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise _Unusable("the answer's choice has no message")
    text = message.get("content")
    if text is None:
        text = message.get("refusal") or ""
    if not isinstance(text, str):
        raise _Unusable("the answer's content is not a string")
    raw_calls = message.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise _Unusable("the answer's tool_calls is not a list")
    calls: list[ToolCall] = []
    for index, call in enumerate(raw_calls):
        if not isinstance(call, dict):
            raise _Unusable("a tool call in the answer is not an object")
        calls.append(_tool_call(index, call.get("id"), call.get("function")))
    reason = choice.get("finish_reason")
    return ModelResponse(
        text=text,
        tool_calls=tuple(calls),
        usage=_usage(body.get("usage")),
        finish_reason=reason if isinstance(reason, str) else _default_reason(calls),
    )


def _tool_call(index: int, call_id: Any, function: Any) -> ToolCall:
    """A ToolCall from the wire's `{"id", "function": {"name", "arguments": "<JSON>"}}`."""
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise _Unusable("a tool call in the answer has no function name")
    name: str = function["name"]
    raw = function.get("arguments")
    if raw is None or raw == "":
        arguments: Any = {}  # some servers send nothing for a call without arguments
    elif isinstance(raw, str):
        try:
            arguments = json.loads(raw)
        except ValueError:
            raise _Unusable(f"the arguments of tool call {name} are not valid JSON") from None
    else:
        arguments = raw  # a few servers send the object itself
    if not isinstance(arguments, dict):
        raise _Unusable(f"the arguments of tool call {name} are not a JSON object")
    # The id is echoed back with the result; a server that sends none gets a stable one.
    if not isinstance(call_id, str) or not call_id:
        call_id = f"call_{index}"
    return ToolCall(call_id, name, arguments)


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
    return Usage(
        prompt if isinstance(prompt, int) else 0,
        completion if isinstance(completion, int) else 0,
    )


def _default_reason(calls: Sequence[ToolCall]) -> str:
    return "tool_calls" if calls else "stop"


def _status_detail(status: int, raw: bytes) -> str:
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = None
    detail = _provider_message(body) if isinstance(body, dict) else None
    if detail is None:
        detail = raw[:200].decode("utf-8", "replace").strip() or "(empty body)"
    return f"HTTP {status}: {detail}"


def _provider_message(body: dict[str, Any]) -> str | None:
    """OpenAI's `{"error": {"message": ...}}`, or the looser shapes other servers use."""
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    if isinstance(body.get("message"), str):
        return str(body["message"])
    return None


def _chunks_of(response: ModelResponse) -> Iterable[StreamChunk]:
    if response.text:
        yield TextDelta(response.text)
    for call in response.tool_calls:
        yield ToolCallChunk(call)
    yield Finish(response.finish_reason, response.usage)


# --- streaming ---------------------------------------------------------------------------------


async def _sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The `data` of each server-sent event (several data lines joined by newlines, as the
    format says; comments and the `event:`/`id:`/`retry:` fields ignored)."""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


@dataclass
class _PartialCall:
    id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)


class _StreamAssembly:
    """One streamed answer: text goes out as it comes; tool calls are put together from
    their fragments by `index` (id and name come in the first one, the arguments in pieces)."""

    def __init__(self) -> None:
        self._calls: dict[int, _PartialCall] = {}
        self._reason: str | None = None
        self._usage = Usage()
        self.done = False

    def feed(self, event: dict[str, Any]) -> list[str]:
        """The text deltas in one `data:` event."""
        if event.get("usage") is not None:
            self._usage = _usage(event["usage"])
        choices = event.get("choices") or []
        if not isinstance(choices, list):
            raise _Unusable("a stream event's choices is not a list")
        texts: list[str] = []
        for choice in choices:
            # Only the first choice is ours (we never ask for n > 1).
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            if isinstance(choice.get("finish_reason"), str):
                self._reason = choice["finish_reason"]
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                raise _Unusable("a stream event's delta is not an object")
            if isinstance(delta.get("content"), str) and delta["content"]:
                texts.append(delta["content"])
            fragments = delta.get("tool_calls") or []
            if not isinstance(fragments, list):
                raise _Unusable("a stream event's tool_calls is not a list")
            for fragment in fragments:
                self._add(fragment)
        return texts

    def _add(self, fragment: Any) -> None:
        if not isinstance(fragment, dict) or not isinstance(fragment.get("index"), int):
            raise _Unusable("a streamed tool call has no index")
        call = self._calls.setdefault(fragment["index"], _PartialCall())
        if call.id is None and isinstance(fragment.get("id"), str):
            call.id = fragment["id"]
        function = fragment.get("function") or {}
        if not isinstance(function, dict):
            raise _Unusable("a streamed tool call's function is not an object")
        if call.name is None and isinstance(function.get("name"), str):
            call.name = function["name"]
        if isinstance(function.get("arguments"), str):
            call.arguments.append(function["arguments"])

    def finish(self) -> list[StreamChunk]:
        """The assembled tool calls, then Finish."""
        if not self.done and self._reason is None:
            raise _Unusable("the stream ended before the answer was complete")
        calls = [
            _tool_call(index, c.id, {"name": c.name, "arguments": "".join(c.arguments)})
            for index, c in sorted(self._calls.items())
        ]
        chunks: list[StreamChunk] = [ToolCallChunk(c) for c in calls]
        chunks.append(Finish(self._reason or _default_reason(calls), self._usage))
        return chunks
