import pytest
import yaml

from conftest import ROOT
from laser.config import ConfigError, load, validate

CONFIGS = sorted((ROOT / "config").glob("*.yaml"))


@pytest.fixture
def base():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_pass_validation_and_the_preflight(path):
    """What Snakemake does with each shipped config when it parses the workflow."""
    from laser.checks import preflight

    preflight(load(path), str(path))


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


def test_one_seed_fixes_the_whole_run(base):
    """generation.seed null (the embedded default) follows the top-level seed: seed 0 samples with 42
    (the paper's), `--config seed=3` with 45, as the seed benchmark's rows; an explicit one stays."""
    assert validate(base)["generation"]["seed"] == 42
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    base["seed"] = 3
    assert validate(base)["generation"]["seed"] == 45
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    base["generation"]["seed"] = 7
    assert validate(base)["generation"]["seed"] == 7


def test_nested_config_overrides_get_the_schema_types(base):
    """Snakemake's YAML base loader makes every scalar of `--config 'generation={seed: 45}'` a string."""
    from laser.config import coerce_overrides

    overrides = {"generation": {"seed": "45", "temperature": "0.5", "backend": "transformers"},
                 "training": {"use_vllm": "false", "validation": {"benchmark": "null", "every": "5"}},
                 "models": {"tiny": {"z_c": "123"}}}
    for section, values in overrides.items():
        for key, value in values.items():
            base[section][key] = value if not isinstance(value, dict) else {**base[section].get(key, {}), **value}
    coerce_overrides(base, overrides)
    assert base["generation"]["seed"] == 45 and base["generation"]["temperature"] == 0.5
    assert base["generation"]["backend"] == "transformers"
    assert base["training"]["use_vllm"] is False
    assert base["training"]["validation"]["benchmark"] is None and base["training"]["validation"]["every"] == 5
    assert base["models"]["tiny"]["z_c"] == "123"  # a string key stays a string
    validate(base)
