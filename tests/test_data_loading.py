"""Data files as they come (issue #12 acceptance 3, issue #15's data-file bullet): MATH's brace-less and
\\fbox answers, several boxes, bad rows skipped and counted with their line numbers, a file of only bad rows
failing in one line, BOMs accepted, other encodings and compressed files named, NaN/Infinity refused as
references, hub revisions passed through. Every file is tiny and written by the test."""

from __future__ import annotations

import gzip
import json

import pytest

from igrpo.errors import ConfigError
from igrpo.tasks.math_data import build_math_task
from igrpo.tasks.sources import SourceSpec, load_report, read_source
from tests.helpers import option_node

ODD_ROWS = [  # (solution, gold) as Hendrycks MATH train writes them
    ("We get $\\boxed 2$.", "2"),
    ("Hence the total is \\boxed 9$.", "9"),
    ("The area is \\fbox{5}.", "5"),
    ("First we try $\\boxed{3}$, which fails. So the final answer is $\\boxed{7}$. Check: $\\boxed{3}$ fails.", "7"),
    ("Thus $x = \\boxed{\\frac{\\sqrt{3}}{2}}$.", "\\frac{\\sqrt{3}}{2}"),
]


def task_cfg(**kw):
    return option_node("task", "math", **{"hub": None, **kw})


def one_line_error(fn, *args) -> str:
    with pytest.raises(ConfigError) as info:
        fn(*args)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_math_format_file_with_odd_boxes_and_one_bad_row_loads_99_rows(tmp_path, capsys):
    rows = [{"problem": f"odd {i}", "solution": sol} for i, (sol, _) in enumerate(ODD_ROWS[:4])]
    rows.append({"problem": "no answer anywhere", "solution": "We give up; it cannot be determined."})
    rows += [{"problem": f"What is {i}+1?", "solution": f"It is $\\boxed{{{i + 1}}}$."} for i in range(95)]
    path = tmp_path / "math_train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = build_math_task(task_cfg(path=str(path)))
    assert len(data.train) == 99 and data.extra["skipped_rows"] == 1
    assert [p.answer for p in data.train[:4]] == ["2", "9", "5", "7"]
    assert [p.answer for p in data.train[4:]] == [str(i + 1) for i in range(95)]
    assert capsys.readouterr().err.strip() == (f"warning: task.path={path}: skipped 1 of 100 rows: line 5: no "
                                               "\\boxed{} answer in field 'solution'")


def test_nested_braces_keep_the_whole_answer(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"problem": "p", "solution": ODD_ROWS[4][0]}) + "\n")
    assert build_math_task(task_cfg(path=str(path))).train[0].answer == ODD_ROWS[4][1]


def test_a_file_of_only_bad_rows_fails_in_one_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps({"problem": f"p{i}", "solution": "no box"}) + "\n" for i in range(3)))
    assert one_line_error(build_math_task, task_cfg(path=str(path))) == (
        f"task.path={path}: no usable row (3 of 3 skipped): line 1: no \\boxed{{}} answer in field 'solution'; "
        "line 2: no \\boxed{} answer in field 'solution'; line 3: no \\boxed{} answer in field 'solution'")


def test_more_bad_rows_than_the_configured_share_fail_and_the_share_is_a_setting(tmp_path):
    rows = [{"problem": f"p{i}", "answer": str(i)} for i in range(8)] + [{"problem": "x"}, {"problem": "y"}]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = dict(path=str(path), answer_field="answer", solution_field=None)
    assert "2 of 10 rows are unusable, more than task.max_bad_fraction=0.05 allows: line 9: missing field" in (
        one_line_error(build_math_task, task_cfg(**cfg)))
    assert len(build_math_task(task_cfg(**cfg, max_bad_fraction=0.2)).train) == 8
    assert "task.max_bad_fraction=1.5 is not valid" in one_line_error(build_math_task,
                                                                       task_cfg(**cfg, max_bad_fraction=1.5))


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"problem": "caf\u00e9", "answer": "3"}).encode() + b"\n")
    data = build_math_task(task_cfg(path=str(path), answer_field="answer", solution_field=None))
    assert [(p.problem, p.answer) for p in data.train] == [("caf\u00e9", "3")]


@pytest.mark.parametrize("encode, named", [
    (lambda text: text.encode("latin-1"), "is not UTF-8 (byte 0xe9 on line 1; Latin-1"),
    (lambda text: text.encode("utf-16"), "is UTF-16 encoded; save it as UTF-8"),
    (lambda text: text.encode("utf-16-le"), "is UTF-16 encoded; save it as UTF-8"),
    (lambda text: gzip.compress(text.encode()), "is a gzip-compressed file, not JSON lines; decompress it first"),
])
def test_other_encodings_and_compressed_files_are_named_in_one_line(tmp_path, encode, named):
    path = tmp_path / "data.jsonl"
    path.write_bytes(encode(json.dumps({"problem": "caf\u00e9", "answer": "3"}, ensure_ascii=False) + "\n"))
    message = one_line_error(build_math_task, task_cfg(path=str(path), answer_field="answer", solution_field=None))
    assert message.startswith(f"task.path={path} {named}")


def test_a_gz_suffix_is_named_as_compressed(tmp_path):
    path = tmp_path / "data.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"problem": "p", "answer": "1"}\n'))
    assert "unsupported file type '.gz' (a compressed file: decompress it first)" in one_line_error(
        build_math_task, task_cfg(path=str(path)))


def test_nan_and_infinity_are_refused_as_references(tmp_path):
    lines = ['{"problem": "a", "answer": NaN}', '{"problem": "b", "answer": Infinity}',
             '{"problem": "c", "answer": "-inf"}', '{"problem": "d", "answer": "nan"}', '{"problem": "e", "answer": 4}',
             '{"problem": "f", "answer": "\\\\infty"}']
    path = tmp_path / "nan.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = read_source(SourceSpec(label="task", path=str(path)), "t")
    assert [(p.problem, p.answer) for p in report.problems] == [("e", "4"), ("f", "\\infty")]
    assert report.skipped == [("line 1", "NaN is not a valid JSON value"),
                              ("line 2", "Infinity is not a valid JSON value"),
                              ("line 3", "field 'answer' is '-inf', not a usable reference answer"),
                              ("line 4", "field 'answer' is 'nan', not a usable reference answer")]


def test_nan_in_a_parquet_float_column_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "f.parquet"
    pq.write_table(pa.Table.from_pylist([{"q": "a", "x": float("nan")}, {"q": "b", "x": 2.0},
                                         {"q": "c", "x": float("inf")}]), path)
    report = read_source(SourceSpec(label="task", path=str(path), problem_field="q", answer_field="x"), "t")
    assert [p.answer for p in report.problems] == ["2"]
    assert report.skipped == [("row 0", "field 'x' is nan, not a usable value"),
                              ("row 2", "field 'x' is inf, not a usable value")]


def test_eval_suites_allow_no_bad_row_by_default(tmp_path):
    from tests.helpers import eval_node
    from igrpo.tasks.benchmarks import load_suites

    path = tmp_path / "suite.jsonl"
    path.write_text('{"problem": "a", "answer": "1"}\n{"problem": "b"}\n')
    suites = eval_node(aime24={"path": str(path), "hub": None})
    assert suites.suites.aime24.max_bad_fraction == 0.0
    assert one_line_error(load_suites, suites).startswith(
        f"eval.suites.aime24.path={path}: 1 of 2 rows are unusable, more than eval.suites.aime24.max_bad_fraction=0 "
        "allows: line 2: missing field 'answer'")


def test_every_paper_suite_and_training_set_has_a_revision_setting():
    from tests.helpers import compose_config

    cfg = compose_config("eval=paper")
    assert all("hub_revision" in suite for suite in cfg.eval.suites.values())
    for task in ("math", "acereason"):
        assert "hub_revision" in compose_config(f"task={task}").task


def test_load_report_counts_rows(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"problem": "a", "answer": "1"}\nnot json\n\n{"problem": "b", "answer": "2"}\n')
    report = load_report(SourceSpec(label="task", path=str(path), max_bad_fraction=0.5), "t")
    assert report.rows == 3 and [p.id for p in report.problems] == ["t:1", "t:4"]
    assert report.summary() == f"task.path={path}: skipped 1 of 3 rows: line 2: invalid JSON"
