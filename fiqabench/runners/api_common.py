"""What the hosted-API runners share: key, event loop, concurrency, retries, budget, images.

A subclass supplies the SDK client, the request payload and the parsing of the reply body;
everything that decides whether an answer is trusted (retries, failure classification, the
budget, key redaction) lives here once.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import os
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from fiqabench.benchmark.images import encode_image
from fiqabench.benchmark.schema import (
    ImagePart,
    Message,
    ModelIdentity,
    Request,
    Response,
    TextPart,
    Usage,
)
from fiqabench.errors import UserError
from fiqabench.extras import require

API_EXTRA = "api"

if TYPE_CHECKING:
    import tenacity
else:
    tenacity = require("tenacity", API_EXTRA)

MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
# 408 request timeout, 409 conflict (lock contention), 425 too early, 429 rate limit, 5xx.
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})
MAX_BACKOFF_S = 60.0
# A server asking for a longer pause gets an error instead: the next run resends the request.
MAX_RETRY_AFTER_S = 300.0
MAX_MESSAGE_CHARS = 300
_REDACTED = "[redacted]"


class CallFailure(Exception):
    """One failed attempt. A `retryable` one is tried again, after at least `retry_after` s."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


def malformed(problem: str) -> CallFailure:
    # Not retried: the call may have been billed, and an endpoint that answers in a wrong shape
    # usually keeps doing so; the request stays an error, so the next run resends it.
    return CallFailure(f"malformed response: {problem}", retryable=False)


@dataclass(frozen=True)
class Reply:
    text: str
    usage: Usage


def json_object(body: str) -> dict[str, Any]:
    """The reply body as a JSON object, or a malformed-response failure."""
    try:
        data = json.loads(body)
    except ValueError:
        raise malformed(f"invalid JSON: {_clip(body, 80)!r}") from None
    if not isinstance(data, dict):
        raise malformed(f"expected a JSON object, got {type(data).__name__}")
    if data.get("error"):  # some proxies report failures with HTTP 200
        raise malformed(f"error in body: {_error_text(body)}")
    return data


def token_count(usage: object, field: str) -> int:
    value = usage.get(field) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def retry_after_s(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, or `Retry-After` as seconds or an
    HTTP date; None when absent or unreadable."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def status_failure(status: int, body: str, headers: Mapping[str, str]) -> CallFailure:
    message = f"HTTP {status}: {_error_text(body)}".rstrip(": ")
    if status not in TRANSIENT_STATUSES and status < 500:
        return CallFailure(message, retryable=False)  # 400, 401, 403, 404...: will not heal
    wait = retry_after_s(headers)
    if wait is not None and wait > MAX_RETRY_AFTER_S:
        return CallFailure(f"{message} (server asked to retry after {wait:.0f} s)", retryable=False)
    return CallFailure(message, retryable=True, retry_after=wait)


def sdk_failure(exc: Exception, sdk: ModuleType, timeout_s: float) -> CallFailure | None:
    """Classify an exception of a Stainless-generated SDK (openai and anthropic share the
    hierarchy); None for anything else, which is then reported without retries."""
    if isinstance(exc, sdk.APIStatusError):
        try:
            body = exc.response.text
        except Exception:  # body not read (closed early): the SDK's own summary will do
            body = str(exc.message)
        return status_failure(exc.status_code, body, exc.response.headers)
    if isinstance(exc, sdk.APITimeoutError):
        return CallFailure(f"request timed out after {timeout_s:g} s", retryable=True)
    if isinstance(exc, sdk.APIConnectionError):
        return CallFailure(_clip(f"connection error: {_root_cause(exc)}"), retryable=True)
    return None


def _root_cause(exc: BaseException) -> str:
    """The innermost cause that says something: the SDK's and httpx's wrappers of a reset
    connection have empty messages; the OSError at the bottom has the useful one."""
    said = f"{type(exc).__name__}: {exc}"
    seen = {id(exc)}
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if str(cause):
            said = f"{type(cause).__name__}: {cause}"
        cause = cause.__cause__ or cause.__context__
    return said


def _error_text(body: str) -> str:
    """The `error.message` of an OpenAI- or Anthropic-style error body, else the body itself."""
    try:
        data = json.loads(body)
    except ValueError:
        return _clip(body)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return _clip(error["message"])
    return _clip(error if isinstance(error, str) else body)


def _clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_api_key(env_name: str) -> str:
    key = os.environ.get(env_name, "").strip()
    if not key:
        raise UserError(
            f"no API key: set the environment variable {env_name} "
            "(any non-empty value for a local server that ignores keys)"
        )
    return key


class Budget:
    """Caps on requests sent (failed ones too) and tokens used over a runner's life. Used from
    the event loop only, so no lock. Requests in flight when the token cap is reached still
    complete: it can be overshot by up to `concurrency` requests' worth."""

    def __init__(self, max_requests: int | None, max_tokens: int | None):
        self.max_requests = max_requests
        self.max_tokens = max_tokens
        self.requests = 0
        self.tokens = 0

    def admit(self) -> str | None:
        """Count one more request, or say why the budget forbids it."""
        if self.max_requests is not None and self.requests >= self.max_requests:
            return (
                f"budget exhausted: {self.requests} requests sent of "
                f"max_requests={self.max_requests}"
            )
        if self.max_tokens is not None and self.tokens >= self.max_tokens:
            return (
                f"budget exhausted: {self.tokens} tokens used of "
                f"max_tokens_budget={self.max_tokens}"
            )
        self.requests += 1
        return None

    def spend(self, usage: Usage) -> None:
        self.tokens += usage.input_tokens + usage.output_tokens


def plain_text(message: Message) -> str:
    """A system or assistant turn's text; the APIs take images in user turns only."""
    if any(isinstance(part, ImagePart) for part in message.content):
        raise ValueError(f"images are only supported in user messages, not in {message.role}")
    return "".join(part.text for part in message.content if isinstance(part, TextPart))


def image_base64(part: ImagePart, max_side: int | None, image_format: str) -> str:
    return _encoded(part.path, part.sha256, max_side, image_format)


# Q&A tasks ask several questions about one image: encode it once. Bounded because one
# 1024-pixel PNG is a few MB of base64.
@lru_cache(maxsize=32)
def _encoded(path: str, sha256: str, max_side: int | None, image_format: str) -> str:
    data = encode_image(Path(path), max_side=max_side, format=image_format)
    return base64.b64encode(data).decode("ascii")


class _LoopThread:
    """A private event loop on a daemon thread: SDK clients and the semaphore live there,
    across `generate` calls, so connections are reused from one task to the next."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, name="fiqabench-api", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()

    def submit(self, coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


class ApiRunner(ABC):
    """Sends requests to a hosted chat API, at most `concurrency` at a time, and yields each
    response as soon as it completes.

    The key is read from the environment variable `api_key_env` (the SDK's usual one by
    default). Failed attempts are retried `max_retries` times on 429, 5xx, timeouts and
    connection errors, with jittered exponential backoff from `retry_backoff_s`, never sooner
    than the server's Retry-After. `max_requests` and `max_tokens_budget` (input + output
    tokens) cap the spending; requests past a cap fail without being sent. Images are sent
    inline, downscaled to `max_image_side` and encoded as `image_format`. Any other keyword
    is added to every request body (e.g. `reasoning_effort="low"`), or, set to None, removes
    that field (e.g. `max_tokens=None, max_completion_tokens=4096` for OpenAI's reasoning
    models, which reject `max_tokens`).

    Subclasses implement `_connect`, `_payload`, `_send` and `_disconnect`.
    """

    sdk: ModuleType
    default_key_env: str

    def __init__(
        self,
        identity: ModelIdentity,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        concurrency: int = 16,
        timeout_s: float = 120,
        max_retries: int = 6,
        max_requests: int | None = None,
        max_tokens_budget: int | None = None,
        max_image_side: int | None = 1024,
        image_format: str = "PNG",
        retry_backoff_s: float = 1.0,
        **extra: Any,
    ):
        api_key_env = api_key_env or self.default_key_env
        if "api_key" in extra:
            raise UserError(f"API keys are read from the environment only: set {api_key_env}")
        _check_settings(concurrency, timeout_s, max_retries, retry_backoff_s, max_image_side)
        if image_format.upper() not in MEDIA_TYPES:
            raise UserError(f"image_format must be one of {', '.join(MEDIA_TYPES)}")
        self.model = identity.model_id
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_image_side = max_image_side
        self.image_format = image_format.upper()
        self.retry_backoff_s = retry_backoff_s
        self.extra = extra  # added to every request body
        self._key = read_api_key(api_key_env)
        self._budget = Budget(max_requests, max_tokens_budget)
        self._slots = asyncio.Semaphore(concurrency)
        self.base_url = self._connect(self._key, base_url, timeout_s)
        self._loop = _LoopThread()
        self._closed = False
        # Everything that changes what the model sees keys the record store: the server (a
        # different server is a different model), the image encoding, extra body fields.
        # Never the key.
        args = {
            **identity.args,
            **extra,
            "base_url": self.base_url,
            "max_image_side": max_image_side,
            "image_format": self.image_format,
        }
        self.identity = identity.model_copy(update={"args": args})

    # --- what a subclass provides -------------------------------------------------------

    @abstractmethod
    def _connect(self, api_key: str, base_url: str | None, timeout_s: float) -> str:
        """Create the SDK client (without SDK retries); return the base URL it will use."""

    @abstractmethod
    def _payload(self, request: Request) -> dict[str, Any]:
        """The request body (without `extra`); runs in a worker thread when it has images."""

    @abstractmethod
    async def _send(self, payload: dict[str, Any]) -> Reply:
        """One attempt; raises SDK exceptions or CallFailure."""

    @abstractmethod
    async def _disconnect(self) -> None:
        """Close the SDK client."""

    # --- the shared machinery -----------------------------------------------------------

    def image_base64(self, part: ImagePart) -> tuple[str, str]:
        """(media type, base64 data) of an image, downscaled to `max_image_side`."""
        data = image_base64(part, self.max_image_side, self.image_format)
        return MEDIA_TYPES[self.image_format], data

    def generate(
        self, requests: Sequence[Request]
    ) -> Generator[tuple[Request, Response], None, None]:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        done: queue.SimpleQueue[tuple[Request, Response] | None] = queue.SimpleQueue()
        future = self._loop.submit(self._complete_all(requests, done.put))
        try:
            while (item := done.get()) is not None:
                yield item
            future.result()  # surfaces a failure of the loop itself, never of one request
        finally:
            future.cancel()  # the consumer stopped early: abandon what is still in flight

    async def _complete_all(
        self,
        requests: Sequence[Request],
        emit: Callable[[tuple[Request, Response] | None], None],
    ) -> None:
        async def one(request: Request) -> None:
            emit((request, await self._complete(request)))

        try:
            await asyncio.gather(*(one(request) for request in requests))
        finally:
            emit(None)

    async def _complete(self, request: Request) -> Response:
        async with self._slots:  # held through retries: backing off also sheds load
            try:
                payload = await self._build(request)
            except Exception as exc:  # an unreadable image fails its request only
                return Response(error=self._redact(f"cannot build request: {exc}"))
            refusal = self._budget.admit()
            if refusal is not None:
                return Response(error=refusal)
            try:
                reply, latency_s = await self._with_retries(payload)
            except CallFailure as failure:
                return Response(error=self._redact(str(failure)))
            except Exception as exc:  # an unexpected SDK error fails this request, not the run
                return Response(error=self._redact(f"{type(exc).__name__}: {exc}"))
            self._budget.spend(reply.usage)
            return Response(text=reply.text, usage=reply.usage, latency_s=latency_s)

    async def _build(self, request: Request) -> dict[str, Any]:
        # Encoding images is CPU work that would stall every other request on the loop; a
        # text-only payload is cheaper to build than a thread hop.
        if request.images:
            payload = await asyncio.to_thread(self._payload, request)
        else:
            payload = self._payload(request)
        # An extra set to None removes a field the model rejects (e.g. `temperature`).
        merged = {**payload, **self.extra}
        return {name: value for name, value in merged.items() if value is not None}

    async def _with_retries(self, payload: dict[str, Any]) -> tuple[Reply, float]:
        """The reply and the latency of the attempt that produced it."""
        attempts = 0
        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(_is_retryable),
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=backoff(self.retry_backoff_s),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    started = time.perf_counter()
                    reply = await self._attempt(payload)
                    return reply, time.perf_counter() - started
        except CallFailure as failure:
            if not failure.retryable:
                raise
            tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
            raise CallFailure(f"{failure} (gave up after {tries})", retryable=False) from failure
        raise AssertionError("tenacity ended without an outcome")

    async def _attempt(self, payload: dict[str, Any]) -> Reply:
        try:
            return await self._send(payload)
        except CallFailure:
            raise
        except Exception as exc:
            failure = sdk_failure(exc, self.sdk, self.timeout_s)
            if failure is None:
                raise
            raise failure from exc

    def _redact(self, text: str) -> str:
        return text.replace(self._key, _REDACTED)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._loop.submit(self._disconnect()).result(timeout=30)
        finally:
            self._loop.stop()

    def __enter__(self) -> ApiRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"


def backoff(initial_s: float) -> Callable[[tenacity.RetryCallState], float]:
    """Exponential backoff with full jitter, but never sooner than the server's Retry-After."""
    jittered = tenacity.wait_random_exponential(multiplier=initial_s, max=MAX_BACKOFF_S)

    def wait(state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        floor = failure.retry_after if isinstance(failure, CallFailure) else None
        return max(jittered(state), floor or 0.0)

    return wait


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, CallFailure) and exc.retryable


def _check_settings(
    concurrency: int,
    timeout_s: float,
    max_retries: int,
    retry_backoff_s: float,
    max_image_side: int | None,
) -> None:
    if concurrency < 1:
        raise UserError(f"concurrency must be at least 1, not {concurrency}")
    if timeout_s <= 0:
        raise UserError(f"timeout_s must be positive, not {timeout_s}")
    if max_retries < 0:
        raise UserError(f"max_retries must be 0 or more, not {max_retries}")
    if retry_backoff_s < 0:
        raise UserError(f"retry_backoff_s must be 0 or more, not {retry_backoff_s}")
    if max_image_side is not None and max_image_side < 1:
        raise UserError(f"max_image_side must be at least 1, not {max_image_side}")
