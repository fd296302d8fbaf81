"""Evaluation: the metrics and their protocol (``igrpo.eval.suites``), generation backends
(``igrpo.eval.backends``), the resumable sample store (``igrpo.eval.store``) and the ``python -m igrpo.eval``
job (``igrpo.job.eval_job``)."""

from igrpo.eval.suites import (
    EVAL_MODES,
    MEAN_AVG_KEY,
    VERIFIERS,
    Chunk,
    EvalOutcome,
    answer_grader,
    avg_key,
    eval_metric_names,
    evaluate_suites,
    plan_chunks,
    run_chunks,
    suite_samples,
)

__all__ = ["EVAL_MODES", "MEAN_AVG_KEY", "VERIFIERS", "Chunk", "EvalOutcome", "answer_grader", "avg_key",
           "eval_metric_names", "evaluate_suites", "plan_chunks", "run_chunks", "suite_samples"]
