"""The prompts: what the model reads as a chat, and how long that is. Training and evaluation
prompts are the problem plus a suffix as one user message (`build_messages`, `with_prompt`; a
dataset may bring its own chat prompts), the prompted judge's is its template filled with the
problem and a solution (`judge_prompt`); `render_prompts` turns chats into the token ids the
engines receive, `prompt_length` counts them as TRL's trainer does, and `filter_overlong` drops
training prompts over the limit, as verl does.
"""

from __future__ import annotations

from .io import InputError

# What the generation engine adds to a request beyond its prompt and response: EOS, z_c and the
# one token generated after z_c (the re-prefill route scores prompt + response + EOS + z_c, then
# one token). Every context check and every engine's max_model_len counts it.
ENGINE_EXTRA = 3


def request_length(prompt_tokens: int, response_tokens: int) -> int:
    """Tokens one scored request can need: the prompt, a response of up to `response_tokens`, EOS,
    z_c and the scored token."""
    return prompt_tokens + response_tokens + ENGINE_EXTRA


def build_messages(problem: str, suffix: str) -> list[dict]:
    return [{"role": "user", "content": problem + suffix}]


def with_prompt(records: list[dict], prompt: dict) -> list[dict]:
    """`records` (copies) with the chat prompt ``messages`` = ``problem + prompt["suffix"]`` as one
    user message; a dataset that brings its own prompts (`prompt["messages_key"]`) keeps them.
    `prompt`: a job's resolved prompt (`laser.jobs.train_prompt`, `eval_prompt`)."""
    if prompt.get("messages_key"):
        missing = [r.get("id") for r in records if not r.get("messages")]
        if missing:
            raise InputError(f"records {missing[:5]} have no 'messages' although the dataset has messages_key "
                             f"{prompt['messages_key']!r}; rerun the prepare_data rule")
        return [dict(r) for r in records]
    return [{**r, "messages": build_messages(r["problem"], prompt["suffix"])} for r in records]


def judge_prompt(template: str, problem: str, solution: str) -> str:
    """The prompted judge's user message: `judge.template` with the problem and one solution."""
    return template.replace("{problem}", problem).replace("{solution}", solution)


def render_prompts(tokenizer, records: list[dict]) -> tuple[list[str], list[list[int]]]:
    """Each record's chat (``messages``) through the tokenizer's chat template with the generation
    prompt: (texts, token ids), the ids as the generation engines receive them."""
    texts = [tokenizer.apply_chat_template(r["messages"], tokenize=False, add_generation_prompt=True)
             for r in records]
    ids = [tokenizer(t, add_special_tokens=False).input_ids for t in texts]
    return texts, ids


def prompt_length(tokenizer, messages: list[dict], chat_template_kwargs: dict | None = None) -> int:
    """Tokens of a chat prompt as TRL's GRPOTrainer feeds it to the policy (`_tokenize_prompts`:
    the tokenizer's chat template with the generation prompt, tokenized by the template call)."""
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                        **(chat_template_kwargs or {}))
    ids = out["input_ids"]
    return len(ids[0]) if ids and isinstance(ids[0], list) else len(ids)


def filter_overlong(records: list[dict], tokenizer, max_len: int,
                    chat_template_kwargs: dict | None = None) -> tuple[list[dict], int]:
    """Drop the records whose chat prompt (``messages``) is longer than `max_len` tokens, as
    verl's ``data.filter_overlong_prompts`` does (the paper: 2048); order is kept.
    Returns (kept records, number dropped)."""
    kept = [r for r in records if prompt_length(tokenizer, r["messages"], chat_template_kwargs) <= max_len]
    return kept, len(records) - len(kept)
