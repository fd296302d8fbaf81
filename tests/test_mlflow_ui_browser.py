"""`mlflow ui` on a store written by the tracking wing, in a real headless Chromium: the experiment is tagged as a
model-training experiment, and the address the run summary prints lands on the runs table with the run in it
(MLflow 3.17's UI otherwise opens an experiment on its GenAI Traces overview, "No data available").
No training: one tiny run written with the wing's own functions."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import headless_chromium, needs_chromium

pytestmark = needs_chromium()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def ui(tmp_path):
    """A store with one FINISHED training run and one build run, and `mlflow ui` serving it (stopped after)."""
    from igrpo.tracking.builds import log_build
    from igrpo.tracking.names import BUILDS_EXPERIMENT, EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, PHASE_TRAIN, TAG_PHASE
    from igrpo.tracking.runs import client, mlflow_run

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with mlflow_run(uri, "igrpo", "ui-probe-run", {TAG_PHASE: PHASE_TRAIN}) as run:
        run.metrics({"train/loss": 1.0}, step=1)
    log_build(uri, "base_model", "ui-probe-build", {}, {"model": {"name": "tiny"}}, {}, {"base/steps": 1.0}, 1)
    for name in ("igrpo", BUILDS_EXPERIMENT):
        assert client(uri).get_experiment_by_name(name).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    port = _free_port()
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    with open(tmp_path / "ui.log", "w") as log:
        proc = subprocess.Popen([str(mlflow_bin), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port",
                                 str(port), "--workers", "1"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "ui.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow ui did not answer within 120 s"
            time.sleep(0.5)
        yield port, run.experiment_id
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its uvicorn worker
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def browser(tmp_path):
    driver = headless_chromium(tmp_path / "profile", window="1400,1000")
    yield driver
    driver.quit()


def _page_text_once(browser, wanted: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = browser.execute_script("return document.body ? document.body.innerText : ''")
        if wanted in text or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


def test_printed_ui_address_lands_on_the_runs_table(ui, browser):
    from igrpo.tracking.names import ui_runs_url

    port, experiment_id = ui
    browser.get(ui_runs_url(experiment_id, f"http://127.0.0.1:{port}"))
    text = _page_text_once(browser, "ui-probe-run")
    assert "ui-probe-run" in text, text[:2000]  # the runs table, with our run
    assert "/runs" in browser.current_url and "workflowType=machine_learning" in browser.current_url
    assert "1 matching run" in text and "No data available" not in text
    assert "ui-probe-build" not in text  # builds live in their own experiment
