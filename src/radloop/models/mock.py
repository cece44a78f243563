"""A deterministic backend for tests and demos: replies from a fixed script or a callable."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from radloop.models.base import (
    Generation,
    JsonSchema,
    TokenLogprob,
    Usage,
    VisionLanguageModel,
)
from radloop.models.registry import register_model
from radloop.study import Image

__all__ = ["DEFAULT_REPLY", "MockModel", "MockRequest"]

DEFAULT_REPLY = (
    "FINDINGS:\n"
    "Lungs: The lungs are clear.\n"
    "Pleura: No pleural effusion. No pneumothorax.\n"
    "Heart and mediastinum: Normal heart size.\n"
    "Bones: No fracture.\n"
    "IMPRESSION: No acute cardiopulmonary abnormality."
)


def _read_script(path: str) -> tuple[list[str], dict[str, str]]:
    """A JSON list of replies, or an object ``{"replies": [...], "answers": {...}}``."""
    import json
    from pathlib import Path

    from radloop.models.errors import ModelOptionError

    try:
        script = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ModelOptionError(
            f"replies_file: expected a JSON list of replies, got {error}"
        ) from None
    answers: object = {}
    if isinstance(script, dict):
        answers = script.get("answers", {})
        script = script.get("replies")
    if not isinstance(script, list) or not script or not all(isinstance(r, str) for r in script):
        raise ModelOptionError(
            f"replies_file: expected a non-empty JSON list of strings in {path}, "
            f"got {type(script).__name__}"
        )
    if not isinstance(answers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in answers.items()
    ):
        raise ModelOptionError(
            f'replies_file: expected "answers" to map prompt substrings to replies in {path}, '
            f"got {type(answers).__name__}"
        )
    return script, answers


@dataclass(frozen=True, slots=True)
class MockRequest:
    """What one ``generate`` call received, kept so tests can assert on prompts and images."""

    images: tuple[Image, ...]
    prompt: str
    system: str | None
    n: int
    temperature: float
    max_tokens: int
    logprobs: bool
    top_logprobs: int
    json_schema: JsonSchema | None


Reply = str | Callable[[MockRequest], str]


@register_model("mock")
class MockModel(VisionLanguageModel):
    """Deterministic replies from a fixed script or a callable, for tests and demos.

    ``replies`` is one reply, a script used in turn (the last one repeats), or a callable
    given the request; ``replies_file`` reads the script from a JSON list of strings instead
    (for ``radloop serve-model --model mock --option replies_file=FILE``; the file may also be
    an object with "replies" and "answers"). ``answers`` maps prompt substrings to replies: a
    prompt containing one is answered with its reply, outside the script. Token
    log-probabilities are made up but deterministic: one token per word, each with
    log-probability ``-0.1`` times its position in a cycle of five.
    """

    supports_logprobs = True

    def __init__(
        self,
        replies: Reply | Sequence[Reply] = DEFAULT_REPLY,
        *,
        model: str = "mock",
        supports_json_schema: bool = False,
        delay_s: float = 0.0,
        replies_file: str | None = None,
        answers: Mapping[str, str] | None = None,
    ) -> None:
        self.answers = dict(answers or {})
        if replies_file is not None:
            replies, from_file = _read_script(replies_file)
            self.answers = {**from_file, **self.answers}
        if isinstance(replies, str) or callable(replies):
            replies = [replies]
        if not replies:
            raise ValueError('Argument "replies" must hold at least one reply.')
        self._replies: list[Reply] = list(replies)
        self._model = model
        self.supports_json_schema = supports_json_schema
        self.delay_s = delay_s
        self.requests: list[MockRequest] = []
        self._lock = threading.Lock()
        self._turn = 0

    @property
    def model_id(self) -> str:
        return self._model

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
        request = MockRequest(
            tuple(images), prompt, system, n, temperature, max_tokens, logprobs, top_logprobs,
            json_schema,
        )  # fmt: skip
        answer = next((a for key, a in self.answers.items() if key in prompt), None)
        with self._lock:
            self.requests.append(request)
            turns = [min(self._turn + i, len(self._replies) - 1) for i in range(n)]
            if answer is None:
                self._turn += n
        if self.delay_s:
            time.sleep(self.delay_s)
        generations: list[Generation] = []
        for turn in turns:
            reply = self._replies[turn] if answer is None else answer
            text = reply(request) if callable(reply) else reply
            words = text.split()
            truncated = len(words) > max_tokens
            text = " ".join(words[:max_tokens]) if truncated else text
            tokens = _logprobs(words[:max_tokens], top_logprobs) if logprobs else None
            generations.append(
                Generation(
                    text=text,
                    model=self._model,
                    logprobs=tokens,
                    finish_reason="length" if truncated else "stop",
                )
            )
        # One call is one request; its tokens are counted as words.
        produced = sum(len(g.text.split()) for g in generations)
        generations[0] = dataclasses.replace(
            generations[0], usage=Usage(len(prompt.split()), produced)
        )
        return generations


def _logprobs(words: Sequence[str], top: int) -> tuple[TokenLogprob, ...]:
    tokens = []
    for position, word in enumerate(words):
        logprob = -0.1 * (position % 5)
        alternatives = ((word, logprob), *((f"<alt{k}>", logprob - k) for k in range(1, top)))
        tokens.append(TokenLogprob(word, logprob, alternatives[:top]))
    return tuple(tokens)
