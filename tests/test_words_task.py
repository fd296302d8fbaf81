"""task=words: generated English word problems, written as MATH records and read back by the MATH loader; and
Stage 1's degenerate-draft counts (igrpo.core.drafts.draft_health)."""

import json
import random
import re

import pytest

from igrpo.core.answers import extract_final_answer, final_boxed
from igrpo.core.drafts import draft_health
from igrpo.errors import ConfigError
from igrpo.tasks import load_task
from igrpo.tasks.words import LEVELS, eval_records, record, write_task_files
from tests.helpers import compose_config


def _solve(problem: str) -> int:
    """An independent reading of a generated problem: the numbers in order, and which operations the words name."""
    numbers = [int(n) for n in re.findall(r"\d+", problem)]
    if problem.startswith("What is"):
        return numbers[0] + numbers[1]
    if "buys" in problem:
        return numbers[0] + numbers[1] - numbers[2]
    if "finds" in problem:
        return numbers[0] + numbers[1]
    return numbers[0] - numbers[1]


@pytest.mark.parametrize("level", LEVELS)
def test_records_are_math_schema_with_the_right_boxed_answer(level):
    rng = random.Random(0)
    for _ in range(200):
        rec = record(level, rng)
        assert set(rec) == {"problem", "solution", "level", "type"}
        answer = int(final_boxed(rec["solution"]))
        assert answer == _solve(rec["problem"]) >= 0
        assert extract_final_answer(rec["solution"]) == str(answer)


def test_unknown_level_is_one_line_error():
    with pytest.raises(ConfigError, match="task level.*sum, story, story2"):
        record("hardest", random.Random(0))


def test_files_are_jsonl_and_train_is_disjoint_from_eval(tmp_path):
    paths = write_task_files(tmp_path, ["sum", "story"], ["sum", "story2"], train_size=300, eval_size=40, seed=0)
    train = [json.loads(line) for line in paths["train"].read_text().splitlines()]
    assert len(train) == 300
    held = {r["problem"] for level in ("sum", "story", "story2") for r in eval_records(level, 40, 0)}
    assert not held & {r["problem"] for r in train}
    suite = [json.loads(line) for line in paths["story2"].read_text().splitlines()]
    assert len(suite) == len({r["problem"] for r in suite}) == 40
    assert list(tmp_path.iterdir()) and not list(tmp_path.glob("*.tmp*"))  # written whole


def test_seeded_and_read_back_through_the_loader():
    cfg = compose_config("model=smollm2_135m", "task=words", "task.train_levels=[story]",
                         "task.eval_suites=[sum,story]", "task.eval_size=10", "task.train_size=20")
    first = load_task(cfg.task, seed=0, eval_cfg=cfg.eval)
    again = load_task(cfg.task, seed=1, eval_cfg=cfg.eval)  # the run seed does not change the data
    assert [p.problem for p in first.train] == [p.problem for p in again.train]
    assert list(first.eval_suites) == ["sum", "story"] and len(first.eval_suites["story"]) == 10
    assert all(p.level == "Level 2" and p.answer.isdigit() for p in first.train)
    assert "\\boxed{}" in first.prompt(first.train[0])  # the MATH instruction


@pytest.mark.parametrize("override, match", [
    ("task.train_levels=[hard]", r"task level='hard' is not valid; choose one of: sum, story, story2"),
    ("task.prompt_template=Solve", r"must contain \{problem\}"),
])
def test_bad_words_config_is_one_line(override, match):
    from igrpo.config.validate import validate

    with pytest.raises(ConfigError, match=match):
        validate(compose_config("model=smollm2_135m", "task=words", "variant=grpo", override))


def test_tiny_model_refuses_the_word_task():
    from igrpo.config.validate import validate

    with pytest.raises(ConfigError, match="task=words is not valid with model=tiny"):
        validate(compose_config("task=words"))


def test_draft_health_counts_empty_drafts_and_identical_groups():
    health = draft_health([["", " \n", "x"], ["7", "7 ", "7"], ["a", "b"], ["solo"]])
    assert (health.drafts, health.empty) == (9, 2)
    assert (health.groups, health.identical_groups) == (3, 1)  # a one-draft group is neither identical nor not
    assert draft_health([]).drafts == 0


def test_a_step_whose_drafts_are_all_empty_stops_in_one_line():
    from types import SimpleNamespace

    from igrpo.variants.igrpo.trainer import IGRPOTrainer

    trainer = SimpleNamespace(state=SimpleNamespace(global_step=3))
    IGRPOTrainer._stop_if_all_empty(trainer, draft_health([["", "x"], ["", ""]]))  # one draft has text: trains on
    IGRPOTrainer._stop_if_all_empty(trainer, draft_health([]))  # nothing drafted (adaptive budget): not "all empty"
    with pytest.raises(ConfigError, match=r"^Stage 1 drafts were all empty at step 3 \(4 of 4\).*chat_template=true"):
        IGRPOTrainer._stop_if_all_empty(trainer, draft_health([["", " "], ["\n", ""]]))


def test_the_probe_counts_mixed_groups_with_and_without_a_format_reward():
    from igrpo.job.probe import summarise

    records = [
        {"correct": [True, False, False, False], "answers": ["5", "4", None, None]},  # mixed
        {"correct": [False] * 4, "answers": ["1", None, None, None]},  # all wrong, answered differs
        {"correct": [False] * 4, "answers": [None] * 4},  # flat either way
        {"correct": [True] * 4, "answers": ["2"] * 4},  # flat either way
    ]
    probe = summarise("sum", records, group=4)
    assert (probe.problems, probe.group) == (4, 4)
    assert probe.success == 5 / 16 and probe.mixed == 1 / 4 and probe.mixed_with_format == 2 / 4
    assert probe.answered == 7 / 16
