import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from igrpo.config import EntropyConfig
from igrpo.entropy import ScheduleState, check_schedule, coefficient, initial_state
from igrpo.errors import ConfigError
from igrpo.runner import run


def cfg(**kw):
    return OmegaConf.structured(EntropyConfig(**kw))


def replay(schedule, entropies):
    """Coefficients a schedule applies at steps 0..n-1, given the entropy observed after each step."""
    state, out, last = initial_state(schedule), [], None
    for step, observed in enumerate(entropies):
        state = coefficient(schedule, step, last, state)
        out.append(state.coef)
        last = observed
    return out


def test_none_and_constant():
    assert replay(cfg(name="none", coef=0.3), [1.0] * 3) == [0.0, 0.0, 0.0]
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


def test_adaptive_steers_toward_target_within_bounds():
    s = cfg(name="adaptive", coef=0.002, target=0.5, delta=0.001, coef_min=0.0, coef_max=0.003)
    coefs = replay(s, [0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9])
    assert coefs == pytest.approx([0.002, 0.003, 0.003, 0.003, 0.002, 0.001, 0.0])


def test_bad_schedules_are_one_line_errors():
    with pytest.raises(ConfigError, match="none, constant, delayed, linear, adaptive"):
        check_schedule(cfg(name="cosine"))
    with pytest.raises(ConfigError, match="entropy.coef=-0.1 is not valid"):
        check_schedule(cfg(name="constant", coef=-0.1))
    assert coefficient(cfg(name="none"), 0, None, ScheduleState(coef=5.0)).coef == 0.0


@pytest.mark.parametrize("schedule", ["none", "constant", "delayed", "linear", "adaptive"])
def test_trainer_applies_and_logs_the_schedule(schedule, compose):
    c = compose("variant=grpo", f"entropy={schedule}", "train.steps=4", "entropy.start_step=2",
                "entropy.decay_steps=3", "entropy.target=10.0")
    result = run(c)
    client = MlflowClient(c.tracking.uri)
    logged = [m.value for m in sorted(client.get_metric_history(result.run_id, "train/entropy_coef"),
                                      key=lambda m: m.step)]
    entropies = [m.value for m in sorted(client.get_metric_history(result.run_id, "train/entropy"),
                                         key=lambda m: m.step)]
    assert logged == pytest.approx(replay(c.entropy, entropies))
