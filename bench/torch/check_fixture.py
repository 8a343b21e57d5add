#!/usr/bin/python3
"""Checks llama_bench.py's plain-torch Llama against transformers' own outputs for the tiny llama
checkpoint in /work/shared/fixtures/hf/llama (logits of a [2,12] batch and 10 greedy tokens with every
cache kind). Needs no safetensors package: the format is read directly.

    /usr/bin/python3 bench/torch/check_fixture.py [fixture dir]
"""
import json, os, struct, sys
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_bench as lb

DT = {"F32": torch.float32, "I64": torch.int64, "BF16": torch.bfloat16, "F16": torch.float16}


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base, out = 8 + n, {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        buf = bytearray(data[base + a:base + b])
        out[k] = torch.frombuffer(buf, dtype=DT[v["dtype"]]).reshape(v["shape"]) if b > a else \
            torch.zeros(v["shape"], dtype=DT[v["dtype"]])
    return out


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/fixtures/hf/llama"
    cfg = json.load(open(os.path.join(d, "config.json")))
    theta = cfg.get("rope_theta") or cfg.get("rope_parameters", {}).get("rope_theta", 10000.0)
    c = dict(vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], intermediate_size=cfg["intermediate_size"],
             num_hidden_layers=cfg["num_hidden_layers"], num_attention_heads=cfg["num_attention_heads"],
             num_key_value_heads=cfg["num_key_value_heads"], rms_norm_eps=cfg["rms_norm_eps"], rope_theta=theta,
             tie_word_embeddings=cfg["tie_word_embeddings"])
    assert cfg.get("head_dim", c["hidden_size"] // c["num_attention_heads"]) == c["hidden_size"] // c["num_attention_heads"]
    m = lb.Llama(c).eval()
    w = {k[len("model."):] if k.startswith("model.") else k: v for k, v in load_safetensors(os.path.join(d, "model.safetensors")).items()}
    missing, unexpected = m.load_state_dict(w, strict=False)
    missing = [k for k in missing if not (c["tie_word_embeddings"] and k == "lm_head.weight")]
    assert not missing and not unexpected, (missing, unexpected)
    e = load_safetensors(os.path.join(d, "expected.safetensors"))
    ok = True
    with torch.inference_mode():
        diff = (m(e["input_ids"]) - e["logits"]).abs().max().item()
        print(f"logits max|diff| vs transformers: {diff:.3g}")
        ok &= diff < 1e-4
        prompt, want = e["prompt_ids"], e["greedy_ids"]
        new = want.shape[1] - prompt.shape[1]
        for kind in ("static", "static_sliced", "dynamic"):
            _, _, ids = lb.generate_cached(m, prompt, new, kind, torch.device("cpu"))
            same = torch.equal(torch.cat([prompt, ids], 1), want)
            print(f"greedy ids ({kind}) equal to transformers generate: {same}")
            ok &= same
        _, ids = lb.generate_nocache(m, prompt, new, torch.device("cpu"))
        same = torch.equal(torch.cat([prompt, ids], 1), want)
        print(f"greedy ids (no cache) equal to transformers generate: {same}")
        ok &= same
    print("OK" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
