"""Self-consistency sampling: how many drafts to sample, at what temperature, and whether a
backend can sample at all.

Besides the report itself (greedy, temperature 0), a drafting model is asked for ``samples``
more drafts at ``temperature``: in one request where the backend takes ``n`` (vLLM, SGLang,
the transformers backend's ``num_return_sequences``), one request each otherwise. The safety
layer reads how many of them repeat each claim of the report (by finding, side and zone).
A deterministic model (radloop's reference model) cannot sample: it is never asked to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from radloop.errors import InputError

__all__ = [
    "DEFAULT_SAMPLES",
    "DEFAULT_SAMPLE_TEMPERATURE",
    "MAX_SAMPLES",
    "Sampling",
    "can_sample",
    "sampling_options",
]

DEFAULT_SAMPLES = 5
DEFAULT_SAMPLE_TEMPERATURE = 0.7
MAX_SAMPLES = 16


@dataclass(frozen=True)
class Sampling:
    """``samples`` drafts sampled at ``temperature`` besides the report (0: no sampling)."""

    samples: int = DEFAULT_SAMPLES
    temperature: float = DEFAULT_SAMPLE_TEMPERATURE

    def __post_init__(self) -> None:
        if isinstance(self.samples, bool) or not 0 <= self.samples <= MAX_SAMPLES:
            raise InputError(
                f"a number of samples from 0 (off) to {MAX_SAMPLES}", repr(self.samples),
                source="samples",
            )  # fmt: skip
        if not 0.0 < self.temperature <= 2.0:
            raise InputError(
                "a sampling temperature above 0 and at most 2", repr(self.temperature),
                source="sample temperature",
            )  # fmt: skip

    @classmethod
    def off(cls) -> Sampling:
        return cls(0)

    def for_model(self, model: Any) -> int:
        """The samples to ask ``model`` for: none where it cannot sample."""
        return self.samples if can_sample(model) else 0


def can_sample(model: Any) -> bool:
    """Whether ``model`` gives different drafts at a temperature: a generative backend that
    does not declare itself deterministic (``supports_sampling = False``)."""
    from radloop.models import VisionLanguageModel

    return isinstance(model, VisionLanguageModel) and bool(model.supports_sampling)


_F = TypeVar("_F", bound=Callable[..., Any])


def sampling_options(*, ask_back_help: str) -> Callable[[_F], _F]:
    """The command-line options ``--samples``, ``--sample-temperature`` and
    ``--ask-back/--no-ask-back`` of every command that drafts (defaults as :class:`Sampling`)."""
    import click

    def decorate(command: _F) -> _F:
        command = click.option(
            "--ask-back/--no-ask-back", default=True, show_default=True, help=ask_back_help
        )(command)
        command = click.option(
            "--sample-temperature",
            type=click.FloatRange(0.0, 2.0, min_open=True),
            default=DEFAULT_SAMPLE_TEMPERATURE,
            show_default=True,
            help="Temperature of the sampled drafts and sampled ask-back answers.",
        )(command)
        return click.option(
            "--samples",
            type=click.IntRange(0, MAX_SAMPLES),
            default=DEFAULT_SAMPLES,
            show_default=True,
            help="Drafts sampled for self-consistency where the model can sample (0: off).",
        )(command)

    return decorate
