#!/usr/bin/env bash
# GPU proof of the training path (see benchmarks/gpu_check.py): random-init LLaVA models of the
# paper's shapes (CLIP ViT-L/14 + Llama ~1B and 7B), both stages under accelerate FSDP on all
# visible GPUs, stop/resume/export/reload; JSON in benchmarks/results/gpu_check.json.
#   bash benchmarks/gpu_check.sh           # a GPU machine (about 8 minutes on one H100/H200)
#   bash benchmarks/gpu_check.sh --smoke   # tiny shapes, one CPU process (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
export TOKENIZERS_PARALLELISM=false
exec "$PY" benchmarks/gpu_check.py "$@"
