import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))
from _bootstrap import setup

config = setup(snakemake)
from laser.io import read_jsonl, write_jsonl
from laser.verifiers import load_verifier, verify

cfg = config["verifiers"][snakemake.wildcards.verifier]
model, tok = load_verifier(cfg)
for src, dst in zip(snakemake.input.generations, snakemake.output):
    judged = verify(read_jsonl(src), cfg, model=model, tok=tok)
    write_jsonl(dst, judged)
    scores = [s for j in judged for s in j["verifier_scores"]]
    print(f"{dst}: {len(scores)} solutions, mean P(correct) {sum(scores) / max(len(scores), 1):.3f}")
