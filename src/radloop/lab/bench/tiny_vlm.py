"""A tiny image-text-to-text checkpoint built on this machine, for plumbing benchmarks.

LLaVA's architecture (a CLIP vision tower, a projector, a Llama language model) with random
weights and a word-level tokenizer of 20 tokens, saved with ``save_pretrained``: nothing is
downloaded. Its words include the answers to radloop's closed questions (yes, no, left, right,
both), and its whole vocabulary fits in the 20 top log-probabilities an OpenAI-compatible
server returns, so an answer's P(yes) is always defined. What it writes means nothing.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

__all__ = ["VOCABULARY", "build_tiny_vlm"]

_SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>", "<image>"]
VOCABULARY = [
    *_SPECIAL,
    "yes", "no", "left", "right", "both", "the", "lungs", "are", "clear", "small",
    "pleural", "effusion", "pneumothorax", "consolidation", ".",
]  # fmt: skip

_TEMPLATE = (
    "{% for message in messages %}{{ '<bos> ' + message['role'] + ' ' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}{{ ' <image> ' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ ' <eos> ' }}{% endfor %}{% if add_generation_prompt %}{{ '<bos> assistant ' }}{% endif %}"
)


def _tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers

    fast: Any = importlib.import_module("transformers").PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCABULARY)}, "<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    tokenizer.add_special_tokens(_SPECIAL)
    return fast(
        tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>",
        pad_token="<pad>", extra_special_tokens={"image_token": "<image>"},
    )  # fmt: skip


def build_tiny_vlm(directory: Path, seed: int = 0) -> Path:
    """Save the tiny LLaVA checkpoint into ``directory``; the directory."""
    # transformers' constructors are loosely typed: handled as Any at this one boundary.
    torch: Any = importlib.import_module("torch")
    tf: Any = importlib.import_module("transformers")
    tokenizer = _tokenizer()
    sizes: dict[str, Any] = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 2}  # fmt: skip
    config = tf.LlavaConfig(
        vision_config=tf.CLIPVisionConfig(**sizes, image_size=16, patch_size=4, projection_dim=32),
        text_config=tf.LlamaConfig(
            **sizes, vocab_size=len(VOCABULARY), num_key_value_heads=1,
            max_position_embeddings=1024, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )  # fmt: skip
    torch.manual_seed(seed)
    tf.LlavaForConditionalGeneration(config).save_pretrained(directory)
    tf.LlavaProcessor(
        image_processor=tf.CLIPImageProcessor(
            size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}
        ),
        tokenizer=tokenizer,
        patch_size=4,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=_TEMPLATE,
    ).save_pretrained(directory)
    return directory
