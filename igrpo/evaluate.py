"""Kept for existing imports: the evaluation lives in ``igrpo.eval`` (protocol and metrics in
``igrpo.eval.suites``, the resumable job in ``igrpo.eval.job``)."""

from igrpo.eval.suites import (  # noqa: F401
    EVAL_MODES,
    MEAN_AVG_KEY,
    VERIFIERS,
    answer_grader,
    avg_key,
    eval_metric_names,
    evaluate_suites,
    suite_samples,
)
