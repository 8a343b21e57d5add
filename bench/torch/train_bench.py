#!/usr/bin/python3
"""PyTorch reference for `lethe bench train`: tokens/s and peak memory of training steps of a
Llama-shaped model (llama_bench.py's plain-torch Llama, transformers' math, eager attention), full
fine-tuning and LoRA (r=16, alpha=32, every linear projection of every layer, PEFT's
lora_A/lora_B forward: y = W x + (alpha/r) B A x, base frozen; the LM head and embeddings are not
adapted), AdamW (torch.optim.AdamW, lr 1e-4, weight decay 0), causal-LM loss over every position.

    /usr/bin/python3 bench/torch/train_bench.py --config tiny --batch 8 --seq 128 --env tuned   # CPU, 2 threads
    python3 bench/torch/train_bench.py --config smollm2 --batch 8 --seq 512 --dtype bf16  # GPU

A step = forward + loss + backward + optimizer step + zero_grad on a [batch, seq] batch of random ids.
tokens/s = batch*seq / median step time over --steps timed steps after --warmup steps.
Peak memory: CUDA max_memory_allocated on GPU; the process's peak RSS (VmHWM) on CPU.
"""
import argparse, json, os, statistics, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_bench as lb  # noqa: E402  (settles OpenBLAS' environment before torch loads)
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class LoRALinear(nn.Module):
    """PEFT's LoRA Linear: base(x) + scaling * lora_B(lora_A(dropout(x))), lora_B zero-initialised."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=5 ** 0.5)
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scaling


def add_lora(model, r, alpha):
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Linear):
                    setattr(parent, name, LoRALinear(child, r, alpha))
    return [p for n, p in model.named_parameters() if "lora_" in n]


def peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(lb.CONFIGS), default="tiny")
    ap.add_argument("--mode", choices=["lora", "full", "both"], default="both")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default=None)
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--out", default=None, help="append the JSON lines to this file")
    # Read by llama_bench before torch loads (see its docstring): OpenBLAS/OpenMP/malloc settings.
    ap.add_argument("--env", choices=["default", "tuned"], default="default")
    ap.add_argument("--omp-wait-policy", default=None)
    ap.add_argument("--malloc", default=None)
    ap.add_argument("--keep-openblas-env", action="store_true")
    a = ap.parse_args()
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu":
        torch.set_num_threads(a.threads)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[a.dtype]
    c = dict(lb.CONFIGS[a.config])
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, c["vocab_size"], (a.batch, a.seq), generator=g).to(device)
    out = []
    for mode in (["lora", "full"] if a.mode == "both" else [a.mode]):
        model = lb.Llama(c)
        model.init_weights(0)
        params = add_lora(model, a.rank, a.alpha) if mode == "lora" else list(model.parameters())
        model.to(device=device, dtype=dtype)
        opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times, losses = [], []
        for i in range(a.warmup + a.steps):
            lb.sync(device)
            t0 = time.perf_counter()
            logits = model(ids)
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1))
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            lb.sync(device)
            dt = time.perf_counter() - t0
            losses.append(round(loss.item(), 5))
            if i >= a.warmup:
                times.append(dt)
        med = statistics.median(times)
        rec = dict(impl="torch", torch=torch.__version__, env=a.env, device=str(device), threads=torch.get_num_threads(),
                   config=a.config, mode=mode, dtype=a.dtype, batch=a.batch, seq=a.seq,
                   rank=a.rank if mode == "lora" else None,
                   trainable_parameters=sum(p.numel() for p in params),
                   tokens_per_s=round(a.batch * a.seq / med, 1), median_step_ms=round(1000 * med, 2),
                   min_step_ms=round(1000 * min(times), 2), max_step_ms=round(1000 * max(times), 2),
                   peak_memory_bytes=torch.cuda.max_memory_allocated() if device.type == "cuda" else peak_rss(),
                   losses=losses)
        print(json.dumps(rec), flush=True)
        out.append(rec)
        del model, opt
    if a.out:
        with open(a.out, "a") as f:
            for r in out:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
