"""What the tests share: the project root, the smoke profile, and ``python run.py`` as a user types it.
Import as ``from tests.helpers import ...`` (one style everywhere)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def smoke_overrides(cache_dir: Path) -> list[str]:
    """Seconds-long runs: the user-facing ``debug=smoke`` profile, building into the tests' own model cache."""
    return ["debug=smoke", f"model.cache_dir={cache_dir}"]


tiny_overrides = smoke_overrides  # the name older tests use


def test_workers() -> int:
    """How many pytest-xdist workers run tests at once (1 without xdist)."""
    import os

    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    return int(count) if count.isdigit() and int(count) > 0 else 1


def subprocess_env(extra: dict | None = None, share: int = 1) -> dict:
    """The environment of a test subprocess: no ambient MLflow store, and its share of the cores when ``share``
    processes of this test run at once, beside the other test workers' (so they do not fight over the cores)."""
    from igrpo.job.threads import child_env

    env = child_env(share * test_workers())
    env.pop("MLFLOW_TRACKING_URI", None)
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # a closed loopback port: no test subprocess reaches a real hub
    env.update(extra or {})
    return env


def run_cli(args: list[str], cwd: Path, env_extra: dict | None = None, timeout: int = 600):
    """``python run.py ...`` as a user types it, from ``cwd``."""
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd, env=subprocess_env(env_extra),
                          capture_output=True, text=True, timeout=timeout)


def compose_config(*overrides: str, conf_dir: Path | None = None):
    """The real Hydra config composed from ``conf/`` (or ``conf_dir``) with ``overrides``."""
    from hydra import compose, initialize_config_dir

    from igrpo.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir or ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=["output_dir=/tmp/igrpo-tests-unused", *overrides])


def option_node(group: str, option: str, **values):
    """One group option's node exactly as its YAML defines it, with ``values`` changed (typed by its schema)."""
    node = compose_config(f"{group}={option}")[group]
    for key, value in values.items():
        node[key] = value
    return node


def eval_node(**suites: dict):
    """eval=paper's node with its suites replaced by ``suites`` (name -> the fields that differ from the
    paper's aime24 suite), e.g. ``eval_node(s={"path": "/data/s.jsonl"})``; no suites = the toy eval."""
    from omegaconf import OmegaConf, open_dict

    if not suites:
        return compose_config("eval=toy").eval
    node = compose_config("eval=paper").eval
    template = node.suites.aime24
    with open_dict(node):
        node.suites = {name: OmegaConf.merge(template, values) for name, values in suites.items()}
    return node


# Debian's chromium + chromium-driver drive the browser tests (.ci/run installs them). Without them those tests
# skip on a developer machine; in CI (CI=true) they must run.
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def needs_chromium():
    """A module-level ``pytestmark`` for the browser tests."""
    import os

    import pytest

    return pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER))
                              and os.environ.get("CI") != "true",
                              reason=f"needs Debian chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); "
                                     "CI installs them")


def headless_chromium(profile_dir: Path, window: str = "1400,1000"):
    """A selenium driver for the system's headless Chromium (the caller quits it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile_dir}", f"--window-size={window}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver
