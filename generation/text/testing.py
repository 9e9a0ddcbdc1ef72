"""A tiny chat model built in code, for fast tests here and in the web app's tests.

It has random weights, a one-character-per-token tokenizer and a ChatML
template; it babbles, deterministically for a given seed, in about a
millisecond per token. Nothing is downloaded.
"""
from __future__ import annotations

import json
from pathlib import Path

TINY_ALPHABET = "abcdefghijklmnopqrstuvwxyz .,!?\n"
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_chat_model(
    folder: Path, *, seed: int = 0, context_length: int = 256, chat_template: str = TINY_CHAT_TEMPLATE
) -> Path:
    """Write a tiny Llama chat model and its tokenizer to ``folder`` and return it."""
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    unk, start, end = "<unk>", "<|im_start|>", "<|im_end|>"
    specials = [unk, start, end]
    vocab = {token: i for i, token in enumerate(specials + list(TINY_ALPHABET))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=unk))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token=unk,
        bos_token=start,
        eos_token=end,
        chat_template=chat_template,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": [start, end]})
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=context_length,
        bos_token_id=vocab[start],
        eos_token_id=vocab[end],
        pad_token_id=vocab[unk],
        tie_word_embeddings=False,
        initializer_range=0.2,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_model_entry(name: str, folder: Path, *, context_length: int = 256) -> str:
    """The ``ATELIER_TEXT_MODELS`` JSON that registers the tiny model at ``folder``."""
    return json.dumps(
        [{"name": name, "display_name": "Tiny test model", "source": str(folder), "context_length": context_length}]
    )
