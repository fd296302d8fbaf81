"""The one owner of a multirun's MLflow parent run, and the queries ``experiments/`` and the plugins need.

Every ``-m`` multirun (plain, an ``igrpo_optuna`` study, an experiment's plan) gets one parent run, and each of
its jobs is a child of it. ``MlflowParentRunCallback`` (a Hydra callback, ``conf/config.yaml``) owns it:

- at ``on_multirun_start`` it finds the parent by its key (run tag ``names.TAG_PARENT_KEY``) or creates it.
  The key: ``optuna:<study_name>@<storage>`` for a persistent igrpo_optuna study (``hydra.sweeper.study_name``
  and ``storage`` set), so every sweep of one study shares one parent; else ``tracking.parent_key`` when set
  (the experiments runner sets e.g. ``experiment:table1:cpu``); else ``sweep:<sweep dir>``. A parent found
  again is reopened (status RUNNING, once, here). Its id goes to ``names.PARENT_RUN_FILE`` in the sweep dir,
  where every job (local, joblib or SLURM, on a shared filesystem) reads it;
- at ``on_multirun_end`` it sets the parent FINISHED;
- if the process exits before that (a failed job in a plain multirun, a refused or crashed sweep, Ctrl-C),
  an exit hook sets it FAILED.

Jobs never change the parent's status (a failed trial is routine in a study).
"""

from __future__ import annotations

import atexit
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from igrpo.tracking.names import (
    PARENT_RUN_FILE,
    PHASE_EXPERIMENT,
    PHASE_SWEEP,
    TAG_CONFIG_HASH,
    TAG_PARENT_KEY,
    TAG_PARENT_RUN_ID,
    TAG_PHASE,
    optuna_parent_key,
    resolve_tracking_uri,
    sweep_parent_key,
)

# igrpo.tracking.runs imports mlflow (~2 s): Hydra instantiates this callback for every run, so it is imported only
# where a store is used, and a config mistake is reported before mlflow is ever loaded.


def _quoted(value: str) -> str:
    """A string literal for an MLflow filter."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"{value!r} holds both quote characters; MLflow cannot search for it")


def find_parent_run(tracking_uri: str, experiment: str, key: str) -> str | None:
    """The id of the (newest, not deleted) parent run of ``experiment`` tagged with ``key``, or None."""
    from igrpo.tracking.runs import client, experiment_id

    exp = experiment_id(tracking_uri, experiment)
    if exp is None:
        return None
    found = client(tracking_uri).search_runs([exp], filter_string=f"tags.`{TAG_PARENT_KEY}` = {_quoted(key)}",
                                             order_by=["attributes.start_time DESC"], max_results=1)
    return found[0].info.run_id if found else None


def open_parent(tracking_uri: str, experiment: str, key: str, run_name: str, tags: dict[str, str]) -> str:
    """Find the parent run of ``key`` and reopen it (RUNNING; ``tags`` updated), or create it. Its id."""
    from igrpo.tracking.runs import RUNNING, RunLog, client, ensure_experiment, set_status

    tags = {str(k): str(v)[:5000] for k, v in tags.items()}
    found = find_parent_run(tracking_uri, experiment, key)
    if found is not None:
        set_status(tracking_uri, found, RUNNING)
        RunLog(tracking_uri, found).tags(tags)
        return found
    run = client(tracking_uri).create_run(ensure_experiment(tracking_uri, experiment), run_name=run_name,
                                          tags={**tags, TAG_PARENT_KEY: key})
    return run.info.run_id


def close_parent(tracking_uri: str, run_id: str, status: str) -> None:
    """End a parent run still RUNNING with ``status`` (one that already ended is left as it is)."""
    from igrpo.tracking.runs import RUNNING, run_state, set_status

    state = run_state(tracking_uri, run_id)
    if state is not None and state.status == RUNNING:
        set_status(tracking_uri, run_id, status)


def close_orphans(tracking_uri: str, parent_run_id: str) -> list[str]:
    """Children of ``parent_run_id`` still RUNNING belong to a killed sweep: mark them KILLED; their ids."""
    from igrpo.tracking.runs import KILLED, client, run_state, set_status

    state = run_state(tracking_uri, parent_run_id)
    if state is None:
        return []
    orphans = client(tracking_uri).search_runs(
        [state.experiment_id],
        filter_string=f"tags.`{TAG_PARENT_RUN_ID}` = '{parent_run_id}' and attributes.status = 'RUNNING'")
    for run in orphans:
        set_status(tracking_uri, run.info.run_id, KILLED)
    return [run.info.run_id for run in orphans]


def finished_run_with_hash(tracking_uri: str, experiment: str, config_hash: str,
                           tags: dict[str, str] | None = None) -> tuple[str, str] | None:
    """(run id, run name) of the newest FINISHED run of ``experiment`` with this ``config_hash`` (and, if given,
    these tag values), or None: a run that need not be launched again."""
    from igrpo.tracking.runs import client, experiment_id

    exp = experiment_id(tracking_uri, experiment)
    if exp is None:
        return None
    clauses = [f"tags.{TAG_CONFIG_HASH} = {_quoted(config_hash)}", "attributes.status = 'FINISHED'"]
    clauses += [f"tags.`{k}` = {_quoted(v)}" for k, v in (tags or {}).items()]
    found = client(tracking_uri).search_runs([exp], filter_string=" and ".join(clauses),
                                             order_by=["attributes.start_time DESC"], max_results=1)
    return (found[0].info.run_id, found[0].info.run_name) if found else None


# --- the Hydra callback -------------------------------------------------------------------------------------------


def parent_key(config: DictConfig) -> tuple[str, str]:
    """(key, phase tag) of a multirun's parent run; see the module docstring for the rule."""
    study = OmegaConf.select(config, "hydra.sweeper.study_name", default=None)
    storage = OmegaConf.select(config, "hydra.sweeper.storage", default=None)
    if study and storage:  # an in-memory study is new every time: its parent is the sweep's own
        return optuna_parent_key(str(study), str(storage)), PHASE_SWEEP
    key = OmegaConf.select(config, "tracking.parent_key", default=None)
    if key:
        return str(key), PHASE_EXPERIMENT
    return sweep_parent_key(config.hydra.sweep.dir), PHASE_SWEEP


def _parent_name(config: DictConfig, key: str, sweep_dir: Path) -> str:
    name = OmegaConf.select(config, "tracking.parent_name", default=None)
    if name:
        return str(name)
    study = OmegaConf.select(config, "hydra.sweeper.study_name", default=None)
    if key.startswith("optuna:") and study:
        return f"study-{study}"
    if not key.startswith("sweep:"):
        return key
    return f"sweep-{sweep_dir.parent.name}-{sweep_dir.name}"


class MlflowParentRunCallback(Callback):
    """The Hydra callback that owns a multirun's parent run (module docstring)."""

    def __init__(self) -> None:
        self._open: tuple[str, str] | None = None  # (tracking uri, parent run id) while the multirun runs

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        tracking_uri = resolve_tracking_uri(OmegaConf.select(config, "tracking.uri", default=None))
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        key, phase = parent_key(config)
        overrides = list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])
        extra = OmegaConf.select(config, "tracking.tags", default=None)
        tags = {**(OmegaConf.to_container(extra, resolve=True) if extra else {}),
                TAG_PHASE: phase, "sweep_dir": str(sweep_dir.resolve()), "overrides": " ".join(overrides)}
        run_id = open_parent(tracking_uri, config.tracking.experiment, key, _parent_name(config, key, sweep_dir),
                             tags)
        (sweep_dir / PARENT_RUN_FILE).write_text(run_id)
        self._open = (tracking_uri, run_id)
        atexit.register(self._fail_if_open)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if self._open is not None:
            close_parent(*self._open, "FINISHED")
            self._open = None
            atexit.unregister(self._fail_if_open)

    def _fail_if_open(self) -> None:
        """At interpreter exit: the multirun did not reach its end, so its parent FAILED."""
        if self._open is None:
            return
        try:
            close_parent(*self._open, "FAILED")
        except Exception:  # the store may be gone at exit; nothing more can be done
            pass
