"""The embedded default's tokenizer and model, built locally (no hub access needed).

The tokenizer is a byte-level BPE with no merges, exactly the Qwen2 pipeline, so that
transformers and vLLM reload it without dropping whitespace. The model is a tiny
Qwen2 causal LM with untied embeddings.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

EOS = "<|endoftext|>"
USER = "<|user|>"
ASSISTANT = "<|assistant|>"
# The reserved token z_c: registered as special so ordinary text can never produce it.
ZC = "<|reserved_special_token_0|>"
SPECIAL_TOKENS = [EOS, USER, ASSISTANT, ZC]

# One user turn, one assistant turn that ends with EOS; the generation prompt opens the
# assistant turn. Kept minimal so the tiny model's sequences stay short.
CHAT_TEMPLATE = (
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'user' -%}" + USER + "{{ m['content'] }}"
    "{%- elif m['role'] == 'assistant' -%}" + ASSISTANT + "{{ m['content'] }}" + EOS +
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}" + ASSISTANT + "{%- endif -%}"
)


def build_tokenizer():
    """A byte-level BPE tokenizer without merges: one token per byte plus the specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import PreTrainedTokenizerFast

    alphabet = ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIAL_TOKENS)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        pad_token=EOS,
        additional_special_tokens=[USER, ASSISTANT, ZC],
        model_max_length=2048,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _byte_chars() -> dict[int, str]:
    """GPT-2's byte-to-character map, whose 256 characters are `ByteLevel.alphabet()`."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:  # the other bytes map to characters 256, 257, ...
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


class ParseTimeTokenizer:
    """`build_tokenizer()`'s tokenizer as far as the checks made when Snakemake parses the workflow
    use it (`laser.checks`): the same token ids, special tokens and chat prompts, in plain Python
    (no transformers, tokenizers or jinja2 in the process that parses the workflow or in a job's
    light environment). One id per byte, ordered as the built vocabulary (the byte-level alphabet,
    sorted), then the special tokens; tests/test_parse_checks.py compares the two."""

    def __init__(self):
        chars = _byte_chars()
        order = {ch: i for i, ch in enumerate(sorted(chars.values()))}
        self._byte_ids = [order[chars[b]] for b in range(256)]
        self._char_ids = order
        self.added_tokens_encoder = {t: len(order) + i for i, t in enumerate(SPECIAL_TOKENS)}
        self.all_special_tokens = list(SPECIAL_TOKENS)
        self.chat_template = CHAT_TEMPLATE
        self.eos_token_id = self.pad_token_id = self.added_tokens_encoder[EOS]
        self.bos_token_id = self.unk_token_id = None
        self._split = re.compile("(" + "|".join(map(re.escape, SPECIAL_TOKENS)) + ")")

    def __len__(self) -> int:
        return len(self._char_ids) + len(SPECIAL_TOKENS)

    def convert_tokens_to_ids(self, tokens: list[str]) -> list[int | None]:
        return [self.added_tokens_encoder.get(t, self._char_ids.get(t)) for t in tokens]

    def encode(self, text: str) -> list[int]:
        ids = []
        for part in self._split.split(text):
            if part in self.added_tokens_encoder:
                ids.append(self.added_tokens_encoder[part])
            else:
                ids.extend(self._byte_ids[b] for b in part.encode())
        return ids

    def __call__(self, text: str, add_special_tokens: bool = False):
        return SimpleNamespace(input_ids=self.encode(text))

    def apply_chat_template(self, messages, tokenize: bool = True, add_generation_prompt: bool = False,
                            return_dict: bool = False, **_):
        """CHAT_TEMPLATE, rendered in Python."""
        text = "".join(USER + m["content"] if m["role"] == "user" else
                       ASSISTANT + m["content"] + EOS if m["role"] == "assistant" else "" for m in messages)
        text += ASSISTANT if add_generation_prompt else ""
        if not tokenize:
            return text
        ids = self.encode(text)
        return {"input_ids": ids} if return_dict else ids


def vocab_size(tokenizer) -> int:
    """The built model's vocabulary: the tokenizer's, rounded up to a multiple of 64 (unused rows
    are harmless, shapes stay tidy)."""
    return len(tokenizer) + (-len(tokenizer)) % 64


def build_model(tokenizer, *, hidden_size: int, num_layers: int, num_heads: int,
                intermediate_size: int, max_position_embeddings: int, seed: int):
    """A freshly initialised tiny Qwen2 causal LM (untied embeddings), deterministic in `seed`."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(
        vocab_size=vocab_size(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        rope_theta=10000.0,
        use_sliding_window=False,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(cfg)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def save_pretrained(model, tokenizer, path: str | Path) -> None:
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
