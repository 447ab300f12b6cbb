#!/usr/bin/env bash
# GPU proof of the training path (see benchmarks/gpu_check.py): random-init models of real shapes
# (LLaVA: CLIP ViT-L/14 + Llama ~1B and 7B; the Qwen2.5-VL family: Qwen2.5-VL-7B's shapes), both
# stages under accelerate FSDP on all visible GPUs, stop/resume/export/reload/generate; JSON in
# benchmarks/results/gpu_check.json and a table on stdout.
#   bash benchmarks/gpu_check.sh                                   # a GPU machine (LLaVA 1B, 7B, then Qwen2.5-VL-7B)
#   bash benchmarks/gpu_check.sh --sizes qwen2.5-vl-7b             # the non-LLaVA family only
#   bash benchmarks/gpu_check.sh --smoke                           # tiny LLaVA shapes, one CPU process (CI)
#   bash benchmarks/gpu_check.sh --smoke --sizes smoke-qwen2.5-vl  # the family's path at tiny shapes, one CPU process
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
export TOKENIZERS_PARALLELISM=false
exec "$PY" benchmarks/gpu_check.py "$@"
