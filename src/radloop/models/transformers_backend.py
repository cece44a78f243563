"""The ``transformers`` backend: a local image-text-to-text checkpoint, run offline.

The directory is loaded with ``AutoProcessor`` and ``AutoModelForImageTextToText`` and
``local_files_only=True``; the Hub is switched off (``HF_HUB_OFFLINE=1``) before transformers
is imported, so nothing is downloaded. Any architecture transformers maps to
image-text-to-text works: MedGemma and Gemma 3, LLaVA, Qwen2.5-VL, ...

Log-probabilities are those of the model's own distribution (log-softmax of the raw logits,
before temperature), the convention of vLLM's default ``logprobs``.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from radloop.errors import MissingExtraError
from radloop.models.base import (
    Generation,
    JsonSchema,
    TokenLogprob,
    Usage,
    VisionLanguageModel,
)
from radloop.models.errors import CheckpointNotFoundError, ModelOptionError
from radloop.models.images import to_pil
from radloop.models.registry import register_model
from radloop.study import Image

__all__ = ["TransformersModel"]

_DTYPES = ("auto", "float32", "bfloat16", "float16")


def _import(name: str) -> Any:
    # torch and transformers are typed, but the parts used here (generate outputs, processors)
    # are dynamic; they are handled as Any at this one boundary.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise MissingExtraError(name, "transformers", "The transformers model backend") from error


@register_model("transformers")
class TransformersModel(VisionLanguageModel):
    """A local image-text-to-text checkpoint directory run with Hugging Face transformers.

    ``model`` is the directory (as written by ``save_pretrained``); hub ids are refused
    because nothing is downloaded. ``seed`` makes sampling repeatable.
    """

    supports_logprobs = True

    def __init__(
        self,
        model: str | Path,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        seed: int | None = None,
        max_image_side: int | None = None,
    ) -> None:
        path = Path(model).expanduser()
        if not path.is_dir():
            received = "a file" if path.is_file() else "no such directory"
            raise CheckpointNotFoundError(path, received)
        if not (path / "config.json").is_file():
            raise CheckpointNotFoundError(path, "a directory without config.json")
        if dtype not in _DTYPES:
            raise ModelOptionError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
        self.path = path
        self.seed = seed
        self.max_image_side = max_image_side
        self._torch = _import("torch")
        transformers = _import("transformers")
        torch_dtype = "auto" if dtype == "auto" else getattr(self._torch, dtype)
        self._processor: Any = transformers.AutoProcessor.from_pretrained(
            path, local_files_only=True
        )
        self._model: Any = transformers.AutoModelForImageTextToText.from_pretrained(
            path, local_files_only=True, dtype=torch_dtype
        )
        self._model.to(device).eval()
        self.device = device
        self._tokenizer: Any = self._processor.tokenizer
        eos = self._model.generation_config.eos_token_id
        self._eos = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return str(self.path)

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
        inputs = self._inputs(images, prompt, system)
        sampling = temperature > 0
        # Greedy decoding gives n identical sequences: decode once and repeat it.
        sequences = n if sampling else 1
        options: dict[str, Any] = {
            "max_new_tokens": max_tokens,
            "do_sample": sampling,
            "num_return_sequences": sequences,
            "return_dict_in_generate": True,
            "output_logits": logprobs,
            "pad_token_id": self._tokenizer.pad_token_id or next(iter(self._eos), None),
        }
        if sampling:
            options.update(temperature=temperature, top_k=0, top_p=1.0)
        else:
            options.update(temperature=None, top_k=None, top_p=None)
        with self._lock, self._torch.inference_mode():
            if self.seed is not None:
                self._torch.manual_seed(self.seed)
            output = self._model.generate(**inputs, **options)
        prompt_length = int(inputs["input_ids"].shape[1])
        generated = output.sequences[:, prompt_length:].tolist()
        logits = output.logits if logprobs else None
        generations = []
        produced = 0
        for row, ids in enumerate(generated):
            length, finish = self._length(ids, max_tokens)
            tokens = None
            if logits is not None:
                tokens = self._token_logprobs(logits, row, ids[:length], top_logprobs)
            text = self._tokenizer.decode(ids[:length], skip_special_tokens=True)
            produced += length
            generations.append(
                Generation(str(text), self.model_id, logprobs=tokens, finish_reason=finish)
            )
        # One call is one request: its usage goes on the first generation (see Usage).
        generations[0] = dataclasses.replace(generations[0], usage=Usage(prompt_length, produced))
        if not sampling:
            generations += [dataclasses.replace(generations[0], usage=None)] * (n - 1)
        return generations

    def _inputs(self, images: Sequence[Image], prompt: str, system: str | None) -> Any:
        content: list[dict[str, str]] = [{"type": "image"} for _ in images]
        content.append({"type": "text", "text": prompt})
        messages: list[dict[str, Any]] = []
        if system:
            messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
        messages.append({"role": "user", "content": content})
        text = self._processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        pil = [to_pil(i, max_side=self.max_image_side).convert("RGB") for i in images]
        inputs = self._processor(images=pil or None, text=text, return_tensors="pt")
        return inputs.to(self.device)

    def _length(self, ids: list[int], max_tokens: int) -> tuple[int, str]:
        for position, token in enumerate(ids):
            if token in self._eos:
                return position, "stop"
        return len(ids), "length" if len(ids) >= max_tokens else "stop"

    def _token_logprobs(
        self, logits: Any, row: int, ids: list[int], top: int
    ) -> tuple[TokenLogprob, ...]:
        torch = self._torch
        tokens = []
        for step, token in enumerate(ids):
            distribution = torch.log_softmax(logits[step][row].float(), dim=-1)
            alternatives: tuple[tuple[str, float], ...] = ()
            if top:
                values, indices = torch.topk(distribution, top)
                alternatives = tuple(
                    (self._piece(int(i)), float(v))
                    for v, i in zip(values.tolist(), indices.tolist(), strict=True)
                )
            tokens.append(
                TokenLogprob(self._piece(token), float(distribution[token]), alternatives)
            )
        return tuple(tokens)

    def _piece(self, token: int) -> str:
        return str(self._tokenizer.decode([token]))
