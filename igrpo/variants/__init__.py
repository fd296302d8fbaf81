"""Table 1's two self-improvement baselines as variants at the same TRL seam as iGRPO (BASELINES.md):

* ``variant=critique_grpo`` (Zhang et al. 2025, arXiv 2506.03106): initial answers plus critique-guided
  refinements in one mixed group, all trained under the plain question (``igrpo.variants.critique_grpo.rules``,
  ``igrpo.variants.critique_grpo.shaping``, ``igrpo.variants.critique_grpo.trainer``).
* ``variant=self_verify`` (Zhang et al. 2025, arXiv 2506.01369): the policy solves problems and grades its own
  recent solutions with a Yes/No verdict, both trained with GRPO (``igrpo.variants.self_verify.rules``,
  ``igrpo.variants.self_verify.trainer``).

Light imports only here and in ``budget`` (validation and the rollout budget need no torch); the trainers are
built through ``igrpo.variants.factory``.
"""

from __future__ import annotations

BASELINE_VARIANTS = ("critique_grpo", "self_verify")
