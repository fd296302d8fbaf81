"""Read math problems with reference answers from a local JSONL / parquet file or the Hugging Face hub.

One loader serves training data (``task=math``, ``task=acereason``) and every eval benchmark (``eval=paper``).
A source names its columns (``problem_field``, ``answer_field``, optional ``solution_field``) and how the
answer column holds the answer (``answer_format``: ``plain``; ``boxed`` = its boxed answer; ``hash`` =
the text after its last ``####``, as in GSM8K). A row without an answer falls back to the boxed answer
of its solution (MATH ships only full solutions; ``igrpo.core.answers.final_boxed`` reads ``\\boxed 2``,
``\\fbox{}`` and solutions with several boxes).

Bad rows are skipped and counted, not fatal: a malformed row (invalid JSON, a missing, empty or non-text field,
no extractable answer, a NaN or infinite reference) is reported with its JSONL line number (1-based) or
parquet/hub row index (0-based) in ONE summary line, e.g. ``task.path=/x.jsonl: skipped 1 of 100 rows: line 7:
no \\boxed{} answer in field 'solution'``. The load fails (one ``ConfigError`` line, before anything is
written) only when no row is usable or more than ``max_bad_fraction`` of the rows are bad.

Files as people have them: a UTF-8 byte-order mark (Excel, Notepad) is accepted; UTF-16, Latin-1 (any
non-UTF-8 text) and compressed files (gzip, zip, bz2, xz, zstd) are named in a one-line error saying how to
convert them. ``hub_revision`` pins a hub dataset to a commit, branch or tag (datasets change schema).
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from igrpo.core.answers import final_boxed
from igrpo.errors import ConfigError, choice_error
from igrpo.tasks.base import Problem

ANSWER_FORMATS = ("plain", "boxed", "hash")
FILE_TYPES = (".jsonl", ".parquet")
MAX_LISTED_ERRORS = 10  # malformed rows named in a summary or error line; the rest are counted
# leading bytes of the compressed formats people hand over instead of a .jsonl
COMPRESSED_MAGIC = {b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz",
                    b"\x28\xb5\x2f\xfd": "zstd"}
NON_FINITE_TEXT = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


@dataclass(frozen=True)
class SourceSpec:
    """Where a set of problems comes from and how its columns map onto ``Problem``."""

    label: str  # config key prefix used in errors, e.g. "task" or "eval.suites.aime24"
    path: str | None = None
    hub: str | None = None
    hub_config: str | None = None
    hub_revision: str | None = None
    split: str = "train"
    problem_field: str = "problem"
    answer_field: str | None = "answer"
    solution_field: str | None = None
    answer_format: str = "plain"
    max_bad_fraction: float = 0.0

    @classmethod
    def from_cfg(cls, cfg, label: str) -> SourceSpec:
        """From a ``TaskDataset`` or ``EvalSuite`` node (same field names)."""
        return cls(label=label, path=cfg.path, hub=cfg.hub, hub_config=cfg.hub_config,
                   hub_revision=cfg.get("hub_revision"), split=cfg.split, problem_field=cfg.problem_field,
                   answer_field=cfg.answer_field, solution_field=cfg.solution_field,
                   answer_format=cfg.answer_format, max_bad_fraction=float(cfg.get("max_bad_fraction") or 0.0))

    @property
    def where(self) -> str:
        return f"{self.label}.path={self.path}" if self.path else f"{self.label}.hub={self.hub}"


@dataclass
class LoadReport:
    """What a load found: the usable problems and every skipped row with its reason."""

    where: str
    rows: int = 0  # rows read (usable + skipped)
    problems: list[Problem] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (line 7 | row 3, reason)
    fields: list[str] | None = None  # the first row's fields (named when a field is missing)

    def listing(self) -> str:
        shown = "; ".join(f"{where}: {reason}" for where, reason in self.skipped[:MAX_LISTED_ERRORS])
        more = len(self.skipped) - MAX_LISTED_ERRORS
        return shown + (f"; and {more} more" if more > 0 else "")

    def summary(self) -> str:
        """One line: how many rows were skipped and why (empty when none)."""
        if not self.skipped:
            return ""
        return f"{self.where}: skipped {len(self.skipped)} of {self.rows} rows: {self.listing()}"


def check_spec(spec: SourceSpec) -> None:
    """Config-level checks (no I/O besides opening a local file): one ConfigError line on the first problem."""
    if not spec.path and not spec.hub:
        raise ConfigError(f"{spec.label}: no data source; set {spec.label}.path (a local .jsonl or .parquet file) "
                          f"or {spec.label}.hub (a Hugging Face dataset id)")
    if spec.answer_format not in ANSWER_FORMATS:
        raise choice_error(f"{spec.label}.answer_format", spec.answer_format, ANSWER_FORMATS)
    if not spec.problem_field:
        raise ConfigError(f"{spec.label}.problem_field is empty; name the column that holds the problem text")
    if not spec.answer_field and not spec.solution_field:
        raise ConfigError(f"{spec.label}: set {spec.label}.answer_field or {spec.label}.solution_field "
                          "(the answer is then the solution's boxed answer)")
    if not (0.0 <= spec.max_bad_fraction < 1.0) or math.isnan(spec.max_bad_fraction):
        raise ConfigError(f"{spec.label}.max_bad_fraction={spec.max_bad_fraction} is not valid; it must be in [0, 1) "
                          "(the share of rows that may be skipped as unusable)")
    if spec.path:
        path = Path(os.path.expanduser(spec.path))
        if path.suffix not in FILE_TYPES:
            hint = " (a compressed file: decompress it first)" if path.suffix in (".gz", ".zip", ".bz2", ".xz",
                                                                                 ".zst") else ""
            raise ConfigError(f"{spec.where}: unsupported file type {path.suffix!r}{hint}; use one of: "
                              f"{', '.join(FILE_TYPES)}")
        if not path.exists():
            raise ConfigError(f"{spec.where} does not exist (no such file)")
        if not path.is_file():
            kind = "a directory" if path.is_dir() else "not a regular file"
            raise ConfigError(f"{spec.where} is {kind}; name a .jsonl or .parquet file")
        try:  # readable by this process (permission bits say nothing for root, nor for a broken mount)
            with open(path, "rb") as handle:
                handle.read(1)
        except OSError as err:
            raise ConfigError(f"{spec.where} cannot be read ({err.strerror or err})") from None


def _decoded_text(path: Path, spec: SourceSpec) -> str:
    """The file as text: UTF-8 with or without a BOM; anything else is named in one line."""
    data = path.read_bytes()
    for magic, kind in COMPRESSED_MAGIC.items():
        if data.startswith(magic):
            raise ConfigError(f"{spec.where} is a {kind}-compressed file, not JSON lines; decompress it first "
                              f"(e.g. `{'gunzip -c' if kind == 'gzip' else kind + ' -d'} FILE > data.jsonl`)")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(data) > 1 and (data[0] == 0 or data[1] == 0)):
        raise ConfigError(f"{spec.where} is UTF-16 encoded; save it as UTF-8 "
                          "(e.g. `iconv -f UTF-16 -t UTF-8 FILE > data.jsonl`)")
    try:
        return data.decode("utf-8-sig")  # a leading UTF-8 BOM is dropped
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(f"{spec.where} is not UTF-8 (byte 0x{data[err.start]:02x} on line {line}; Latin-1 or "
                          "Windows-1252 text?); save it as UTF-8 (e.g. `iconv -f LATIN1 -t UTF-8 FILE > data.jsonl`)"
                          ) from None


def _reject_constant(name: str):
    raise ValueError(name)


def _read_jsonl(path: Path, spec: SourceSpec, skipped: list[tuple[str, str]]) -> list[tuple[str, object]]:
    rows = []
    for number, line in enumerate(_decoded_text(path, spec).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((f"line {number}", json.loads(line, parse_constant=_reject_constant)))
        except json.JSONDecodeError:
            skipped.append((f"line {number}", "invalid JSON"))
        except ValueError as err:  # NaN / Infinity: not JSON, and never a reference answer
            skipped.append((f"line {number}", f"{err} is not a valid JSON value"))
    return rows


def _read_parquet(path: Path, spec: SourceSpec) -> list[tuple[str, object]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # noqa: BLE001  (pyarrow raises several types for a damaged file)
        raise ConfigError(f"{spec.where}: not a readable parquet file ({type(err).__name__})") from None
    return [(f"row {i}", row) for i, row in enumerate(table.to_pylist())]


def hub_dataset_cached(hub_id: str) -> bool:
    """Whether this machine's Hugging Face caches hold a copy of the hub dataset ``hub_id`` (the prepared dataset
    under ``HF_DATASETS_CACHE``, or its files under ``HF_HUB_CACHE``): what ``datasets.load_dataset`` can read
    offline. Asked without importing ``datasets``."""
    import re

    from huggingface_hub import constants

    if (Path(constants.HF_HUB_CACHE) / f"datasets--{hub_id.replace('/', '--')}").is_dir():
        return True
    prepared = Path(os.environ.get("HF_DATASETS_CACHE") or Path(constants.HF_HOME) / "datasets").expanduser()
    key = re.sub(r"[^a-z0-9]", "", hub_id.lower())  # datasets names the folder org___snake_case_name
    try:
        return any(p.is_dir() and re.sub(r"[^a-z0-9]", "", p.name.lower()) == key for p in prepared.iterdir())
    except OSError:
        return False


def _read_hub(spec: SourceSpec) -> list[tuple[str, object]]:
    """``datasets.load_dataset(hub, hub_config, split=split, revision=hub_revision)``; needs network access or
    a warm HF cache."""
    import datasets

    try:
        data = datasets.load_dataset(spec.hub, spec.hub_config, split=spec.split, revision=spec.hub_revision)
    except Exception as err:  # noqa: BLE001  (network, auth, unknown dataset/config/split/revision)
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{spec.where} (config {spec.hub_config}, split {spec.split}, revision "
                          f"{spec.hub_revision}) could not be loaded: {detail}; download it, or set "
                          f"{spec.label}.path to a local file") from None
    return [(f"row {i}", row) for i, row in enumerate(data)]


def _text(row: dict, name: str | None) -> tuple[str | None, str | None]:
    """(text, None) or (None, what is wrong); finite numbers are accepted and written as text."""
    if name not in row or row[name] is None:
        return None, f"missing field '{name}'"
    value = row[name]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None, f"field '{name}' is {type(value).__name__}, not text"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None, f"field '{name}' is {value}, not a usable value"
        if value.is_integer():
            value = int(value)
    text = str(value).strip()
    return (text, None) if text else (None, f"field '{name}' is empty")


def _answer_from(text: str, fmt: str) -> str | None:
    if fmt == "boxed":
        return final_boxed(text) or None
    if fmt == "hash":
        _, found, after = text.rpartition("####")
        return (after.strip() or None) if found else None
    return text


def _checked_answer(answer: str, name: str) -> str | None:
    """What is wrong with a reference answer, or None: NaN and infinities (pandas' float columns) grade nothing."""
    if answer.strip().lower() in NON_FINITE_TEXT:
        return f"field '{name}' is {answer.strip()!r}, not a usable reference answer"
    return None


def _problem(spec: SourceSpec, where: str, row: object, id_prefix: str) -> tuple[Problem | None, str | None]:
    if not isinstance(row, dict):
        return None, f"a JSON {type(row).__name__}, not an object"
    problem, error = _text(row, spec.problem_field)
    if error:
        return None, error
    answer, answer_error = (None, None)
    answer_name = spec.answer_field
    if spec.answer_field:
        answer, answer_error = _text(row, spec.answer_field)
        if answer is not None:
            answer = _answer_from(answer, spec.answer_format)
            if answer is None:
                what = "\\boxed{}" if spec.answer_format == "boxed" else "'####'"
                return None, f"no {what} answer in field '{spec.answer_field}'"
        elif answer_error and "missing field" not in answer_error and "is empty" not in answer_error:
            return None, answer_error  # present but unusable (NaN, a list): never fall back to the solution
    solution, solution_error = _text(row, spec.solution_field) if spec.solution_field else (None, None)
    if answer is None and spec.solution_field:
        if solution is None:
            return None, answer_error or solution_error
        answer, answer_name = final_boxed(solution), spec.solution_field
        if not answer:
            return None, f"no \\boxed{{}} answer in field '{spec.solution_field}'"
    if answer is None:
        return None, answer_error
    bad = _checked_answer(answer, answer_name)
    if bad:
        return None, bad
    level = row.get("level")
    return Problem(id=f"{id_prefix}:{where.split()[-1]}", problem=problem, answer=answer, solution=solution or "",
                   level=str(level) if isinstance(level, (str, int)) else ""), None


def _fields_hint(report: LoadReport) -> str:
    if report.fields and any("missing field" in reason for _, reason in report.skipped):
        return f" (rows have fields: {', '.join(report.fields)})"
    return ""


def read_source(spec: SourceSpec, id_prefix: str) -> LoadReport:
    """Every usable problem of a source in file order, and every skipped row with its reason (no threshold)."""
    check_spec(spec)
    report = LoadReport(where=spec.where)
    if spec.path:
        path = Path(os.path.expanduser(spec.path))
        rows = _read_jsonl(path, spec, report.skipped) if path.suffix == ".jsonl" else _read_parquet(path, spec)
    else:
        rows = _read_hub(spec)
    unreadable = len(report.skipped)
    for where, row in rows:
        problem, error = _problem(spec, where, row, id_prefix)
        if error:
            report.skipped.append((where, error))
        else:
            report.problems.append(problem)
        if report.fields is None and isinstance(row, dict):
            report.fields = sorted(str(k) for k in row)
    report.rows = len(rows) + unreadable
    report.skipped.sort(key=lambda item: int(item[0].split()[-1]))  # unreadable lines were collected first
    return report


def load_report(spec: SourceSpec, id_prefix: str) -> LoadReport:
    """``read_source`` plus the threshold: ConfigError (one line) when no row is usable or more than
    ``spec.max_bad_fraction`` of the rows were skipped."""
    report = read_source(spec, id_prefix)
    hint = _fields_hint(report)
    if report.rows == 0:
        raise ConfigError(f"{spec.where} contains no rows")
    if not report.problems:
        raise ConfigError(f"{spec.where}: no usable row ({len(report.skipped)} of {report.rows} skipped): "
                          f"{report.listing()}{hint}")
    if len(report.skipped) > spec.max_bad_fraction * report.rows:
        raise ConfigError(f"{spec.where}: {len(report.skipped)} of {report.rows} rows are unusable, more than "
                          f"{spec.label}.max_bad_fraction={spec.max_bad_fraction:g} allows: {report.listing()}{hint}")
    return report


def load_problems(spec: SourceSpec, id_prefix: str, quiet: bool = False) -> list[Problem]:
    """The usable problems of a source; skipped rows are summarised in one line on stderr."""
    report = load_report(spec, id_prefix)
    if report.skipped and not quiet:
        print(f"warning: {report.summary()}", file=sys.stderr, flush=True)
    return report.problems
