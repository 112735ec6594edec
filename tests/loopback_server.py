"""A real HTTP server on 127.0.0.1 speaking just enough OpenAI and Anthropic for the API runners.

`/v1/chat/completions` and `/v1/messages` answer with a text derived from the prompt (the text
of the last user message), unless a script says otherwise for prompts containing a marker:
an HTTP status (with Retry-After), a delay, a dropped connection, a raw body. Every request is
logged with its arrival time, its headers, its body and the images it carried (decoded).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
USAGE = (10, 5)  # input and output tokens reported for every answer


def echo(prompt: str) -> str:
    """The default answer: deterministic and distinct per prompt, so routing can be checked."""
    return f"echo {hashlib.sha256(prompt.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class Answer:
    """Answer normally, after `delay_s`; `text` None means the server's answer function."""

    text: str | None = None
    delay_s: float = 0.0


@dataclass(frozen=True)
class Status:
    """An error response; `echo_key` puts the received API key in the message, as some do."""

    code: int
    retry_after: str | None = None
    echo_key: bool = False


@dataclass(frozen=True)
class Hang:
    """Sleep before answering: longer than the client's timeout, the client gives up."""

    seconds: float


@dataclass(frozen=True)
class Reset:
    """Close the socket with an RST and no response at all."""


@dataclass(frozen=True)
class Raw:
    """HTTP 200 with exactly this body (malformed JSON, missing fields...)."""

    body: str


Behaviour = Answer | Status | Hang | Reset | Raw


@dataclass
class Hit:
    """One request the server received."""

    path: str
    prompt: str
    arrived: float  # time.monotonic()
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any]
    images: list[tuple[str, tuple[int, int]]] = field(default_factory=list)  # format, size
    behaviour: Behaviour = field(default_factory=Answer)


@dataclass
class _Script:
    queue: list[Behaviour]
    then: Behaviour | None


class LoopbackServer:
    """Use as a context manager; `url` is the root (`/v1` is part of each API's path)."""

    def __init__(self, latency_s: float = 0.0, answer: Callable[[str], str] = echo):
        self.latency_s = latency_s
        self.answer = answer
        self.hits: list[Hit] = []
        self._scripts: dict[str, _Script] = {}
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, marker: str, *behaviours: Behaviour, then: Behaviour | None = None) -> None:
        """Prompts containing `marker` get `behaviours` in turn, then `then` for ever (or the
        normal answer when `then` is None)."""
        with self._lock:
            self._scripts[marker] = _Script(list(behaviours), then)

    def hits_for(self, marker: str) -> list[Hit]:
        with self._lock:
            return [hit for hit in self.hits if marker in hit.prompt]

    def _next_behaviour(self, prompt: str) -> Behaviour:
        with self._lock:
            for marker, script in self._scripts.items():
                if marker in prompt:
                    if script.queue:
                        return script.queue.pop(0)
                    return script.then or Answer()
        return Answer()

    def _record(self, hit: Hit) -> None:
        with self._lock:
            self.hits.append(hit)

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.02)  # shutdown waits up to one interval

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # hung handlers must not keep the test process alive
    block_on_close = False
    request_queue_size = 256  # many clients connect at once; the default backlog of 5 drops SYNs
    owner: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # clients that time out or get reset leave broken pipes behind: expected


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs expect
    # Headers and body go out in two writes: with Nagle on, the body waits for the client's
    # delayed ACK, 40 ms on Linux, and the server, not the runner, would set the pace.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        owner = self.server.owner
        arrived = time.monotonic()
        length = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        anthropic = self.path == ANTHROPIC_PATH
        if self.path not in (OPENAI_PATH, ANTHROPIC_PATH):
            self._send_json(404, _error_body(anthropic, f"no route {self.path}"))
            return
        prompt = _last_user_text(body)
        headers = {name.lower(): value for name, value in self.headers.items()}
        hit = Hit(self.path, prompt, arrived, headers, body)
        try:
            hit.images = _images(body, anthropic)
        except (ValueError, OSError) as exc:  # OSError: Pillow cannot identify the bytes
            owner._record(hit)
            self._send_json(400, _error_body(anthropic, f"bad image: {exc}"))
            return
        hit.behaviour = owner._next_behaviour(prompt)
        owner._record(hit)
        self._act(hit, anthropic)

    def _act(self, hit: Hit, anthropic: bool) -> None:
        owner = self.server.owner
        behaviour = hit.behaviour
        if isinstance(behaviour, Reset):
            # SO_LINGER 0: close() sends an RST, the client sees a reset connection.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if isinstance(behaviour, Raw):
            self._send(200, behaviour.body.encode())
            return
        if isinstance(behaviour, Status):
            key = hit.headers.get("authorization", hit.headers.get("x-api-key", ""))
            message = f"injected {behaviour.code}" + (
                f" for key {key}" if behaviour.echo_key else ""
            )
            headers = {"Retry-After": behaviour.retry_after} if behaviour.retry_after else {}
            self._send_json(behaviour.code, _error_body(anthropic, message), headers)
            return
        delay = behaviour.seconds if isinstance(behaviour, Hang) else behaviour.delay_s
        time.sleep(owner.latency_s + delay)
        text = (
            behaviour.text if isinstance(behaviour, Answer) and behaviour.text is not None else None
        )
        reply = owner.answer(hit.prompt) if text is None else text
        self._send_json(200, _anthropic_reply(reply) if anthropic else _openai_reply(reply))

    def _send_json(
        self, status: int, document: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(document).encode(), headers)

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (timeout) before the answer was ready
            self.close_connection = True


def _openai_reply(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "model": "loopback",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": USAGE[0], "completion_tokens": USAGE[1]},
    }


def _anthropic_reply(text: str) -> dict[str, Any]:
    return {
        "id": "msg_loopback",
        "type": "message",
        "role": "assistant",
        "model": "loopback",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": USAGE[0], "output_tokens": USAGE[1]},
    }


def _error_body(anthropic: bool, message: str) -> dict[str, Any]:
    if anthropic:
        return {"type": "error", "error": {"type": "api_error", "message": message}}
    return {"error": {"message": message, "type": "server_error", "code": None}}


def _last_user_text(body: dict[str, Any]) -> str:
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    if not users:
        return ""
    content = users[-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content if part.get("type") == "text")


def _images(body: dict[str, Any], anthropic: bool) -> list[tuple[str, tuple[int, int]]]:
    """Decode every image the request carries; ValueError when one is not a valid image."""
    found = []
    for message in body.get("messages", []):
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if anthropic and part.get("type") == "image":
                source = part["source"]
                if source.get("type") != "base64":
                    raise ValueError(f"source type {source.get('type')!r}")
                media_type, data = source["media_type"], source["data"]
            elif not anthropic and part.get("type") == "image_url":
                url = part["image_url"]["url"]
                header, _, data = url.partition(",")
                if not (header.startswith("data:") and header.endswith(";base64")):
                    raise ValueError(f"not a base64 data URL: {url[:40]!r}")
                media_type = header.removeprefix("data:").removesuffix(";base64")
            else:
                continue
            image = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
            image.load()
            if media_type != Image.MIME.get(image.format or ""):
                raise ValueError(f"media type {media_type} but {image.format} data")
            found.append((image.format or "", image.size))
    return found
