import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))
from _bootstrap import setup

cfg = setup(snakemake)  # the verifier's section
from laser.io import read_jsonl, write_jsonl
from laser.verifiers import load_verifier, verify

model, tok = load_verifier(cfg)
for src, dst in zip(snakemake.input.generations, snakemake.output):
    judged = verify(read_jsonl(src), cfg, model=model, tok=tok)
    write_jsonl(dst, judged)
    scores = [s for j in judged for s in j["verifier_scores"]]
    print(f"{dst}: {len(scores)} solutions, mean P(correct) {sum(scores) / max(len(scores), 1):.3f}")
