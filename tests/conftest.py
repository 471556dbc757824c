import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# The paper's benchmark files, shipped with the project (data/benchmarks/README.md).
BENCHMARKS_DIR = ROOT / "data" / "benchmarks"


@pytest.fixture(scope="session")
def benchmarks_dir() -> Path:
    if not BENCHMARKS_DIR.is_dir():
        pytest.fail(f"real benchmark files expected at {BENCHMARKS_DIR}")
    return BENCHMARKS_DIR


def save_untrained(path: Path, **architecture) -> Path:
    """A freshly initialised (untrained) tiny model + tokenizer saved with save_pretrained at path;
    architecture keys override the small test shape."""
    from laser import tiny

    shape = dict(hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128, max_position_embeddings=256)
    tok = tiny.build_tokenizer()
    tiny.save_pretrained(tiny.build_model(tok, seed=0, **{**shape, **architecture}), tok, path)
    return path


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An offline Hugging Face cache: `snapshot(repo, commit, type)` is the folder of that commit,
    `ref(repo, name, commit, type)` points a branch at it."""
    import huggingface_hub.constants as constants

    cache = tmp_path / "hf"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    def folder(repo, repo_type):
        return cache / f"{repo_type}s--{repo.replace('/', '--')}"

    def snapshot(repo, commit, repo_type="model"):
        return folder(repo, repo_type) / "snapshots" / commit

    def ref(repo, name, commit, repo_type="model"):
        (folder(repo, repo_type) / "refs").mkdir(parents=True, exist_ok=True)
        (folder(repo, repo_type) / "refs" / name).write_text(commit)

    return snapshot, ref


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return save_untrained(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def warm_checkpoint(tmp_path_factory) -> Path:
    """A tiny model after a short SFT warm-up: it writes boxed answers and stops with EOS at
    varied lengths (finished and truncated solutions both occur at ~40 tokens)."""
    from laser import data
    from laser.model import make_base

    path = tmp_path_factory.mktemp("warm") / "model"
    train = data.prepare({"source": "synthetic", "tiers": ["easy", "medium"], "n_problems": 400}, name="train",
                         seed=0, suffix=" Put the answer in \\boxed{}.")
    spec = {"source": "build", "z_c": "<|reserved_special_token_0|>",
            "architecture": {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "intermediate_size": 128,
                             "max_position_embeddings": 512},
            "sft": {"max_steps": 80, "learning_rate": 0.003, "batch_size": 16, "warmup_steps": 5,
                    "weight_decay": 0.0}}
    make_base(spec, train, path, seed=0, name="warm")
    return path
