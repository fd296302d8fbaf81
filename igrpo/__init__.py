"""igrpo: an experiment and ablation framework for iGRPO (draft -> best draft -> refinement GRPO)."""

__version__ = "0.1.0"
