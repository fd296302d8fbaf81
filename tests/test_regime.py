"""Issue #14's regime: harder task levels and the completion length they need, the larger embedded model option,
the `regime` spec's plan (level x budget x model size x method) and its report (ΔAvg table and heatmap with a
seed t-interval and a paired bootstrap CI), checked on a real SQLite MLflow store filled with synthetic runs
logged the way the runner logs them (no training)."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from analysis import bootstrap, regime
from analysis.report import make_report
from experiments.plan import plan_runs
from experiments.spec import load_spec
from igrpo.errors import ConfigError
from igrpo.eval.suites import SampleRows, log_per_problem
from igrpo.tasks.arith import LEVELS, check_level_fits, make_problem, max_solution_chars
from igrpo.tracking.names import PHASE_TRAIN, TAG_ARM, TAG_EXPERIMENT, TAG_GROUP, TAG_PHASE, TAG_SCALE, TAG_SEED
from igrpo.tracking.runs import mlflow_run
from tests.helpers import compose_config

# --- levels -------------------------------------------------------------------------------------------------------


def test_harder_levels_exist_with_their_term_counts():
    assert LEVELS["harder"] == 7 and LEVELS["hardest"] == 9
    rng = random.Random(0)
    for level in ("harder", "hardest"):
        p = make_problem(rng, level)
        assert sum(ch in "+-" for ch in p.problem) == LEVELS[level] - 1
        assert p.solution.endswith(f" #### {p.answer}")


def test_worst_case_solution_length_bounds_and_is_reached():
    assert max_solution_chars("easy") == len("99+9=108,108+9=117 #### 117") == 27
    assert [max_solution_chars(level) for level in ("easy", "hard", "harder", "hardest")] == [27, 47, 67, 87]
    assert max_solution_chars("hard", first_digits=1) < max_solution_chars("hard")
    assert max_solution_chars("hard", step_digits=2) > max_solution_chars("hard")
    rng = random.Random(1)
    for level, kw in (("hard", {}), ("harder", {}), ("hardest", {}), ("hard", {"first_digits": 1, "step_digits": 2})):
        lengths = [len(make_problem(rng, level, **kw).solution) for _ in range(3000)]
        assert max(lengths) <= max_solution_chars(level, **kw)
    with pytest.raises(ConfigError, match="task level='nine' is not valid; choose one of: easy, hard, harder"):
        max_solution_chars("nine")


def test_level_fit_check_is_one_line_naming_the_field_and_the_length_needed():
    caps = {"generation.max_completion_length": 64, "eval.max_new_tokens": 64}
    check_level_fits(["easy", "hard"], 2, 1, caps)  # today's default fits
    with pytest.raises(ConfigError) as err:
        check_level_fits(["easy", "harder"], 2, 1, caps)
    assert str(err.value) == ("generation.max_completion_length=64 is too short for task level 'harder' (7 terms): "
                              "its longest worked solution needs 68 tokens with its end token; set "
                              "generation.max_completion_length>=68")
    check_level_fits(["hardest"], 2, 1, {"generation.max_completion_length": 88, "eval.max_new_tokens": 88})
    with pytest.raises(ConfigError, match="eval.max_new_tokens=87 .* set eval.max_new_tokens>=88"):
        check_level_fits(["hardest"], 2, 1, {"generation.max_completion_length": 88, "eval.max_new_tokens": 87})


# --- the larger model ---------------------------------------------------------------------------------------------


def test_tiny_large_composes_validates_and_is_5_to_10x_tiny():
    from igrpo.models.tiny import build_char_tokenizer, build_tiny_model
    from igrpo.config.validate import validate

    tokenizer = build_char_tokenizer()
    counts = {}
    for name in ("tiny", "tiny_large"):
        cfg = compose_config(f"model={name}", "tracking.uri=sqlite:////tmp/igrpo-tests-unused.db")
        validate(cfg, machine=False)
        m = cfg.model
        model = build_tiny_model(tokenizer, m.hidden_size, m.num_layers, m.num_heads, m.intermediate_size,
                                 m.max_positions, seed=0)
        counts[name] = sum(p.numel() for p in model.parameters())
    assert counts["tiny_large"] == 5_140_736  # the number in conf/model/tiny_large.yaml's comment
    assert 5 <= counts["tiny_large"] / counts["tiny"] <= 10
    large = compose_config("model=tiny_large").model
    tiny = compose_config("model=tiny").model
    assert large.name == "tiny-large"
    assert {k: v for k, v in large.items() if k.startswith("warmstart_")} == \
        {k: v for k, v in tiny.items() if k.startswith("warmstart_")}


# --- the spec -----------------------------------------------------------------------------------------------------


def test_regime_plan_has_every_cell_and_the_drop_rule():
    spec = load_spec("regime")
    runs = plan_runs(spec, "cpu")
    assert len(runs) == 30 and {r.seed for r in runs} == {0, 1, 2}
    cells = regime.regime_cells(spec, "cpu")
    got = {(c.model, c.level, c.budget): (c.igrpo, c.grpo, c.grpo_half) for c in cells}
    assert got == {("tiny", "easy", 8): ("iGRPO-8", "GRPO-8", "GRPO-4"),
                   ("tiny", "easy", 16): ("iGRPO-16", "GRPO-16", "GRPO-8"),
                   ("tiny", "hard", 8): ("iGRPO-8", "GRPO-8", "GRPO-4"),
                   ("tiny", "hard", 16): ("iGRPO-16", "GRPO-16", "GRPO-8")}  # drop rule (3): no tiny_large
    assert "Drop rule" in spec.description
    igrpo16 = next(r for r in runs if r.arm.label == "iGRPO-16")
    assert {"rollout_budget=16", "variant.num_drafts=8", "variant=igrpo"} <= set(igrpo16.overrides)
    half = next(r for r in runs if r.arm.label == "GRPO-4")
    assert {"rollout_budget=4", "variant=grpo"} <= set(half.overrides)
    # specs without explicit budgets form no cells (no regime output in their reports)
    assert regime.regime_cells(load_spec("table1"), "cpu") == []
    assert regime.regime_cells(load_spec("tableS4_budget"), "cpu") == []


@pytest.mark.parametrize("group", ["easy / tiny", "hard / tiny"])
def test_each_regime_group_composes_validates_and_fits_its_level(group):
    from igrpo.config.validate import validate

    run = next(r for r in plan_runs(load_spec("regime"), "cpu") if r.group.label == group
               and r.arm.label == "iGRPO-8")
    cfg = compose_config(*run.overrides, "tracking.uri=sqlite:////tmp/igrpo-tests-unused.db")
    validate(cfg, machine=False)
    assert cfg.variant.num_refinements == 4 and cfg.train.steps == 40 and cfg.task.eval_size == 80
    t = cfg.task
    check_level_fits([*t.train_levels, *t.eval_suites], t.first_digits, t.step_digits,
                     {"generation.max_completion_length": cfg.generation.max_completion_length,
                      "eval.max_new_tokens": cfg.eval.max_new_tokens})


def test_fig3_entropy_has_the_half_budget_grpo_arm_at_cpu_scale_only():
    spec = load_spec("fig3_entropy")
    cpu = {r.arm.label: r.overrides for r in plan_runs(spec, "cpu", [0])}
    assert set(cpu) == {"GRPO", "GRPO-4", "iGRPO"}
    assert {"variant=grpo", "rollout_budget=4"} <= set(cpu["GRPO-4"])
    assert {r.arm.label for r in plan_runs(spec, "paper")} == {"GRPO", "iGRPO"}


# --- the report, from a real store --------------------------------------------------------------------------------

SEEDS = [0, 1]
PROBLEMS = 60
K = 8
# true Δ (fractions) of each arm over the level's base success, per group; iGRPO-8 on "hard / tiny" is the effect
EFFECT = {("hard / tiny", "iGRPO-8"): 0.30}


def _scores(rng, group: str, arm: str, p: np.ndarray) -> np.ndarray:
    q = np.clip(p + EFFECT.get((group, arm), 0.0), 0, 1)
    return rng.binomial(K, q) / K


@pytest.fixture(scope="module")
def regime_store(tmp_path_factory):
    """The regime spec's planned runs for 2 seeds as FINISHED training runs in one SQLite store: params, the
    step-0 and final avg@8, and the final per-problem scores (the bootstrap's input)."""
    root = tmp_path_factory.mktemp("regime_store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    rng = np.random.default_rng(0)
    base_p = rng.uniform(0.05, 0.6, PROBLEMS)
    finals = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for run in plan_runs(load_spec("regime"), "cpu", SEEDS):
            suite = run.group.overrides[1].split("[")[1].rstrip("]")  # task.train_levels=[<level>]
            scores = _scores(rng, run.group.label, run.arm.label, base_p)
            tags = {TAG_PHASE: PHASE_TRAIN, TAG_EXPERIMENT: "regime", TAG_SCALE: "cpu", TAG_GROUP: run.group.label,
                    TAG_ARM: run.arm.label, TAG_SEED: str(run.seed)}
            with mlflow_run(uri, "regime", f"{run.arm.label}-{run.seed}", tags) as mlrun:
                mlrun.params({"train.steps": "40", "eval.samples_per_problem": str(K),
                              "task.eval_suites": f"['{suite}']"})
                mlrun.metrics({f"eval/{suite}/avg_at_{K}": float(base_p.mean())}, step=0)
                mlrun.metrics({f"eval/{suite}/avg_at_{K}": float(scores.mean())}, step=40)
                rows = SampleRows()
                rows.per_problem = {suite: {"ids": [f"{suite}:{i}" for i in range(PROBLEMS)],
                                            "scores": scores.tolist()}}
                log_per_problem(mlrun, rows, step=40)
            finals[run.key] = float(scores.mean())
        out = make_report("regime", "cpu", SEEDS, uri, root / "report")
    return out, finals, uri


def test_regime_report_table_has_t_and_paired_bootstrap_intervals(regime_store):
    out, finals, _ = regime_store
    df = pd.read_csv(out / "regime.csv")
    assert len(df) == 8  # 4 cells x (vs GRPO, vs GRPO at iGRPO's trained count)
    assert set(df.comparison) == {"GRPO", "GRPO-half"}
    row = df[(df.group == "hard / tiny") & (df.budget == 8) & (df.comparison == "GRPO")].iloc[0]
    paired = [finals[("hard / tiny", "iGRPO-8", s)] - finals[("hard / tiny", "GRPO-8", s)] for s in SEEDS]
    assert row.delta_avg == pytest.approx(np.mean(paired), abs=1e-6)
    assert row.t_half == pytest.approx(12.706 * np.std(paired, ddof=1) / np.sqrt(2), rel=1e-3)
    assert 0.2 < row.boot_low < row.delta_avg < row.boot_high < 0.4 and row.boot_excludes_0  # true Δ: +0.30
    half = df[(df.group == "hard / tiny") & (df.budget == 16) & (df.comparison == "GRPO-half")].iloc[0]
    assert half.baseline == "GRPO-8" and half.method == "iGRPO-16"
    null = df[(df.group == "easy / tiny") & (df.comparison == "GRPO")]
    assert (null.boot_low < 0).all() and (null.boot_high > 0).all()  # identical arms: intervals cover 0
    assert not null.boot_excludes_0.any()
    text = (out / "regime.md").read_text()
    assert bootstrap.METHOD in text and regime.CONDITIONS["GRPO-half"] in text and "single-shot" in text
    assert "| tiny | hard | 8 | iGRPO-8 − GRPO-8 (GRPO) |" in text


def test_regime_report_has_the_heatmap_in_files_and_html(regime_store, tmp_path):
    out, _, uri = regime_store
    assert (out / "figures" / "regime_heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (out / "figures" / "regime_heatmap.svg").read_text()[:2000]
    html = (out / "report.html").read_text()
    assert 'id="fig-regime_heatmap"' in html and "same trained count" in html
    again = make_report("regime", "cpu", SEEDS, uri, tmp_path / "again")  # byte-identical on a rerun
    for name in ("regime.md", "regime.csv", "figures/regime_heatmap.png", "figures/regime_heatmap.svg"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_regime_rows_need_both_partners_in_the_group():
    spec = load_spec("regime")
    group = spec.scale("cpu").groups[1]
    assert group.label == "hard / tiny" and regime.group_axes(group) == ("tiny", "hard")
    assert regime.arm_budget(spec.arms[3]) == ("igrpo", 8, 4)
    assert regime.arm_budget(spec.arms[0]) == ("grpo", 4, 4)
    fig3 = load_spec("fig3_entropy")
    assert regime.arm_budget(fig3.arms[0]) is None  # no explicit rollout_budget: not part of a cell
