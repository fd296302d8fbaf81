"""Typed schemas: one per option of every config group. Types, comments and each field's own rule live here (and,
for the ``variant`` group, in each method's module under ``igrpo.variants``); values live only in the YAML files of
``conf/`` (every field is ``MISSING`` until a YAML sets it).

Each option's YAML names its schema in its defaults list (``- /schema/variant/igrpo@_here_``), so a node holds
exactly the fields its option uses: ``variant=grpo`` has no draft fields, ``reward=binary`` no judge node, a real
model no warm-start fields. Those fields never reach MLflow params or the ``config_hash``, and an unknown key or a
value of the wrong type fails at composition time. A field declares its choices or range where it is declared
(``igrpo.config.fields``), and rules relating several fields are the schema's ``check(node, cfg)``;
``igrpo.config.validate`` runs them all before anything is written or loaded.
"""

from __future__ import annotations

from typing import Any

from hydra.core.config_store import ConfigStore

from igrpo.config.algo import Algo
from igrpo.config.data import DataSource, Eval, EvalSuite, TaskArith, TaskDataset, TaskWords
from igrpo.config.model import ModelCommon, ModelHF, ModelTiny, model_path
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
    "TaskWords",
    "Tracking",
    "Train",
    "model_path",
    "register_configs",
    "to_container",
]

# group -> option -> schema. A YAML option names its schema as ``/schema/<group>/<option>@_here_``. The variant
# group's schemas come from the variant registry (``variant_schemas``).
SCHEMAS: dict[str, dict[str, type]] = {
    "model": {"tiny": ModelTiny, "hf": ModelHF},
    "task": {"arith": TaskArith, "dataset": TaskDataset, "words": TaskWords},
    "eval": {"eval": Eval},
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

    from igrpo.variants import variants

    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    for group, options in {**SCHEMAS, "variant": variant_schemas()}.items():
        for option, schema in options.items():
            cs.store(group=f"schema/{group}", name=option, node=schema)
    for variant in variants():  # a method kept outside the repository gives its option's values in code
        if variant.option is not None:
            cs.store(group="variant", name=variant.name, node=variant.schema(name=variant.name, **variant.option))
    # ${igrpo.refinements:budget,drafts,rounds} = budget - drafts * rounds: num_refinements defaults to
    # what is left of the rollout budget, so a sweep over num_drafts or rounds stays budget-matched.
    if not OmegaConf.has_resolver("igrpo.refinements"):
        OmegaConf.register_new_resolver("igrpo.refinements", lambda b, n, r: int(b) - int(n) * int(r))


def variant_schemas() -> dict[str, type]:
    """Option -> schema of the ``variant`` group, from the variant registry (one module per method)."""
    from igrpo.variants import variants

    return {variant.name: variant.schema for variant in variants()}


def to_container(cfg: Any) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)
