"""The real-model path end to end through ``python run.py``, as a user runs it: SmolLM2-135M-Instruct from its PyPI
package (converted once for this module), its ChatML template, English word problems with ``\\boxed{}`` answers graded
by math-verify, iGRPO with the paper's refinement instruction (``debug=smoke_real``), logged to MLflow, its final
evaluation through the evaluation job on the saved policy (``eval.mode=job``).

Needs the model's package (``python -m igrpo.models install-real``, part of the README's test command); without it
these skip on a developer machine and fail in CI (CI=true)."""

from __future__ import annotations

import json
import os

import pytest

from igrpo.models import packaged
from igrpo.models.packaged import INSTALL_COMMAND, PACKAGED, install_problem, local_model
from tests.helpers import run_cli

MODEL = PACKAGED["smollm2-135m-instruct"]
INSTALLED = install_problem(MODEL, packaged.installed_version(MODEL.distribution),
                            packaged.installed_version("gguf") is not None) is None
pytestmark = pytest.mark.skipif(not INSTALLED and os.environ.get("CI") != "true",
                                reason=f"needs {MODEL.distribution} {MODEL.version} and gguf: {INSTALL_COMMAND}")
# Smaller than debug=smoke_real's own sizes (one prompt, 2 drafts + 2 refinements, 32 tokens, one eval problem, no
# diagnostic evaluation): the test checks the path, not what the model learns, and a training step of this model
# costs tens of seconds on 2 cores.
SMALL = ["train.prompts_per_step=1", "rollout_budget=4", "variant.num_drafts=2", "generation.max_completion_length=32",
         "eval.max_new_tokens=32", "task.eval_size=1", "eval.greedy=false", "eval.refine=false"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One model cache for the module: the GGUF file is converted once (~30 s) and every run here loads it."""
    root = tmp_path_factory.mktemp("real_model_cache")
    local_model("package:smollm2-135m-instruct", root, quiet=True)
    return root


def _run(tmp_path, cache, *overrides):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli(["debug=smoke_real", f"model.cache_dir={cache}", f"tracking.uri={uri}", *SMALL, *overrides],
                     cwd=tmp_path, timeout=900)
    return result, uri


def test_igrpo_on_the_real_model_logs_chatml_refinement_prompts_with_the_draft_inside(tmp_path, cache):
    import mlflow

    result, uri = _run(tmp_path, cache, "variant=igrpo", "eval.mode=job")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "eval/sum/avg_at_2" in result.stdout  # the run's summary
    # the final evaluation went through the evaluation job on the saved policy: its resumable sample store
    assert "sum.jsonl" in [p.name for p in (tmp_path / "eval_store").rglob("*.jsonl")]

    client = mlflow.tracking.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("igrpo").experiment_id])
    assert run.info.status == "FINISHED"
    history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "draft/empty_frac")}
    assert sorted(history) == [1, 2] and all(0.0 <= v < 1.0 for v in history.values())
    assert client.get_metric_history(run.info.run_id, "draft/identical_groups_frac")

    table = json.loads(open(client.download_artifacts(run.info.run_id, "rollouts.json", str(tmp_path))).read())
    rows = [dict(zip(table["columns"], row)) for row in table["data"]]
    selected = {(r["step"], r["prompt_id"]): r["completion"] for r in rows if r["stage"] == "draft" and r["selected"]}
    refinements = [r for r in rows if r["stage"] == "refinement"]
    assert selected and len(refinements) == 2 * 2  # 2 steps x G = 2 refinements of the one prompt
    for r in refinements:
        prompt = r["prompt"]
        assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")
        user = prompt.split("<|im_start|>user\n", 1)[1]
        assert "A previous draft solution is given below between <draft> tags" in user  # the paper's instruction
        assert f"<draft>\n{selected[(r['step'], r['prompt_id'])]}\n</draft><|im_end|>" in user  # the draft, whole
        assert "\\boxed{}" in user


def test_a_chat_model_prompted_without_its_template_stops_on_all_empty_drafts(tmp_path, cache):
    """Without its chat template this model ends every draft at once (the hand-run that found it: 16 of 16 empty),
    so the run stops at its first step with one line instead of training on empty <draft> prompts."""
    result, _ = _run(tmp_path, cache, "variant=igrpo", "model.chat_template=false", "eval.samples_per_problem=1")
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Stage 1 drafts were all empty at step 0 (2 of 2)"), last
    assert "model.chat_template=true" in last


def test_the_other_variants_run_on_the_real_model(tmp_path, cache):
    """GRPO, Critique-GRPO (the paper's chat prompts) and Self-Verification (its three turns, one verify prompt of
    the step's two) through run.py on SmolLM2, 2 steps each, in one multirun: every variant runs on the real model in
    the README's test command (about 3 minutes of one test worker)."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sizes = [o for o in SMALL if not o.startswith(("train.prompts_per_step", "variant.num_drafts"))]
    result = run_cli(["-m", "debug=smoke_real", "variant=grpo,critique_grpo,self_verify", f"model.cache_dir={cache}",
                      f"tracking.uri={uri}", *sizes], cwd=tmp_path, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.tracking.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("igrpo").experiment_id])
    finished = {r.data.tags["variant"] for r in runs if r.info.status == "FINISHED" and "variant" in r.data.tags}
    assert finished == {"grpo", "critique_grpo", "self_verify"}

