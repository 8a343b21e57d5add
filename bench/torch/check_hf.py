#!/usr/bin/env python3
"""Where transformers is installed (not on the Debian CPU box; it is on the GPU image): load llama_bench's
random weights into transformers' LlamaForCausalLM and check that both give the same logits and the same
greedy tokens, then time transformers itself (forward over the prompt, generate() with its dynamic and
static caches) on the same plan, so llama_bench's plain-torch numbers can be set beside HF's own.

    python3 bench/torch/check_hf.py --config tiny            # CPU or GPU
    python3 bench/torch/check_hf.py --config smollm2 --dtype bf16
"""
import argparse, json, os, statistics, sys, time
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_bench as lb
import transformers
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", choices=sorted(lb.CONFIGS), default="tiny")
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--attn", choices=["eager", "sdpa"], default="eager")
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    dev = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cpu":
        torch.set_num_threads(a.threads)
    dt = {"f32": torch.float32, "bf16": torch.bfloat16}[a.dtype]
    c = lb.CONFIGS[a.config]
    plan = lb.PLANS[a.config]
    ours = lb.Llama(c, a.attn)
    ours.init_weights(0)
    hc = LlamaConfig(vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], intermediate_size=c["intermediate_size"],
                     num_hidden_layers=c["num_hidden_layers"], num_attention_heads=c["num_attention_heads"],
                     num_key_value_heads=c["num_key_value_heads"], rms_norm_eps=c["rms_norm_eps"],
                     rope_theta=c["rope_theta"], tie_word_embeddings=c["tie_word_embeddings"],
                     max_position_embeddings=4096, attention_bias=False, mlp_bias=False,
                     bos_token_id=None, eos_token_id=None, pad_token_id=None, attn_implementation=a.attn)
    try:  # transformers 5 keeps rope_theta under rope_parameters
        hc.rope_parameters = {"rope_type": "default", "rope_theta": c["rope_theta"]}
    except Exception:
        pass
    torch.set_default_dtype(torch.float32)
    hf = LlamaForCausalLM(hc)
    sd = {("model." + k if not k.startswith("lm_head") else k): v for k, v in ours.state_dict().items()}
    missing, unexpected = hf.load_state_dict(sd, strict=False)
    assert not unexpected and all(k == "lm_head.weight" and c["tie_word_embeddings"] for k in missing), (missing, unexpected)
    ours = ours.to(dev, dt).eval()
    hf = hf.to(dev, dt).eval()
    if c["tie_word_embeddings"]:
        assert hf.lm_head.weight.data_ptr() == hf.model.embed_tokens.weight.data_ptr()
    rp = getattr(hf.config, "rope_parameters", None)
    res = dict(hf_rope=str(rp or getattr(hf.config, "rope_theta", None)), hf_attn=hf.config._attn_implementation, config=a.config, dtype=a.dtype, attn=a.attn, device=str(dev),
               device_name=torch.cuda.get_device_name(dev) if dev.type == "cuda" else lb.cpu_model(),
               torch=torch.__version__, transformers=transformers.__version__)
    g = torch.Generator().manual_seed(1)
    p = plan["prompt_len"]
    nt = plan["new_tokens"]
    with torch.inference_mode():
        ids = torch.randint(0, c["vocab_size"], (2, p), generator=g).to(dev)
        lo, lh = ours(ids).float(), hf(input_ids=ids).logits.float()
        res["logits_max_abs_diff"] = float((lo - lh).abs().max())
        res["logits_max_abs"] = float(lh.abs().max())
        prompt = ids[:1]
        gen = {}
        for impl in ("dynamic", "static"):
            out = hf.generate(prompt, max_new_tokens=nt, do_sample=False, min_new_tokens=nt,
                              cache_implementation=impl if impl == "static" else None, pad_token_id=0)
            gen[impl] = out[:, p:]
        for kind in ("static", "static_sliced", "dynamic"):
            _, _, mine = lb.generate_cached(ours, prompt, nt, kind, dev)
            for impl in gen:
                res[f"greedy agreement ours {kind} vs hf {impl}"] = round((mine == gen[impl]).float().mean().item(), 4)
                # first position where they differ (-1 if none)
                d = (mine != gen[impl]).nonzero()
                res[f"greedy first divergence ours {kind} vs hf {impl}"] = int(d[0, 1]) if len(d) else -1
        print(json.dumps(res, indent=1), flush=True)
        if a.no_timing:
            return

        def timed(fn, runs):
            ts = []
            for i in range(runs + 1):
                lb.sync(dev); t0 = time.perf_counter(); fn(); lb.sync(dev)
                if i:
                    ts.append(time.perf_counter() - t0)
            return statistics.median(ts)

        hft = {}
        for b in plan["prefill_batches"]:
            x = torch.randint(0, c["vocab_size"], (b, p), generator=g).to(dev)
            hft[f"hf prefill B{b} tokens/s"] = round(b * p / timed(lambda: hf(input_ids=x), a.runs), 1)
            hft[f"ours prefill B{b} tokens/s"] = round(b * p / timed(lambda: ours(x), a.runs), 1)
        for b in plan["decode_batches"]:
            x = torch.randint(0, c["vocab_size"], (b, p), generator=g).to(dev)
            for impl in ("dynamic", "static"):
                t = timed(lambda: hf.generate(x, max_new_tokens=nt, min_new_tokens=nt, do_sample=False, pad_token_id=0,
                                              cache_implementation=impl if impl == "static" else None), a.runs)
                hft[f"hf generate {impl} B{b} tokens/s"] = round(b * nt / t, 1)
            for kind in ("static", "dynamic"):
                t = timed(lambda: lb.generate_cached(ours, x, nt, kind, dev), a.runs)
                hft[f"ours generate {kind} B{b} tokens/s"] = round(b * nt / t, 1)
        res["timing (generate = prefill + 128 tokens, end to end)"] = hft
    js = json.dumps(res, indent=1)
    print(js)
    if a.out:
        open(a.out, "w").write(js + "\n")


if __name__ == "__main__":
    main()
