"""Real math data: JSONL / parquet / hub loading, field mapping, boxed-answer extraction, schema errors in one
line, held-out eval suites, and chat-formatted prompts. Every file is tiny and written by the test."""

from __future__ import annotations

import json

import pytest

from igrpo.core.drafts import build_refinement_prompt
from igrpo.errors import ConfigError
from igrpo.tasks import load_task
from igrpo.tasks.math_data import MATH_PROMPT, build_math_task
from tests.helpers import eval_node, option_node

MATH_ROWS = [
    {"problem": "What is $1+1$?", "solution": "We add: $1+1=\\boxed{2}$.", "level": "Level 1"},
    {"problem": "Simplify $\\frac{2}{4}$.", "solution": "First \\boxed{3} is wrong; so $\\boxed{\\frac{1}{2}}$."},
    {"problem": "Solve $x^2=9$, $x>0$.", "solution": "So $x=\\boxed{3}$."},
]


def write_jsonl(path, rows, raw_lines=()) -> str:
    lines = [json.dumps(r) if not isinstance(r, str) else r for r in rows]
    path.write_text("\n".join([*lines, *raw_lines]) + "\n")
    return str(path)


def write_parquet(path, rows) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def suite_file(tmp_path) -> str:
    return write_jsonl(tmp_path / "suite.jsonl", [{"problem": "An eval problem", "answer": "1"}])


def task_cfg(**kw):
    """task=math as conf/task/math.yaml defines it, without its hub source, with ``kw`` changed."""
    return option_node("task", "math", **{"hub": None, **kw})


def error_of(fn, *args, **kw) -> str:
    with pytest.raises(ConfigError) as info:
        fn(*args, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_jsonl_math_format_takes_the_last_boxed_answer_of_the_solution(tmp_path):
    data = build_math_task(task_cfg(path=write_jsonl(tmp_path / "math.jsonl", MATH_ROWS)))
    assert [p.answer for p in data.train] == ["2", "\\frac{1}{2}", "3"]  # nested braces, last box wins
    assert data.train[0].problem == "What is $1+1$?" and data.train[0].level == "Level 1"
    assert data.train[0].id == "math:1" and len({p.id for p in data.train}) == 3
    assert data.prompt(data.train[0]) == MATH_PROMPT.replace("{problem}", "What is $1+1$?")
    assert data.prompt(data.train[0]).endswith("put your final answer within \\boxed{}.")


def test_parquet_with_mapped_fields_and_numeric_answers(tmp_path):
    rows = [{"question": "How many?", "final": 27.0}, {"question": "Which?", "final": 2.5}]  # a float column
    cfg = task_cfg(path=write_parquet(tmp_path / "t.parquet", rows), problem_field="question", answer_field="final",
                   solution_field=None)
    assert [(p.problem, p.answer) for p in build_math_task(cfg).train] == [("How many?", "27"), ("Which?", "2.5")]


def test_answer_formats_and_fallback_to_the_solution(tmp_path):
    rows = [{"q": "a", "a": "Half of 4 is 2, plus 16 is 18.\n#### 18"}, {"q": "b", "a": "so 3.\n#### 3"}]
    cfg = task_cfg(path=write_jsonl(tmp_path / "g.jsonl", rows), problem_field="q", answer_field="a",
                   solution_field=None, answer_format="hash")
    assert [p.answer for p in build_math_task(cfg).train] == ["18", "3"]
    rows = [{"problem": "p1", "answer": "7"}, {"problem": "p2", "solution": "hence \\boxed{8}"}]
    cfg = task_cfg(path=write_jsonl(tmp_path / "mixed.jsonl", rows), answer_field="answer")
    assert [p.answer for p in build_math_task(cfg).train] == ["7", "8"]


def test_malformed_jsonl_rows_are_listed_with_line_numbers_in_one_line(tmp_path):
    rows = [{"problem": "ok", "answer": "1"}, {"problem": "ok", "answer": "2"}, {"problem": "  ", "answer": "3"},
            {"problem": "ok", "answer": "4"}, {"problem": "ok", "answer": "5"}, {"problem": ["x"], "answer": "6"},
            {"problem": "no answer"}, {"problem": "ok", "answer": "8"}]
    path = write_jsonl(tmp_path / "x.jsonl", rows, raw_lines=['{"problem": "broken", ', "[1, 2]"])
    message = error_of(build_math_task, task_cfg(path=path, answer_field="answer", solution_field=None))
    assert message == (f"task.path={path}: 5 of 10 rows are unusable, more than task.max_bad_fraction=0.05 allows: "
                       "line 3: field 'problem' is empty; line 6: field 'problem' is list, not "
                       "text; line 7: missing field 'answer'; line 9: invalid JSON; line 10: a JSON list, not an "
                       "object (rows have fields: answer, problem)")


def test_error_listing_is_capped_and_parquet_rows_are_indexed(tmp_path):
    rows = [{"problem": f"p{i}", "solution": "no box here"} for i in range(25)]
    message = error_of(build_math_task, task_cfg(path=write_parquet(tmp_path / "bad.parquet", rows)))
    assert message.startswith(f"task.path={tmp_path / 'bad.parquet'}: no usable row (25 of 25 skipped): row 0: no "
                              "\\boxed{} answer in field 'solution'")
    assert message.count("row ") == 11 and message.endswith("and 15 more")


def test_missing_file_wrong_type_and_empty_file_are_one_line_errors(tmp_path):
    missing = tmp_path / "nope" / "math_train.jsonl"
    message = error_of(build_math_task, task_cfg(path=str(missing)))
    assert message == f"task.path={missing} does not exist (no such file)"
    assert "unsupported file type '.csv'" in error_of(build_math_task, task_cfg(path=str(tmp_path / "a.csv")))
    (tmp_path / "empty.jsonl").write_text("\n")
    assert error_of(build_math_task, task_cfg(path=str(tmp_path / "empty.jsonl"))).endswith("contains no rows")
    assert "no data source" in error_of(build_math_task, task_cfg(path=None, hub=None))


def test_max_train_size_is_a_seeded_subset(tmp_path):
    rows = [{"problem": f"p{i}", "answer": str(i)} for i in range(50)]
    path = write_jsonl(tmp_path / "many.jsonl", rows)
    a = build_math_task(task_cfg(path=path, answer_field="answer", max_train_size=10))
    b = build_math_task(task_cfg(path=path, answer_field="answer", max_train_size=10))
    c = build_math_task(task_cfg(path=path, answer_field="answer", max_train_size=10, data_seed=1))
    assert len(a.train) == 10 and [p.id for p in a.train] == [p.id for p in b.train] != [p.id for p in c.train]


def test_hub_source_goes_through_datasets_load_dataset(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(name, config=None, split=None, revision=None):
        calls.append((name, config, split, revision))
        if name == "missing/dataset":
            raise FileNotFoundError("Dataset 'missing/dataset' doesn't exist on the Hub\nmore detail")
        return [{"problem": "hub problem", "solution": "\\boxed{5}"}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = build_math_task(task_cfg(hub="DigitalLearningGmbH/MATH-lighteval", hub_config="default",
                                    hub_revision="0123abc"))
    assert calls == [("DigitalLearningGmbH/MATH-lighteval", "default", "train", "0123abc")]
    assert [(p.problem, p.answer, p.id) for p in data.train] == [("hub problem", "5", "math:0")]
    message = error_of(build_math_task, task_cfg(hub="missing/dataset", hub_config=None))
    assert message.startswith("task.hub=missing/dataset (config None, split train, revision None) could not be "
                              "loaded: Dataset")
    assert message.endswith("set task.path to a local file")


def test_eval_suites_replace_the_tasks_and_are_held_out_from_training(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", MATH_ROWS)
    suite = write_jsonl(tmp_path / "aime.jsonl", [{"problem": "what is  $1+1$?", "answer": "2"},
                                                   {"problem": "Held-out only", "answer": "9"}])
    eval_cfg = eval_node(aime24={"path": suite, "hub": None, "samples": 4},
                         gsm8k={"path": suite, "hub": None, "max_problems": 1})
    data = load_task(task_cfg(path=train), seed=0, eval_cfg=eval_cfg)
    assert list(data.eval_suites) == ["aime24", "gsm8k"] and len(data.eval_suites["gsm8k"]) == 1
    assert [p.answer for p in data.train] == ["\\frac{1}{2}", "3"]  # "What is $1+1$?" is an eval problem
    assert data.extra["held_out_removed"] == 1
    bad_suite = eval_node(amc23={"path": train, "hub": None, "problem_field": "question"})
    assert error_of(load_task, task_cfg(path=train), 0, eval_cfg=bad_suite).startswith(
        f"eval.suites.amc23.path={train}: no usable row (3 of 3 skipped): line 1: missing field 'question'")
    assert "has no eval suites of its own" in error_of(load_task, task_cfg(path=train), 0, eval_cfg=eval_node())


def test_prompt_template_precedence(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", MATH_ROWS)
    suites = eval_node(s={"path": suite_file(tmp_path), "hub": None})
    model = option_node("model", "hf", path="unused", prompt_template="Model: {problem}")
    assert load_task(task_cfg(path=train), 0, model_cfg=model, eval_cfg=suites).prompt_template == "Model: {problem}"
    task = task_cfg(path=train, prompt_template="Task: {problem} \\boxed{}")
    data = load_task(task, 0, model_cfg=model, eval_cfg=suites)
    assert data.prompt(data.eval_suites["s"][0]) == "Task: An eval problem \\boxed{}"


@pytest.fixture(scope="module")
def chat_tokenizer_dir(tmp_path_factory):
    from igrpo.models.tiny import build_char_tokenizer

    tok = build_char_tokenizer()
    tok.chat_template = ("{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    path = tmp_path_factory.mktemp("chat_tok")
    tok.save_pretrained(path)
    return str(path)


def test_chat_template_frames_plain_and_refinement_prompts(tmp_path, chat_tokenizer_dir):
    train = write_jsonl(tmp_path / "train.jsonl", MATH_ROWS)
    suites = eval_node(s={"path": suite_file(tmp_path), "hub": None})
    model = option_node("model", "hf", path=chat_tokenizer_dir, chat_template=True, system_prompt="Be {exact}.")
    data = load_task(task_cfg(path=train), 0, model_cfg=model, eval_cfg=suites)
    problem = data.train[0]
    # the tokenizer adds <bos> itself, so the template's rendered <bos> is dropped (no double BOS)
    user = MATH_PROMPT.replace("{problem}", problem.problem)
    assert data.prompt(problem) == f"<|system|>Be {{exact}}.\n<|user|>{user}\n<|assistant|>"
    # Stage 2 (igrpo/training/trainer.py): the paper template becomes the user turn of the same frame
    filled = build_refinement_prompt(data.refinement_template("paper"), problem.problem, "draft {x} \\boxed{1}",
                                     prompt=data.prompt(problem))
    assert filled.startswith(f"<|system|>Be {{exact}}.\n<|user|>{problem.problem}\n\nA previous draft")
    assert filled.endswith("<draft>\ndraft {x} \\boxed{1}\n</draft>\n<|assistant|>")
    plain = load_task(task_cfg(path=train), 0, eval_cfg=suites)
    assert plain.refinement_template("paper") == "paper" and plain.prompt(problem).startswith(problem.problem)


def test_chat_template_errors_are_one_line(tmp_path):
    from igrpo.models.tiny import build_char_tokenizer

    train = write_jsonl(tmp_path / "train.jsonl", MATH_ROWS)
    suites = eval_node(s={"path": suite_file(tmp_path), "hub": None})
    build_char_tokenizer().save_pretrained(tmp_path / "no_template")
    model = option_node("model", "hf", path=str(tmp_path / "no_template"), chat_template=True)
    assert "has no chat template; set model.chat_template=false" in error_of(
        load_task, task_cfg(path=train), 0, model_cfg=model, eval_cfg=suites)
