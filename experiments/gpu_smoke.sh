#!/usr/bin/env bash
# GPU smoke test of the paper-scale path on one GPU, with nothing downloaded there (experiments/gpu_smoke.py lists its
# checks): an R1-Distill-Qwen look-alike built on the spot (Qwen2, byte-level BPE, R1's special tokens and chat
# template, <think> tags); GRPO and iGRPO under the paper preset scaled down (bf16 compute on fp32 master weights,
# sdpa, gradient checkpointing, accumulation 2, the prompt cap) at lr 1e-6, whose steps must move the weights;
# `run.py experiment=paper` end to end with its evaluations through the evaluation job; the memory plan beside the
# measured peak of a step at real 7B width. One line per check, then `gpu_smoke: N/M checks ok`; exit 1 if any
# failed. Budget: under 8 minutes on one H100/H200.
#
#   bash experiments/gpu_smoke.sh fetch    # on a machine with PyPI: the wheels a bare GPU image lacks, into .whl/
#   bash experiments/gpu_smoke.sh          # on the GPU machine (installs .whl/ into /tmp/site when trl is missing)
#   bash experiments/gpu_smoke.sh --cpu-rehearsal    # the same checks on a CPU machine (DEVICE=cpu DTYPE=float32
#                                                    # HIDDEN=64; the 7B-width step is planned, not run;
#                                                    # tests/test_gpu_smoke_rehearsal.py runs it)
#
# The lent GPU machines' image has torch, transformers 5.17, accelerate, pandas, pyarrow, sympy, protobuf, pyyaml
# and requests, but no trl, datasets, hydra-core, omegaconf, mlflow, math-verify or vllm, and no network: `fetch`
# downloads the missing wheels for its Python 3.12 (PYVER=3.11 fetches for a 3.11 stand-in), about 35 MB. The checks use the exact-answer verifier, so math-verify is not needed.
# vLLM cannot travel (336 MB): generation=hf here; the vLLM paths are tested on CPU with vLLM's CPU build.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=.whl

if [ "${1:-}" = "--cpu-rehearsal" ]; then
  export DEVICE=${DEVICE:-cpu} DTYPE=${DTYPE:-float32} HIDDEN=${HIDDEN:-64}
  shift
fi

if [ "${1:-}" = "fetch" ]; then
  # Pure-Python wheels for the GPU image's Python 3.12, versions as the project pins or uses them.
  grep -qx "/$WHEELS/" .git/info/exclude 2>/dev/null || echo "/$WHEELS/" >> .git/info/exclude
  mkdir -p "$WHEELS"
  # the training stack, then MLflow's client and SQLite store (run.py logs every run) with what they import
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "${PYVER:-3.12}" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$WHEELS" \
    trl==1.16.0 transformers==5.24.0 datasets==5.2.0 hydra-core==1.3.8 omegaconf==2.3.1 dill==0.4.1 \
    multiprocess==0.70.19 \
    mlflow-skinny==3.17.2 sqlalchemy==2.1.9 alembic==1.20.1 mako==1.4.3 sqlparse==0.6.1 cachetools==7.3.3 \
    databricks-sdk==0.167.0 google-auth==2.63.1 pyasn1==0.6.5 pyasn1-modules==0.4.2 gitpython==3.2.1 gitdb==4.0.12 \
    smmap==5.0.3 importlib-metadata==9.1.0 opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2 \
    opentelemetry-proto==1.45.2 opentelemetry-semantic-conventions==0.66b2 pydantic==2.14.4 pydantic-core==2.50.5 \
    annotated-types==0.8.0 typing-inspection==0.4.5 python-dotenv==1.2.4 fastapi==0.165.0 starlette==1.10.0 \
    uvicorn==0.55.0 cryptography==50.0.2 cffi==2.1.1 pycparser==3.12 || exit 1
  # antlr4-python3-runtime 4.9.3 (hydra's pin) is published as a source archive only: build its wheel here
  "$PY" -m pip wheel -q --no-deps -w "$WHEELS" antlr4-python3-runtime==4.9.3 || exit 1
  ls -la "$WHEELS"; du -sh "$WHEELS"
  echo "carry $WHEELS with the working tree (device tool: carry=[\"$WHEELS\"]), then run: bash experiments/gpu_smoke.sh"
  exit 0
fi

if ! "$PY" -c "import trl, hydra, omegaconf, datasets, mlflow" 2>/dev/null; then
  [ -d "$WHEELS" ] || { echo "check wheels: FAILED (trl/hydra/datasets/mlflow missing and no $WHEELS/; run: bash experiments/gpu_smoke.sh fetch)"; exit 1; }
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl \
    || { echo "check wheels: FAILED (pip install from $WHEELS/)"; exit 1; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  echo "check wheels: ok (installed $(ls "$WHEELS" | wc -l) wheels into /tmp/site)"
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
exec "$PY" -m experiments.gpu_smoke "${OUT_DIR:-gpu_smoke}" "${DEVICE:-cuda}" "${DTYPE:-bfloat16}" "${HIDDEN:-512}" "${WIDE_LAYERS:-2}"
