"""Tiny reward models saved like hub verifiers (random weights: for plumbing, not for scores)."""

import json

from laser import tiny

STEP = "<extra_0>"


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


def save_verifier(path, kind: str, *, remote_code: str | None = None):
    """Model and tokenizer of a tiny `outcome` or `prm` verifier saved to `path`; PRMs get the
    step token. `remote_code` (a module defining `RewardModel`) is saved beside it and mapped
    to AutoModel, as the Qwen2.5-Math RMs ship their own code."""
    tok = tiny.build_tokenizer()
    if kind == "prm":
        tok.add_tokens([STEP], special_tokens=True)
    model = build_reward_model(tok, kind=kind, seed=0)
    tiny.save_pretrained(model, tok, path)
    if remote_code:
        (path / "modeling_rm.py").write_text(remote_code)
        conf = json.loads((path / "config.json").read_text())
        conf["auto_map"] = {"AutoModel": "modeling_rm.RewardModel"}
        (path / "config.json").write_text(json.dumps(conf))
    return model, tok
