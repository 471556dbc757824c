# vLLM starts worker processes that re-import this file: everything stays under the guard.
if __name__ == "__main__":
    import sys
    from collections import Counter
    from pathlib import Path

    sys.path.insert(0, str(Path(snakemake.scriptdir)))
    from _bootstrap import setup

    config = setup(snakemake)
    from laser.generation import load_tokenizer
    from laser.io import read_jsonl, write_jsonl
    from laser.judge import judge

    tok = load_tokenizer(snakemake.input.model)
    runs = [read_jsonl(p) for p in snakemake.input.generations]
    flat = [rec for records in runs for rec in records]  # one engine for every benchmark
    judged = judge(snakemake.input.model, flat, config["generation"], config["judge"], tokenizer=tok)
    start = 0
    for records, path in zip(runs, snakemake.output):
        part = judged[start:start + len(records)]
        start += len(records)
        write_jsonl(path, part)
        counts = Counter(v for j in part for v in j["judge_verdicts"])
        print(f"{path}: " + ", ".join(f"{k} {counts[k]}" for k in ("correct", "incorrect", "unparsable", "skipped")))
