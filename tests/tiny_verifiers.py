"""Tiny reward models saved like hub verifiers (random weights: for plumbing, not for scores)."""

import json

from laser import tiny

STEP = "<extra_0>"


def save_verifier(path, kind: str, *, remote_code: str | None = None):
    """Model and tokenizer of a tiny `outcome` or `prm` verifier saved to `path`; PRMs get the
    step token. `remote_code` (a module defining `RewardModel`) is saved beside it and mapped
    to AutoModel, as the Qwen2.5-Math RMs ship their own code."""
    tok = tiny.build_tokenizer()
    if kind == "prm":
        tok.add_tokens([STEP], special_tokens=True)
    model = tiny.build_reward_model(tok, kind=kind, seed=0)
    tiny.save_pretrained(model, tok, path)
    if remote_code:
        (path / "modeling_rm.py").write_text(remote_code)
        conf = json.loads((path / "config.json").read_text())
        conf["auto_map"] = {"AutoModel": "modeling_rm.RewardModel"}
        (path / "config.json").write_text(json.dumps(conf))
    return model, tok
