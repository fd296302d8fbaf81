"""The MLflow wing: the only part of the library that talks to MLflow (ARCHITECTURE.md).

Modules (import the one you need; this package itself imports nothing, so ``igrpo.tracking.names`` stays
free of mlflow and transformers for ``analysis/``, ``experiments/`` and the Hydra plugins):

    names     dependency-free: the tracking-URI rule, tag and metric names, experiment names and kind
    runs      open / close / write one run (params, metrics, tags, text, tables, artifacts), experiments
    callback  MlflowMetricsCallback: TRL's log records -> MLflow under our metric names
    builds    the base-model and judge build runs (their own experiment, ``names.BUILDS_EXPERIMENT``)
    resume    what checkpoint/resume reads back from a run (its state, metric history, params, artifacts)
    parent    the one owner of a multirun's parent run (the Hydra callback) and the queries on parents
"""
