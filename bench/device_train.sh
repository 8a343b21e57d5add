#!/usr/bin/env bash
# One GPU session for `lethe bench train` (issue 4's speed line): LoRA (r=16,
# every linear projection) and full fine-tuning steps, batch 8 × 512, on the
# SmolLM2-135M shape in bf16 with f32 master weights, then PyTorch's reference
# (bench/torch/train_bench.py) on the same card. Needs bin/lethe.gz built on
# the CPU machine (cgo, GOEXPERIMENT=simd). Writes $OUT/train_bench.log.
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
gunzip -kf bin/lethe.gz && chmod +x bin/lethe
SP=$(python3 -c "import site;print(site.getsitepackages()[0])")
PLUGIN=$(ls $SP/jax_plugins/xla_cuda*/xla_cuda_plugin.so 2>/dev/null | head -1)
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0 XLA_FLAGS=--xla_gpu_cuda_data_dir=$SP/nvidia/cu13
export LD_LIBRARY_PATH=$(find $SP/nvidia -maxdepth 4 -type d -name lib | tr '\n' ':')
{
echo "=== $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader)"
for mode in lora full; do
  timeout 240 bin/lethe bench train --config smollm2 --backend "xla:$PLUGIN" --dtype bfloat16 --batch 8 --seq 512 --mode $mode --steps 10 --warmup 3 --json 2>&1
done
for mode in lora full; do
  timeout 120 python3 bench/torch/train_bench.py --config smollm2 --batch 8 --seq 512 --dtype bf16 --mode $mode --steps 10 --warmup 3 2>&1
done
} > "$OUT/train_bench.log" 2>&1
