import pytest
import yaml

from conftest import ROOT
from laser.config import ConfigError, load, validate

CONFIGS = sorted((ROOT / "config").glob("*.yaml"))


@pytest.fixture
def base():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_are_valid(path):
    load(path)


def test_defaults_filled(base):
    del base["generation"]["top_p"]
    cfg = validate(base)
    assert cfg["generation"]["top_p"] == 1.0
    assert cfg["benchmarks"]["arith_easy"]["problem_key"] == "problem"


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["generation"].update(temperatur=1.0),
     r"config key 'generation': unknown key\(s\) 'temperatur'; allowed: .*temperature"),
    (lambda c: c.update(modles={}), r"config key '<top level>': unknown key\(s\) 'modles'"),
    (lambda c: c["benchmarks"]["arith_easy"].update(n_smaples=2),
     r"config key 'benchmarks.arith_easy': unknown key\(s\) 'n_smaples'"),
    (lambda c: c["generation"].update(temperature="hot"),
     r"config key 'generation.temperature': 'hot' is not of type 'number'"),
    (lambda c: c.update(seed=1.5), r"config key 'seed': 1.5 is not of type 'integer'"),
    (lambda c: c["benchmarks"]["arith_easy"].update(n_samples=0),
     r"config key 'benchmarks.arith_easy.n_samples': 0 is less than the minimum of 1"),
    (lambda c: c["generation"].update(temperature=-0.5),
     r"config key 'generation.temperature': -0.5 is less than the minimum of 0"),
    (lambda c: c["models"]["tiny"]["sft"].update(learning_rate=-1e-3),
     r"config key 'models.tiny.sft.learning_rate'"),
    (lambda c: c.pop("models"), r"config key '<top level>': 'models' is a required property"),
    (lambda c: c["benchmarks"]["arith_easy"].pop("n_samples"),
     r"config key 'benchmarks.arith_easy': 'n_samples' is a required property"),
    (lambda c: c.update(train_data={"source": "jsonl"}),
     r"config key 'train_data': 'path' is a required property"),
    (lambda c: c["models"]["tiny"].update(source="pretrained"),
     r"config key 'models.tiny': 'path' is a required property"),
    (lambda c: c["generation"].update(backend="sglang"), r"config key 'generation.backend': 'sglang' is not one of"),
    (lambda c: c["models"]["tiny"]["architecture"].update(hidden_size=100, num_heads=4),
     r"models.tiny.architecture.hidden_size': head dimension 25"),
])
def test_bad_config_names_the_key(base, mutate, message):
    mutate(base)
    with pytest.raises(ConfigError, match=message):
        validate(base)


def test_yaml_errors_name_file(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("seed: [1\n")
    with pytest.raises(ConfigError, match=str(bad)):
        load(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load(bad)


def test_schema_documented_in_readme():
    """Every schema key appears in config/README.md."""
    from laser.config import load_schema

    readme = (ROOT / "config" / "README.md").read_text()
    schema = load_schema()
    keys = set()

    def walk(node):
        for k, v in node.get("properties", {}).items():
            keys.add(k)
            walk(v)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"])

    walk(schema)
    for d in schema["$defs"].values():
        walk(d)
    missing = sorted(k for k in keys if f"`{k}`" not in readme)
    assert not missing, f"config/README.md does not document {missing}"


def test_ablations_config_is_the_default_plus_ablation_methods():
    default, ablations = load(ROOT / "config" / "config.yaml"), load(ROOT / "config" / "ablations.yaml")
    extra = {k: v for k, v in ablations["methods"].items() if k not in default["methods"]}
    assert set(extra) == {"laser_no_swa", "laser_ref_forward", "laser_sft"}
    assert {**ablations, "methods": default["methods"]} == default
