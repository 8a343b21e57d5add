"""Writes torch_casts.safetensors: float conversions as PyTorch does them.

Run with a Python that has torch (checked with Debian's python3-torch 1.13.1):

    /usr/bin/python3 gen_torch_casts.py

Tensors (1-D, same length within a group):
  f32        F32  inputs: random bit patterns, values around F16/BF16 rounding
                  ties, F16 subnormals, the F16/BF16 overflow boundaries.
  f32_f16    F16  torch: f32.to(torch.float16)
  f32_bf16   BF16 torch: f32.to(torch.bfloat16)
  f64        F64  inputs: random doubles over many magnitudes, ties of F32,
                  values past float32's range.
  f64_f32    F32  torch: f64.to(torch.float32)
  f64_f16    F16  torch: f64.to(torch.float16)
  f64_bf16   BF16 torch: f64.to(torch.bfloat16)
NaN inputs are left out: torch's vectorised CPU kernel writes BF16 NaN as
0xFFFF and its scalar path as 0x7FC0, so NaN is tested by hand in Go.

The file is written by hand (json + struct) because the safetensors package
is not installed here; the layout follows the format (header padded to 8).
"""

import json
import math
import random
import struct

import torch

random.seed(20240611)


def f32(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def is_nan32(bits):
    return (bits & 0x7F800000) == 0x7F800000 and (bits & 0x7FFFFF) != 0


inputs = []
# Random bit patterns (no NaN).
while len(inputs) < 2048:
    b = random.getrandbits(32)
    if not is_nan32(b):
        inputs.append(b)
# F16 ties and their neighbours: every F16 normal value, shifted by half an
# F16 ulp (13 low mantissa bits of float32 = 0x1000), +-1 float32 ulp.
for _ in range(1024):
    e = random.randint(113, 142)  # float32 exponents of F16 normals
    m = random.getrandbits(10) << 13
    base = (random.getrandbits(1) << 31) | (e << 23) | m
    for d in (0x1000 - 1, 0x1000, 0x1000 + 1):
        inputs.append(base | d)
# F16 subnormals and underflow (float32 exponents 100..112).
for _ in range(1024):
    e = random.randint(100, 112)
    inputs.append((random.getrandbits(1) << 31) | (e << 23) | random.getrandbits(23))
# Exact F16 subnormal ties: (2k+1) * 2^-25.
for k in range(0, 1024, 7):
    inputs.append(struct.unpack("<I", struct.pack("<f", (2 * k + 1) * 2.0**-25))[0])
# BF16 ties and neighbours.
for _ in range(1024):
    hi = random.getrandbits(16)
    if (hi & 0x7F80) == 0x7F80:
        hi &= 0xBFFF
    for lo in (0x7FFF, 0x8000, 0x8001):
        inputs.append((hi << 16) | lo)
# Overflow boundaries.
for v in (65504.0, 65519.0, 65519.996, 65520.0, 65536.0, 3.0e38, 3.4028235e38):
    for s in (1.0, -1.0):
        inputs.append(struct.unpack("<I", struct.pack("<f", s * v))[0])
for b in (0x7F7FFFFF, 0x7F7F8000, 0x7F7F7FFF, 0x7F800000, 0xFF800000, 0, 0x80000000, 1, 0x80000001):
    inputs.append(b)

x32 = torch.tensor([f32(b) for b in inputs], dtype=torch.float32)
f16 = x32.to(torch.float16)
bf16 = x32.to(torch.bfloat16)

doubles = []
for _ in range(2048):
    doubles.append(random.uniform(-1, 1) * 10.0 ** random.randint(-50, 45))
for _ in range(512):
    # Float32 ties: a float32 value plus half its ulp (exactly), and neighbours.
    v = struct.unpack("<f", struct.pack("<I", random.getrandbits(31) & 0x7F7FFFFF))[0]
    if v == 0 or math.isinf(v):
        continue
    ulp = math.ldexp(1.0, math.frexp(v)[1] - 24)
    for d in (0.5 * ulp, 0.5 * ulp * (1 + 2.0**-30), 0.5 * ulp * (1 - 2.0**-30)):
        doubles.append(v + d)
for v in (3.4028235677973366e38, 3.4028235e38 * (1 + 2.0**-25), 3.402823669209385e38, 1e39, 1e-46, 7e-46, 1.401298464324817e-45):
    doubles.extend([v, -v])
x64 = torch.tensor(doubles, dtype=torch.float64)


def raw(t):
    return t.contiguous().numpy().tobytes() if t.dtype not in (torch.bfloat16,) else t.view(torch.int16).numpy().tobytes()


tensors = {
    "f32": ("F32", x32),
    "f32_f16": ("F16", f16),
    "f32_bf16": ("BF16", bf16),
    "f64": ("F64", x64),
    "f64_f32": ("F32", x64.to(torch.float32)),
    "f64_f16": ("F16", x64.to(torch.float16)),
    "f64_bf16": ("BF16", x64.to(torch.bfloat16)),
}
rank = {"F64": 19, "F32": 17, "BF16": 14, "F16": 13}
order = sorted(tensors, key=lambda n: (-rank[tensors[n][0]], n))
header, blobs, off = {}, [], 0
for n in order:
    dt, t = tensors[n]
    b = raw(t)
    header[n] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open("torch_casts.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)))
    f.write(h)
    for b in blobs:
        f.write(b)
print(len(inputs), len(doubles), off)
