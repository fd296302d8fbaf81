"""Entropy-bonus schedules: loss = policy loss - coef * mean token entropy, with the coefficient in force at
each step logged as ``train/entropy_coef``. Four schedules are ours, a pure function of (step, last observed mean
token entropy, schedule state) that the trainer writes into TRL's ``entropy_coef`` before every step; ``adaptive``
is TRL's own controller, which the trainer leaves alone (``driven_by_trl``; ``trl_args`` gives TRL's settings).

* ``none``      0 always (the paper's setting).
* ``constant``  ``coef`` always.
* ``delayed``   0 until ``start_step`` or until the observed entropy first falls below ``threshold``
                (whichever comes first; either may be disabled with null), then ``coef``.
* ``linear``    ``coef`` at step 0 decaying linearly to ``final_coef`` at ``decay_steps``, then flat.
* ``adaptive``  TRL's adaptive entropy control (Skywork-OR1, arXiv 2505.22312; ``GRPOConfig.use_adaptive_entropy``),
                our fields mapped one to one: ``coef`` -> ``entropy_coef`` (its start value), ``target`` ->
                ``entropy_target``, ``delta`` -> ``entropy_coef_delta``, ``coef_min``/``coef_max`` ->
                ``entropy_coef_min``/``entropy_coef_max``. At every optimizer step TRL measures the token-weighted
                mean entropy of that step's completion tokens (the policy loss's tokens, over all micro-batches
                and processes), moves the coefficient by ``delta`` (up when that entropy is <= ``target``, down
                otherwise) within [``coef_min``, ``coef_max``], and applies the bonus at the next step only while
                that entropy is <= ``target`` (so no bonus at the first step, nor while entropy is above target).
                TRL saves the controller's state in its checkpoints.

Why ``adaptive`` is TRL's controller and no longer ours. Ours moved the coefficient by the same rule but applied it
whatever the entropy, read the entropy from the logged metrics (an average over ``train.logging_steps`` steps, so
stale when that is > 1), and lived outside TRL's checkpoints. Measured side by side (model=tiny, variant=grpo,
8 prompts x 8 samples, seed 0, 20 steps, target 0.1, delta 0.001, start 0.005): the coefficient trajectories were
identical step for step (0.005, 0.004, 0.005, 0.004, ... as the entropy, 0.085-0.198 nats, crossed 0.1), but ours
applied the bonus at 9 of 20 steps (coefficients summing to 0.026) and TRL's at 3 (0.007: steps 2, 8 and 14, each
right after a step whose entropy was <= 0.1); rewards and entropies stayed within 0.001 of each other at this size.
On the smoke model (entropy 3.36 nats, 30x the target, zero reward) ours still applied 0.005 ... 0.001 for 5 steps
and entropy rose by 0.08 nats over 20 steps; TRL's applied nothing and entropy stayed within 0.01 of 3.36.
"""

from __future__ import annotations

from dataclasses import dataclass

from igrpo.errors import ConfigError, choice_error

SCHEDULES = ("none", "constant", "delayed", "linear", "adaptive")
TRL_SCHEDULES = ("adaptive",)  # TRL moves and applies their coefficient itself


@dataclass(frozen=True)
class ScheduleState:
    coef: float = 0.0  # the coefficient currently in force (adaptive: its start value; TRL keeps the running one)
    triggered: bool = False  # delayed: the switch-on condition has been met


def check_schedule(cfg) -> None:
    if cfg.name not in SCHEDULES:
        raise choice_error("entropy", cfg.name, SCHEDULES)
    for field in ("coef", "final_coef", "delta", "coef_min", "coef_max"):
        value = cfg.get(field)  # each schedule has only its own fields (igrpo.config.Entropy*)
        if value is not None and value < 0:
            raise ConfigError(f"entropy.{field}={value} is not valid; it must be >= 0")
    if cfg.name == "linear" and cfg.decay_steps <= 0:
        raise ConfigError(f"entropy.decay_steps={cfg.decay_steps} is not valid; it must be > 0")
    if cfg.name == "adaptive" and cfg.coef_min > cfg.coef_max:
        raise ConfigError(f"entropy.coef_min={cfg.coef_min} is not valid; it must be <= entropy.coef_max")


def driven_by_trl(cfg) -> bool:
    """Whether TRL sets this schedule's coefficient itself (the trainer must not write ``entropy_coef``)."""
    return cfg.name in TRL_SCHEDULES


def trl_args(cfg) -> dict:
    """The entropy settings of TRL's ``GRPOConfig`` for this schedule (``entropy=none`` has no coefficient)."""
    if cfg.name == "adaptive":
        return {"entropy_coef": cfg.coef, "use_adaptive_entropy": True, "entropy_target": cfg.target,
                "entropy_coef_delta": cfg.delta, "entropy_coef_min": cfg.coef_min, "entropy_coef_max": cfg.coef_max}
    return {"entropy_coef": cfg.get("coef", 0.0), "use_adaptive_entropy": False}


def initial_state(cfg) -> ScheduleState:
    return ScheduleState(coef=cfg.coef if cfg.name in ("constant", "linear", "adaptive") else 0.0)


def coefficient(cfg, step: int, observed_entropy: float | None, state: ScheduleState) -> ScheduleState:
    """The schedule's state for ``step`` given the mean token entropy observed at the previous step
    (None before the first step). ``state.coef`` is the coefficient to apply at ``step``."""
    name = cfg.name
    if name == "none":
        return ScheduleState()
    if name == "constant":
        return ScheduleState(coef=cfg.coef)
    if name == "delayed":
        triggered = state.triggered
        if cfg.start_step is not None and step >= cfg.start_step:
            triggered = True
        if cfg.threshold is not None and observed_entropy is not None and observed_entropy < cfg.threshold:
            triggered = True
        return ScheduleState(coef=cfg.coef if triggered else 0.0, triggered=triggered)
    if name == "linear":
        frac = min(step / cfg.decay_steps, 1.0)
        return ScheduleState(coef=cfg.coef + (cfg.final_coef - cfg.coef) * frac)
    if name in TRL_SCHEDULES:
        raise ValueError(f"entropy={name} is TRL's own controller (trl_args); the trainer must not drive it")
    raise choice_error("entropy", name, SCHEDULES)
