# Generates testdata/kstwo.json: reference values of scipy.stats.kstwo.sf and
# scipy.special.smirnov (run from testdata/ with Debian's python3-scipy 1.10.1).
import json, numpy as np, scipy
from scipy.stats import kstwo
from scipy.special import smirnov
cases = []
ns = [1, 2, 3, 5, 10, 20, 50, 100, 140, 141, 200, 500, 1000, 5000, 20000, 200000]
xs = [0.001, 0.01, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.45, 0.5, 0.6, 0.75, 0.9, 0.99]
for n in ns:
    for x in xs + [0.5/n + 1e-4, 1.0/n, 0.9/n, 1 - 1.0/n, 1 - 0.5/n]:
        if not (0 < x < 1):
            continue
        cases.append({"n": n, "x": x, "sf": float(kstwo.sf(x, n))})
smir = []
for n in [2, 3, 5, 10, 50, 100, 200, 1000, 5000]:
    for x in [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0/n, 1 - 1.0/n]:
        smir.append({"n": n, "x": x, "sf": float(smirnov(n, x))})
json.dump({"scipy": scipy.__version__, "kstwo_sf": cases, "smirnov": smir}, open("kstwo.json", "w"))
print(len(cases), len(smir))
