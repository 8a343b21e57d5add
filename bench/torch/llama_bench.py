#!/usr/bin/python3
"""PyTorch reference for lethe's inference benchmark: prefill and decode tokens/s of a
Llama-shaped model written in plain torch (same math as transformers' LlamaForCausalLM,
eager attention), random weights with a fixed seed.

Run with Debian's interpreter (see README.md):
    /usr/bin/python3 bench/torch/llama_bench.py                     # tiny Llama, CPU, 2 threads
    /usr/bin/python3 bench/torch/llama_bench.py --config smollm2 --quick   # CPU smoke check
    python3 bench/torch/llama_bench.py --config smollm2 --dtype bf16       # GPU machine (cuda if available)

Definitions (lethe must measure the same things):
  prefill tokens/s   = B*T / time of one forward over [B,T] prompt ids producing logits for all T positions.
  cached generation  = greedy, 128 new tokens: the prefill forward (logits of the last position only, as
                       generate() does with logits_to_keep=1) gives new token 1, then 127 single-token
                       forwards with the KV cache give tokens 2..128 (final length prompt+128).
      decode tokens/s   = B*127 / time of the 127 single-token steps (steady-state decode rate).
      generate tokens/s = B*128 / (prefill + 127 steps)  (what timing generate(max_new_tokens=128) gives).
  cache kinds: "static"        preallocated [B,kv_heads,max_len,head_dim] buffers updated in place; attention
                               runs over all max_len slots with a mask (transformers' StaticCache semantics);
               "static_sliced" same buffers, attention only over the filled prefix [:, :, :len] (a view);
               "dynamic"       torch.cat along the sequence axis (transformers' DynamicCache).
  no-cache decode    = batch 1; each of the 128 new tokens re-runs the full forward on the whole sequence so far
                       (lengths prompt..prompt+127), logits of the last position only.
                       decode tokens/s = 128 / total time.
Timings: warm-up runs first, then the median (min/max and every run are reported too).
"""
import argparse, json, os, platform, re, statistics, sys, time

# Process environment, settled before torch (and with it OpenBLAS, libgomp and malloc's habits) is loaded;
# when it has to change, the script re-executes itself once with the new environment.
#  * OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are dropped (the project's reference CPU figures were measured
#    with OpenBLAS' own CPU detection; on this machine CORETYPE=Haswell L2_SIZE=512 costs ~40% of matmul
#    throughput) unless --keep-openblas-env.
#  * --omp-wait-policy passive: OMP_WAIT_POLICY=PASSIVE. Debian's torch runs elementwise ops on libgomp
#    threads and GEMMs on OpenBLAS' own pthreads; with libgomp's default the idle OpenMP workers spin after
#    each parallel region and take the 2 cores from OpenBLAS' threads.
#  * --malloc nommap: GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=<4 GiB>, so glibc
#    serves big tensors from its heap and reuses the pages instead of mmap/munmap per tensor: on this VM a
#    page fault is so slow that first-touching a fresh 131 MB logits tensor costs ~280 ms.
#  * --env tuned = both of the above.
_NOMMAP = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295"


def _argval(name):
    for i, x in enumerate(sys.argv):
        if x == name and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if x.startswith(name + "="):
            return x.split("=", 1)[1]
    return None


def _settle_env():
    env = dict(os.environ)
    dropped = json.loads(env.pop("LETHE_BENCH_DROPPED", "{}"))
    if "--keep-openblas-env" not in sys.argv:
        for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            if k in env:
                dropped[k] = env.pop(k)
    tuned = _argval("--env") == "tuned"
    pol = _argval("--omp-wait-policy") or ("passive" if tuned else None)
    if pol in ("passive", "active"):
        env["OMP_WAIT_POLICY"] = pol.upper()
    mal = _argval("--malloc") or ("nommap" if tuned else None)
    if mal == "nommap":
        env["GLIBC_TUNABLES"] = (env["GLIBC_TUNABLES"] + ":" if env.get("GLIBC_TUNABLES") else "") + _NOMMAP \
            if _NOMMAP not in env.get("GLIBC_TUNABLES", "") else env["GLIBC_TUNABLES"]
    if env != {k: v for k, v in os.environ.items() if k != "LETHE_BENCH_DROPPED"} and "LETHE_BENCH_REEXEC" not in os.environ:
        env["LETHE_BENCH_REEXEC"] = "1"
        env["LETHE_BENCH_DROPPED"] = json.dumps(dropped)
        sys.stdout.flush(); sys.stderr.flush()
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    os.environ.pop("LETHE_BENCH_REEXEC", None)
    os.environ.pop("LETHE_BENCH_DROPPED", None)
    return dropped


# train_bench.py imports this module as its first import, for the same environment.
_ENV_DROPPED = _settle_env() if __name__ == "__main__" or os.path.basename(sys.argv[0]) == "train_bench.py" else {}

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    # lethe's CPU benchmark model.
    "tiny": dict(vocab_size=32000, hidden_size=256, intermediate_size=688, num_hidden_layers=2,
                 num_attention_heads=8, num_key_value_heads=4, rms_norm_eps=1e-5, rope_theta=10000.0,
                 tie_word_embeddings=False),
    # lethe's small training benchmark (~1.0M parameters, the scale of the 0.9M LM in shared/README).
    "small": dict(vocab_size=2048, hidden_size=128, intermediate_size=512, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
                  tie_word_embeddings=False),
    # SmolLM2-135M shapes (random weights).
    "smollm2": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3, rms_norm_eps=1e-5, rope_theta=100000.0,
                    tie_word_embeddings=True),
}
# Benchmark plans: prefill batches x prompt length, decode batches, prompt length, new tokens.
PLANS = {
    "tiny": dict(prefill_batches=[1, 8], prompt_len=128, decode_batches=[1, 8], new_tokens=128, nocache_batch=1),
    "smollm2": dict(prefill_batches=[1, 8], prompt_len=512, decode_batches=[1, 8], new_tokens=128, nocache_batch=1),
    "small": dict(prefill_batches=[1, 8], prompt_len=64, decode_batches=[1, 8], new_tokens=64, nocache_batch=1),
}
QUICK = dict(prefill_batches=[1, 2], prompt_len=32, decode_batches=[1, 2], new_tokens=8, nocache_batch=1)


# ----------------------------------------------------------------------------------------------- model
class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):  # transformers' LlamaRMSNorm
        dt = x.dtype
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dt)


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n_rep):  # [B, kvh, S, hd] -> [B, kvh*n_rep, S, hd], as transformers does it
    if n_rep == 1:
        return x
    b, kvh, s, hd = x.shape
    return x[:, :, None, :, :].expand(b, kvh, n_rep, s, hd).reshape(b, kvh * n_rep, s, hd)


class Rotary(nn.Module):
    def __init__(self, head_dim, theta):
        super().__init__()
        inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
        self.register_buffer("inv_freq", inv, persistent=False)

    def forward(self, positions, dtype):  # positions [T] int64 -> cos, sin [1,1,T,hd] (f32 math, then cast)
        freqs = positions.float()[:, None] * self.inv_freq.float()[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype)[None, None], emb.sin().to(dtype)[None, None]


class Attention(nn.Module):
    def __init__(self, c, idx, attn_impl):
        super().__init__()
        self.idx = idx
        self.nh, self.nkv = c["num_attention_heads"], c["num_key_value_heads"]
        self.hd = c["hidden_size"] // self.nh
        self.scaling = self.hd ** -0.5
        self.attn_impl = attn_impl
        h = c["hidden_size"]
        self.q_proj = nn.Linear(h, self.nh * self.hd, bias=False)
        self.k_proj = nn.Linear(h, self.nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(h, self.nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.nh * self.hd, h, bias=False)

    def forward(self, x, cos, sin, mask, cache, start):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            k, v = cache.update(self.idx, k, v, start)
        k = repeat_kv(k, self.nh // self.nkv)
        v = repeat_kv(v, self.nh // self.nkv)
        if self.attn_impl == "sdpa":  # torch >= 2.1
            if mask is not None and start == 0 and k.shape[-2] == t:  # plain causal prompt: let sdpa pick flash
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scaling)
            else:
                o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scaling)
        else:  # eager: matmul + additive mask + softmax in f32 + matmul
            w = torch.matmul(q, k.transpose(2, 3)) * self.scaling
            if mask is not None:
                w = w + mask
            w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
            o = torch.matmul(w, v)
        return self.o_proj(o.transpose(1, 2).reshape(b, t, -1))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, i = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c, idx, attn_impl):
        super().__init__()
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.self_attn = Attention(c, idx, attn_impl)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.mlp = MLP(c)

    def forward(self, x, cos, sin, mask, cache, start):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, start)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    def __init__(self, c, attn_impl="eager"):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([Layer(c, i, attn_impl) for i in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        if c["tie_word_embeddings"]:
            self.lm_head.weight = self.embed_tokens.weight
        self.rotary = Rotary(c["hidden_size"] // c["num_attention_heads"], c["rope_theta"])
        self._mask = None

    def init_weights(self, seed):  # transformers' init: normal(0, 0.02) for linears and embeddings, norms 1
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("layernorm.weight") or name == "norm.weight":
                    p.fill_(1.0)
                else:
                    p.copy_(torch.randn(p.shape, generator=g) * 0.02)

    def causal_mask(self, q0, q1, kv_len, dtype, device):
        """Additive mask [q1-q0, kv_len]: 0 where key position <= query position, dtype min elsewhere."""
        n = max(q1, kv_len)
        m = self._mask
        if m is None or m.shape[0] < n or m.dtype != dtype or m.device != device:
            m = torch.full((n, n), torch.finfo(dtype).min, dtype=dtype, device=device).triu_(1)
            self._mask = m
        return m[q0:q1, :kv_len]

    def forward(self, ids, start=0, cache=None, logits_to_keep=0):
        b, t = ids.shape
        x = self.embed_tokens(ids)
        pos = torch.arange(start, start + t, device=ids.device)
        cos, sin = self.rotary(pos, x.dtype)
        kv_len = start + t
        if cache is not None and cache.full_attention:
            kv_len = cache.max_len  # static cache: attend over every slot, unfilled ones masked
        # q_len 1 over exactly the filled prefix: the mask would be all zeros, so it is skipped.
        mask = self.causal_mask(start, start + t, kv_len, x.dtype, x.device) if (t > 1 or kv_len > start + t) else None
        if mask is not None:
            mask = mask[None, None]
        for layer in self.layers:
            x = layer(x, cos, sin, mask, cache, start)
        x = self.norm(x)
        if logits_to_keep:
            x = x[:, -logits_to_keep:]
        return self.lm_head(x)


# ----------------------------------------------------------------------------------------------- caches
class DynamicCache:
    full_attention = False

    def __init__(self, n_layers):
        self.k = [None] * n_layers
        self.v = [None] * n_layers

    def update(self, i, k, v, start):
        if self.k[i] is None:
            self.k[i], self.v[i] = k, v
        else:
            self.k[i] = torch.cat([self.k[i], k], dim=-2)
            self.v[i] = torch.cat([self.v[i], v], dim=-2)
        return self.k[i], self.v[i]


class StaticCache:
    def __init__(self, c, batch, max_len, dtype, device, sliced):
        nkv, hd = c["num_key_value_heads"], c["hidden_size"] // c["num_attention_heads"]
        shape = (batch, nkv, max_len, hd)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(c["num_hidden_layers"])]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(c["num_hidden_layers"])]
        self.max_len = max_len
        self.full_attention = not sliced

    def update(self, i, k, v, start):
        end = start + k.shape[-2]
        self.k[i][:, :, start:end].copy_(k)  # in place, like StaticCache's index_copy_
        self.v[i][:, :, start:end].copy_(v)
        if self.full_attention:
            return self.k[i], self.v[i]
        return self.k[i][:, :, :end], self.v[i][:, :, :end]


# ----------------------------------------------------------------------------------------------- timing
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def stats(times, work):
    med = statistics.median(times)
    return dict(tokens_per_s=round(work / med, 1), median_ms=round(1000 * med, 3),
                min_ms=round(1000 * min(times), 3), max_ms=round(1000 * max(times), 3),
                spread_pct=round(100 * (max(times) - min(times)) / med, 1),
                runs_tokens_per_s=[round(work / x, 1) for x in times])


def matmul_probe(device, dtype):
    """GFLOP/s of [512x1024]@[1024x1024] (the project's reference CPU probe), median of 20 after 5 warm-ups:
    a gauge of how busy the machine was around the benchmark."""
    x = torch.randn(512, 1024, device=device, dtype=dtype)
    y = torch.randn(1024, 1024, device=device, dtype=dtype)
    ts = []
    for i in range(25):
        sync(device); t0 = time.perf_counter(); x @ y; sync(device)
        if i >= 5:
            ts.append(time.perf_counter() - t0)
    return round(2 * 512 * 1024 * 1024 / statistics.median(ts) / 1e9, 1)


def bench_prefill(model, ids, warmup, runs, device):
    ts = []
    for i in range(warmup + runs):
        sync(device); t0 = time.perf_counter()
        logits = model(ids)
        sync(device); dt = time.perf_counter() - t0
        if i >= warmup:
            ts.append(dt)
    assert logits.shape == (ids.shape[0], ids.shape[1], model.c["vocab_size"])
    return stats(ts, ids.numel())


def generate_cached(model, prompt, new_tokens, kind, device):
    """Greedy generation with a KV cache. Returns (prefill_s, decode_s, generated ids [B,new_tokens])."""
    b, p = prompt.shape
    max_len = p + new_tokens
    dtype = model.embed_tokens.weight.dtype
    if kind == "dynamic":
        cache = DynamicCache(model.c["num_hidden_layers"])
    else:
        cache = StaticCache(model.c, b, max_len, dtype, device, sliced=(kind == "static_sliced"))
    out = torch.empty(b, new_tokens, dtype=torch.long, device=device)
    sync(device); t0 = time.perf_counter()
    logits = model(prompt, 0, cache, logits_to_keep=1)
    tok = logits[:, -1].float().argmax(-1)
    out[:, 0] = tok
    sync(device); t1 = time.perf_counter()
    for s in range(1, new_tokens):
        logits = model(tok[:, None], p + s - 1, cache)
        tok = logits[:, -1].float().argmax(-1)
        out[:, s] = tok
    sync(device); t2 = time.perf_counter()
    return t1 - t0, t2 - t1, out


def generate_nocache(model, prompt, new_tokens, device):
    seq = prompt
    sync(device); t0 = time.perf_counter()
    for _ in range(new_tokens):
        logits = model(seq, 0, None, logits_to_keep=1)
        tok = logits[:, -1].float().argmax(-1)
        seq = torch.cat([seq, tok[:, None]], dim=1)
    sync(device)
    return time.perf_counter() - t0, seq[:, prompt.shape[1]:]


def bench_decode(model, prompt, new_tokens, kind, warmup, runs, device):
    pre, dec, ids = [], [], None
    for i in range(warmup + runs):
        a, d, ids = generate_cached(model, prompt, new_tokens, kind, device)
        if i >= warmup:
            pre.append(a); dec.append(d)
    b = prompt.shape[0]
    r = dict(batch=b, prompt_len=prompt.shape[1], new_tokens=new_tokens, decode_steps=new_tokens - 1,
             decode=stats(dec, b * (new_tokens - 1)),
             generate=stats([x + y for x, y in zip(pre, dec)], b * new_tokens),
             prefill_last_logits_ms=round(1000 * statistics.median(pre), 3))
    r["decode"]["ms_per_step"] = round(r["decode"]["median_ms"] / (new_tokens - 1), 3)
    return r, ids


# ----------------------------------------------------------------------------------------------- info
def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def blas_info():
    show = torch.__config__.show()
    line = next((l.strip() for l in show.splitlines() if "BLAS_INFO" in l), "")
    info = {"build_settings": ", ".join(x.strip() for x in line.split(",") if re.search(r"BLAS_INFO|LAPACK_INFO|USE_MKLDNN|USE_OPENMP|TORCH_VERSION", x))}
    cap = next((l.strip(" -") for l in show.splitlines() if "CPU capability" in l), None)
    if cap:
        info["cpu_capability"] = cap
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if "/" in line else ""
                if re.search(r"blas|lapack|mkl|omp", os.path.basename(path)):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    info["loaded_libraries"] = sorted(libs)
    for path in sorted(libs):
        if "openblas" in os.path.basename(path):
            try:
                import ctypes
                lib = ctypes.CDLL(path)
                for fn in ("openblas_get_corename", "openblas_get_config"):
                    getattr(lib, fn).restype = ctypes.c_char_p
                info["openblas_core"] = lib.openblas_get_corename().decode()
                info["openblas_config"] = lib.openblas_get_config().decode()
                info["openblas_threads"] = lib.openblas_get_num_threads()
            except (OSError, AttributeError):
                pass
            break
    return info


# ----------------------------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--dtype", choices=["f32", "bf16", "f16"], default="f32")
    ap.add_argument("--attn", choices=["eager", "sdpa"], default="eager")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads on CPU (default 2)")
    ap.add_argument("--quick", action="store_true", help="tiny batches/lengths, 1 run each: a smoke check")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prefill-runs", type=int, default=11)
    ap.add_argument("--decode-runs", type=int, default=5)
    ap.add_argument("--nocache-runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--caches", default="static,static_sliced,dynamic")
    ap.add_argument("--skip-nocache", action="store_true")
    ap.add_argument("--out", default=None, help="JSON path (default bench/torch/results.<device>.json for "
                    "--config tiny, results.<config>.<device>[.<dtype>].json otherwise; none with --quick)")
    ap.add_argument("--env", choices=["default", "tuned"], default="default",
                    help="tuned = --omp-wait-policy passive --malloc nommap (see the top of this file)")
    ap.add_argument("--omp-wait-policy", choices=["default", "passive", "active"], default=None,
                    help="set OMP_WAIT_POLICY before torch loads (passive avoids libgomp/OpenBLAS thread fights)")
    ap.add_argument("--malloc", choices=["default", "nommap"], default=None,
                    help="nommap: glibc keeps big tensors on its heap (no mmap/munmap and page faults per tensor)")
    ap.add_argument("--keep-openblas-env", action="store_true",
                    help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (dropped by default)")
    a = ap.parse_args()
    if a.omp_wait_policy is None:
        a.omp_wait_policy = "passive" if a.env == "tuned" else "default"
    if a.malloc is None:
        a.malloc = "nommap" if a.env == "tuned" else "default"

    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if a.attn == "sdpa" and not hasattr(F, "scaled_dot_product_attention"):
        sys.exit(f"--attn sdpa needs torch >= 2.1 (this is {torch.__version__})")
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[a.dtype]
    if device.type == "cpu":
        torch.set_num_threads(a.threads)
    c = dict(CONFIGS[a.config])
    plan = dict(QUICK if a.quick else PLANS[a.config])
    if a.quick:
        a.prefill_runs = a.decode_runs = a.nocache_runs = 1
        a.warmup = 1
    caches = [x for x in a.caches.split(",") if x]
    load_start = os.getloadavg()
    load_samples, stop = [], __import__("threading").Event()

    def sample_load():  # 1-minute load average every 5 s while the benchmark runs (this process included)
        while not stop.wait(5.0):
            load_samples.append(round(os.getloadavg()[0], 2))
    __import__("threading").Thread(target=sample_load, daemon=True).start()

    torch.manual_seed(a.seed)
    model = Llama(c, a.attn)
    model.init_weights(a.seed)
    model = model.to(device=device, dtype=dtype).eval()
    n_params = sum(p.numel() for p in model.parameters())

    g = torch.Generator().manual_seed(a.seed + 1)
    res = dict(
        benchmark="lethe inference: prefill / decode tokens per second, plain-torch Llama (transformers LlamaForCausalLM math, eager attention)",
        config=a.config, quick=a.quick, shapes=dict(c, head_dim=c["hidden_size"] // c["num_attention_heads"],
                                                    parameters=n_params),
        dtype=str(dtype).replace("torch.", ""), attention=a.attn, device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        cpu_model=cpu_model(), logical_cpus=os.cpu_count(),
        torch=torch.__version__, python=platform.python_version(), python_executable=sys.executable,
        threads=torch.get_num_threads(), interop_threads=torch.get_num_interop_threads(),
        blas=blas_info(), openblas_env_dropped=_ENV_DROPPED,
        thread_env={k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "GLIBC_TUNABLES", "LD_PRELOAD", "MALLOC_ARENA_MAX") if k in os.environ},
        env_profile=dict(omp_wait_policy=a.omp_wait_policy, malloc=a.malloc), plan=plan, runs=dict(warmup=a.warmup, prefill=a.prefill_runs, decode=a.decode_runs, nocache=a.nocache_runs),
        seed=a.seed, definitions=__doc__.split("Definitions", 1)[1].strip(),
    )
    print(f"# {a.config} {res['dtype']} {a.attn} on {res['device_name']}, torch {torch.__version__}, "
          f"threads {res['threads']}, load {load_start}", file=sys.stderr, flush=True)

    p = plan["prompt_len"]
    prompts = {b: torch.randint(0, c["vocab_size"], (b, p), generator=g).to(device)
               for b in sorted(set(plan["prefill_batches"] + plan["decode_batches"] + [plan["nocache_batch"]]))}

    with torch.inference_mode():
        res["matmul_probe_gflops_start"] = matmul_probe(device, dtype)
        res["prefill"] = []
        for b in plan["prefill_batches"]:
            r = dict(batch=b, prompt_len=p, **bench_prefill(model, prompts[b], a.warmup, a.prefill_runs, device))
            res["prefill"].append(r)
            print(f"prefill  B={b} T={p}: {r['tokens_per_s']} tok/s ({r['median_ms']} ms, spread {r['spread_pct']}%)",
                  file=sys.stderr, flush=True)

        res["decode"] = {}
        gen_ids = {}
        nt = plan["new_tokens"]
        for kind in caches:
            res["decode"][kind] = []
            for b in plan["decode_batches"]:
                r, ids = bench_decode(model, prompts[b], nt, kind, max(1, a.warmup - 1), a.decode_runs, device)
                res["decode"][kind].append(r)
                gen_ids[(kind, b)] = ids
                print(f"decode   {kind:13s} B={b}: {r['decode']['tokens_per_s']} tok/s ({r['decode']['ms_per_step']} ms/step), "
                      f"generate {r['generate']['tokens_per_s']} tok/s, spread {r['decode']['spread_pct']}%",
                      file=sys.stderr, flush=True)

        if not a.skip_nocache:
            b = plan["nocache_batch"]
            ts, ids = [], None
            for i in range(max(1, a.warmup - 1) + a.nocache_runs):
                dt, ids = generate_nocache(model, prompts[b], nt, device)
                if i >= max(1, a.warmup - 1):
                    ts.append(dt)
            gen_ids[("nocache", b)] = ids
            res["decode_nocache"] = dict(batch=b, prompt_len=p, new_tokens=nt, final_len=p + nt, **stats(ts, b * nt))
            print(f"decode   no cache      B={b}: {res['decode_nocache']['tokens_per_s']} tok/s", file=sys.stderr, flush=True)

        # Consistency: every path must generate the same greedy tokens (up to float near-ties), and the
        # cached single-token logits must match the full forward.
        chk = {}
        keys = sorted(gen_ids, key=str)
        for b in sorted({k[1] for k in keys}):
            ref_key = next((k for k in keys if k[1] == b), None)
            for k in keys:
                if k[1] == b and k != ref_key:
                    same = (gen_ids[k] == gen_ids[ref_key]).float().mean().item()
                    chk[f"B{b} {k[0]} vs {ref_key[0]} token agreement"] = round(same, 4)
        b0 = plan["decode_batches"][0]
        seq = torch.cat([prompts[b0], gen_ids[(caches[0], b0)][:, :4]], dim=1) if caches else prompts[b0]
        full = model(seq).float()
        for kind in caches:
            cache = DynamicCache(c["num_hidden_layers"]) if kind == "dynamic" else \
                StaticCache(c, b0, seq.shape[1], dtype, device, sliced=(kind == "static_sliced"))
            model(seq[:, :p], 0, cache)
            step = [model(seq[:, i:i + 1], i, cache).float() for i in range(p, seq.shape[1])]
            chk[f"{kind} step logits max|diff| vs full forward"] = float((torch.cat(step, 1) - full[:, p:]).abs().max())
        res["consistency"] = chk

    with torch.inference_mode():
        res["matmul_probe_gflops_end"] = matmul_probe(device, dtype)
    stop.set()
    res["loadavg_start"] = [round(x, 2) for x in load_start]
    res["loadavg_1min_every_5s"] = load_samples
    res["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    res["timestamp_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    out = a.out
    if out is None and not a.quick:
        here = os.path.dirname(os.path.abspath(__file__))
        name = f"results.{device.type}" if a.config == "tiny" and a.dtype == "f32" and a.attn == "eager" else \
            f"results.{a.config}.{device.type}.{a.dtype}.{a.attn}"
        if a.omp_wait_policy == "passive" and a.malloc == "nommap":
            name += ".tuned"
        else:
            if a.omp_wait_policy != "default":
                name += f".omp-{a.omp_wait_policy}"
            if a.malloc != "default":
                name += f".malloc-{a.malloc}"
        out = os.path.join(here, name + ".json")
    js = json.dumps(res, indent=1)
    print(js)
    if out:
        with open(out, "w") as f:
            f.write(js + "\n")
        print(f"# wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
