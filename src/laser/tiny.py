"""The embedded default's tokenizer and model, built locally (no hub access needed).

The tokenizer is a byte-level BPE with no merges, exactly the Qwen2 pipeline, so that
transformers and vLLM reload it without dropping whitespace. The model is a tiny
Qwen2 causal LM with untied embeddings.
"""

from __future__ import annotations

from pathlib import Path

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


def build_model(tokenizer, *, hidden_size: int, num_layers: int, num_heads: int,
                intermediate_size: int, max_position_embeddings: int, seed: int):
    """A freshly initialised tiny Qwen2 causal LM (untied embeddings), deterministic in `seed`."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    vocab_size = len(tokenizer)
    vocab_size += (-vocab_size) % 64  # round up: unused rows are harmless, shapes stay tidy
    cfg = Qwen2Config(
        vocab_size=vocab_size,
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


def build_reward_model(tokenizer, *, kind: str, seed: int, hidden_size: int = 32, num_layers: int = 1):
    """A tiny reward model shaped like the hub's verifiers (random weights: for plumbing, not
    for scores): `outcome` a sequence classifier with one score, `prm` a token classifier with
    two classes."""
    import torch
    from transformers import Qwen2Config, Qwen2ForSequenceClassification, Qwen2ForTokenClassification

    cfg = Qwen2Config(vocab_size=len(tokenizer) + (-len(tokenizer)) % 64, hidden_size=hidden_size,
                      intermediate_size=2 * hidden_size, num_hidden_layers=num_layers, num_attention_heads=2,
                      num_key_value_heads=2, num_labels=1 if kind == "outcome" else 2,
                      max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
    torch.manual_seed(seed)
    cls = Qwen2ForSequenceClassification if kind == "outcome" else Qwen2ForTokenClassification
    return cls(cfg).eval()


def save_pretrained(model, tokenizer, path: str | Path) -> None:
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
