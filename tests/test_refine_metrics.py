"""iGRPO refinement diagnostics (#14): the pure functions behind ``refine/*`` and the binary-correct zero-variance
of both stages, then a real smoke-size iGRPO run (tiny model, TRL, MLflow sqlite) that logs them."""

from __future__ import annotations

import pytest

from igrpo.core.metrics import (
    REFINE_RATES,
    add_counts,
    correct_flags,
    first_of_each_group,
    frac_groups_zero_std,
    refine_counts,
    refine_rates,
)


def rates(shown, ok, refined, right):
    return refine_rates(refine_counts(shown, ok, refined, right))


class TestRefineRates:
    def test_copy_and_fix_split_by_the_shown_drafts_grade(self):
        # shown right "5": copied twice, changed once (wrong); shown wrong "7": copied once, fixed once, one other
        shown = ["5", "5", "5", "7", "7", "7"]
        ok = [True, True, True, False, False, False]
        refined = ["5", "5.0", "4", "7", "5", "9"]
        right = [True, True, False, False, True, False]
        r = rates(shown, ok, refined, right)
        assert r["copy_rate"] == pytest.approx(3 / 6)  # "5.0" matches "5" after normalisation
        assert r["copy_rate_shown_correct"] == pytest.approx(2 / 3)
        assert r["copy_rate_shown_wrong"] == pytest.approx(1 / 3)
        assert r["fix_rate"] == pytest.approx(1 / 3)
        assert r["keep_rate"] == pytest.approx(2 / 3)

    def test_no_wrong_draft_leaves_the_wrong_side_undefined_not_zero(self):
        r = rates(["3", "3"], [True, True], ["3", "4"], [True, False])
        assert "fix_rate" not in r and "copy_rate_shown_wrong" not in r
        assert r["copy_rate"] == 0.5 and r["copy_rate_shown_correct"] == 0.5 and r["keep_rate"] == 0.5

    def test_all_correct_step(self):
        r = rates(["1"] * 4, [True] * 4, ["1"] * 4, [True] * 4)
        assert r == {"copy_rate": 1.0, "copy_rate_shown_correct": 1.0, "keep_rate": 1.0}

    def test_no_answer_extracted(self):
        # a refinement with no answer never copies; a draft with no answer has nothing to copy, but is wrong
        r = rates([None, None, "2"], [False, False, False], [None, "2", None], [False, True, False])
        assert r["copy_rate"] == 0.0  # only the third counts: its refinement wrote no answer
        assert r["copy_rate_shown_wrong"] == 0.0
        assert r["fix_rate"] == pytest.approx(1 / 3)  # the answerless drafts count as wrong shown drafts
        assert "copy_rate_shown_correct" not in r

    def test_only_answerless_drafts_leave_copy_undefined(self):
        r = rates([None, None], [False, False], [None, None], [False, False])
        assert "copy_rate" not in r and "copy_rate_shown_wrong" not in r
        assert r["fix_rate"] == 0.0  # defined (two wrong shown drafts), and really 0

    def test_ungradeable_reference_counts_only_for_copying(self):
        r = rates(["4", "4"], [None, None], ["4", "5"], [None, None])
        assert r == {"copy_rate": 0.5}

    def test_empty_step_logs_nothing(self):
        assert rates([], [], [], []) == {}

    def test_counts_add_across_processes(self):
        a = refine_counts(["1"], [False], ["2"], [True])
        b = refine_counts(["3"], [False], ["3"], [False])
        r = refine_rates(add_counts([a, b]))
        assert r["fix_rate"] == 0.5 and r["copy_rate_shown_wrong"] == 0.5
        assert set(r) <= set(REFINE_RATES)

    def test_unequal_lengths_are_an_error(self):
        with pytest.raises(ValueError, match="equal lengths"):
            refine_counts(["1"], [True], [], [])


class TestZeroVarianceAtOneSize:
    def test_correct_flags_binarise_and_keep_ungradeable(self):
        assert correct_flags([1.0, 0.0, None, float("nan"), 0.7]) == [1.0, 0.0, None, None, 1.0]

    def test_first_members_of_each_group(self):
        assert first_of_each_group([1, 2, 3, 4, 5, 6, 7, 8], 4, 2) == [1, 2, 5, 6]
        with pytest.raises(ValueError, match="groups of 3"):
            first_of_each_group([1, 2, 3, 4], 3, 2)
        with pytest.raises(ValueError, match="keep=5"):
            first_of_each_group([1, 2, 3, 4], 4, 5)

    def test_equal_size_removes_the_group_size_effect(self):
        # groups of 4 with one right answer each, at the end: never all-equal at size 4, always at size 2
        rewards = [0.0, 0.0, 0.0, 1.0] * 3
        assert frac_groups_zero_std(rewards, 4) == 0.0
        assert frac_groups_zero_std(first_of_each_group(rewards, 4, 2), 2) == 1.0

    def test_ties_and_all_correct_groups_are_zero_variance(self):
        assert frac_groups_zero_std(correct_flags([1.0, 1.0, 0.0, 0.0, 1.0, 0.0]), 2) == pytest.approx(2 / 3)


def _logged_as(name: str) -> str:
    from igrpo.tracking.names import metric_name

    return metric_name(name)


def test_refine_metrics_keep_their_names_in_mlflow():
    assert _logged_as("refine/copy_rate") == "refine/copy_rate"
    assert _logged_as("refine/fix_rate") == "refine/fix_rate"


def _expected_rates(rows: list[dict]) -> dict[int, dict[str, float]]:
    """Per MLflow step, the refine/* rates recomputed from the rollout table (binary reward: reward 1.0 = right)."""
    from igrpo.core.answers import extract_final_answer

    out = {}
    for step in sorted({r["step"] for r in rows}):
        shown = {r["prompt_id"]: r for r in rows if r["step"] == step and r["stage"] == "draft" and r["selected"]}
        refs = [r for r in rows if r["step"] == step and r["stage"] == "refinement"]
        counts = refine_counts([extract_final_answer(shown[r["prompt_id"]]["completion"]) for r in refs],
                               [shown[r["prompt_id"]]["reward"] == 1.0 for r in refs],
                               [extract_final_answer(r["completion"]) for r in refs],
                               [r["reward"] == 1.0 for r in refs])
        out[step + 1] = refine_rates(counts)  # rollouts are recorded at global_step, metrics logged after it
    return out


def test_a_real_igrpo_run_logs_the_refinement_diagnostics(compose, tmp_path):
    """Smoke-size iGRPO through the runner into a real MLflow sqlite store: every refine/* rate is logged at
    exactly the steps where it is defined, with the value recomputed from the rollout table (every step recorded);
    zero-variance of both stages, binary correct, at own and at equal group size, every step."""
    import json

    from mlflow.tracking import MlflowClient

    from igrpo.job.runner import run

    # 64 tokens: room for the barely trained smoke model to write some final answers (copy_rate is then defined)
    cfg = compose("variant=igrpo", "train.steps=4", "eval.refine=false", "generation.max_completion_length=64")
    result = run(cfg)
    client = MlflowClient(result.tracking_uri)
    steps = [1, 2, 3, 4]
    equal = min(cfg.variant.num_drafts, cfg.variant.num_refinements)
    for name in ("refine/frac_groups_zero_std_correct", "draft/frac_groups_zero_std_correct",
                 f"refine/frac_groups_zero_std_correct_at_{equal}", f"draft/frac_groups_zero_std_correct_at_{equal}"):
        history = client.get_metric_history(result.run_id, _logged_as(name))
        assert sorted(m.step for m in history) == steps, name
        assert all(0.0 <= m.value <= 1.0 for m in history), name
    data = json.loads(open(client.download_artifacts(result.run_id, "rollouts.json", str(tmp_path))).read())
    rows = [dict(zip(data["columns"], row)) for row in data["data"]]
    expected = _expected_rates(rows)
    assert sorted(expected) == steps
    for rate in REFINE_RATES:
        history = {m.step: m.value for m in client.get_metric_history(result.run_id, _logged_as(f"refine/{rate}"))}
        want = {step: r[rate] for step, r in expected.items() if rate in r}
        assert history.keys() == want.keys(), rate  # logged exactly where defined (never a 0 for "undefined")
        assert history == pytest.approx(want), rate
    for rate in ("copy_rate", "fix_rate"):  # this run exercises both
        assert any(rate in r for r in expected.values()), rate
