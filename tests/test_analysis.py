"""Tables and figures from results files: contract columns, averages, ablation deltas, judge
alignment errors, and byte-identical figures."""

import json
import math

import pandas as pd
import pytest

from fake_results import BENCHES, METHODS, write_fake_results
from laser import metrics
from laser.tables import load_run
from laser.io import InputError, read_jsonl


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return write_fake_results(tmp_path_factory.mktemp("r") / "results")


def test_main_table_contract(results):
    main = pd.read_csv(results / "tables" / "main.csv")
    required = ["model", "method", "benchmark", "judge", "n_samples", "accuracy", "f1_filtered", "f1_all"]
    assert list(main.columns[:4]) == required[:4] and set(required) <= set(main.columns)
    assert set(main["judge"]) == {"last_token", "generative", "orm"}  # orm: the fixture's verifier on laser
    assert len(main) == (len(METHODS) * 2 + 1) * (len(BENCHES) + 1)
    values = main[["accuracy", "f1_filtered", "f1_all", "true_acc", "false_acc"]].to_numpy()
    assert ((values >= 0) & (values <= 1)).all()
    for _, row in main[main["benchmark"] != "average"].iterrows():
        recs = read_jsonl(results / "generations" / row["model"] / row["method"] / f"{row['benchmark']}.jsonl")
        assert row["accuracy"] == pytest.approx(metrics.accuracy(recs), abs=1e-4)
        assert row["n_samples"] == BENCHES[row["benchmark"]][1]
    avg = main[(main["benchmark"] == "average") & (main["judge"] == "last_token")].set_index("method")
    per = main[(main["benchmark"] != "average") & (main["judge"] == "last_token")]
    for method in METHODS:
        assert avg.loc[method, "accuracy"] == pytest.approx(per[per["method"] == method]["accuracy"].mean(), abs=1e-4)
    assert avg.loc["laser", "f1_filtered"] > avg.loc["grpo", "f1_filtered"]  # the fixture's signal shows
    for ext in ("md", "tex"):
        assert "f1_filtered" in (results / "tables" / f"main.{ext}").read_text().replace("\\_", "_")


def test_table1_and_ablations(results):
    t1 = pd.read_csv(results / "tables" / "table1.csv")
    assert list(t1.columns) == ["model", "method", "judge", "score", "acc_easy", "acc_hard", "acc_average",
                                "f1_easy", "f1_hard", "f1_average"]
    ab = pd.read_csv(results / "tables" / "ablations.csv").set_index("method")
    assert ab.loc["laser", "delta_accuracy"] == 0.0
    assert ab.loc["grpo", "delta_f1_filtered"] == pytest.approx(
        ab.loc["grpo", "avg_f1_filtered"] - ab.loc["laser", "avg_f1_filtered"], abs=1e-4)


def test_scaling_and_calibration_tables(results):
    sc = pd.read_csv(results / "tables" / "scaling.csv")
    hard = sc[(sc["benchmark"] == "hard") & (sc["method"] == "laser") & (sc["judge"] == "last_token")]
    assert list(hard["k"]) == [1, 2, 4, 8]
    first = hard.iloc[0]
    assert first["majority"] == pytest.approx(first["weighted"], abs=1e-9)  # k=1: nothing to vote on
    cal = pd.read_csv(results / "tables" / "calibration_length.csv")
    assert {"ece", "auroc", "spearman_length"} <= set(cal.columns)
    laser = cal[(cal["method"] == "laser") & (cal["judge"] == "last_token")]
    assert (laser["auroc"] > 0.8).all()
    c_ref = pd.read_csv(results / "tables" / "c_ref.csv")
    assert c_ref.loc[0, "c_ref_mean"] == -10.0


def test_figures_written_and_reproducible(results, tmp_path):
    names = ["scaling", "rs_histograms", "reliability", "training_curves"]
    for name in names:
        for ext in ("png", "svg"):
            assert (results / "figures" / f"{name}.{ext}").stat().st_size > 1000
    again = write_fake_results(tmp_path / "again")
    for name in names:
        for ext in ("png", "svg"):
            assert (again / "figures" / f"{name}.{ext}").read_bytes() == \
                (results / "figures" / f"{name}.{ext}").read_bytes(), f"{name}.{ext}"
    for name in ("main", "scaling"):
        assert (again / "tables" / f"{name}.csv").read_bytes() == (results / "tables" / f"{name}.csv").read_bytes()


def test_unscored_or_misaligned_files_are_errors(results, tmp_path):
    src = results / "generations" / "tiny" / "laser" / "easy.jsonl"
    recs = read_jsonl(src)
    bad = tmp_path / "generations" / "tiny" / "laser" / "easy.jsonl"
    bad.parent.mkdir(parents=True)
    bad.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "self_rewarding_scores"}) + "\n"
                           for r in recs))
    with pytest.raises(InputError, match=r"easy.jsonl:1: no self_rewarding_scores"):
        load_run(bad)
    judge = results / "judge" / "tiny" / "laser" / "hard.jsonl"
    with pytest.raises(InputError, match="do not match"):
        load_run(src, judge)


def test_empty_benchmark_gives_nan_rows_not_a_crash(tmp_path):
    from laser.tables import Run, main_table, scaling_table

    run = Run("m", "laser", "empty", [], {"last_token": []})
    main = main_table([run])
    row = main[main["benchmark"] == "empty"].iloc[0]
    assert row["n_problems"] == 0 and math.isnan(row["accuracy"]) and math.isnan(row["f1_filtered"])
    assert scaling_table([run], n_subsets=4, seed=0).empty


def _run(benchmark, acc, scores, method="laser", score="r_s"):
    from laser.tables import Run

    recs = [{"id": f"{benchmark}-{i}", "pred_answers": ["1"] * len(a), "acc_list": a, "responses": ["x"] * len(a)}
            for i, a in enumerate(acc)]
    return Run("m", method, benchmark, recs, {"last_token": scores}, score=score)


def test_benchmark_with_an_empty_class_has_f1_zero_and_counts_in_the_average():
    """Official definition: every solution correct -> false_acc 0 -> F1 0, and the averages over
    benchmarks include that 0 (they skipped a NaN before, which gave 1.0 here)."""
    from laser.tables import ablations_table, main_table, table1

    runs = [_run("mixed", [[True, False]], [[0.9, 0.1]]),   # judged perfectly: F1 1
            _run("solved", [[True, True]], [[0.9, 0.8]])]   # all correct, all judged correct: F1 0
    main = main_table(runs).set_index("benchmark")
    assert main.loc["mixed", "f1_filtered"] == 1.0
    assert main.loc["solved", ["true_acc", "false_acc", "f1_filtered", "f1_all"]].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert main.loc["average", "f1_filtered"] == 0.5 and main.loc["average", "f1_all"] == 0.5
    assert main.loc["average", "false_acc"] == 0.5
    assert table1(main.reset_index()).iloc[0]["f1_average"] == 0.5
    assert ablations_table(main.reset_index()).iloc[0]["avg_f1_filtered"] == 0.5


def test_score_column_names_what_each_judge_scores_by(tmp_path, results):
    """The SFT ablation is judged by p(z_c) (metadata `scoring.score`); the tables say so."""
    from laser.tables import ablations_table, main_table, table1
    from laser.io import write_json

    for method in ("laser", "laser_sft"):
        g = tmp_path / "generations" / "tiny" / method / "easy.jsonl"
        g.parent.mkdir(parents=True)
        g.write_bytes((results / "generations" / "tiny" / "laser" / "easy.jsonl").read_bytes())
    write_json(tmp_path / "generations" / "tiny" / "laser_sft" / "metadata.json", {"scoring": {"score": "p_zc"}})
    runs = [load_run(tmp_path / "generations" / "tiny" / m / "easy.jsonl",
                     results / "judge" / "tiny" / "laser" / "easy.jsonl") for m in ("laser", "laser_sft")]
    assert [r.score for r in runs] == ["r_s", "p_zc"]  # no metadata.json: r_s
    main = main_table(runs)
    got = main.groupby(["method", "judge"])["score"].agg(set).to_dict()
    assert got == {("laser", "last_token"): {"r_s"}, ("laser", "generative"): {"verdict"},
                   ("laser_sft", "last_token"): {"p_zc"}, ("laser_sft", "generative"): {"verdict"}}
    assert list(table1(main).columns[:4]) == ["model", "method", "judge", "score"]
    assert ablations_table(main).set_index("method")["score"].to_dict() == {"laser": "r_s", "laser_sft": "p_zc"}
    main_csv = pd.read_csv(results / "tables" / "main.csv")  # the fixture's verifier row
    assert set(main_csv.loc[main_csv["judge"] == "orm", "score"]) == {"p_correct"}
