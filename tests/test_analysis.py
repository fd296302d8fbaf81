"""Analysis: a real tiny table1-style run set (fig3_entropy: base / GRPO / GRPO-4 / iGRPO rows, 2 seeds, shared with
test_experiments) in a SQLite MLflow store -> the report. Cells are
recomputed straight from MLflow, Avg from the suite columns, reruns are byte-identical, and missing runs or
unknown experiments are one-line errors that write nothing. Plus pure unit tests of the aggregation."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from scipy import stats

from analysis.paper_reference import TABLE1, check_avg, table1_reference
from analysis.report import main as report_main
from analysis.report import make_report
from analysis.stats import Cell, fmt, mean_of_columns, t_interval
from analysis.tables import build_table
from experiments.spec import load_spec
from tests.test_experiments import TINY_SEEDS as SEEDS
from tests.test_experiments import tiny_fig3_runs

EXPERIMENT = "fig3_entropy"


def tiny_report(base: Path, cache: Path) -> tuple[str, Path]:
    """The shared tiny runs (launched once per session) and their report under ``base/report``."""
    uri, _ = tiny_fig3_runs(base, cache)
    report = base / "report"
    if not (report / "report.html").exists():
        make_report(EXPERIMENT, "cpu", SEEDS, uri, report)
    return uri, report


@pytest.fixture(scope="module")
def tiny_runs_report(tmp_path_factory, model_cache):
    return tiny_report(tmp_path_factory.getbasetemp() / "tiny_fig3", model_cache)


def _runs(uri: str, arm: str) -> dict[int, object]:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    found = client.search_runs([exp.experiment_id], f"tags.arm = '{arm}' and tags.phase = 'train'")
    return {int(r.data.tags["seed"]): r for r in found}


def _at(client, run_id: str, key: str, step: int) -> float:
    values = [m.value for m in client.get_metric_history(run_id, key) if m.step == step]
    assert values, (key, step)
    return values[-1]


def test_report_writes_every_format(tiny_runs_report):
    _, out = tiny_runs_report
    for name in ("table.md", "table.tex", "table.csv", "table_seeds.csv", "training.md", "training.csv",
                 "paper_reference.md", "runs.csv", "report.html"):
        assert (out / name).stat().st_size > 0, name
    for fig in load_spec(EXPERIMENT).figures:
        assert (out / "figures" / f"{fig}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (out / "figures" / f"{fig}.svg").read_bytes()[:2000]
    assert "\\begin{tabular}" in (out / "table.tex").read_text()


def test_cells_are_recomputed_from_mlflow(tiny_runs_report):
    uri, out = tiny_runs_report
    client = MlflowClient(uri)
    table = pd.read_csv(out / "table.csv").set_index("method")
    runs = _runs(uri, "iGRPO")
    k = runs[0].data.params["eval.samples_per_problem"]
    steps = int(runs[0].data.params["train.steps"])
    for suite in ("easy", "hard"):
        final = [_at(client, runs[s].info.run_id, f"eval/{suite}/avg_at_{k}", steps) for s in SEEDS]
        assert table.loc["iGRPO", suite] == pytest.approx(100 * sum(final) / len(final), abs=1e-6)
        half = stats.t.ppf(0.975, len(final) - 1) * stats.tstd(final) / math.sqrt(len(final))
        assert table.loc["iGRPO", f"{suite}_ci95"] == pytest.approx(100 * half, abs=1e-6)
    base_runs = _runs(uri, "GRPO")  # the base row is the baseline arm's step-0 eval
    base = [_at(client, base_runs[s].info.run_id, f"eval/hard/avg_at_{k}", 0) for s in SEEDS]
    assert table.loc["base", "hard"] == pytest.approx(100 * sum(base) / len(base), abs=1e-6)
    # a training-dynamics cell that is certainly non-zero: final per-token entropy
    training = pd.read_csv(out / "training.csv").set_index("arm")
    entropy = [client.get_metric_history(runs[s].info.run_id, "train/entropy")[-1].value for s in SEEDS]
    assert min(entropy) > 0
    assert training.loc["iGRPO", "train/entropy"] == pytest.approx(sum(entropy) / len(entropy), abs=1e-6)


def test_avg_is_the_mean_of_the_suite_columns(tiny_runs_report):
    _, out = tiny_runs_report
    per_seed = pd.read_csv(out / "table_seeds.csv")
    assert list(per_seed.seed.unique()) == SEEDS and set(per_seed.method) == {"base", "GRPO", "GRPO-4", "iGRPO"}
    assert (per_seed.Avg - per_seed[["easy", "hard"]].mean(axis=1)).abs().max() < 1e-9
    table = pd.read_csv(out / "table.csv").set_index("method")
    for method, rows in per_seed.groupby("method"):
        assert table.loc[method, "Avg"] == pytest.approx(100 * rows.Avg.mean(), abs=1e-5)
        assert table.loc[method, "seeds"] == len(SEEDS)


def test_rerunning_the_report_is_byte_identical(tiny_runs_report, tmp_path):
    uri, out = tiny_runs_report
    assert report_main([EXPERIMENT, "--seeds", "0,1", "--tracking-uri", uri, "--out", str(tmp_path / "again")]) == 0
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    second = {p.relative_to(tmp_path / "again"): p.read_bytes() for p in (tmp_path / "again").rglob("*")
              if p.is_file()}
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def test_unknown_experiment_is_one_line(capsys, tmp_path):
    assert report_main(["nosuchthing", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nosuchthing" in err and "table1" in err and "selection" in err
    assert not (tmp_path / "x").exists()


def test_missing_runs_are_named_and_nothing_is_written(tiny_runs_report, capsys, tmp_path):
    uri, _ = tiny_runs_report
    assert report_main([EXPERIMENT, "--seeds", "0,1,2", "--tracking-uri", uri, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing 3 of 9" in err
    assert "GRPO seed 2" in err and "GRPO-4 seed 2" in err and "iGRPO seed 2" in err and "seed 1" not in err
    assert not (tmp_path / "x").exists()
    assert report_main(["table1", "--tracking-uri", uri, "--out", str(tmp_path / "y")]) == 2
    assert "missing 15 of 15" in capsys.readouterr().err  # table1: 4 methods + GRPO-4, x 3 seeds
    assert not (tmp_path / "y").exists()


# ---- pure unit tests -------------------------------------------------------------------------------------

def test_t_interval_matches_scipy():
    values = [0.25, 0.5, 0.75, 0.4]
    cell = t_interval(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=sum(values) / 4, scale=stats.sem(values))
    assert cell.n == 4 and cell.mean == pytest.approx((low + high) / 2)
    assert cell.half == pytest.approx((high - low) / 2)
    assert t_interval([0.3]) == Cell(0.3, None, 1)  # one seed: no interval
    assert t_interval([float("nan"), 0.2, 0.4]).n == 2  # not logged: left out, never counted as 0
    assert t_interval([]).n == 0 and fmt(t_interval([])) == "n/a"
    assert fmt(Cell(0.4504, None, 1)) == "45.04" and fmt(Cell(0.4504, 0.0123, 3)) == "45.04 ± 1.23"
    assert fmt(Cell(0.0119, 0.002, 2), signed=True) == "+1.19 ± 0.20"


def test_avg_recomputation_ignores_the_logged_mean_and_pairs_seeds():
    spec = load_spec("table2")
    values = {("GRPO", 0): (0.2, 0.4), ("GRPO", 1): (0.3, 0.1), ("iGRPO", 0): (0.6, 0.2), ("iGRPO", 1): (0.5, 0.5)}
    matched = {}
    for group in spec.scale("cpu").groups:
        for (arm, seed), (easy, hard) in values.items():
            matched[(group.label, arm, seed)] = pd.Series({
                "run_id": f"{arm}{seed}", "params.train.steps": "3", "params.eval.samples_per_problem": "8",
                "params.task.eval_suites": "['easy', 'hard']", "metrics.eval/easy/avg_at_8": easy,
                "metrics.eval/hard/avg_at_8": hard, "metrics.eval/mean/avg_at_8": 0.99})
    table = build_table(spec, "cpu", matched, [0, 1], client=None)
    assert table.suites == ["easy", "hard"] and len(table.rows) == 2 * len(spec.scale("cpu").groups)
    grpo, igrpo = table.rows[0], table.rows[1]
    assert grpo.cells["Avg"].mean == pytest.approx((0.3 + 0.2) / 2)  # per-seed means 0.3 and 0.2
    assert igrpo.delta.mean == pytest.approx(((0.4 - 0.3) + (0.5 - 0.2)) / 2)  # seed-paired
    assert grpo.delta is None and igrpo.delta.n == 2
    assert math.isnan(mean_of_columns([0.5, float("nan")]))  # no partial averages


def test_paper_reference_catches_the_misprinted_avg():
    ref = table1_reference().table
    flagged = ref[ref.check != "ok"]
    assert list(zip(flagged.model, flagged.method)) == [("DeepSeek-R1-Distill-Qwen-7B", "base")]
    assert flagged.iloc[0]["Avg (printed)"] == "61.93" and flagged.iloc[0]["Avg (recomputed)"] == "67.82"
    assert sum(not check_avg(cols, printed)[1] for _, _, cols, printed in TABLE1) == 1
