#!/usr/bin/env bash
# GPU smoke test: a few iGRPO steps on one GPU with a small HF model, through the real CLI and MLflow.
#
#   bash experiments/gpu_smoke.sh                     # a tiny Llama saved here (no hub access needed)
#   MODEL=Qwen/Qwen2.5-0.5B-Instruct bash experiments/gpu_smoke.sh   # any small HF model (id or directory)
#   DEVICE=cpu DTYPE=float32 bash experiments/gpu_smoke.sh           # rehearse the script on a CPU machine
#
# It runs (1) iGRPO with transformers generation in bf16 on CUDA, then (2) the same with generation=vllm when
# the vllm package is importable. Each run writes to a local MLflow store (./gpu_smoke/mlflow.db) and prints
# its summary; the script ends with one line per stage: ok / failed / skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${OUT_DIR:-gpu_smoke}
mkdir -p "$OUT"
"$PY" - "$OUT" <<'PY'
# A tiny MATH-format train file and AIME-format eval files, so the smoke run needs no dataset downloads.
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
train = [{"problem": f"What is {a} + {b}?", "solution": f"{a} + {b} = {a + b}, so the answer is \\boxed{{{a + b}}}."}
         for a in range(2, 12) for b in range(3, 9)]
(out / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
evals = [{"problem": f"Compute {a} * {b}.", "answer": str(a * b)} for a, b in [(3, 4), (6, 7), (8, 9), (12, 5)]]
(out / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in evals))
PY
MODEL_PATH=${MODEL:-}
if [ -z "$MODEL_PATH" ]; then
  MODEL_PATH="$OUT/tiny-llama"
  "$PY" - "$MODEL_PATH" <<'PY'
import sys
from igrpo.models.tiny import build_char_tokenizer, build_tiny_model
tok = build_char_tokenizer()
model = build_tiny_model(tok, 256, 4, 4, 768, max_positions=2048, seed=0)
model.save_pretrained(sys.argv[1]); tok.save_pretrained(sys.argv[1])
PY
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi: not found"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

SUITES=""
for s in aime24 aime25 math500 amc23 gsm8k minerva; do SUITES="$SUITES eval.suites.$s.path=$PWD/$OUT/eval.jsonl"; done
COMMON=(model=hf "model.path=$MODEL_PATH" "model.dtype=${DTYPE:-bfloat16}" "device=${DEVICE:-cuda}" task=math "task.path=$PWD/$OUT/train.jsonl"
        eval=paper $SUITES eval.max_new_tokens=64 generation.max_completion_length=64 variant=igrpo variant.template=paper
        train.steps=3 train.prompts_per_step=4 "tracking.uri=sqlite:///$PWD/$OUT/mlflow.db" tracking.experiment=gpu_smoke
        "hydra.run.dir=$OUT/hydra/\${now:%H-%M-%S}")
status_hf=failed; status_vllm=skipped
start=$(date +%s)
if "$PY" run.py "${COMMON[@]}" generation=hf; then status_hf=ok; fi
echo "stage hf: $status_hf in $(( $(date +%s) - start )) s"
if "$PY" -c "import vllm" 2>/dev/null; then
  status_vllm=failed; start=$(date +%s)
  if "$PY" run.py "${COMMON[@]}" generation=vllm generation.gpu_memory_utilization=0.3 generation.max_model_len=1024; then
    status_vllm=ok
  fi
  echo "stage vllm: $status_vllm in $(( $(date +%s) - start )) s"
fi
echo "gpu_smoke: hf=$status_hf vllm=$status_vllm"
[ "$status_hf" = ok ] && [ "$status_vllm" != failed ]
