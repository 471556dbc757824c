"""Cost of the parse-time config checks (`laser.config.validate`: schema, tokenizer, prompt
lengths) beside the whole `snakemake -n` of the embedded default that runs them, in one run.

    python benchmarks/parse_time.py [--repeats 5]

Last line: `validate/dry-run time ratio: <x>` (median of the repeats; the checks should stay a
small part of the dry run).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import yaml

    from laser.config import validate

    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    validate(copy.deepcopy(raw))  # imports, tokenizer build: paid once per process
    checks, dry = [], []
    with tempfile.TemporaryDirectory() as work:
        cmd = [str(Path(sys.executable).with_name("snakemake")), "-s", str(ROOT / "Snakefile"), "-d", work, "-n",
               "--quiet"]
        for _ in range(args.repeats):
            start = time.perf_counter()
            validate(copy.deepcopy(raw))
            checks.append(time.perf_counter() - start)
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            dry.append(time.perf_counter() - start)
    c, d = statistics.median(checks), statistics.median(dry)
    print(f"validate: {c:.3f} s, snakemake -n: {d:.2f} s (medians of {args.repeats})")
    print(f"validate/dry-run time ratio: {c / d:.3f}")


if __name__ == "__main__":
    main()
