"""The starting model of every run (`results/models/{model}/base/`).

`build`: the embedded default. A tiny Qwen2 is initialised from the seed and warmed up by SFT
(TRL's SFTTrainer) on the training split's reference solutions, so that RL starts from a
model that solves some, not all, problems.
`pretrained`: a hub id or local directory, loaded once through `from_pretrained` (which
downloads a hub model into the Hugging Face cache) and referenced, not copied: base/ holds only
`reference.json`, and every job loads the directory `resolve_base` names.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import tasks, tiny
from .io import InputError, atomic_path, dir_digest, write_json

# A pretrained model's base/ holds this file instead of a second copy of the weights (6-15 GB
# each for the paper's models). {"source": "hub", "path": hub id, "revision": the resolved
# commit, "requested_revision": models.<name>.revision, "files": the snapshot's file names}, or
# {"source": "local", "path": absolute directory, "revision": "sha256:" + digest of its files,
# "files": {name: [size, mtime_ns]}}.
REFERENCE = "reference.json"


def check_z_c(tokenizer, z_c: str, where: str) -> int:
    """Token id of z_c; it must be one special token that ordinary text never produces."""
    ids = tokenizer.convert_tokens_to_ids([z_c])
    zid = ids[0] if ids else None
    if zid is None or zid == tokenizer.unk_token_id:
        raise InputError(f"config key '{where}': {z_c!r} is not a token of the tokenizer")
    encoded = tokenizer(z_c, add_special_tokens=False).input_ids
    if encoded != [zid]:
        raise InputError(f"config key '{where}': {z_c!r} encodes to {encoded}, not the single id {zid}")
    if z_c not in tokenizer.all_special_tokens and z_c not in getattr(tokenizer, "added_tokens_encoder", {}):
        raise InputError(f"config key '{where}': {z_c!r} is an ordinary token; choose an unused special token")
    if zid in (tokenizer.eos_token_id, tokenizer.pad_token_id):  # every scored sequence ends with EOS
        raise InputError(f"config key '{where}': {z_c!r} is the tokenizer's end-of-sequence or padding token; "
                         f"choose an unused special token")
    return zid


# Each SFT solution ends with the start of the next user turn: `solution EOS <|user|>`. A
# pretrained LM learns the position after EOS from packed documents (a new one starts there),
# which puts log pi(z_c | x, y, EOS) of an unused token low and nearly constant, the premise of
# a constant c_ref (docs/paper.md: Qwen2.5 -23.11 +- 0.04). Untrained, that position gave the tiny
# model c_ref -8.6 to -12.2 with std 0.8-2.3 over seeds 0-4, so untrained (base, GRPO) r_s
# crossed 0.5 at random; trained, -12.2 to -14.2 with std 0.4-0.6 (docs/results.md).
NEXT_TURN = {"role": "user", "content": ""}


def _sft_rows(train: list[dict]) -> list[dict]:
    rows = []
    for rec in train:
        if not rec.get("solution"):
            raise InputError(f"train record {rec['id']}: SFT warm-up needs a reference 'solution'")
        rows.append({"prompt": rec["messages"],
                     "completion": [{"role": "assistant", "content": rec["solution"]}, NEXT_TURN]})
    return rows


def _corrupt_answer(rec: dict, rng) -> str:
    """The reference solution with a wrong boxed answer (its steps kept)."""
    return rec["solution"].replace(f"\\boxed{{{rec['answer']}}}", f"\\boxed{{{tasks.wrong_answer(rec['answer'], rng)}}}")


def _verification_examples(train: list[dict], n: int, rng, *, pairs: bool = False) -> list[tuple[str, str, bool]]:
    """`n` (problem, solution, correct) examples from reference solutions. Unpaired: a problem
    with its reference solution (correct) or with a wrong boxed answer (incorrect), half each.
    `pairs`: each problem drawn gives both its reference solution and one with a slip in a step
    carried through to its answer (`tasks.slipped_solution`), so neither the problem's difficulty
    nor the answer's consistency with the steps tells them apart, only the steps' arithmetic."""
    if pairs:
        out = []
        for rec in rng.choices(train, k=n // 2):
            out += [(rec["problem"], rec["solution"], True),
                    (rec["problem"], tasks.slipped_solution(rec["problem"], rng), False)]
        return out
    out = []
    for rec in rng.choices(train, k=n):
        ok = rng.random() >= 0.5
        out.append((rec["problem"], rec["solution"] if ok else _corrupt_answer(rec, rng), ok))
    return out


CHECK_WIDTH = 5  # answers padded with '_' to this width, so Match's marks compare characters at fixed offsets


def check_text(rec: dict, solution: str) -> str:
    """`sft.verification_check`'s verification before the verdict, the way prompted real models verify:
    solve again (the reference steps and answer), copy the judged solution's answer, then mark each
    character equal or not ('Check: 8*6+0=48, 3*6+4=22. Answer 228__. Given 229__. Match ==!==. ').
    Padded to one width, each mark compares two characters at fixed distances. Measured: the tiny model
    learns the steps, the copy and a verdict that follows the marks, but not the marks themselves
    (docs/results.md, "Does r_s surface the base model's verification?")."""
    from .grading import last_boxed

    steps = rec["solution"].rsplit("\\boxed{", 1)[0].strip()
    answer, given = rec["answer"].ljust(CHECK_WIDTH, "_"), (last_boxed(solution) or "none").strip().ljust(CHECK_WIDTH, "_")
    marks = "".join("=" if a == b else "!" for a, b in zip(answer, given)) + "!" * (len(answer) != len(given))
    return f"Check: {steps} Answer {answer}. Given {given}. Match {marks}. "


def _judge_rows(template: str, examples: list[tuple[str, str, bool]], references: dict | None = None) -> list[dict]:
    """SFT rows under the generative judge's template: the verdict ``\\boxed{correct}`` or
    ``\\boxed{incorrect}``, after `check_text` of the problem's record in `references` where given."""
    from .prompts import judge_prompt

    return [{"prompt": [{"role": "user", "content": judge_prompt(template, problem, solution)}],
             "completion": [{"role": "assistant", "content": (check_text(references[problem], solution) if references else "")
                             + f"\\boxed{{{'correct' if ok else 'incorrect'}}}"}]}
            for problem, solution, ok in examples]


def _sample_solutions(model, tokenizer, records: list[dict], n: int, max_tokens: int, seed: int) -> list[list[str]]:
    """`n` solutions of each record's `messages` sampled from the in-memory model at temperature 1
    (transformers `generate`, left-padded batches), the finished ones only."""
    import torch

    from .prompts import render_prompts

    torch.manual_seed(seed)
    _, ids = render_prompts(tokenizer, records)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = []
    model.eval()
    for start in range(0, len(ids), 16):
        batch = ids[start:start + 16]
        width = max(map(len, batch))
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in batch])
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in batch])
        with torch.no_grad():
            gen = model.generate(input_ids=input_ids, attention_mask=mask, do_sample=True, temperature=1.0, top_p=1.0,
                                 max_new_tokens=max_tokens, num_return_sequences=n, pad_token_id=pad)
        for k in range(len(batch)):
            texts = []
            for row in gen[k * n:(k + 1) * n, width:].tolist():
                if tokenizer.eos_token_id in row:  # finished
                    texts.append(tokenizer.decode(row[:row.index(tokenizer.eos_token_id)], skip_special_tokens=True))
            out.append(texts)
    return out


def _own_verification_examples(model, tokenizer, train: list[dict], n: int, rng, *, seed: int,
                               pairs: bool = False) -> list[tuple[str, str, bool]]:
    """`n` verification examples from the model's own solutions: it samples 4 solutions of training
    problems and the grader labels each, so the judge learns the model's own, realistic errors.
    Half the examples are correct and half incorrect; unpaired, any sampled ones, `pairs`: one
    correct and one incorrect solution of each problem that has both. What the samples lack is
    made up from reference solutions (`_verification_examples`)."""
    from .grading import grade_response

    if n == 0:
        return []
    longest = max(len(tokenizer(r["solution"], add_special_tokens=False).input_ids) for r in train)
    # pairs need problems with both outcomes, a fraction of them: sample more
    problems = rng.sample(train, min(len(train), n if pairs else (n + 3) // 4 * 2))
    graded = [[(text, grade_response(text, rec["answer"], "lenient")[1]) for text in texts]
              for rec, texts in zip(problems, _sample_solutions(model, tokenizer, problems, 4, longest + 16, seed))]
    if pairs:
        out = []
        for rec, group in zip(problems, graded):
            right, wrong = [t for t, ok in group if ok], [t for t, ok in group if not ok]
            if right and wrong and len(out) + 2 <= n:
                out += [(rec["problem"], rng.choice(right), True), (rec["problem"], rng.choice(wrong), False)]
        print(f"own verification examples: {len(out) // 2} problems with a correct and an incorrect sampled "
              f"solution of {n // 2}", flush=True)
        return out + _verification_examples(train, n - len(out), rng, pairs=True)
    out = []
    for correct in (True, False):
        found = [(rec["problem"], text, ok) for rec, group in zip(problems, graded) for text, ok in group if ok == correct]
        picked = rng.sample(found, min(n // 2, len(found)))
        out += picked
        for rec in rng.choices(train, k=n // 2 - len(picked)):  # the class the samples lack
            out.append((rec["problem"], rec["solution"] if correct else _corrupt_answer(rec, rng), correct))
        print(f"own verification examples: {len(picked)} {'correct' if correct else 'incorrect'} sampled "
              f"solutions of {n // 2}", flush=True)
    return out


def _sft_args(sft: dict, workdir: str, max_steps: int, learning_rate: float, warmup_steps: int, seed: int,
              max_length: int):
    from trl import SFTConfig

    return SFTConfig(
        output_dir=workdir,
        max_steps=max_steps,
        per_device_train_batch_size=sft["batch_size"],
        learning_rate=learning_rate,
        warmup_steps=warmup_steps,
        weight_decay=sft["weight_decay"],
        lr_scheduler_type="cosine",
        completion_only_loss=True,
        max_length=max_length,
        logging_steps=max(1, max_steps // 20),
        save_strategy="no",
        report_to=[],
        seed=seed,
        data_seed=seed,
        use_cpu=not _cuda(),
        bf16=False,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def sft_warmup(model, tokenizer, train: list[dict], sft: dict, *, seed: int, workdir: str,
               judge_template: str | None = None, where: str = "sft"):
    """Supervised warm-up with TRL's SFTTrainer (completion-only loss) on the reference solutions,
    then, with `verification_steps`, a short second phase mixing verification examples under
    the judge's template with solutions, so the tiny base model has some prompted
    self-verification (as real base models have) without weakening its arithmetic. The examples
    are reference solutions with their answer kept or corrupted, or, for the fraction
    `verification_own`, the model's own sampled solutions labelled by the grader (realistic errors);
    `verification_pairs` pairs a correct and an incorrect solution of one problem, and
    `verification_check` puts a written check (`check_text`) before each verdict.
    `where`: the config key of `sft` (models.<name>.sft), named by errors."""
    import random

    from datasets import Dataset
    from trl import SFTTrainer

    if sft["max_steps"] == 0:
        return model
    steps = sft.get("verification_steps", 0)
    if steps:  # checked before the first phase, not minutes later
        if not judge_template:
            raise InputError(f"{where}.verification_steps needs the judge template (config key 'judge.template')")
        bad = next((r for r in train if not _integer(r["answer"])), None)
        if bad is not None:
            raise InputError(f"config key '{where}.verification_steps': verification examples need integer answers "
                             f"(a wrong one is made by changing digits); train record {bad['id']} has answer "
                             f"{bad['answer']!r}; set it to 0 for this training data")
        if sft.get("verification_pairs"):
            for rec in train:
                try:
                    tasks.slipped_solution(rec["problem"], random.Random(0))
                except ValueError:
                    raise InputError(f"config key '{where}.verification_pairs': slipped solutions are made for the "
                                     f"synthetic task's problems; train record {rec['id']} has problem "
                                     f"{rec['problem']!r}; set it to false for this training data") from None
    length = model.config.max_position_embeddings
    args = _sft_args(sft, workdir, sft["max_steps"], sft["learning_rate"], sft["warmup_steps"], seed, length)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(_sft_rows(train)),
                         processing_class=tokenizer)
    trainer.train()
    model = trainer.model
    if steps:
        rng = random.Random(seed)
        half = steps * sft["batch_size"] // 2
        pairs = sft.get("verification_pairs", False)
        own = round(sft.get("verification_own", 0.0) * half)  # the model's own solutions, labelled by the grader
        examples = _own_verification_examples(model, tokenizer, train, own, rng, seed=seed, pairs=pairs)
        examples += _verification_examples(train, half - own, rng, pairs=pairs)
        references = {r["problem"]: r for r in train} if sft.get("verification_check") else None
        rows = _judge_rows(judge_template, examples, references) + rng.sample(_sft_rows(train), min(half, len(train)))
        rng.shuffle(rows)
        args = _sft_args(sft, workdir, steps, sft["learning_rate"] / 3, 0, seed, length)
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
        trainer.train()
        model = trainer.model
    return model


def _integer(answer: str) -> bool:
    try:
        int(answer)
    except ValueError:
        return False
    return True


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def base_model_job(job: dict, train_path: str | None, out: str | Path) -> None:
    """The base_model job (its settings: `laser.jobs.base_model`): a built model is warmed up on the
    training problems (`train_path`) under its training prompt; a pretrained one is referenced."""
    from .io import read_jsonl
    from .prompts import with_prompt

    spec = job["model"]
    train = with_prompt(read_jsonl(train_path), job["prompt"]) if spec["source"] == "build" else []
    make_base(spec, train, out, seed=job["seed"], name=spec["name"], judge_template=job.get("judge_template"))


def make_base(spec: dict, train: list[dict], out: str | Path, *, seed: int, name: str,
              judge_template: str | None = None) -> None:
    """Write the starting checkpoint (model + tokenizer) of one configured model, or for a pretrained
    one its reference.json (`REFERENCE`), atomically."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if spec["source"] == "build":
        tokenizer = tiny.build_tokenizer()
        check_z_c(tokenizer, spec["z_c"], f"models.{name}.z_c")
        model = tiny.build_model(tokenizer, seed=seed, **spec["architecture"])
        with atomic_path(out, is_dir=True) as tmp:
            model = sft_warmup(model, tokenizer, train, spec["sft"], seed=seed, workdir=str(tmp / "_sft"),
                               judge_template=judge_template, where=f"models.{name}.sft")
            import shutil
            shutil.rmtree(tmp / "_sft", ignore_errors=True)
            tiny.save_pretrained(model, tokenizer, tmp)
        return
    # pretrained: a hub id (at `revision`, if set) or a local directory, through the same API
    revision, local = spec.get("revision"), Path(spec["path"]).is_dir()
    try:
        if local:
            path, commit = str(Path(spec["path"]).resolve()), None
        else:
            from huggingface_hub import hf_hub_download

            # the commit `revision` (default: main) names now; every file below comes from it,
            # into the cache folder snapshots/<commit>/ that the later jobs load
            snapshot = Path(hf_hub_download(spec["path"], "config.json", revision=revision)).parent
            path, commit = spec["path"], snapshot.name
        tokenizer = AutoTokenizer.from_pretrained(path, revision=commit)
        check_z_c(tokenizer, spec["z_c"], f"models.{name}.z_c")
        # loaded once: downloads the weights and fails here, not in every later job, if they do not load
        AutoModelForCausalLM.from_pretrained(path, dtype="auto", revision=commit)
    except (OSError, *_hub_errors()) as e:
        raise InputError(f"config key 'models.{name}.path': cannot load {spec['path']!r}: {e}") from e
    if local:  # the stat first: a file changed during the digest then fails resolve_base's check
        files = _stats(Path(path))
        ref = {"source": "local", "path": path, "revision": "sha256:" + dir_digest(path), "files": files}
    else:
        ref = {"source": "hub", "path": path, "revision": commit, "requested_revision": revision,
               "files": sorted(_stats(snapshot))}
    with atomic_path(out, is_dir=True) as tmp:
        write_json(tmp / REFERENCE, ref)


def _hub_errors() -> tuple:
    """huggingface_hub's errors that are not OSErrors: a repository without the file, a malformed id."""
    from huggingface_hub.errors import EntryNotFoundError, HFValidationError

    return EntryNotFoundError, HFValidationError


def _stats(root: Path) -> dict[str, list[int]]:
    """[size, mtime_ns] of every file under `root` (symlinks followed: the hub cache's blobs)."""
    out = {}
    for f in sorted(root.rglob("*")):
        if f.is_file():
            st = f.stat()
            out[str(f.relative_to(root))] = [st.st_size, st.st_mtime_ns]
    return out


def read_reference(path: str | Path) -> dict | None:
    """The reference.json of a pretrained model's base/ `path`, or None for a checkpoint directory
    (a built or trained model) or a hub id."""
    file = Path(path) / REFERENCE
    if not file.is_file():
        return None
    try:
        ref = json.loads(file.read_text())
        if ref["source"] not in ("hub", "local") or not all(ref.get(k) for k in ("path", "revision", "files")):
            raise ValueError("needs source hub or local, path, revision and files")
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{file}: not a base-model reference ({e}); rerun rule base_model") from None
    return ref


# per process: a local directory whose file times changed (a copy, a touch) is digested once per state
_DIGESTS: dict[str, str] = {}


def resolve_base(path: str | Path) -> str:
    """The directory to load a checkpoint from with `from_pretrained` or vLLM: for a pretrained
    model's base/, the files its reference.json names (a hub model: its cache folder
    snapshots/<commit>/, downloaded again if the cache lacks files; a local directory: that
    directory, after checking it still holds the files base_model saw); any other path as is.
    A directory, not a hub id with a revision, so that every loader (TRL's vLLM rollouts take
    `model.name_or_path`) reads the same commit."""
    ref = read_reference(path)
    if ref is None:
        return str(path)
    file = Path(path) / REFERENCE
    return _local_dir(ref, file) if ref["source"] == "local" else _snapshot_dir(ref, file)


def base_version(path: str | Path) -> str:
    """What a run starting from checkpoint `path` is tied to (the training fingerprint): a hub
    model's id and resolved commit, a local directory's digest (checked by `resolve_base`), or
    the digest of a checkpoint directory's files."""
    ref = read_reference(path)
    if ref is None:
        return dir_digest(path)
    resolve_base(path)  # the files are still those of the recorded revision
    return f"{ref['path']}@{ref['revision']}" if ref["source"] == "hub" else ref["revision"]


def _local_dir(ref: dict, file: Path) -> str:
    root = Path(ref["path"])
    if not root.is_dir():
        raise InputError(f"{file}: the local model directory {root} is gone; restore it, or rerun rule base_model "
                         f"(snakemake --forcerun {file.parent}) to use what models.<name>.path now names")
    stats = _stats(root)
    if stats != ref["files"]:  # sizes or times differ: the digest decides
        key = json.dumps([str(root), stats])
        if key not in _DIGESTS:
            _DIGESTS[key] = "sha256:" + dir_digest(root)
        digest = _DIGESTS[key]
        if digest != ref["revision"]:
            raise InputError(f"{file}: the files of {root} changed since rule base_model recorded them "
                             f"({ref['revision'][:19]}..., now {digest[:19]}...): results from them would mix two "
                             f"models; rerun rule base_model and what follows (snakemake --forcerun {file.parent})")
    return str(root)


def _snapshot_dir(ref: dict, file: Path) -> str:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.file_download import repo_folder_name

    repo, commit = ref["path"], ref["revision"]
    snapshot = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo, repo_type="model") / "snapshots" / commit

    def missing(folder: Path) -> list[str]:
        return [f for f in ref["files"] if not (folder / f).is_file()]  # a deleted blob breaks its link

    if not missing(snapshot):
        return str(snapshot)
    try:  # another machine's cache, or files deleted from this one: fetch that commit's files again
        snapshot = Path(snapshot_download(repo, revision=commit, allow_patterns=ref["files"]))
        why = f"still missing {missing(snapshot)[:3]}" if missing(snapshot) else None
    except (OSError, *_hub_errors()) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
    if why is None:
        return str(snapshot)
    raise InputError(f"{file}: {repo} at commit {commit} is not (completely) in the Hugging Face cache "
                     f"{constants.HF_HUB_CACHE} and cannot be downloaded ({why}); set HF_HOME to the cache that "
                     f"rule base_model used, or allow downloads")
