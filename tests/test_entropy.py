import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from igrpo.config import SCHEMAS
from igrpo.core.entropy import ScheduleState, check_schedule, coefficient, driven_by_trl, initial_state, trl_args
from igrpo.errors import ConfigError
from igrpo.job.runner import run
from tests.helpers import ROOT


def cfg(name, **kw):
    """An entropy node as a run gets it: the option's schema, its YAML values, then ``kw``."""
    path = ROOT / "conf" / "entropy" / f"{name}.yaml"
    if not path.exists():  # a bad option name, for the error tests
        return OmegaConf.create({"name": name, **kw})
    values = OmegaConf.load(path)
    values.pop("defaults", None)
    return OmegaConf.merge(OmegaConf.structured(SCHEMAS["entropy"][name]), values, kw)


def replay(schedule, entropies):
    """Coefficients a schedule applies at steps 0..n-1, given the entropy observed after each step."""
    if driven_by_trl(schedule):
        return trl_adaptive(schedule, entropies)
    state, out, last = initial_state(schedule), [], None
    for step, observed in enumerate(entropies):
        state = coefficient(schedule, step, last, state)
        out.append(state.coef)
        last = observed
    return out


def test_none_and_constant():
    assert replay(cfg(name="none"), [1.0] * 3) == [0.0, 0.0, 0.0]
    assert replay(cfg(name="constant", coef=0.01), [1.0] * 3) == [0.01] * 3


def test_delayed_by_step():
    assert replay(cfg(name="delayed", coef=0.01, start_step=2), [1.0] * 4) == [0.0, 0.0, 0.01, 0.01]


def test_delayed_by_entropy_threshold_stays_on():
    s = cfg(name="delayed", coef=0.01, threshold=0.5)
    # entropy observed after step 1 dips below 0.5 -> on from step 2, and stays on after it rises again
    assert replay(s, [0.9, 0.4, 0.9, 0.9]) == [0.0, 0.0, 0.01, 0.01]


def test_linear_decay():
    coefs = replay(cfg(name="linear", coef=0.02, final_coef=0.0, decay_steps=4), [1.0] * 6)
    assert coefs == pytest.approx([0.02, 0.015, 0.01, 0.005, 0.0, 0.0])


def trl_adaptive(schedule, entropies):
    """TRL's adaptive entropy control as GRPOConfig documents it: the coefficient applied at steps 0..n-1."""
    coef, last, out = schedule.coef, float("inf"), []
    for observed in entropies:
        out.append(coef if last <= schedule.target else 0.0)  # applied only while the last entropy <= target
        move = schedule.delta if observed <= schedule.target else -schedule.delta
        coef, last = min(max(coef + move, schedule.coef_min), schedule.coef_max), observed
    return out


def test_adaptive_is_trls_controller_with_our_fields():
    from dataclasses import fields

    from trl import GRPOConfig

    s = cfg(name="adaptive", coef=0.002, target=0.5, delta=0.001, coef_min=0.0, coef_max=0.003)
    args = trl_args(s)
    assert args == {"entropy_coef": 0.002, "use_adaptive_entropy": True, "entropy_target": 0.5,
                    "entropy_coef_delta": 0.001, "entropy_coef_min": 0.0, "entropy_coef_max": 0.003}
    assert set(args) <= {f.name for f in fields(GRPOConfig)}
    assert driven_by_trl(s) and not any(driven_by_trl(cfg(name=n)) for n in ("none", "constant", "delayed", "linear"))
    assert trl_args(cfg(name="none")) == {"entropy_coef": 0.0, "use_adaptive_entropy": False}
    with pytest.raises(ValueError, match="TRL's own controller"):
        coefficient(s, 0, None, initial_state(s))
    # TRL's rule: no bonus at the first step, nor after a step whose entropy was above target; bounded
    assert trl_adaptive(s, [0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9]) == pytest.approx(
        [0.0, 0.003, 0.003, 0.003, 0.0, 0.0, 0.0])


def test_bad_schedules_are_one_line_errors():
    with pytest.raises(ConfigError, match="none, constant, delayed, linear, adaptive"):
        check_schedule(cfg(name="cosine"))
    with pytest.raises(ConfigError, match="entropy.coef=-0.1 is not valid"):
        check_schedule(cfg(name="constant", coef=-0.1))
    assert coefficient(cfg(name="none"), 0, None, ScheduleState(coef=5.0)).coef == 0.0


# each schedule's own fields only (per-option schemas); adaptive's target is above the smoke model's ~3.4 nats
SCHEDULE_OVERRIDES = {"none": [], "constant": [], "delayed": ["entropy.start_step=2"],
                      "linear": ["entropy.decay_steps=3"], "adaptive": ["entropy.target=10.0"]}


@pytest.mark.parametrize("schedule", list(SCHEDULE_OVERRIDES))
def test_trainer_applies_and_logs_the_schedule(schedule, compose):
    c = compose("variant=grpo", f"entropy={schedule}", "train.steps=4", *SCHEDULE_OVERRIDES[schedule])
    result = run(c)
    client = MlflowClient(c.tracking.uri)
    logged = [m.value for m in sorted(client.get_metric_history(result.run_id, "train/entropy_coef"),
                                      key=lambda m: m.step)]
    entropies = [m.value for m in sorted(client.get_metric_history(result.run_id, "train/entropy"),
                                         key=lambda m: m.step)]
    assert logged == pytest.approx(replay(c.entropy, entropies))
