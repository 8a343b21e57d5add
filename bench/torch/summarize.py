#!/usr/bin/env python3
"""Markdown table of llama_bench.py results: one column per JSON file given (default: runs/*.json).
With --agg: one column per environment profile, each cell the median over its runs [min-max].
    python3 bench/torch/summarize.py [--agg] [files...]"""
import glob, json, os, re, statistics, sys

agg = "--agg" in sys.argv
args = [x for x in sys.argv[1:] if x != "--agg"]
files = args or sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs", "*.json")))
runs = [(os.path.basename(f), json.load(open(f))) for f in files]
rows = {}


def put(key, i, v):
    rows.setdefault(key, [""] * len(runs))[i] = v


for i, (name, r) in enumerate(runs):
    ep = r.get("env_profile", {})
    put("env (OMP_WAIT_POLICY / malloc)", i, f"{ep.get('omp_wait_policy', '?')} / {ep.get('malloc', '?')}")
    put("load avg start → end (1 min)", i, f"{r['loadavg_start'][0]} → {r['loadavg_end'][0]}")
    if r.get("loadavg_1min_every_5s"):
        put("load avg during run: max", i, f"{max(r['loadavg_1min_every_5s'])}")
    if "matmul_probe_gflops_start" in r:
        put("matmul probe GFLOP/s start / end", i, f"{r['matmul_probe_gflops_start']:.0f} / {r['matmul_probe_gflops_end']:.0f}")
    for p in r["prefill"]:
        put(f"prefill B={p['batch']}×{p['prompt_len']} tok/s (spread %)", i, f"{p['tokens_per_s']:.0f} ({p['spread_pct']:.0f})")
    for kind, lst in r["decode"].items():
        for d in lst:
            put(f"decode {kind} B={d['batch']} tok/s (ms/step)", i, f"{d['decode']['tokens_per_s']:.0f} ({d['decode']['ms_per_step']:.2f})")
    for kind, lst in r["decode"].items():
        for d in lst:
            put(f"generate {kind} B={d['batch']} tok/s (prefill+{d['new_tokens']})", i, f"{d['generate']['tokens_per_s']:.0f}")
    if "decode_nocache" in r:
        n = r["decode_nocache"]
        put(f"decode no cache B={n['batch']} {n['prompt_len']}→{n['final_len']} tok/s", i, f"{n['tokens_per_s']:.1f}")
if agg:
    groups = {}
    for j, (name, r) in enumerate(runs):
        groups.setdefault(rows["env (OMP_WAIT_POLICY / malloc)"][j], []).append(j)
    print("| | " + " | ".join(f"{g} ({len(ix)} runs)" for g, ix in groups.items()) + " |")
    print("|---" * (len(groups) + 1) + "|")
    for k, v in rows.items():
        if k.startswith("env") or k.startswith("load") or k.startswith("matmul"):
            continue
        cells = []
        for g, ix in groups.items():
            xs = [float(re.match(r"[0-9.]+", v[j]).group()) for j in ix if v[j]]
            cells.append(f"**{statistics.median(xs):.0f}** [{min(xs):.0f}–{max(xs):.0f}]" if xs else "")
        print(f"| {k.split(' (')[0] if 'spread' in k or 'ms/step' in k else k} | " + " | ".join(cells) + " |")
    sys.exit(0)
print("| | " + " | ".join(n.replace(".json", "") for n, _ in runs) + " |")
print("|---" * (len(runs) + 1) + "|")
for k, v in rows.items():
    print(f"| {k} | " + " | ".join(v) + " |")
