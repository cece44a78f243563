"""Fixtures for the model tests: a served mock model, and tiny local checkpoints.

The checkpoints are real architectures with random weights and a tokenizer trained here on a
few sentences, saved with ``save_pretrained``: nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from radloop.models.images import image_from_pixels
from radloop.study import Image

HAS_TORCH = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))

SENTENCES = [
    "The lungs are clear.",
    "No pleural effusion. No pneumothorax.",
    "Small left pleural effusion.",
    "Heart size is normal.",
    "Endotracheal tube tip 40 mm above the carina.",
    "IMPRESSION: No acute cardiopulmonary abnormality.",
    '{"findings": [{"code": "pneumothorax", "presence": "absent"}]}',
]

# A minimal chat template in the shape of the real ones: content parts of type image and text.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<start_of_turn>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}{{ IMAGE }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>assistant\\n' }}{% endif %}"
)


@pytest.fixture
def radiograph() -> Image:
    rng = np.random.default_rng(0)
    return image_from_pixels(rng.random((48, 40)).astype(np.float32))


ServerFactory = Callable[..., AbstractContextManager[tuple[Any, Any]]]


@pytest.fixture
def serve() -> ServerFactory:
    """``with serve(model, fault_injection=..., **client_options) as (client, app):``.

    Serves ``model`` with ``radloop.models.server`` on a free loopback port and connects an
    ``openai`` backend to it, so every request crosses real HTTP.
    """
    from radloop.models import load_model
    from radloop.models.server import create_app, running_server

    @contextmanager
    def start(
        served: Any, /, *, fault_injection: Any = None, **client_options: Any
    ) -> Iterator[tuple[Any, Any]]:
        app = create_app(served, fault_injection=fault_injection)
        with (
            running_server(app) as base_url,
            load_model("openai", base_url=base_url, **client_options) as client,
        ):
            yield client, app

    return start


def _tokenizer(special: list[str], named: dict[str, str]) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<pad>", "<eos>", "<bos>", "<unk>", *special],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(SENTENCES, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens=named,
    )


def _text_sizes(tokenizer: Any) -> dict[str, Any]:
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 512,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


_VISION_SIZES = {
    "image_size": 16,
    "patch_size": 4,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
}


def build_tiny_llava(directory: Path) -> Path:
    """LLaVA: a CLIP vision tower, a projector and a Llama language model."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = _tokenizer(["<image>"], {"image_token": "<image>"})
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(**_VISION_SIZES, projection_dim=32),
        text_config=LlamaConfig(**_text_sizes(tokenizer)),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(directory)
    LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}
        ),
        tokenizer=tokenizer,
        patch_size=4,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's class token, dropped by "default"
        chat_template=CHAT_TEMPLATE.replace("IMAGE", "'<image>'"),
    ).save_pretrained(directory)
    return directory


def build_tiny_gemma3(directory: Path) -> Path:
    """Gemma 3 (MedGemma's architecture): a SigLIP vision tower and a Gemma 3 text model."""
    import torch
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessor,
        Gemma3Processor,
        Gemma3TextConfig,
        SiglipVisionConfig,
    )

    named = {
        "image_token": "<image_soft_token>",
        "boi_token": "<start_of_image>",
        "eoi_token": "<end_of_image>",
    }
    tokenizer = _tokenizer(list(named.values()), named)
    config = Gemma3Config(
        vision_config=SiglipVisionConfig(**_VISION_SIZES),
        text_config=Gemma3TextConfig(**_text_sizes(tokenizer), head_dim=16, sliding_window=64),
        mm_tokens_per_image=4,  # 4 x 4 patches pooled to 2 x 2
        boi_token_index=tokenizer.convert_tokens_to_ids("<start_of_image>"),
        eoi_token_index=tokenizer.convert_tokens_to_ids("<end_of_image>"),
        image_token_index=tokenizer.convert_tokens_to_ids("<image_soft_token>"),
    )
    torch.manual_seed(0)
    Gemma3ForConditionalGeneration(config).save_pretrained(directory)
    Gemma3Processor(
        image_processor=Gemma3ImageProcessor(size={"height": 16, "width": 16}),
        tokenizer=tokenizer,
        image_seq_length=4,
        chat_template=CHAT_TEMPLATE.replace("IMAGE", "'<start_of_image>'"),
    ).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny image-text-to-text checkpoints saved locally: llava and gemma3."""
    if not HAS_TORCH:
        pytest.skip("torch and transformers are not installed: pip install 'radloop[transformers]'")
    import warnings

    root = tmp_path_factory.mktemp("checkpoints")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "llava": build_tiny_llava(root / "llava"),
            "gemma3": build_tiny_gemma3(root / "gemma3"),
        }
