"""The ``openai`` backend: any OpenAI-compatible chat-completions server.

vLLM, SGLang, Ollama, llama.cpp's server, LM Studio, ``radloop serve-model`` and hosted APIs
all speak ``POST {base_url}/chat/completions``. Images travel as base64 PNG data URLs. Requests
that meet 429 or 5xx are retried with exponential backoff and jitter, honouring ``Retry-After``;
at most ``max_concurrency`` requests are in flight per model object, whichever threads send them.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from radloop.models.base import (
    Generation,
    JsonSchema,
    TokenLogprob,
    Usage,
    VisionLanguageModel,
)
from radloop.models.errors import (
    ModelConnectionError,
    ModelOptionError,
    ModelResponseError,
    ModelServerError,
    ModelTimeoutError,
)
from radloop.models.images import to_data_url
from radloop.models.registry import register_model
from radloop.study import Image

__all__ = ["RETRYABLE_STATUS", "OpenAICompatibleModel"]

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_URL_CACHE = 16  # encoded images kept: the studies drafted at once, a few images each


@register_model("openai")
class OpenAICompatibleModel(VisionLanguageModel):
    """Any OpenAI-compatible chat-completions server: vLLM, SGLang, Ollama, llama.cpp, APIs.

    ``model`` is the served model name; when omitted, the one model the server lists under
    ``/models`` is used. The API key is read from the environment variable ``api_key_env``
    (never passed on a command line); a server that needs none ignores it.
    """

    supports_logprobs = True

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str = "http://127.0.0.1:8000/v1",
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout_s: float = 120.0,
        connect_timeout_s: float = 10.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        max_retry_after_s: float = 120.0,
        max_concurrency: int = 8,
        structured_output: bool = True,
        max_image_side: int | None = 1024,
        max_tokens_field: str = "max_tokens",
        seed: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        jitter: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        environ: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ModelOptionError(f"max_concurrency must be at least 1, got {max_concurrency}")
        if max_retries < 0 or timeout_s <= 0 or connect_timeout_s <= 0:
            raise ModelOptionError(
                "max_retries must be >= 0 and timeouts > 0, got "
                f"max_retries={max_retries}, timeout_s={timeout_s}, "
                f"connect_timeout_s={connect_timeout_s}"
            )
        if max_tokens_field not in ("max_tokens", "max_completion_tokens"):
            raise ModelOptionError(
                "max_tokens_field must be 'max_tokens' or 'max_completion_tokens', "
                f"got {max_tokens_field!r}"
            )
        self._model = model
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_retry_after_s = max_retry_after_s
        self.max_concurrency = max_concurrency
        self.supports_json_schema = structured_output
        self.max_image_side = max_image_side
        self.max_tokens_field = max_tokens_field
        self.seed = seed
        self.extra_body = dict(extra_body or {})
        self.accepts_n = True
        self.supports_logprobs = True
        self._jitter = jitter or random.Random()
        self._sleep = sleep
        env = os.environ if environ is None else environ
        api_key = env.get(api_key_env) if api_key_env else None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_concurrency),
            transport=transport,
        )
        self._in_flight = threading.BoundedSemaphore(max_concurrency)
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._urls: dict[str, str] = {}

    @property
    def model_id(self) -> str:
        if self._model is None:
            self._model = self._served_model()
        return self._model

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._client.close()

    # --- generate ----------------------------------------------------------------------------

    def _generate(
        self,
        images: Sequence[Image],
        prompt: str,
        *,
        n: int,
        temperature: float,
        max_tokens: int,
        logprobs: bool,
        top_logprobs: int,
        system: str | None,
        json_schema: JsonSchema | None,
    ) -> list[Generation]:
        body: dict[str, Any] = {
            **self.extra_body,
            "model": self.model_id,
            "messages": self._messages(images, prompt, system),
            "temperature": temperature,
            self.max_tokens_field: max_tokens,
            "n": n,
        }
        if logprobs:
            body["logprobs"] = True
            if top_logprobs:
                body["top_logprobs"] = top_logprobs
        if self.seed is not None:
            body["seed"] = self.seed
        if json_schema is not None and self.supports_json_schema:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "radloop_reply", "schema": dict(json_schema)},
            }
        generations = self._complete_with_fallbacks(body)
        # Ollama, llama.cpp and some APIs ignore "n" (or refuse n > 1): ask again, one at a
        # time, in parallel within the concurrency cap.
        missing = n - len(generations)
        if missing > 0:
            single = {**body, "n": 1}
            for more in self._pool().map(lambda _: self._complete(single), range(missing)):
                generations.extend(more)
        return generations[:n]

    def _complete_with_fallbacks(self, body: dict[str, Any]) -> list[Generation]:
        """One request; where the server refuses ``n`` > 1 or log-probabilities with 400, the
        request again without them (and later requests leave them out too)."""
        if body["n"] > 1 and not self.accepts_n:
            body = {**body, "n": 1}
        if "logprobs" in body and not self.supports_logprobs:
            body = {k: v for k, v in body.items() if k not in ("logprobs", "top_logprobs")}
        try:
            return self._complete(body)
        except ModelServerError as error:
            if error.status_code != 400:
                raise
            if body["n"] > 1:
                logger.warning("%s refused n=%d; asking one completion at a time",
                               self.base_url, body["n"])  # fmt: skip
                self.accepts_n = False
                return self._complete_with_fallbacks({**body, "n": 1})
            if "logprobs" in body:
                logger.warning("%s refused logprobs; continuing without them", self.base_url)
                self.supports_logprobs = False
                return self._complete_with_fallbacks(body)
            raise

    def _messages(
        self, images: Sequence[Image], prompt: str, system: str | None
    ) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = [
            {
                "type": "image_url",
                "image_url": {"url": self._data_url(i)},
            }
            for i in images
        ]
        parts.append({"type": "text", "text": prompt})
        messages: list[dict[str, Any]] = []
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": parts})
        return messages

    def _data_url(self, image: Image) -> str:
        """The image as a data URL, encoded once for the several requests about one study
        (a draft, its samples and its ask-back questions)."""
        pixels = image.pixels
        key = hashlib.blake2b(pixels.tobytes(), digest_size=16).hexdigest()
        key += f"{pixels.shape}{pixels.dtype}{self.max_image_side}"
        with self._lock:
            url = self._urls.get(key)
        if url is None:
            url = to_data_url(image, max_side=self.max_image_side)
            with self._lock:
                self._urls[key] = url
                while len(self._urls) > _URL_CACHE:
                    self._urls.pop(next(iter(self._urls)))
        return url

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.max_concurrency, thread_name_prefix="radloop-openai"
                )
            return self._executor

    def _complete(self, body: dict[str, Any]) -> list[Generation]:
        try:
            payload, latency = self._request("POST", "/chat/completions", body)
        except ModelServerError as error:
            if error.status_code != 400 or "response_format" not in body:
                raise
            # A server without structured output (older vLLM, llama.cpp builds): the prompt
            # still asks for JSON, so go on unconstrained rather than fail.
            logger.warning("%s rejected response_format; continuing without it", self.base_url)
            self.supports_json_schema = False
            body = {k: v for k, v in body.items() if k != "response_format"}
            payload, latency = self._request("POST", "/chat/completions", body)
        return _generations(payload, latency, default_model=str(body["model"]))

    def _served_model(self) -> str:
        payload, _ = self._request("GET", "/models", None)
        try:
            names = [str(entry["id"]) for entry in payload["data"]]
        except (KeyError, TypeError) as error:
            raise ModelResponseError(f"{self.base_url}/models: expected a model list") from error
        if len(names) != 1:
            raise ModelOptionError(
                f"{self.base_url} serves {len(names)} models ({', '.join(names) or 'none'}); "
                "choose one with the option model=NAME"
            )
        return names[0]

    # --- HTTP with retries -------------------------------------------------------------------

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None
    ) -> tuple[dict[str, Any], float]:
        url = self.base_url + path
        for attempt in range(self.max_retries + 1):
            delay: float
            with self._in_flight:
                start = time.perf_counter()
                try:
                    response = self._client.request(method, path, json=body)
                except httpx.TimeoutException as error:
                    raise ModelTimeoutError(
                        f"{url}: no answer within {self.timeout_s:g} s. Raise the option "
                        "timeout_s, lower max_tokens, or check the server's load."
                    ) from error
                except httpx.TransportError as error:
                    failure: ModelServerError = ModelConnectionError(
                        f"{url}: could not connect ({type(error).__name__}: {error}). "
                        "Is the server running, and is base_url right?",
                        url=url,
                    )
                    delay = self._backoff(attempt)
                else:
                    latency = time.perf_counter() - start
                    if response.is_success:
                        return _json(response, url), latency
                    failure = ModelServerError(
                        _describe(response, url), status_code=response.status_code, url=url
                    )
                    if response.status_code not in RETRYABLE_STATUS:
                        raise failure
                    delay = self._retry_delay(response, attempt, failure)
            if attempt == self.max_retries:
                break
            logger.warning("%s; retry %d of %d in %.2f s", failure, attempt + 1,
                           self.max_retries, delay)  # fmt: skip
            self._sleep(delay)
        raise type(failure)(
            f"{failure} (gave up after {self.max_retries + 1} attempts)",
            status_code=failure.status_code,
            url=url,
        )

    def _backoff(self, attempt: int) -> float:
        # "Equal jitter": half the exponential step plus a random half, so that clients
        # refused together do not come back together.
        step = min(self.max_backoff_s, self.backoff_s * 2.0**attempt)
        return step / 2 + self._jitter.uniform(0.0, step / 2)

    def _retry_delay(self, response: httpx.Response, attempt: int, failure: Exception) -> float:
        retry_after = _retry_after_s(response.headers.get("Retry-After"))
        if retry_after is None:
            return self._backoff(attempt)
        if retry_after > self.max_retry_after_s:
            raise ModelServerError(
                f"{failure}; the server asks to wait {retry_after:g} s, more than "
                f"max_retry_after_s={self.max_retry_after_s:g}",
                status_code=response.status_code,
                url=str(response.request.url),
            )
        return retry_after


def _retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _describe(response: httpx.Response, url: str) -> str:
    detail = response.text[:500]
    try:
        payload = response.json()
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            detail = str(payload["error"].get("message", detail))
        elif isinstance(payload, dict) and "detail" in payload:
            detail = str(payload["detail"])
    except ValueError:
        pass
    hint = ""
    if response.status_code in (401, 403):
        hint = " Check the API key variable (option api_key_env)."
    elif response.status_code == 404:
        hint = " Check base_url (it usually ends in /v1) and the option model."
    return f"{url}: HTTP {response.status_code}: {detail}.{hint}"


def _json(response: httpx.Response, url: str) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError as error:
        raise ModelResponseError(f"{url}: expected JSON, got {response.text[:200]!r}") from error
    if not isinstance(payload, dict):
        raise ModelResponseError(f"{url}: expected a JSON object, got {type(payload).__name__}")
    return payload


def _generations(
    payload: dict[str, Any], latency: float, *, default_model: str
) -> list[Generation]:
    model = str(payload.get("model") or default_model)
    usage = _usage(payload.get("usage"))
    try:
        choices = sorted(payload["choices"], key=lambda c: int(c.get("index", 0)))
        generations = [
            Generation(
                text=str(choice["message"].get("content") or ""),
                model=model,
                latency_s=latency,
                logprobs=_logprobs(choice.get("logprobs")),
                finish_reason=choice.get("finish_reason"),
                usage=usage if position == 0 else None,
            )
            for position, choice in enumerate(choices)
        ]
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise ModelResponseError(
            f"expected a chat completion with choices[].message.content, got {str(payload)[:300]}"
        ) from error
    if not generations:
        raise ModelResponseError("expected at least one choice in the chat completion, got none")
    return generations


def _usage(block: Any) -> Usage:
    """The request's usage; a server that reports none is still one request (0 tokens)."""
    if not isinstance(block, dict):
        return Usage(0, 0)
    try:
        return Usage(int(block.get("prompt_tokens") or 0), int(block.get("completion_tokens") or 0))
    except (TypeError, ValueError):
        return Usage(0, 0)


def _logprobs(block: Any) -> tuple[TokenLogprob, ...] | None:
    if not isinstance(block, dict) or not isinstance(block.get("content"), list):
        return None
    return tuple(
        TokenLogprob(
            token=str(entry["token"]),
            logprob=float(entry["logprob"]),
            top=tuple(
                (str(alt["token"]), float(alt["logprob"]))
                for alt in entry.get("top_logprobs") or ()
            ),
        )
        for entry in block["content"]
    )
