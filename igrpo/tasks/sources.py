"""Read math problems with reference answers from a local JSONL / parquet file or the Hugging Face hub.

One loader serves training data (``task=math``, ``task=acereason``) and every eval benchmark (``eval=paper``).
A source names its columns (``problem_field``, ``answer_field``, optional ``solution_field``) and how the
answer column holds the answer (``answer_format``: ``plain``; ``boxed`` = its last ``\\boxed{}``; ``hash`` =
the text after its last ``####``, as in GSM8K). A row without an answer falls back to the last ``\\boxed{}``
of its solution (MATH ships only full solutions).

Schema check, all-or-nothing: every malformed row (invalid JSON, a missing, empty or non-text field, no
extractable answer) is collected with its JSONL line number (1-based) or parquet/hub row index (0-based) and
reported in ONE ``ConfigError`` line, e.g. ``task.path=/x.jsonl: line 7: missing field 'answer'; line 9:
invalid JSON``; the run stops before anything is written. Answers given as JSON numbers are accepted.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from igrpo.answers import _last_boxed
from igrpo.errors import ConfigError, choice_error
from igrpo.tasks.base import Problem

ANSWER_FORMATS = ("plain", "boxed", "hash")
FILE_TYPES = (".jsonl", ".parquet")
MAX_LISTED_ERRORS = 10  # malformed rows named in the error line; the rest are counted


@dataclass(frozen=True)
class SourceSpec:
    """Where a set of problems comes from and how its columns map onto ``Problem``."""

    label: str  # config key prefix used in errors, e.g. "task" or "eval.suites.aime24"
    path: str | None = None
    hub: str | None = None
    hub_config: str | None = None
    split: str = "train"
    problem_field: str = "problem"
    answer_field: str | None = "answer"
    solution_field: str | None = None
    answer_format: str = "plain"

    @classmethod
    def from_cfg(cls, cfg, label: str) -> SourceSpec:
        """From a ``TaskConfig`` or ``EvalSuiteConfig`` node (same field names)."""
        return cls(label=label, path=cfg.path, hub=cfg.hub, hub_config=cfg.hub_config, split=cfg.split,
                   problem_field=cfg.problem_field, answer_field=cfg.answer_field,
                   solution_field=cfg.solution_field, answer_format=cfg.answer_format)

    @property
    def where(self) -> str:
        return f"{self.label}.path={self.path}" if self.path else f"{self.label}.hub={self.hub}"


def check_spec(spec: SourceSpec) -> None:
    """Config-level checks (no I/O besides a file's existence): one ConfigError line on the first problem."""
    if not spec.path and not spec.hub:
        raise ConfigError(f"{spec.label}: no data source; set {spec.label}.path (a local .jsonl or .parquet file) "
                          f"or {spec.label}.hub (a Hugging Face dataset id)")
    if spec.answer_format not in ANSWER_FORMATS:
        raise choice_error(f"{spec.label}.answer_format", spec.answer_format, ANSWER_FORMATS)
    if not spec.problem_field:
        raise ConfigError(f"{spec.label}.problem_field is empty; name the column that holds the problem text")
    if not spec.answer_field and not spec.solution_field:
        raise ConfigError(f"{spec.label}: set {spec.label}.answer_field or {spec.label}.solution_field "
                          "(the answer is then the solution's last \\boxed{})")
    if spec.path:
        path = Path(os.path.expanduser(spec.path))
        if path.suffix not in FILE_TYPES:
            raise ConfigError(f"{spec.where}: unsupported file type {path.suffix!r}; use one of: "
                              f"{', '.join(FILE_TYPES)}")
        if not path.is_file():
            raise ConfigError(f"{spec.where} does not exist (no such file)")


def _read_jsonl(path: Path, errors: list[str]) -> list[tuple[str, object]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append((f"line {number}", json.loads(line)))
            except json.JSONDecodeError:
                errors.append(f"line {number}: invalid JSON")
    return rows


def _read_parquet(path: Path, spec: SourceSpec) -> list[tuple[str, object]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # noqa: BLE001  (pyarrow raises several types for a damaged file)
        raise ConfigError(f"{spec.where}: not a readable parquet file ({type(err).__name__})") from None
    return [(f"row {i}", row) for i, row in enumerate(table.to_pylist())]


def _read_hub(spec: SourceSpec) -> list[tuple[str, object]]:
    """``datasets.load_dataset(hub, hub_config, split=split)``; needs network access or a warm HF cache."""
    import datasets

    try:
        data = datasets.load_dataset(spec.hub, spec.hub_config, split=spec.split)
    except Exception as err:  # noqa: BLE001  (network, auth, unknown dataset/config/split)
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{spec.where} (config {spec.hub_config}, split {spec.split}) could not be loaded: "
                          f"{detail}; download it, or set {spec.label}.path to a local file") from None
    return [(f"row {i}", row) for i, row in enumerate(data)]


def _text(row: dict, field: str | None) -> tuple[str | None, str | None]:
    """(text, None) or (None, what is wrong); numbers are accepted and written as text."""
    if field not in row or row[field] is None:
        return None, f"missing field '{field}'"
    value = row[field]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None, f"field '{field}' is {type(value).__name__}, not text"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return (text, None) if text else (None, f"field '{field}' is empty")


def _answer_from(text: str, fmt: str) -> str | None:
    if fmt == "boxed":
        return _last_boxed(text) or None
    if fmt == "hash":
        _, found, after = text.rpartition("####")
        return (after.strip() or None) if found else None
    return text


def _problem(spec: SourceSpec, where: str, row: object, id_prefix: str) -> tuple[Problem | None, str | None]:
    if not isinstance(row, dict):
        return None, f"a JSON {type(row).__name__}, not an object"
    problem, error = _text(row, spec.problem_field)
    if error:
        return None, error
    answer, answer_error = (None, None)
    if spec.answer_field:
        answer, answer_error = _text(row, spec.answer_field)
        if answer is not None:
            answer = _answer_from(answer, spec.answer_format)
            if answer is None:
                what = "\\boxed{}" if spec.answer_format == "boxed" else "'####'"
                return None, f"no {what} answer in field '{spec.answer_field}'"
    solution, solution_error = _text(row, spec.solution_field) if spec.solution_field else (None, None)
    if answer is None and spec.solution_field:
        if solution is None:
            return None, answer_error or solution_error
        answer = _last_boxed(solution)
        if not answer:
            return None, f"no \\boxed{{}} answer in field '{spec.solution_field}'"
    if answer is None:
        return None, answer_error
    level = row.get("level")
    return Problem(id=f"{id_prefix}:{where.split()[-1]}", problem=problem, answer=answer, solution=solution or "",
                   level=str(level) if isinstance(level, (str, int)) else ""), None


def _error_line(spec: SourceSpec, errors: list[str], fields: list[str] | None) -> str:
    listed = "; ".join(errors[:MAX_LISTED_ERRORS])
    more = f"; and {len(errors) - MAX_LISTED_ERRORS} more malformed rows" if len(errors) > MAX_LISTED_ERRORS else ""
    hint = f" (rows have fields: {', '.join(fields)})" if fields and any("missing field" in e for e in errors) else ""
    return f"{spec.where}: {listed}{more}{hint}"


def load_problems(spec: SourceSpec, id_prefix: str) -> list[Problem]:
    """Every problem of a source, in file order; ConfigError (one line) on any malformed row."""
    check_spec(spec)
    errors: list[str] = []
    if spec.path:
        path = Path(os.path.expanduser(spec.path))
        rows = _read_jsonl(path, errors) if path.suffix == ".jsonl" else _read_parquet(path, spec)
    else:
        rows = _read_hub(spec)
    problems: list[Problem] = []
    fields: list[str] | None = None
    for where, row in rows:
        problem, error = _problem(spec, where, row, id_prefix)
        if error:
            errors.append(f"{where}: {error}")
        else:
            problems.append(problem)
        if fields is None and isinstance(row, dict):
            fields = sorted(str(k) for k in row)
    if errors:
        # errors from invalid JSON were collected first; report all in file order
        errors.sort(key=lambda e: int(e.split(":")[0].split()[-1]))
        raise ConfigError(_error_line(spec, errors, fields))
    if not problems:
        raise ConfigError(f"{spec.where} contains no rows")
    return problems
