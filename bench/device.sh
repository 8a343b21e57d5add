#!/usr/bin/env bash
# One GPU session: backend discovery, fixture numerics on CUDA, lethe bench and
# the PyTorch reference on the SmolLM2-135M shape. Writes logs under $OUT.
# Needs bin/lethe.gz and bin/models.test.gz built on the CPU machine (cgo,
# GOEXPERIMENT=simd): the device has no network.
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
gunzip -kf bin/lethe.gz bin/models.test.gz && chmod +x bin/lethe bin/models.test
step() { echo "=== $* ($(date +%T))"; }
{
step gpu; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
step python; python3 -c "import jax, torch, sys; print(sys.executable, jax.__version__, torch.__version__)" 2>&1
step "discovery (auto, no env set)"
timeout 90 bin/lethe bench --config tiny --backend auto --batch 1 --prompt-len 32 --new-tokens 8 --repeats 1 2>&1
} > "$OUT/01_discovery.log" 2>&1
SP=$(python3 -c "import site;print(site.getsitepackages()[0])")
PLUGIN=$(ls $SP/jax_plugins/xla_cuda*/xla_cuda_plugin.so 2>/dev/null | head -1)
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0 XLA_FLAGS=--xla_gpu_cuda_data_dir=$SP/nvidia/cu13
export LD_LIBRARY_PATH=$(find $SP/nvidia -maxdepth 4 -type d -name lib | tr '\n' ':')
{
step "fixture numerics on CUDA (tf32 off)"
(cd models && LETHE_TEST_BACKEND="xla:$PLUGIN,tf32=false" timeout 110 ../bin/models.test -test.run 'TestForward|TestGreedy|TestScore' -test.v 2>&1) | grep -E '^(---|ok|FAIL|PASS)|max [|]logits|panic|Error' 
} > "$OUT/02_numerics.log" 2>&1
{
step "lethe bench smollm2 bf16"
timeout 200 bin/lethe bench --config smollm2 --backend "xla:$PLUGIN" --dtype bfloat16 --batch 8,1 --prompt-len 512 --new-tokens 128 --repeats 2 --json 2>&1
step "lethe bench tiny f32 on GPU"
timeout 50 bin/lethe bench --config tiny --backend "xla:$PLUGIN" --batch 1,8 --json 2>&1
} > "$OUT/03_lethe_bench.log" 2>&1
{
step "torch smollm2 bf16"
timeout 120 python3 bench/torch/llama_bench.py --config smollm2 --device cuda --dtype bf16 --prefill-runs 3 --decode-runs 2 --warmup 1 --caches static,dynamic --skip-nocache --out "$OUT/torch_smollm2_bf16.json" 2>&1 | tail -40
} > "$OUT/04_torch.log" 2>&1
step done >> "$OUT/04_torch.log"
