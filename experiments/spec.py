"""Experiment specs: one YAML file per paper result under ``experiments/specs/``, loaded through a typed schema.

A spec names *what* to compare (arms: a label and Hydra overrides), *where* (row groups, e.g. one per
base model or per optimizer), *how often* (seeds) and *how to show it* (table layout, figures), at two
scales: ``cpu`` (the embedded tiny default, minutes on a laptop) and ``paper`` (real models on GPUs; it
must plan and dry-run here, and runs once a GPU exists). ``specs/_scales.yaml`` holds what every spec shares
per scale (seeds, the paper's training recipe, the paper's suites and their avg@k); a spec's own
``scales.<scale>`` block extends it (overrides appended, other keys replace, ``table`` keys merged over the
spec's top-level ``table``, which merges over ``_scales.yaml``'s). A scale's ``when`` adds overrides to the runs
that choose one option, e.g. ``when: {variant=igrpo: [variant.template=paper]}``: a field that only one option of a
group has (iGRPO's draft settings) can be part of a scale's recipe without reaching the runs of the other option.

Loading: each YAML file is merged onto OmegaConf structured dataclasses (``SpecFile``, ``ScalesFile`` below), so
an unknown key or a wrong type is refused by the schema; the error becomes one line naming the file, the key
and the valid keys (or the expected type). What a schema cannot say (labels, unique labels, the baseline is an
arm, figure names, seeds >= 0, overrides look like ``key=value``) is checked after. The result is plain frozen
dataclasses (``Spec``, ``Scale``, ``Arm``, ``Group``, ``TableLayout``) that ``experiments.plan`` and ``analysis``
read. The spec's ``paper_reference`` is checked by ``analysis.report`` (the paper's numbers live there; this
package never imports ``analysis``). Imports: yaml and omegaconf only (the typed loading is ``experiments.typed_yaml``),
nothing from ``igrpo``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import yaml
from omegaconf import MISSING, OmegaConf

from experiments.typed_yaml import SpecError, typed

SPEC_DIR = Path(__file__).resolve().parent / "specs"
SCALES = ("cpu", "paper")
# Figure names understood by analysis.figures (kept here so a spec is checked without importing matplotlib).
FIGURES = ("entropy", "reward", "draft_vs_refinement", "completion_length", "zero_std", "kl")
DEFAULT_SUMMARY = ("train/reward", "train/entropy", "train/frac_groups_zero_std", "draft/best_reward_mean",
                   "draft/frac_groups_zero_std", "perf/train_seconds")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.+\-=()/]*$")  # shown in tables, stored as MLflow tags
_SUFFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")  # appended to run names
_OVERRIDE = re.compile(r"^[+~]{0,2}[A-Za-z_][\w.\-/]*=")
_CHOICE = re.compile(r"^[A-Za-z_][\w.\-/]*=[\w.\-]+$")  # a `when` condition: key=value


# --- the file schemas (what a YAML file may hold; None = not given) ---------------------------------------------


@dataclass
class ItemFile:
    """An arm or a row group."""
    label: str = MISSING  # e.g. "iGRPO" or a base model; the MLflow tag `arm` / `group` and a row name
    overrides: List[str] = field(default_factory=list)  # Hydra overrides of run.py, e.g. [variant=grpo]
    suffix: Optional[str] = None  # run-name suffix when the label's config is not visible in the default name
    arms: Optional[List[str]] = None  # row groups only: the labels of the arms run in this group (default: all)


@dataclass
class TableFile:
    base_row: Optional[bool] = None  # add a "base" row per group from the step-0 (pre-training) eval
    baseline: Optional[str] = None  # arm label that the Δ column is measured against
    baseline_group: Optional[str] = None  # row group that each arm's Δ across groups is measured against
    pairs: Optional[List[List[str]]] = None  # [arm, reference arm]: Δ of one arm against another, in every group
    metric: Optional[str] = None  # metric of every suite; {k} = the run's eval.samples_per_problem
    suite_metrics: Optional[Dict[str, str]] = None  # per-suite metric, e.g. {aime25: avg_at_64}
    suites: Optional[List[str]] = None  # column order; none = the suites the runs logged
    suite_labels: Optional[Dict[str, str]] = None  # column titles, e.g. {aime25: AIME25}
    percent: Optional[bool] = None  # show accuracies as percentages, like the paper


@dataclass
class ScaleFile:
    description: Optional[str] = None
    seeds: Optional[List[int]] = None
    overrides: List[str] = field(default_factory=list)  # appended to _scales.yaml's
    groups: Optional[List[ItemFile]] = None
    table: TableFile = field(default_factory=TableFile)
    # "group=option" -> overrides added to the runs that choose that option (on the command line they come right
    # after the scale's overrides, so an arm's own overrides still win); lists are appended to _scales.yaml's
    when: Optional[Dict[str, List[str]]] = None
    # how the scale's runs are launched when the command line names no launcher: hydra/... and hydra.* overrides
    # (e.g. two runs at once on a 2-core CPU); replaces _scales.yaml's; `--` hydra overrides win over it
    launcher: Optional[List[str]] = None


@dataclass
class ScalesFile:
    cpu: Optional[ScaleFile] = None
    paper: Optional[ScaleFile] = None


@dataclass
class SpecFile:
    name: str = MISSING  # must match the file name
    title: Optional[str] = None  # default: the name
    description: str = ""
    arms: List[ItemFile] = MISSING
    table: TableFile = field(default_factory=TableFile)  # every scale's table layout (a scale's own table wins)
    figures: List[str] = field(default_factory=list)  # names in FIGURES
    summary_metrics: Optional[List[str]] = None  # default: DEFAULT_SUMMARY
    paper_reference: Optional[str] = None  # the paper's numbers to print beside ours (checked by analysis.report)
    scales: ScalesFile = MISSING


# --- what a loaded spec is ---------------------------------------------------------------------------------------


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
    arms: tuple[str, ...] | None = None  # labels of the arms run in this group; None = every arm


def group_arms(spec: "Spec", group: Group) -> tuple[Arm, ...]:
    """The arms run in ``group``, in the spec's order (a paper ran some methods on some base models only)."""
    return tuple(a for a in spec.arms if group.arms is None or a.label in group.arms)


@dataclass(frozen=True)
class TableLayout:
    base_row: bool = False  # add a "base" row per group from the step-0 (pre-training) eval
    baseline: str | None = None  # arm label that the Δ column is measured against
    # row group that each arm's Δ across groups is measured against (the same arm in that group: e.g. dynamic
    # sampling off vs on), in analysis.spend with each side's generation spend; None: no such table
    baseline_group: str | None = None
    # (arm, reference arm) pairs: Δ of an arm against another arm than the baseline (e.g. two draft budgets of
    # iGRPO), in every group that runs both, with each side's generation spend (analysis.spend)
    pairs: tuple[tuple[str, str], ...] = ()
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
    when: dict = field(default_factory=dict)  # "key=value" -> tuple of overrides for the runs that choose it
    launcher: tuple[str, ...] = ()  # hydra/... and hydra.* overrides: the default launch (the command line's win)


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
    spec_file = typed(SpecFile, raw, path.name, "")
    shared_path = spec_dir / "_scales.yaml"
    shared_raw = _read(shared_path) if shared_path.exists() else {}
    shared = typed(ScalesFile, shared_raw, shared_path.name, "")
    return _build(spec_file, raw, shared, shared_raw, path)


# --- schema merge with one-line errors ---------------------------------------------------------------------------


def _read(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SpecError(f"{path}: cannot read spec: {str(err).splitlines()[0]}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(f"{path.name}: a spec must be a mapping of keys to values")
    return data




# --- from the typed files to a Spec, with the checks a schema cannot express -------------------------------------


def _plain(node) -> dict:
    """A typed node as plain Python (interpolation-looking text such as ``${...}`` in an override stays text)."""
    return OmegaConf.to_container(node, resolve=False)


def _given(node, raw) -> dict:
    """Only the keys the file wrote (typed): what a layer changes when layers are merged."""
    values = _plain(node)
    return {k: values[k] for k in (raw or {})}


def _build(spec_file, raw: dict, shared, shared_raw: dict, path: Path) -> Spec:
    where = path.name
    s = _plain(spec_file)
    if s["name"] != path.stem:
        raise SpecError(f"{where}: name={s['name']!r} must match the file name ({path.stem!r})")
    arms = tuple(_item(where, f"arms[{i}]", a, Arm) for i, a in enumerate(s["arms"]))
    if not arms:
        raise SpecError(f"{where}: arms=[] is not valid; name at least one arm")
    _unique(where, "arms", [a.label for a in arms])
    for fig in s["figures"]:
        if fig not in FIGURES:
            raise SpecError(f"{where}: figures: {fig!r} is not valid; choose one of: {', '.join(FIGURES)}")
    scales_raw = raw["scales"] or {}
    missing = [name for name in SCALES if name not in scales_raw]
    if missing:
        raise SpecError(f"{where}: scales.{missing[0]} is missing; every spec declares: {', '.join(SCALES)}")
    scales = {}
    for name in SCALES:
        own_raw = scales_raw.get(name) or {}
        default_raw = shared_raw.get(name) or {}
        layers = [(shared[name].table if default_raw else None, default_raw.get("table")),  # later layers win
                  (spec_file.table, raw.get("table")),
                  (spec_file.scales[name].table if own_raw else None, own_raw.get("table"))]
        own = _given(spec_file.scales[name], own_raw) if own_raw else {}
        default = _given(shared[name], default_raw) if default_raw else {}
        scales[name] = _scale(where, name, default, own, layers, arms)
    summary = tuple(s["summary_metrics"] if s["summary_metrics"] is not None else DEFAULT_SUMMARY)
    return Spec(name=s["name"], title=s["title"] or s["name"], description=s["description"] or "", arms=arms,
                scales=scales, figures=tuple(s["figures"]), summary_metrics=summary,
                paper_reference=s["paper_reference"], path=path)


def _scale(where: str, name: str, default: dict, own: dict, table_layers, arms) -> Scale:
    merged = {**default, **own, "overrides": [*default.get("overrides", []), *own.get("overrides", [])]}
    seeds = merged.get("seeds")
    seeds = [0] if seeds is None else seeds
    if not seeds or any(s < 0 for s in seeds):
        raise SpecError(f"{where}: scales.{name}.seeds={seeds} is not valid; give a list of integers >= 0")
    groups_raw = merged.get("groups") or [{"label": "default", "overrides": [], "suffix": None}]
    groups = tuple(_item(where, f"scales.{name}.groups[{i}]", g, Group) for i, g in enumerate(groups_raw))
    _unique(where, f"scales.{name}.groups", [g.label for g in groups])
    labels = [a.label for a in arms]
    for i, g in enumerate(groups):
        for label in g.arms or ():
            if label not in labels:
                raise SpecError(f"{where}: scales.{name}.groups[{i}].arms: {label!r} is not valid; choose from the "
                                f"arms: {', '.join(labels)}")
    table: dict = {}
    for node, block in table_layers:
        if node is not None and block:
            table.update(_given(node, block))
    layout = _table(where, table, arms)
    if layout.baseline_group is not None and layout.baseline_group not in [g.label for g in groups]:
        raise SpecError(f"{where}: scales.{name}: table.baseline_group={layout.baseline_group!r} is not valid; "
                        f"choose one of the scale's groups: {', '.join(g.label for g in groups)}")
    for i, g in enumerate(groups):
        if g.arms is not None and layout.baseline is not None and layout.baseline not in g.arms:
            raise SpecError(f"{where}: scales.{name}.groups[{i}].arms must include the table's baseline "
                            f"{layout.baseline!r} (its Δ column and base row come from it)")
    overrides = tuple(_overrides(where, f"scales.{name}.overrides", merged["overrides"]))
    when: dict = {}
    for block in (default.get("when"), own.get("when")):
        for condition, values in (block or {}).items():
            if not _CHOICE.match(condition):
                raise SpecError(f"{where}: scales.{name}.when.{condition} is not valid; name one choice as "
                                "key=value (e.g. variant=igrpo)")
            values = _overrides(where, f"scales.{name}.when.{condition}", values)
            when[condition] = (*when.get(condition, ()), *values)
    launcher = tuple(_overrides(where, f"scales.{name}.launcher", merged.get("launcher") or []))
    for value in launcher:
        if not value.startswith(("hydra/", "hydra.")):
            raise SpecError(f"{where}: scales.{name}.launcher: {value!r} is not a launcher setting; give hydra/... or "
                            "hydra.* overrides (e.g. hydra/launcher=local_parallel)")
    return Scale(name=name, description=str(merged.get("description") or ""), seeds=tuple(seeds),
                 overrides=overrides, groups=groups, table=layout, when=when, launcher=launcher)


def _table(where: str, table: dict, arms) -> TableLayout:
    labels = [a.label for a in arms]
    if table.get("baseline") is not None and table["baseline"] not in labels:
        raise SpecError(f"{where}: table.baseline={table['baseline']!r} is not valid; choose one of: "
                        f"{', '.join(labels)}")
    values = {k: v for k, v in table.items() if v is not None}
    for i, pair in enumerate(values.get("pairs") or ()):
        if len(pair) != 2 or pair[0] == pair[1] or any(label not in labels for label in pair):
            raise SpecError(f"{where}: table.pairs[{i}]={list(pair)!r} is not valid; give [arm, reference arm], two "
                            f"different arms of: {', '.join(labels)}")
    if "pairs" in values:
        values["pairs"] = tuple(tuple(pair) for pair in values["pairs"])
    if "suites" in values:
        values["suites"] = tuple(values["suites"])
    return TableLayout(**values)


def _item(where: str, at: str, item: dict, cls):
    label = item["label"]
    if not label or not _LABEL.match(label):
        raise SpecError(f"{where}: {at}.label={label!r} is not valid; use letters, digits, spaces and _ . + - = ( ) /")
    suffix = item.get("suffix")
    if suffix is not None and not _SUFFIX.match(suffix):
        raise SpecError(f"{where}: {at}.suffix={suffix!r} is not valid; use letters, digits and _ . -")
    overrides = tuple(_overrides(where, f"{at}.overrides", item.get("overrides") or []))
    if cls is Arm:
        if item.get("arms") is not None:
            raise SpecError(f"{where}: {at}.arms is not valid on an arm; a row group names the arms it runs")
        return cls(label=label, overrides=overrides, suffix=suffix)
    arms = item.get("arms")
    return cls(label=label, overrides=overrides, suffix=suffix, arms=None if arms is None else tuple(arms))


def _overrides(where: str, at: str, values: list) -> list[str]:
    for value in values:
        if not _OVERRIDE.match(value):
            raise SpecError(f"{where}: {at}: {value!r} is not a Hydra override; write key=value (e.g. variant=grpo)")
    return list(values)


def _unique(where: str, at: str, labels: list[str]) -> None:
    seen = set()
    for label in labels:
        if label in seen:
            raise SpecError(f"{where}: {at}: label {label!r} appears twice; labels must be unique")
        seen.add(label)
