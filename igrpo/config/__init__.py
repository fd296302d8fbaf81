"""Typed schemas: one per option of every config group. Types and comments live here; values live only
in the YAML files of ``conf/`` (every field below is ``MISSING`` until a YAML sets it).

Each option's YAML names its schema in its defaults list (``- /schema/variant/igrpo@_here_``), so a
node holds exactly the fields its option uses: ``variant=grpo`` has no draft fields, ``reward=binary``
no judge node, a real model no warm-start fields. Those fields never reach MLflow params or the
``config_hash``, and an unknown key or a value of the wrong type fails at composition time. Value
checks that types cannot express live in ``igrpo.config.validate``.

Code that serves several options reads an option's own field only where that option is selected
(``cfg.variant.num_drafts`` under ``variant.name == "igrpo"``), or through the helpers at the bottom.
"""

from __future__ import annotations

from typing import Any

from hydra.core.config_store import ConfigStore

from igrpo.config.data import DataSource, Eval, EvalSuite, TaskArith, TaskDataset
from igrpo.config.model import ModelCommon, ModelHF, ModelTiny
from igrpo.config.reward import JudgeCommon, JudgeHF, JudgeHTTP, JudgeTiny, RewardBinary, RewardJudge
from igrpo.config.run import (
    EntropyAdaptive,
    EntropyConstant,
    EntropyDelayed,
    EntropyLinear,
    EntropyNone,
    GenerationHF,
    GenerationVLLM,
    RunConfig,
    Tracking,
    Train,
)
from igrpo.config.variant import Algo, VariantCritiqueGRPO, VariantGRPO, VariantIGRPO, VariantSelfVerify

__all__ = [  # the schemas, re-exported; new ones go in the module of their group
    "SCHEMAS",
    "Algo",
    "DataSource",
    "EntropyAdaptive",
    "EntropyConstant",
    "EntropyDelayed",
    "EntropyLinear",
    "EntropyNone",
    "Eval",
    "EvalSuite",
    "GenerationHF",
    "GenerationVLLM",
    "JudgeCommon",
    "JudgeHF",
    "JudgeHTTP",
    "JudgeTiny",
    "ModelCommon",
    "ModelHF",
    "ModelTiny",
    "RewardBinary",
    "RewardJudge",
    "RunConfig",
    "TaskArith",
    "TaskDataset",
    "Tracking",
    "Train",
    "VariantCritiqueGRPO",
    "VariantGRPO",
    "VariantIGRPO",
    "VariantSelfVerify",
    "model_path",
    "register_configs",
    "to_container",
]

# group -> option -> schema. A YAML option names its schema as ``/schema/<group>/<option>@_here_``.
SCHEMAS: dict[str, dict[str, type]] = {
    "model": {"tiny": ModelTiny, "hf": ModelHF},
    "task": {"arith": TaskArith, "dataset": TaskDataset},
    "eval": {"eval": Eval},
    "variant": {"grpo": VariantGRPO, "igrpo": VariantIGRPO, "critique_grpo": VariantCritiqueGRPO,
                "self_verify": VariantSelfVerify},
    "algo": {"algo": Algo},
    "reward": {"binary": RewardBinary, "judge": RewardJudge},
    "judge": {"tiny": JudgeTiny, "hf": JudgeHF, "http": JudgeHTTP},
    "entropy": {"none": EntropyNone, "constant": EntropyConstant, "delayed": EntropyDelayed,
                "linear": EntropyLinear, "adaptive": EntropyAdaptive},
    "generation": {"hf": GenerationHF, "vllm": GenerationVLLM},
    "tracking": {"tracking": Tracking},
}


def register_configs() -> None:
    """Register the schemas with Hydra's ConfigStore and our resolvers (idempotent)."""
    from omegaconf import OmegaConf

    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    for group, options in SCHEMAS.items():
        for option, schema in options.items():
            cs.store(group=f"schema/{group}", name=option, node=schema)
    # ${igrpo.refinements:budget,drafts,rounds} = budget - drafts * rounds: num_refinements defaults to
    # what is left of the rollout budget, so a sweep over num_drafts or rounds stays budget-matched.
    if not OmegaConf.has_resolver("igrpo.refinements"):
        OmegaConf.register_new_resolver("igrpo.refinements", lambda b, n, r: int(b) - int(n) * int(r))


def to_container(cfg: Any) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)


def model_path(model_cfg) -> str | None:
    """The base model's hub id or directory; None for the embedded tiny model (built in-project)."""
    return model_cfg.get("path") if "path" in model_cfg else None
