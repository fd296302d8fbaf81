"""Bad input as a hostile new user types it (#15): every case ends in one line, exit 2, no traceback, no MLflow run.

Value checks run in-process on the real composed config (fast); the command-line contract (Hydra's own errors
turned into our line, nothing written) is checked through the real ``run.py``.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import run_cli, smoke_overrides


def _closed_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: connecting is refused


@pytest.mark.parametrize(
    "override, expected",
    [
        ("seed=-1", "seed=-1 is not valid; it must be an integer from 0 to 4294967295"),
        ("seed=1099511627776", "seed=1099511627776 is not valid"),  # 2^40
        ("+foo=1", "foo is not a known config key"),
        ("+model.foo=1", "model.foo is not a known config key"),
        ("generation.temperature=nan", "generation.temperature=nan is not valid; it must be a finite number"),
        ("algo.learning_rate=inf", "algo.learning_rate=inf is not valid; it must be a finite number"),
        ("eval.temperature=-inf", "eval.temperature=-inf is not valid; it must be a finite number"),
        ("tracking.experiment=", "tracking.experiment='' is not valid"),
        ('variant.template="Fix:{draft}{answer}"', "unknown placeholder {answer}; the known ones are {draft}"),
        ('variant.template="Fix:{draft} \\boxed{}"', "unknown placeholder {}"),
        ('variant.template="Fix:{draft} }"', "Single '}' encountered"),
        ("variant.num_drafts=7", "variant.num_drafts=7 is not valid with rollout_budget=8"),
        ("variant.rounds=4", "variant.num_drafts=4 is not valid with rollout_budget=8 and variant.rounds=4"),
        ("tracking.uri=sqlite:////nonexistent-dir/m.db", "the directory /nonexistent-dir does not exist"),
    ],
)
def test_bad_value_is_one_line_config_error(override, expected, compose):
    from igrpo.errors import ConfigError
    from igrpo.config.validate import validate

    with pytest.raises(ConfigError) as info:
        validate(compose(override))
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_a_prompt_template_without_the_problem_is_refused(compose, tmp_path):
    from igrpo.errors import ConfigError
    from igrpo.config.validate import validate

    data = tmp_path / "math.jsonl"
    data.write_text('{"problem": "1+1?", "solution": "\\\\boxed{2}"}\n')
    with pytest.raises(ConfigError, match=r"task.prompt_template='Solve it.' is not valid: it must contain \{problem\}"):
        validate(compose("task=math", f"task.path={data}", "eval=paper", 'task.prompt_template="Solve it."'))


def test_closed_tracking_server_is_refused_in_seconds(compose):
    from igrpo.errors import ConfigError
    from igrpo.config.validate import validate

    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"is not reachable \(Connection refused\); start it"):
        validate(compose(f"tracking.uri=http://127.0.0.1:{_closed_loopback_port()}"))
    assert time.perf_counter() - start < 5


def _runs(db) -> list:
    if not db.exists():
        return []
    client = MlflowClient(f"sqlite:///{db}")
    return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["seed=abc"], "seed=abc is not valid; it must be an integer"),
        (["foo=1"], "foo is not a known config key"),
        (["+foo=1"], "foo is not a known config key"),
        (["variant.template=Fix:{draft}{answer}"], "could not parse the override 'variant.template=Fix:{draft}{answer}'"),
        (["-m", "hparams_search=lr_single", "hydra.sweeper.n_trials=abc"],
         "hydra.sweeper.n_trials=abc is not valid; it must be an integer"),
        (["variant.num_drafts=8"], "variant.num_drafts=8 is not valid with rollout_budget=8"),
    ],
)
def test_bad_input_on_the_command_line_is_one_line_exit_2_and_no_run(args, expected, tmp_path, model_cache):
    db = tmp_path / "mlflow.db"
    proc = run_cli([*smoke_overrides(model_cache), f"tracking.uri=sqlite:///{db}", *args] if args[0] != "-m" else
                   [args[0], *smoke_overrides(model_cache), f"tracking.uri=sqlite:///{db}", *args[1:]], cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr[-2000:]
    assert not _runs(db)


def test_cfg_job_resolve_prints_the_resolved_config(tmp_path):
    proc = run_cli(["--cfg", "job", "--resolve"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "output_dir: null" in proc.stdout and "num_refinements: 4" in proc.stdout


def test_a_tracking_server_that_never_answers_is_reported_in_seconds_not_minutes(tmp_path, model_cache):
    """A loopback listener that accepts connections but never answers (a hung server): MLflow would retry for
    minutes after loading the model; the probe reports it in seconds, before any model is loaded."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    stop = threading.Event()

    def accept_and_hold():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept_and_hold, daemon=True)
    thread.start()
    try:
        start = time.perf_counter()
        uri = f"http://127.0.0.1:{listener.getsockname()[1]}"
        proc = run_cli([*smoke_overrides(model_cache), f"tracking.uri={uri}"], cwd=tmp_path)
        elapsed = time.perf_counter() - start
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert f"tracking.uri={uri} does not answer HTTP within 3 s" in lines[0]
    # the probe gives up after 3 s where MLflow's own client would retry for minutes; the rest is the start-up of
    # `python run.py`, which on a 2-core machine shared with another test worker can take 10-20 s by itself
    assert elapsed < 45, f"reported after {elapsed:.1f}s"
