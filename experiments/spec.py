"""Experiment specs: one YAML file per paper result under ``experiments/specs/``, loaded and checked here.

A spec names *what* to compare (arms: a label and Hydra overrides), *where* (row groups, e.g. one per
base model or per optimizer), *how often* (seeds) and *how to show it* (table layout, figures), at two
scales: ``cpu`` (the embedded tiny default, minutes on a laptop) and ``paper`` (real models on GPUs; it
must plan and dry-run here, and runs once its config files and a GPU exist). ``specs/_scales.yaml``
holds what every spec shares per scale (seeds, the paper's training recipe, the paper's suites and
their avg@k); a spec's own ``scales.<scale>`` block extends it (overrides appended, other keys replace,
``table`` keys merged). Every mistake is one line naming the file, the bad value and the valid choices.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SPEC_DIR = Path(__file__).resolve().parent / "specs"
SCALES = ("cpu", "paper")
# Figure names understood by analysis.figures (kept here so a spec is checked without importing matplotlib).
FIGURES = ("entropy", "reward", "draft_vs_refinement", "completion_length", "zero_std", "kl")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.+\-=()/]*$")  # shown in tables, stored as MLflow tags
_SUFFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")  # appended to run names
_OVERRIDE = re.compile(r"^[+~]{0,2}[A-Za-z_][\w.\-/]*=")


class SpecError(ValueError):
    """A spec file is malformed; the message is one line naming the file and the bad value."""


@dataclass(frozen=True)
class Arm:
    label: str  # e.g. "iGRPO"; the MLflow tag `arm` and the table's row name
    overrides: tuple[str, ...] = ()
    suffix: str | None = None  # run-name suffix when the label's config is not visible in the default name


@dataclass(frozen=True)
class Group:
    label: str  # e.g. a base model or an optimizer; the MLflow tag `group` and a block of table rows
    overrides: tuple[str, ...] = ()
    suffix: str | None = None


@dataclass(frozen=True)
class TableLayout:
    base_row: bool = False  # add a "base" row per group from the step-0 (pre-training) eval
    baseline: str | None = None  # arm label that the Δ column is measured against
    metric: str = "avg_at_{k}"  # metric of every suite; {k} = the run's eval.samples_per_problem
    suite_metrics: dict = field(default_factory=dict)  # per-suite metric, e.g. {aime25: avg_at_64}
    suites: tuple[str, ...] | None = None  # column order; None = the suites the runs logged
    suite_labels: dict = field(default_factory=dict)  # column titles, e.g. {aime25: AIME25}
    percent: bool = True  # show accuracies as percentages, like the paper


@dataclass(frozen=True)
class Scale:
    name: str
    description: str
    seeds: tuple[int, ...]
    overrides: tuple[str, ...]
    groups: tuple[Group, ...]
    table: TableLayout


@dataclass(frozen=True)
class Spec:
    name: str
    title: str
    description: str
    arms: tuple[Arm, ...]
    scales: dict  # scale name -> Scale
    figures: tuple[str, ...]
    summary_metrics: tuple[str, ...]
    paper_reference: str | None
    path: Path

    def scale(self, name: str) -> Scale:
        if name not in self.scales:
            raise SpecError(f"--scale={name} is not valid for {self.name}; choose one of: {', '.join(self.scales)}")
        return self.scales[name]


_SPEC_KEYS = ("name", "title", "description", "arms", "table", "figures", "summary_metrics", "paper_reference",
              "scales")
_SCALE_KEYS = ("description", "seeds", "overrides", "groups", "table")
_ITEM_KEYS = ("label", "overrides", "suffix")
_TABLE_KEYS = tuple(TableLayout.__dataclass_fields__)
DEFAULT_SUMMARY = ("train/reward", "train/entropy", "train/frac_groups_zero_std", "draft/best_reward_mean",
                   "draft/frac_groups_zero_std", "perf/train_seconds")


def spec_names(spec_dir: Path = SPEC_DIR) -> list[str]:
    return sorted(p.stem for p in spec_dir.glob("*.yaml") if not p.stem.startswith("_"))


def load_spec(name_or_path: str | Path, spec_dir: Path = SPEC_DIR) -> Spec:
    """Load a spec by name (``table1``) or by path; raise SpecError with one line on any mistake."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        names = spec_names(spec_dir)
        if str(name_or_path) not in names:
            raise SpecError(f"unknown experiment {str(name_or_path)!r}; choose one of: {', '.join(names)}")
        path = spec_dir / f"{name_or_path}.yaml"
    raw = _read(path)
    defaults = _read(spec_dir / "_scales.yaml") if (spec_dir / "_scales.yaml").exists() else {}
    return _build(raw, defaults, path)


def _read(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SpecError(f"{path}: cannot read spec: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec must be a mapping of keys to values")
    return data


def _build(raw: dict, defaults: dict, path: Path) -> Spec:
    where = path.name
    _keys(where, "", raw, _SPEC_KEYS)
    name = _string(where, "name", raw.get("name"))
    if name != path.stem:
        raise SpecError(f"{where}: name={name!r} must match the file name ({path.stem!r})")
    arms = tuple(_item(where, f"arms[{i}]", a, Arm) for i, a in enumerate(_list(where, "arms", raw.get("arms"))))
    if not arms:
        raise SpecError(f"{where}: arms=[] is not valid; name at least one arm")
    _unique(where, "arms", [a.label for a in arms])
    figures = tuple(_list(where, "figures", raw.get("figures", [])))
    for fig in figures:
        if fig not in FIGURES:
            raise SpecError(f"{where}: figures: {fig!r} is not valid; choose one of: {', '.join(FIGURES)}")
    summary_raw = _list(where, "summary_metrics", raw.get("summary_metrics", list(DEFAULT_SUMMARY)))
    summary = tuple(_string(where, "summary_metrics", m) for m in summary_raw)
    scales_raw = raw.get("scales")
    if not isinstance(scales_raw, dict):
        raise SpecError(f"{where}: scales must be a mapping with the keys: {', '.join(SCALES)}")
    for scale in scales_raw:
        if scale not in SCALES:
            raise SpecError(f"{where}: scales.{scale} is not valid; choose one of: {', '.join(SCALES)}")
    missing = [s for s in SCALES if s not in scales_raw]
    if missing:
        raise SpecError(f"{where}: scales.{missing[0]} is missing; every spec declares: {', '.join(SCALES)}")
    scales = {s: _scale(where, s, defaults.get(s) or {}, raw.get("table") or {}, scales_raw[s] or {}, arms)
              for s in SCALES}
    reference = raw.get("paper_reference")
    if reference is not None:
        from analysis.paper_reference import REFERENCES

        if reference not in REFERENCES:
            raise SpecError(f"{where}: paper_reference={reference!r} is not valid; choose one of: "
                            f"{', '.join(REFERENCES)}")
    return Spec(name=name, title=_string(where, "title", raw.get("title", name)),
                description=str(raw.get("description") or ""), arms=arms,
                scales=scales, figures=figures, summary_metrics=summary, paper_reference=reference, path=path)


def _scale(where: str, name: str, default: dict, spec_table: dict, own: dict, arms) -> Scale:
    _keys(where, f"scales.{name}.", own, _SCALE_KEYS)
    _keys("_scales.yaml", f"{name}.", default, _SCALE_KEYS)
    merged = {**default, **own, "overrides": [*default.get("overrides", []), *own.get("overrides", [])]}
    seeds = _list(where, f"scales.{name}.seeds", merged.get("seeds", [0]))
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise SpecError(f"{where}: scales.{name}.seeds={seeds} is not valid; give a list of integers >= 0")
    groups_raw = _list(where, f"scales.{name}.groups", merged.get("groups") or [{"label": "default"}])
    groups = tuple(_item(where, f"scales.{name}.groups[{i}]", g, Group) for i, g in enumerate(groups_raw))
    _unique(where, f"scales.{name}.groups", [g.label for g in groups])
    table = {}
    for file, prefix, block in (("_scales.yaml", f"{name}.table.", default.get("table")),
                                (where, "table.", spec_table), (where, f"scales.{name}.table.", own.get("table"))):
        if not isinstance(block or {}, dict):
            raise SpecError(f"{file}: {prefix[:-1]} must be a mapping with the keys: {', '.join(_TABLE_KEYS)}")
        _keys(file, prefix, block or {}, _TABLE_KEYS)
        table.update(block or {})
    layout = _table(where, name, table, arms)
    overrides = tuple(_overrides(where, f"scales.{name}.overrides", merged["overrides"]))
    return Scale(name=name, description=str(merged.get("description", "")), seeds=tuple(seeds),
                 overrides=overrides, groups=groups, table=layout)


def _table(where: str, scale: str, table: dict, arms) -> TableLayout:
    labels = [a.label for a in arms]
    if table.get("baseline") is not None and table["baseline"] not in labels:
        raise SpecError(f"{where}: table.baseline={table['baseline']!r} is not valid; choose one of: "
                        f"{', '.join(labels)}")
    for key in ("suite_metrics", "suite_labels"):
        if not isinstance(table.get(key, {}), dict):
            raise SpecError(f"{where}: table.{key} must be a mapping of suite name to text")
    suites = table.get("suites")
    if suites is not None:
        suites = tuple(_string(where, "table.suites", s) for s in _list(where, "table.suites", suites))
    for key in ("base_row", "percent"):
        if key in table and not isinstance(table[key], bool):
            raise SpecError(f"{where}: table.{key}={table[key]!r} is not valid; choose one of: true, false")
    return TableLayout(**{**table, "suites": suites,
                          "suite_metrics": {str(k): str(v) for k, v in (table.get("suite_metrics") or {}).items()},
                          "suite_labels": {str(k): str(v) for k, v in (table.get("suite_labels") or {}).items()}})


def _item(where: str, at: str, raw, cls):
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: {at} must be a mapping with the keys: {', '.join(_ITEM_KEYS)}")
    _keys(where, f"{at}.", raw, _ITEM_KEYS)
    label = _string(where, f"{at}.label", raw.get("label"))
    if not _LABEL.match(label):
        raise SpecError(f"{where}: {at}.label={label!r} is not valid; use letters, digits, spaces and _ . + - = ( ) /")
    suffix = raw.get("suffix")
    if suffix is not None and not _SUFFIX.match(str(suffix)):
        raise SpecError(f"{where}: {at}.suffix={suffix!r} is not valid; use letters, digits and _ . -")
    overrides = tuple(_overrides(where, f"{at}.overrides", raw.get("overrides") or []))
    return cls(label=label, overrides=overrides, suffix=None if suffix is None else str(suffix))


def _overrides(where: str, at: str, values) -> list[str]:
    out = []
    for value in _list(where, at, values):
        if not isinstance(value, str) or not _OVERRIDE.match(value):
            raise SpecError(f"{where}: {at}: {value!r} is not a Hydra override; write key=value (e.g. variant=grpo)")
        out.append(value)
    return out


def _keys(where: str, prefix: str, raw: dict, valid) -> None:
    for key in raw:
        if key not in valid:
            raise SpecError(f"{where}: {prefix}{key} is not a valid key; choose one of: {', '.join(valid)}")


def _list(where: str, at: str, value) -> list:
    if not isinstance(value, list):
        raise SpecError(f"{where}: {at}={value!r} is not valid; it must be a list")
    return value


def _string(where: str, at: str, value) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(f"{where}: {at}={value!r} is not valid; it must be a non-empty string")
    return value


def _unique(where: str, at: str, labels: list[str]) -> None:
    seen = set()
    for label in labels:
        if label in seen:
            raise SpecError(f"{where}: {at}: label {label!r} appears twice; labels must be unique")
        seen.add(label)
