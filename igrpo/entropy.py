"""Entropy-bonus schedules: the coefficient in force at a step, as a pure function of
(step, last observed mean token entropy, schedule state). The trainer sets TRL's ``entropy_coef``
from it before every step and logs it as ``train/entropy_coef``.

* ``none``      0 always (the paper's setting).
* ``constant``  ``coef`` always.
* ``delayed``   0 until ``start_step`` or until the observed entropy first falls below ``threshold``
                (whichever comes first; either may be disabled with null), then ``coef``.
* ``linear``    ``coef`` at step 0 decaying linearly to ``final_coef`` at ``decay_steps``, then flat.
* ``adaptive``  starts at ``coef``; after each step moves by ``delta`` up when entropy < ``target``
                and down otherwise, clamped to [``coef_min``, ``coef_max``].
"""

from __future__ import annotations

from dataclasses import dataclass

from igrpo.errors import ConfigError, choice_error

SCHEDULES = ("none", "constant", "delayed", "linear", "adaptive")


@dataclass(frozen=True)
class ScheduleState:
    coef: float = 0.0  # the coefficient currently in force (adaptive keeps its running value here)
    triggered: bool = False  # delayed: the switch-on condition has been met


def check_schedule(cfg) -> None:
    if cfg.name not in SCHEDULES:
        raise choice_error("entropy", cfg.name, SCHEDULES)
    for field in ("coef", "final_coef", "delta", "coef_min", "coef_max"):
        value = getattr(cfg, field)
        if value is not None and value < 0:
            raise ConfigError(f"entropy.{field}={value} is not valid; it must be >= 0")
    if cfg.name == "linear" and cfg.decay_steps <= 0:
        raise ConfigError(f"entropy.decay_steps={cfg.decay_steps} is not valid; it must be > 0")
    if cfg.name == "adaptive" and cfg.coef_min > cfg.coef_max:
        raise ConfigError(f"entropy.coef_min={cfg.coef_min} is not valid; it must be <= entropy.coef_max")


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
    if name == "adaptive":
        if observed_entropy is None:
            return ScheduleState(coef=state.coef)
        move = cfg.delta if observed_entropy < cfg.target else -cfg.delta
        return ScheduleState(coef=min(max(state.coef + move, cfg.coef_min), cfg.coef_max))
    raise choice_error("entropy", name, SCHEDULES)
