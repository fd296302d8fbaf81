"""Inputs that exist but cannot be used, and a hub that cannot be reached (#28): every entry point refuses them with a
non-zero exit and at most 3 lines on stderr, no traceback, no MLflow run, in seconds, before any model loads or builds.

Each entry point runs once or twice as a user types it (a subprocess); the classes of input behind them (model
directories, tracking stores, data files, the hub probe, HYDRA_FULL_ERROR) are checked in-process. Nothing here
reaches a real host: the hub is "unreachable" through HF_HUB_OFFLINE or HF_ENDPOINT on a closed loopback port.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, compose_config, subprocess_env

SUITES = ("aime24", "aime25", "math500", "amc23", "gsm8k", "minerva")
SECONDS = 20  # the bound for every case
SAFETENSORS = struct.pack("<Q", 2) + b"{}"  # a safetensors file's header (here: no tensors), all validation reads


def _closed_loopback_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again when the socket is: connecting is refused


def _run(args: list[str], cwd: Path, env: dict | None = None, stdin: str = ""):
    """An entry point as a user types it; no ambient hub settings, the hub on a closed loopback port."""
    extra = {"HF_ENDPOINT": _closed_loopback_url(), **(env or {})}
    full = subprocess_env(extra)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HYDRA_FULL_ERROR"):
        if name not in (env or {}):
            full.pop(name, None)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=full, input=stdin, capture_output=True, text=True,
                          timeout=120)
    return proc, time.perf_counter() - start


def _assert_refused(proc, seconds: float, expected: str, store: Path | None = None) -> str:
    """Non-zero exit, at most 3 lines on stderr (the last naming ``expected``), no traceback, no MLflow run."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 1 <= len(lines) <= 3 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert expected in lines[-1], lines
    assert seconds < SECONDS, f"refused after {seconds:.1f} s"
    if store is not None:
        assert not _runs(store), "an MLflow run was created"
    return lines[-1]


def _runs(db: Path) -> list:
    if not db.exists():
        return []
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


def _model_dir(path: Path, weights: bool = True, tokenizer: bool = True) -> Path:
    """A directory that looks loadable to validation (config, weights, tokenizer), without being a real model."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text('{"model_type": "llama"}')
    if weights:
        (path / "model.safetensors").write_bytes(SAFETENSORS)
    if tokenizer:
        (path / "tokenizer.json").write_text("{}")
    return path


@pytest.fixture
def unwritable_dir(tmp_path) -> Path:
    """A directory that exists but this process cannot create files in (for root too: /sys refuses new files)."""
    if os.geteuid() != 0:
        path = tmp_path / "read_only"
        path.mkdir()
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    try:
        Path("/sys/igrpo-probe").touch()
    except OSError:
        yield Path("/sys")
        return
    pytest.skip("no directory refuses writes to this (root) process")


@pytest.fixture
def hub(monkeypatch):
    """In-process hub settings: the probe forgotten, no ambient offline setting, the hub on a closed loopback port."""
    from igrpo.config import checks

    monkeypatch.setattr(checks, "_HUB_PROBE", {})
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(name, "")  # remembered, so what the code under test sets is undone too
        monkeypatch.delenv(name)
    for module in ("huggingface_hub.constants", "datasets.config"):  # use_hub_cache_only switches these
        if module in sys.modules:
            monkeypatch.setattr(sys.modules[module], "HF_HUB_OFFLINE", sys.modules[module].HF_HUB_OFFLINE)
    monkeypatch.setenv("HF_ENDPOINT", _closed_loopback_url())
    return monkeypatch


# ------------------------------------------------------------------------------ the cases, as typed


def test_eval_of_a_model_directory_without_a_model_opens_no_run(tmp_path):
    """Was: a traceback from the evaluation job, after it had opened an MLflow run."""
    db, empty = tmp_path / "mlflow.db", tmp_path / "checkpoint"
    empty.mkdir()
    proc, seconds = _run(["-m", "igrpo.eval", "model=hf", f"model.path={_model_dir(tmp_path / 'base')}",
                          f"eval.checkpoint={empty}", f"eval.store_root={tmp_path / 'store'}",
                          f"tracking.uri=sqlite:///{db}"], cwd=tmp_path)
    _assert_refused(proc, seconds, f"eval.checkpoint='{empty}' is not a loadable model directory: no config.json "
                                   "(it is empty)", store=db)
    assert not (tmp_path / "store").exists()


def test_a_tracking_store_in_an_unwritable_directory_is_refused_before_any_build(tmp_path, unwritable_dir):
    """Was: the store probe passed and the run started a 13-minute base build before anything failed."""
    uri = f"sqlite:///{unwritable_dir / 'mlflow.db'}"
    proc, seconds = _run([str(ROOT / "run.py"), "model=hf", f"model.path={_model_dir(tmp_path / 'm')}",
                          "variant=grpo", f"tracking.uri={uri}"], cwd=tmp_path)
    _assert_refused(proc, seconds, f"tracking.uri={uri} is not usable: {unwritable_dir} is not writable here")
    assert not (unwritable_dir / "mlflow.db").exists() and not (tmp_path / ".cache").exists()


@pytest.mark.parametrize("override, expected, value", [
    ("foo=1", "error: foo is not a known config key", "0"),
    ("hydra/launcher=nope", "error: hydra/launcher=nope is not a known option; choose one of: basic, joblib", "0"),
    ("seed=abc", "error: seed=abc is not valid; it must be an integer", "0"),
    ("hydra/sweeper=nope", "error: hydra/sweeper=nope is not a known option; choose one of: basic", "false"),
    ("hydra.launcher.n_jobs=abc", "error: hydra.launcher.n_jobs is not a known config key", ""),
])
def test_hydra_full_error_other_than_1_keeps_composition_errors_one_line(override, expected, value, tmp_path):
    """Was: HYDRA_FULL_ERROR=0 turned full tracebacks on. Hydra turns them on only for the value 1."""
    db = tmp_path / "mlflow.db"
    proc, seconds = _run([str(ROOT / "run.py"), override, f"tracking.uri=sqlite:///{db}"], cwd=tmp_path,
                         env={"HYDRA_FULL_ERROR": value})
    assert proc.returncode == 2
    _assert_refused(proc, seconds, expected, store=db)


def test_inspect_with_the_hub_unreachable_names_every_paper_suite_in_seconds(tmp_path):
    """Acceptance 2: was minutes of retries with backoff, suite after suite."""
    train = tmp_path / "math.jsonl"
    train.write_text(json.dumps({"problem": "1+1?", "solution": "\\boxed{2}"}) + "\n")
    proc, seconds = _run(["-m", "igrpo.tasks", "inspect", "task=math", f"task.path={train}", "eval=paper"],
                         cwd=tmp_path, env={"HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf"),
                                            "HF_DATASETS_CACHE": str(tmp_path / "hf")})  # an empty cache
    line = _assert_refused(proc, seconds, "set a local path for what is not in the local cache")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Connection refused" in line
    assert [s for s in SUITES if f"eval.suites.{s}.path (hub " in line] == list(SUITES)
    assert "task.path" not in line  # the local training file needs nothing from the hub


# ----------------------------------------------------------------------- the other entry points, once each


def test_judge_cli_refuses_a_model_directory_without_weights(tmp_path):
    judge = _model_dir(tmp_path / "judge", weights=False)
    proc, seconds = _run(["-m", "igrpo.rewards.judge", "score", "reward/judge=hf", f"reward.judge.model={judge}"],
                         cwd=tmp_path, stdin='{"problem": "p", "reference": "1", "candidate": "1"}\n')
    _assert_refused(proc, seconds, f"reward.judge.model='{judge}' is not a loadable model directory: no weights")
    assert proc.stdout == ""


def test_experiments_refuse_an_unknown_launcher_and_an_unwritable_store_before_writing(tmp_path, unwritable_dir):
    args = ["-m", "experiments", "run", "table1", "--scale", "cpu", "--out", str(tmp_path / "out")]
    proc, seconds = _run([*args, "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", "--", "hydra/launcher=nope"],
                         cwd=tmp_path, env={"HYDRA_FULL_ERROR": "0"})
    _assert_refused(proc, seconds, "hydra/launcher=nope is not a known option")
    proc, seconds = _run([*args, "--tracking-uri", f"sqlite:///{unwritable_dir / 'm.db'}"], cwd=tmp_path)
    _assert_refused(proc, seconds, "is not usable")
    assert not (tmp_path / "out").exists() and not (tmp_path / ".cache").exists()


def test_report_on_a_store_that_is_not_there_creates_none(tmp_path):
    db = tmp_path / "nothing.db"
    proc, seconds = _run(["-m", "analysis.report", "table1", "--tracking-uri", f"sqlite:///{db}"], cwd=tmp_path)
    _assert_refused(proc, seconds, f"no MLflow store at sqlite:///{db} ({db} does not exist)")
    assert not db.exists() and not (tmp_path / "reports").exists()


# ------------------------------------------------------------------------------ model directories, in-process


@pytest.mark.parametrize("make, expected", [
    (lambda d: d.mkdir(), "no config.json (it is empty)"),
    (lambda d: (d.mkdir(), (d / "README.md").write_text("x")), "no config.json (it holds README.md)"),
    (lambda d: (d.mkdir(), (d / "config.json").write_text("{oops")), "config.json cannot be read as JSON"),
    (lambda d: (d.mkdir(), (d / "config.json").write_text("{}")), "config.json names no model_type"),
    (lambda d: _model_dir(d, weights=False), "no weights (model.safetensors, pytorch_model.bin or a sharded index)"),
    (lambda d: (_model_dir(d, weights=False), (d / "model.safetensors").write_bytes(b"")),
     "the weights file model.safetensors is empty"),
    (lambda d: (_model_dir(d, weights=False), (d / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "model-1-of-2.safetensors", "b": "model-2-of-2.safetensors"}})),
        (d / "model-1-of-2.safetensors").write_bytes(SAFETENSORS)),
     "1 of 2 weight shards in model.safetensors.index.json are missing, e.g. model-2-of-2.safetensors"),
    (lambda d: (_model_dir(d, weights=False), (d / "model.safetensors").write_bytes(b"<html>Not found</html>")),
     "the weights file model.safetensors is not a readable safetensors file (damaged or incomplete)"),
    (lambda d: (_model_dir(d, weights=False), (d / "model.safetensors").write_bytes(struct.pack("<Q", 99) + b"{}")),
     "the weights file model.safetensors is not a readable safetensors file"),  # cut short: header past the end
    (lambda d: _model_dir(d, tokenizer=False), "no tokenizer"),
])
def test_a_model_directory_that_cannot_load_is_named_with_what_is_missing(make, expected, tmp_path):
    from igrpo.config.model import check_model_here
    from igrpo.errors import ConfigError

    make(tmp_path / "m")
    with pytest.raises(ConfigError) as info:
        check_model_here("model.path", str(tmp_path / "m"))
    assert str(info.value).startswith(f"model.path='{tmp_path / 'm'}' is not a loadable model directory: ")
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_model_references_that_are_usable_pass_and_files_or_bad_ids_do_not(tmp_path):
    from igrpo.config.model import check_model_here
    from igrpo.errors import ConfigError

    check_model_here("model.path", str(_model_dir(tmp_path / "ok")))
    check_model_here("model.path", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B")  # a hub id: the hub check's question
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    for path, expected in [(str(gguf), "is a GGUF file, not a model directory"),
                           ("not a/hub id", "is neither a model directory here nor a hub id"),
                           (str(tmp_path / "absent"), "does not exist")]:
        with pytest.raises(ConfigError, match=expected):
            check_model_here("eval.checkpoint", path)


def test_validation_checks_the_judge_model_before_anything_loads(tmp_path):
    from igrpo.config.validate import validate
    from igrpo.errors import ConfigError

    cfg = compose_config("model=hf", f"model.path={_model_dir(tmp_path / 'policy')}", "variant=grpo", "reward=judge",
                         "reward/judge=hf", f"reward.judge.model={tmp_path / 'judge'}",
                         f"tracking.uri=sqlite:///{tmp_path / 'm.db'}", f"output_dir={tmp_path}")
    (tmp_path / "judge").mkdir()
    with pytest.raises(ConfigError, match=r"^reward.judge.model='.*' is not a loadable model directory: no config"):
        validate(cfg)


# -------------------------------------------------------------------------- tracking stores and data, in-process


def test_tracking_stores_must_be_writable_and_of_the_right_kind(tmp_path, unwritable_dir):
    from igrpo.config.checks import check_tracking_reachable
    from igrpo.errors import ConfigError

    check_tracking_reachable(f"sqlite:///{tmp_path / 'm.db'}")
    check_tracking_reachable(str(tmp_path / "mlruns"))
    assert list(tmp_path.iterdir()) == []  # the probe file is removed again
    for uri, expected in [(f"sqlite:///{unwritable_dir / 'm.db'}", f"{unwritable_dir} is not writable here"),
                          (f"file://{unwritable_dir / 'mlruns'}", f"{unwritable_dir} is not writable here"),
                          (str(unwritable_dir / "mlruns"), f"{unwritable_dir} is not writable here"),
                          (f"sqlite:///{tmp_path}", f"{tmp_path} is not a file")]:
        with pytest.raises(ConfigError) as info:
            check_tracking_reachable(uri)
        assert str(info.value).startswith(f"tracking.uri={uri} is not usable: ") and expected in str(info.value)


def test_a_data_path_must_be_a_readable_file(tmp_path):
    from igrpo.errors import ConfigError
    from igrpo.tasks.sources import SourceSpec, check_spec

    (tmp_path / "dir.jsonl").mkdir()
    (tmp_path / "mem.jsonl").symlink_to("/proc/self/mem")  # a file whose reads fail, for root too
    os.mkfifo(tmp_path / "pipe.jsonl")
    for name, expected in [("dir.jsonl", "is a directory"), ("pipe.jsonl", "is not a regular file"),
                           ("mem.jsonl", "cannot be read (Input/output error)")]:
        with pytest.raises(ConfigError) as info:
            check_spec(SourceSpec(label="eval.suites.s", path=str(tmp_path / name)))
        assert str(info.value).startswith(f"eval.suites.s.path={tmp_path / name} ") and expected in str(info.value)


# ----------------------------------------------------------------------------------------- the hub, in-process


def _paper_config(tmp_path, *overrides: str):
    train = tmp_path / "math.jsonl"
    train.write_text(json.dumps({"problem": "1+1?", "solution": "\\boxed{2}"}) + "\n")
    return compose_config("task=math", f"task.path={train}", "eval=paper", *overrides)


def test_hf_hub_offline_names_what_needs_a_local_path_without_probing(hub, tmp_path):
    from igrpo.config import checks
    from igrpo.config.data import data_hub_needs
    from igrpo.errors import ConfigError

    hub.setenv("HF_HUB_OFFLINE", "1")
    hub.setenv("HF_HOME", str(tmp_path / "hf"))
    hub.setattr(checks, "_probe_hub", lambda timeout_s: pytest.fail("probed although HF_HUB_OFFLINE=1"))
    cfg = _paper_config(tmp_path, f"eval.suites.aime24.path={tmp_path / 'math.jsonl'}")
    with pytest.raises(ConfigError) as info:
        checks.check_hub_reachable(data_hub_needs(cfg))
    message = str(info.value)
    assert message.startswith("the Hugging Face hub cannot be reached (HF_HUB_OFFLINE=1); set a local path")
    assert "aime24" not in message and all(f"eval.suites.{s}.path (hub " in message for s in SUITES[1:])


@pytest.mark.parametrize("value, offline", [("1", True), ("true", True), ("ON", True), ("0", False), ("no", False),
                                            ("", False)])
def test_offline_and_full_error_settings_are_read_as_their_libraries_read_them(value, offline, hub):
    from igrpo.config.checks import hub_offline_setting
    from igrpo.job.cli import full_error_wanted

    hub.setenv("HF_HUB_OFFLINE", value)
    hub.setenv("HYDRA_FULL_ERROR", value)
    assert (hub_offline_setting() is not None) == offline
    assert full_error_wanted() == (value == "1")  # Hydra: only "1"


def test_the_hub_is_probed_once_and_a_reachable_hub_needs_no_cache(hub, tmp_path):
    from igrpo.config import checks
    from igrpo.config.data import data_hub_needs

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    hub.setenv("HF_ENDPOINT", f"http://127.0.0.1:{listener.getsockname()[1]}")
    calls = []
    probe = checks._probe_hub
    hub.setattr(checks, "_probe_hub", lambda timeout_s: calls.append(timeout_s) or probe(timeout_s))
    try:
        needs = data_hub_needs(_paper_config(tmp_path))
        assert len(needs) == len(SUITES)
        checks.check_hub_reachable(needs)
        checks.check_hub_reachable(needs)
    finally:
        listener.close()
    assert len(calls) == 1 and "HF_HUB_OFFLINE" not in os.environ


def test_an_unreachable_hub_with_everything_cached_reads_the_cache_offline(hub, tmp_path):
    from igrpo.config import checks
    from igrpo.config.data import data_hub_needs
    from igrpo.errors import ConfigError

    cache = tmp_path / "hub_cache"
    hub.setenv("HF_HUB_CACHE", str(cache))
    hub.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    hub.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    hub.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    cfg = _paper_config(tmp_path)
    needs = data_hub_needs(cfg)
    for need in needs[:-1]:  # every suite but the last is in the cache
        (cache / f"datasets--{need.hub_id.replace('/', '--')}").mkdir(parents=True)
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        checks.check_hub_reachable(needs)
    assert time.perf_counter() - start < 5
    assert "Connection refused" in str(info.value) and str(info.value).endswith(
        f"set a local path for what is not in the local cache: {needs[-1].label} (hub {needs[-1].hub_id})")
    (tmp_path / "datasets" / needs[-1].hub_id.replace("/", "___").lower()).mkdir(parents=True)  # prepared by datasets
    checks.check_hub_reachable(needs)  # all cached: the job goes on, reading the caches only
    import huggingface_hub.constants

    assert os.environ["HF_HUB_OFFLINE"] == "1" and huggingface_hub.constants.HF_HUB_OFFLINE is True
