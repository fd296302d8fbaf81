"""The warm start's auxiliary formats (igrpo.models.warmstart): every variant's own prompt is taught, with the
correct target, in exactly the layout the variant's trainer builds, so one shared base serves every method."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from igrpo.core.answers import answers_match, extract_final_answer
from igrpo.core.critique import REFINE_TEMPLATES, critique_text, fill
from igrpo.core.self_verify import parse_verdict, tiny_verify_prompt
from igrpo.core.drafts import build_refinement_prompt, resolve_template
from igrpo.errors import ConfigError
from igrpo.models.warmstart import FORMATS, batch_format, check_formats, make_example
from igrpo.tasks.arith import build_arith_task

DATA = build_arith_task(["easy", "hard"], ["easy", "hard"], 200, 10, 0, 2, 1, train_salt="test")
REFINE = resolve_template("tiny")


def examples(fmt: str, corrupt: float = 0.8, n: int = 200, cap: int | None = 16):
    rng = random.Random(3)
    return [(p, *make_example(p, DATA.prompt_template, REFINE, rng, fmt, corrupt, cap)) for p in DATA.train[:n]]


def test_plain_and_refine_targets_are_the_correct_solution():
    for fmt in ("plain", "refine"):
        for problem, prompt, target in examples(fmt):
            assert target == problem.solution
    for problem, prompt, _ in examples("refine"):
        draft = prompt.split("\nDraft:")[1].rsplit("\nA:", 1)[0]
        assert len(draft) <= 16 and prompt == build_refinement_prompt(REFINE, problem.problem, draft)


def test_critique_prompt_is_the_trainers_layout_and_its_critique_is_true():
    seen = Counter()
    for problem, prompt, target in examples("critique"):
        assert target == problem.solution
        shown = prompt.split("\nDraft:")[1].split("\nCritique:")[0]
        critique = prompt.split("\nCritique:")[1].rsplit("\nA:", 1)[0]
        correct = critique == critique_text("indicative_gt", True, problem.answer)
        assert correct or critique == critique_text("indicative_gt", False, problem.answer)
        # the critique judges the whole answer; the shown tail ends with that answer
        assert answers_match(extract_final_answer(shown), problem.answer) == correct
        assert prompt == fill(REFINE_TEMPLATES["tiny"], problem.problem, shown, critique) and len(shown) <= 16
        seen[correct] += 1
    assert 0.1 < seen[True] / sum(seen.values()) < 0.35  # corrupt_fraction 0.8 (a few corruptions fail to apply)


def test_verify_target_is_the_true_verdict_and_balanced():
    labels = []
    for problem, prompt, target in examples("verify"):
        graded = prompt.split("\nA:", 1)[1].rsplit("\nVerify:", 1)[0]
        assert prompt == tiny_verify_prompt(problem.problem, graded)
        label = parse_verdict(target)
        assert label == answers_match(extract_final_answer(graded), problem.answer)
        labels.append(label)
    assert 0.35 < sum(labels) / len(labels) < 0.65


def test_batch_formats_split_equally():
    rng = random.Random(0)
    counts = Counter(batch_format(rng, 0.5, list(FORMATS)) for _ in range(6000))
    assert 0.47 < counts["plain"] / 6000 < 0.53
    for fmt in FORMATS:
        assert 0.14 < counts[fmt] / 6000 < 0.19
    assert batch_format(random.Random(0), 0.9, []) == "plain"


@pytest.mark.parametrize("formats, message", [
    (["refine", "draft"], "'draft' is not valid; choose from: refine, critique, verify"),
    (["verify", "verify"], "names a format twice"),
])
def test_bad_formats(formats, message):
    with pytest.raises(ConfigError, match=message):
        check_formats(formats)


def test_warmstart_seed_zero_keeps_the_default_cache_key_and_another_seed_moves_it():
    from igrpo.models.loading import cache_key, tiny_build_spec
    from tests.helpers import compose_config

    cfg = compose_config()
    spec = tiny_build_spec(cfg.model, cfg.task)
    assert "warmstart_seed" not in spec["model"] and spec["model"]["warmstart_formats"] == ["refine"]
    other = compose_config("model.warmstart_seed=1")
    assert cache_key(tiny_build_spec(other.model, other.task)) != cache_key(spec)


def test_the_base_does_not_depend_on_the_task_levels_or_eval_size():
    """One base per model: the warm start draws from model.warmstart_levels minus a fixed hold-out, so the task's
    levels and eval size do not enter the cache key (the regime's levels share a base), the warm-start levels do."""
    from igrpo.models.loading import cache_key, tiny_build_spec
    from tests.helpers import compose_config

    def key(*overrides):
        cfg = compose_config(*overrides)
        return cache_key(tiny_build_spec(cfg.model, cfg.task))

    assert key() == key("task.train_levels=[harder]", "task.eval_suites=[harder]", "task.eval_size=400")
    assert key() != key("model.warmstart_levels=[easy,hard]")
    assert key() != key("experiment=answer_tail")


def test_warm_start_pool_holds_out_every_eval_suite_up_to_the_holdout():
    from igrpo.tasks.arith import LEVELS, WARMSTART_HOLDOUT, build_arith_task

    pool = build_arith_task(["easy", "hard", "harder"], list(LEVELS), 2000, WARMSTART_HOLDOUT, 0,
                            train_salt="warmstart").train
    largest = build_arith_task(["easy"], list(LEVELS), 10, WARMSTART_HOLDOUT, 0).eval_suites
    smaller = build_arith_task(["easy"], ["hard", "harder"], 10, 400, 0).eval_suites
    assert {p.problem for p in pool}.isdisjoint(p.problem for suite in largest.values() for p in suite)
    for level, suite in smaller.items():  # a smaller suite is a prefix of the held-out one
        assert [p.problem for p in suite] == [p.problem for p in largest[level][:400]]


@pytest.mark.parametrize("overrides, message", [
    (["variant=igrpo", "variant.max_draft_tokens=16"],
     r"variant.max_draft_tokens=16 cuts drafts the tiny base was warm-started on whole"),
    (["experiment=answer_tail", "variant=igrpo", "variant.max_draft_tokens=64"],
     "variant.max_draft_tokens=64 differs from model.warmstart_max_draft_tokens=16"),
    (["experiment=answer_tail", "variant=critique_grpo", "variant.max_solution_tokens=32"],
     "variant.max_solution_tokens=32 differs from model.warmstart_max_draft_tokens=16"),
    (["model.warmstart_seed=-1"], "model.warmstart_seed=-1 is not valid"),
    (["model.warmstart_levels=[easy,medium]"], "model.warmstart_levels entry"),
    (["task.eval_size=1001"], "task.eval_size=1001 is not valid with the tiny model"),
])
def test_one_draft_cap_for_the_warm_start_and_the_variant(overrides, message):
    from igrpo.config.validate import validate
    from tests.helpers import compose_config

    with pytest.raises(ConfigError, match=message):
        validate(compose_config(*overrides), machine=False)
    validate(compose_config("variant=igrpo", "variant.max_draft_tokens=64", "model.warmstart_max_draft_tokens=64"),
             machine=False)
    for variant in ("igrpo", "critique_grpo"):  # the named departure sets both caps; the default cuts nothing
        validate(compose_config("experiment=answer_tail", f"variant={variant}"), machine=False)
        validate(compose_config(f"variant={variant}"), machine=False)


def test_one_format_draws_what_the_refine_only_recipe_always_drew():
    """A refine-only build consumes the RNG exactly as before formats existed (one draw per batch's kind), so the
    default base is the same model."""
    a, b = random.Random(4), random.Random(4)
    for _ in range(500):
        assert batch_format(a, 0.5, ["refine"]) == ("refine" if b.random() < 0.5 else "plain")
    assert a.random() == b.random()


def test_table1_cpu_scale_shares_the_all_format_base():
    from experiments.plan import plan_runs
    from experiments.spec import load_spec

    runs = plan_runs(load_spec("table1"), "cpu", None, [])
    assert runs and all("model.warmstart_formats=[refine,critique,verify]" in r.overrides for r in runs)
