"""radloop as a model server: any backend behind OpenAI's ``/v1/chat/completions``.

``create_app(model)`` builds a FastAPI app with ``GET /v1/models``, ``POST
/v1/chat/completions`` and ``GET /health``, so radloop's own model can stand in for a vLLM
server and the ``openai`` backend can be tested over real HTTP. Only base64 data-URL images
are accepted: the server never fetches a URL. Streaming is not offered.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from radloop.errors import InputError, MissingExtraError
from radloop.models.base import Generation, VisionLanguageModel
from radloop.models.errors import ModelError
from radloop.models.images import from_data_url
from radloop.study import Image

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field
except ImportError as error:
    raise MissingExtraError(error.name or "fastapi", "server", "radloop serve-model") from error

__all__ = [
    "ChatCompletionRequest",
    "Fault",
    "FaultInjection",
    "ServerStats",
    "create_app",
    "running_server",
]


# --- fault injection -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault: answer ``status`` (with ``Retry-After``) and/or wait ``delay_s``."""

    status: int | None = None
    retry_after: str | None = None
    delay_s: float = 0.0


class FaultInjection:
    """Faults for chat-completion requests, taken in order; later requests are answered.

    ``FaultInjection([Fault(429, "1"), Fault(500)])`` refuses the first request with 429 and
    ``Retry-After: 1``, fails the second with 500 and answers the rest.
    """

    def __init__(self, script: Sequence[Fault | None]) -> None:
        self._script = list(script)
        self._lock = threading.Lock()

    @classmethod
    def fail_first(
        cls, count: int, status: int = 429, *, retry_after: str | None = None
    ) -> FaultInjection:
        return cls([Fault(status, retry_after)] * count)

    def next(self) -> Fault | None:
        with self._lock:
            return self._script.pop(0) if self._script else None


@dataclass
class ServerStats:
    """Counts kept by the app, for tests and ``/health``: requests seen, most in flight."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def enter(self) -> None:
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1


# --- request and response schemas (OpenAI chat completions) ----------------------------------


class _Schema(BaseModel):
    model_config = ConfigDict(extra="ignore")  # clients send fields radloop does not use


class ImageURL(_Schema):
    url: str
    detail: str | None = None


class TextPart(_Schema):
    type: Literal["text"]
    text: str


class ImagePart(_Schema):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ChatMessage(_Schema):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None


class JsonSchemaFormat(_Schema):
    name: str = "reply"
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Schema):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class ChatCompletionRequest(_Schema):
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    n: int = Field(1, ge=1, le=16)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    stream: bool = False


class TopLogprobOut(BaseModel):
    token: str
    logprob: float
    bytes: list[int]


class TokenLogprobOut(TopLogprobOut):
    top_logprobs: list[TopLogprobOut]


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprobOut]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: ChoiceLogprobs | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "radloop"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# --- the app ---------------------------------------------------------------------------------


class _RequestError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def _error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> Any:
    body = {"error": {"message": message, "type": kind, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(
    model: VisionLanguageModel,
    *,
    fault_injection: FaultInjection | None = None,
    served_model_name: str | None = None,
    max_image_bytes: int = 32 * 1024 * 1024,
) -> FastAPI:
    """A FastAPI app serving ``model`` through the OpenAI chat-completions API."""
    name = served_model_name or model.model_id
    created = int(time.time())
    stats = ServerStats()
    app = FastAPI(title="radloop model server", version="1")
    app.state.stats = stats

    @app.exception_handler(_RequestError)
    def _request_error(_: Request, error: _RequestError) -> Any:
        return _error(error.status, str(error), error.kind)

    @app.exception_handler(RequestValidationError)
    def _validation_error(_: Request, error: RequestValidationError) -> Any:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        return _error(400, f"invalid request: {problems}", "invalid_request_error")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": name, "requests": stats.requests}

    @app.get("/v1/models")
    def models() -> ModelList:
        return ModelList(data=[ModelCard(id=name, created=created)])

    @app.post("/v1/chat/completions", response_model=None)
    def chat_completions(request: ChatCompletionRequest) -> Any:
        stats.enter()
        try:
            fault = fault_injection.next() if fault_injection is not None else None
            if fault is not None and fault.delay_s:
                time.sleep(fault.delay_s)
            if fault is not None and fault.status is not None:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
                return _error(fault.status, "injected fault", "server_error", headers)
            return _complete(model, name, request, max_image_bytes)
        finally:
            stats.leave()

    return app


def _complete(
    model: VisionLanguageModel, name: str, request: ChatCompletionRequest, max_image_bytes: int
) -> ChatCompletion:
    if request.stream:
        raise _RequestError(400, "stream=true is not supported by radloop serve-model")
    if request.model is not None and request.model != name:
        raise _RequestError(404, f"The model {request.model!r} does not exist; serving {name!r}.",
                            "model_not_found")  # fmt: skip
    images, prompt, system = _conversation(request.messages, max_image_bytes)
    schema: dict[str, Any] | None = None
    if request.response_format is not None and request.response_format.type == "json_schema":
        spec = request.response_format.json_schema
        schema = dict(spec.schema_) if spec is not None else {"type": "object"}
    elif request.response_format is not None and request.response_format.type == "json_object":
        schema = {"type": "object"}
    try:
        generations = model.generate(
            images,
            prompt,
            n=request.n,
            temperature=request.temperature,
            max_tokens=request.max_completion_tokens or request.max_tokens or 512,
            logprobs=request.logprobs,
            top_logprobs=request.top_logprobs or 0,
            system=system,
            json_schema=schema,
        )
    except (InputError, ValueError) as error:
        raise _RequestError(400, str(error)) from error
    except ModelError as error:
        raise _RequestError(502, f"the model failed: {error}", "server_error") from error
    return _completion(name, prompt, generations, request.logprobs)


def _conversation(
    messages: Sequence[ChatMessage], max_image_bytes: int
) -> tuple[list[Image], str, str | None]:
    images: list[Image] = []
    system: list[str] = []
    turns: list[tuple[str, str]] = []
    for message in messages:
        texts: list[str] = []
        parts = message.content if isinstance(message.content, list) else [message.content]
        for part in parts:
            if part is None:
                continue
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, TextPart):
                texts.append(part.text)
            else:
                try:
                    images.append(from_data_url(part.image_url.url, max_bytes=max_image_bytes))
                except InputError as error:
                    raise _RequestError(400, f"image {len(images) + 1}: {error}") from error
        text = "\n".join(texts)
        if message.role in ("system", "developer"):
            system.append(text)
        else:
            turns.append((message.role, text))
    if not turns:
        raise _RequestError(400, "expected at least one user message, got none")
    if len(turns) == 1:
        prompt = turns[0][1]
    else:  # a conversation: the backends take one prompt, so the turns are written out
        prompt = "\n\n".join(f"{role.capitalize()}: {text}" for role, text in turns)
    return images, prompt, "\n\n".join(system) or None


def _completion(
    name: str, prompt: str, generations: Sequence[Generation], with_logprobs: bool
) -> ChatCompletion:
    choices = []
    completion_tokens = 0
    for index, generation in enumerate(generations):
        tokens = generation.logprobs
        completion_tokens += len(tokens) if tokens else len(generation.text.split())
        logprobs = None
        if with_logprobs and tokens is not None:
            logprobs = ChoiceLogprobs(
                content=[
                    TokenLogprobOut(
                        token=t.token,
                        logprob=t.logprob,
                        bytes=list(t.token.encode()),
                        top_logprobs=[
                            TopLogprobOut(token=alt, logprob=lp, bytes=list(alt.encode()))
                            for alt, lp in t.top
                        ],
                    )
                    for t in tokens
                ]
            )
        choices.append(
            Choice(
                index=index,
                message=AssistantMessage(content=generation.text),
                finish_reason=generation.finish_reason or "stop",
                logprobs=logprobs,
            )
        )
    used = [g.usage for g in generations if g.usage is not None]
    if used:  # the backend's own counts
        prompt_tokens = sum(u.prompt_tokens for u in used)
        completion_tokens = sum(u.completion_tokens for u in used)
    else:  # words, where the backend counts nothing: indicative only
        prompt_tokens = len(prompt.split())
    return ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=name,
        choices=choices,
        usage=Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        ),
    )


@contextmanager
def running_server(app: FastAPI, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread on a free port; yield its base URL.

    For tests and notebooks: the socket is bound before the thread starts, so there is no
    race for the port, and the server is stopped when the block ends.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10.0
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the test server on {host}:{port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10.0)
        sock.close()
