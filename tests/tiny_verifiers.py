"""Tiny reward models saved like hub verifiers (random weights: for plumbing, not for scores)."""

import json

import torch

from laser import tiny

STEP = "<extra_0>"


def save_verifier(model_cls, path, num_labels, *, extra_token=False, remote_code=None):
    from transformers import Qwen2Config

    tok = tiny.build_tokenizer()
    if extra_token:
        tok.add_tokens([STEP], special_tokens=True)
    cfg = Qwen2Config(vocab_size=len(tok) + (-len(tok)) % 64, hidden_size=32, intermediate_size=64,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2, num_labels=num_labels,
                      max_position_embeddings=256, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      tie_word_embeddings=False)
    torch.manual_seed(0)
    model = model_cls(cfg).eval()
    model.save_pretrained(path)
    tok.save_pretrained(path)
    if remote_code:  # a model that ships its own code, loaded through AutoModel like Qwen's RMs
        (path / "modeling_rm.py").write_text(remote_code)
        conf = json.loads((path / "config.json").read_text())
        conf["auto_map"] = {"AutoModel": "modeling_rm.RewardModel"}
        (path / "config.json").write_text(json.dumps(conf))
    return model, tok
