"""The one interface every model backend implements: ``generate(images, prompt) -> Generations``.

A backend is a :class:`VisionLanguageModel`. It receives radloop ``Image`` objects (float32
pixels in [0, 1], higher is brighter) and a prompt, and returns ``n`` generations, each with its
text, the token log-probabilities when the backend gives them, the latency and the model id.
``generate`` is a template method: it checks the arguments, times and logs the call, and asks
the backend's ``_generate`` for the generations.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, final, runtime_checkable

from radloop.report import Change, Finding
from radloop.study import Image
from radloop.vocabulary import Zone

__all__ = [
    "Cost",
    "FindingsPredictor",
    "Generation",
    "JsonSchema",
    "TokenLogprob",
    "Usage",
    "VisionLanguageModel",
    "ZoneChange",
    "ZoneChangePredictor",
]

logger = logging.getLogger(__name__)

JsonSchema = Mapping[str, Any]
"""A JSON Schema (draft 2020-12) object, as accepted by OpenAI's ``response_format``."""


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token, its natural-log probability and the most likely alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()

    @property
    def probability(self) -> float:
        return math.exp(self.logprob)


@dataclass(frozen=True, slots=True)
class Usage:
    """What one request to a backend used: its prompt and completion tokens.

    A backend puts it on the first generation of each request only (a request for ``n``
    completions is one request), so that summing over generations counts each request once.
    """

    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class Cost:
    """Requests, prompt and completion tokens and wall seconds spent on some model work."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    @classmethod
    def of(cls, generations: Sequence[Generation], seconds: float) -> Cost:
        """The cost of ``generations`` (their requests' usage), taking ``seconds`` of wall time."""
        used = [g.usage for g in generations if g.usage is not None]
        return cls(
            requests=len(used),
            prompt_tokens=sum(u.prompt_tokens for u in used),
            completion_tokens=sum(u.completion_tokens for u in used),
            seconds=seconds,
        )

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.requests + other.requests,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.seconds + other.seconds,
        )

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "seconds": round(self.seconds, 6),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cost:
        return cls(
            int(data.get("requests", 0)),
            int(data.get("prompt_tokens", 0)),
            int(data.get("completion_tokens", 0)),
            float(data.get("seconds", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class Generation:
    """One completion of a prompt.

    ``logprobs`` is None when the backend gave none (not asked for, or not supported);
    ``latency_s`` is the wall time of the request that produced it. A backend that does not
    time its requests leaves it unset (NaN), and ``generate`` gives it the whole call's time.
    ``usage`` is set on the first generation of each request (see :class:`Usage`).
    """

    text: str
    model: str
    latency_s: float = math.nan
    logprobs: tuple[TokenLogprob, ...] | None = None
    finish_reason: str | None = None
    usage: Usage | None = None

    @property
    def mean_logprob(self) -> float | None:
        """Average token log-probability: a crude, uncalibrated confidence of the whole text."""
        if not self.logprobs:
            return None
        return sum(t.logprob for t in self.logprobs) / len(self.logprobs)


class VisionLanguageModel(ABC):
    """A multimodal language model behind radloop's single ``generate`` call.

    Subclasses implement ``_generate`` (``generate`` checks the arguments first, and times and
    logs the call), set ``supports_json_schema`` when they can constrain a reply to a JSON
    schema (the ``assist`` tasks then ask for structured output) and ``supports_logprobs``
    when they can return token log-probabilities. ``supports_sampling`` is False for a
    deterministic model, whose samples would all be the same: radloop then does not sample it.
    """

    supports_json_schema: bool = False
    supports_logprobs: bool = False
    supports_sampling: bool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A backend written before generate() called _generate() overrides generate() itself:
        # it keeps working for one version, with a warning.
        if "generate" in cls.__dict__ and getattr(cls._generate, "__isabstractmethod__", False):
            warnings.warn(
                f"{cls.__qualname__} overrides generate(); implement _generate() instead "
                "(generate() checks the arguments, times and logs the call, then calls it). "
                "Overriding generate() stops working in the next version.",
                DeprecationWarning,
                stacklevel=2,
            )
            cls._generate = cls.__dict__["generate"]  # type: ignore[method-assign]

    @property
    @abstractmethod
    def model_id(self) -> str:
        """The id of the model that writes the generations (a served name or a path)."""

    @final
    def generate(
        self,
        images: Sequence[Image],
        prompt: str,
        *,
        n: int = 1,
        temperature: float = 0.0,
        max_tokens: int = 512,
        logprobs: bool = False,
        top_logprobs: int = 0,
        system: str | None = None,
        json_schema: JsonSchema | None = None,
    ) -> list[Generation]:
        """``n`` completions of ``prompt`` about ``images``, in order.

        ``temperature`` 0 is greedy decoding. ``json_schema``, where the backend supports it,
        constrains the reply to that schema; other backends ignore it (the prompt should say
        what to write either way).
        """
        check_generate_arguments(n, temperature, max_tokens, top_logprobs)
        started = time.perf_counter()
        generations = self._generate(
            images, prompt, n=n, temperature=temperature, max_tokens=max_tokens,
            logprobs=logprobs, top_logprobs=top_logprobs, system=system, json_schema=json_schema,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        logger.debug(
            "%s: %d generation(s) of %d image(s) in %.3f s",
            self.model_id, len(generations), len(images), elapsed,
        )  # fmt: skip
        return [
            dataclasses.replace(g, latency_s=elapsed) if math.isnan(g.latency_s) else g
            for g in generations
        ]

    @abstractmethod
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
        """The backend's ``n`` generations, the arguments already checked by ``generate``.

        A generation may leave ``latency_s`` unset: it is then the time of the whole call.
        """

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release connections, threads or memory the backend holds."""

    def __enter__(self) -> VisionLanguageModel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@runtime_checkable
class FindingsPredictor(Protocol):
    """A model that predicts structured findings directly (radloop's reference model).

    The ``assist`` tasks use ``predict_findings`` instead of prompting when a model has it:
    ``compare`` then works from two structured outputs rather than from text.
    """

    @property
    def model_id(self) -> str: ...

    def predict_findings(self, images: Sequence[Image]) -> tuple[Finding, ...]: ...


@runtime_checkable
class ExtentPredictor(Protocol):
    """A model that measures each finding's extent on a continuous scale.

    ``predict_extents`` maps finding codes to a positive amount in the finding's own unit
    (a volume, a rim width, a ratio); only ratios between two studies of one patient are
    compared, so ``compare`` can tell a smaller effusion from a stable one.
    """

    def predict_extents(self, images: Sequence[Image]) -> dict[str, float]: ...


@runtime_checkable
class LocalPredictor(Protocol):
    """A model that says where on the image each finding type shows, and how strongly.

    ``predict_local`` maps finding codes to a map over the detector field (rows × columns on a
    grid that is the same for every study the model reads), scaled so that 1.0 is the
    strength at which the model reports the finding. ``compare`` looks at the prior where a
    finding is now (and at the current study where it was): a radiologist's "in retrospect,
    there on the prior, smaller".
    """

    def predict_local(self, images: Sequence[Image]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ZoneChange:
    """How a finding type (``code``: lung opacity) changed in one lung zone between two films
    of one patient: the direction the model states and the zone scores it read on the prior
    and the current film."""

    code: str
    zone: Zone
    direction: Change
    prior: float
    current: float


@runtime_checkable
class ZoneChangePredictor(Protocol):
    """A model that reads, per lung zone, whether opacity increased, decreased or stayed.

    ``predict_zone_changes`` returns one :class:`ZoneChange` per zone it read on both
    studies' frontal films, or None where it cannot speak (a film outside the domain in which
    its zone readings were validated); ``compare`` then states the change zone by zone.
    """

    def predict_zone_changes(
        self, current: Sequence[Image], prior: Sequence[Image]
    ) -> tuple[ZoneChange, ...] | None: ...


def check_generate_arguments(
    n: int, temperature: float, max_tokens: int, top_logprobs: int
) -> None:
    """Validate the common arguments of ``generate`` with the rule each breaks."""
    if n < 1:
        raise ValueError(f'Argument "n" must be at least 1, got {n}.')
    if not 0.0 <= temperature <= 2.0:
        raise ValueError(f'Argument "temperature" must be in [0, 2], got {temperature}.')
    if max_tokens < 1:
        raise ValueError(f'Argument "max_tokens" must be at least 1, got {max_tokens}.')
    if not 0 <= top_logprobs <= 20:
        raise ValueError(f'Argument "top_logprobs" must be in [0, 20], got {top_logprobs}.')
