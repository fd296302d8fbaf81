"""The variant registry: one module per method, owning everything about it.

A variant is the wrapper around the GRPO-family objective: how a step's completions are produced and which of them
are trained on. Each method is one module (a package where its trainer is long) that subclasses ``Variant`` and
registers it:

* ``grpo``: plain group rollouts, all trained on (``igrpo.variants.grpo``);
* ``igrpo``: N drafts (no gradient) -> the best draft in the prompt -> G trained refinements (``igrpo.variants.igrpo``);
* ``critique_grpo`` and ``self_verify``: the two self-feedback baselines (``igrpo.variants.critique_grpo``,
  ``igrpo.variants.self_verify``).

A ``Variant`` owns its config schema (the dataclass named by ``conf/variant/<name>.yaml``, whose fields declare
their own choices and ranges), its rollout budget (``group_size``: completions TRL trains on as one group;
``generated_per_prompt``: completions generated per prompt per step, trained or not), its checks, its trainer
class (imported only when a trainer is built, so validation never imports torch); its metrics are its trainer's.
The runner, the trainer factory and the validation dispatch through ``variant_of(cfg)``; nothing outside this
package branches on a variant's name.

Adding a method is one module plus one YAML in ``conf/variant/``. A method kept outside this repository is loaded
by naming its module in ``IGRPO_VARIANT_MODULES`` (comma-separated); such a module may also give its config
option's values as ``Variant.option`` instead of a YAML file.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, ClassVar

from igrpo.errors import ConfigError, choice_error

PLUGIN_ENV = "IGRPO_VARIANT_MODULES"
BUILTIN_MODULES = ("igrpo.variants.grpo", "igrpo.variants.igrpo", "igrpo.variants.critique_grpo",
                   "igrpo.variants.self_verify")


class Variant:
    """One method. Subclass it, set ``name`` and ``schema``, override what differs from plain GRPO, and decorate
    the subclass with ``@register``."""

    name: ClassVar[str]
    schema: ClassVar[type]
    # the values of a config option registered in code (for a method without a YAML in conf/variant/)
    option: ClassVar[dict[str, Any] | None] = None
    # the field that caps a previous solution shown in a Stage-2 prompt, if the method shows one: the embedded
    # tiny base is warm-started with one such cap, and a variant's own cap must agree with it
    shown_solution_cap: ClassVar[str | None] = None
    # trains on draft-conditioned prompts, so the draft-conditioned evaluation (igrpo.eval.refine, eval.refine) applies
    draft_conditioned: ClassVar[bool] = False
    # its groups may be dropped and new prompts sampled in their place (algo.dynamic_sampling); None, or why not
    no_dynamic_sampling: ClassVar[str | None] = None

    def group_size(self, cfg) -> int:
        """Completions per prompt that TRL trains on as one group (its ``num_generations``)."""
        return cfg.rollout_budget

    def generated_per_prompt(self, cfg) -> int:
        """Completions generated per prompt per step, trained or not (logged as ``rollouts/generated_per_prompt``:
        the spend a matched-budget comparison is matched on)."""
        return self.group_size(cfg)

    def check(self, cfg) -> None:
        """One-line ConfigError on the first bad value: the fields' declared rules, then ``check_rules``."""
        from igrpo.config.fields import check_fields

        check_fields(cfg.variant, "variant", self.schema)
        if cfg.algo.get("dynamic_sampling") and self.no_dynamic_sampling:
            raise ConfigError(f"algo.dynamic_sampling=true is not valid with variant={self.name}: "
                              f"{self.no_dynamic_sampling}; use algo.dynamic_sampling=false")
        self.check_rules(cfg)

    def check_rules(self, cfg) -> None:
        """Rules that relate the variant's fields to each other or to the rest of the run (budget, model)."""

    def make_trainer(self, cfg, task, tokenizer, common: dict):
        """The trainer; ``common``: the keyword arguments every trainer takes (igrpo.job.factory)."""
        from igrpo.training.trainer import TrackedGRPOTrainer

        return TrackedGRPOTrainer(**common)


_REGISTRY: dict[str, Variant] = {}
_loaded = False


def register(cls: type[Variant]) -> type[Variant]:
    """Class decorator: make ``cls`` the variant of its ``name`` (a later registration of the name replaces it)."""
    _REGISTRY[cls.name] = cls()
    return cls


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    plugins = [m.strip() for m in os.environ.get(PLUGIN_ENV, "").split(",") if m.strip()]
    for module in (*BUILTIN_MODULES, *plugins):
        importlib.import_module(module)


def names() -> tuple[str, ...]:
    """Every registered variant's name."""
    _load()
    return tuple(_REGISTRY)


def variants() -> tuple[Variant, ...]:
    _load()
    return tuple(_REGISTRY.values())


def get(name: str) -> Variant:
    """The variant called ``name``; a one-line ConfigError listing the known ones otherwise."""
    _load()
    if name not in _REGISTRY:
        raise choice_error("variant", name, tuple(_REGISTRY))
    return _REGISTRY[name]


def variant_of(cfg) -> Variant:
    """The variant a composed run config selects."""
    return get(cfg.variant.name)
