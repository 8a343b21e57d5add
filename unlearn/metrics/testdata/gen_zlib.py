# Generates testdata/zlib_len.json: len(zlib.compress(data)) (CPython, zlib 1.2.13) for
# the Go test of ZlibLen. Short texts are stored as they are; long inputs
# are described by a generator the Go test repeats:
#   x_{i+1} = (1664525*x_i + 1013904223) mod 2^32, x_0 = seed,
#   "bytes": byte i = (x_{i+1} >> 24) % alphabet (+ offset)
#   "words": word i = vocab[(x_{i+1} >> 16) % len(vocab)], joined by spaces,
#            until at least n bytes, then cut to n bytes.
import json, re, zlib

src = open("/usr/share/common-licenses/GPL-3").read()
sents = [s.strip().replace("\n", " ") for s in re.split(r"(?<=[.!?])\s+", src) if s.strip()]
texts = ["", "a", "aa", "aaa", "abcabcabc", "The author's full name is Hsiao Yun-Hwa.",
         "Ünïcödé ✓ 中文 текст " * 7, "a" * 259, "a" * 1000]
texts += sents[:80:2]
texts += [" ".join(sents[i:i + 6]) for i in range(0, 240, 30)]

VOCAB = ["the", "author", "novel", "was", "born", "in", "1975", "and", "her", "father",
         "a", "renowned", "chef", "while", "mother", "worked", "as", "an", "astronaut",
         "writes", "books", "about", "fictional", "worlds", "of", "light", "sound", "."]

def lcg(seed):
    x = seed
    while True:
        x = (1664525 * x + 1013904223) % 2**32
        yield x

def generate(g):
    it = lcg(g["seed"])
    if g["kind"] == "bytes":
        return bytes(((next(it) >> 24) % g["alphabet"]) + g["offset"] for _ in range(g["n"]))
    out, size = [], 0
    while size < g["n"]:
        w = VOCAB[(next(it) >> 16) % len(VOCAB)]
        out.append(w)
        size += len(w) + 1
    return " ".join(out).encode()[: g["n"]]

gens = [
    {"kind": "bytes", "n": 300, "seed": 1, "alphabet": 256, "offset": 0},    # stored block
    {"kind": "bytes", "n": 5000, "seed": 2, "alphabet": 256, "offset": 0},
    {"kind": "bytes", "n": 70000, "seed": 3, "alphabet": 256, "offset": 0},  # slides, stored
    {"kind": "bytes", "n": 200, "seed": 4, "alphabet": 2, "offset": 97},
    {"kind": "bytes", "n": 100000, "seed": 5, "alphabet": 2, "offset": 97},  # many blocks
    {"kind": "bytes", "n": 50000, "seed": 6, "alphabet": 20, "offset": 60},
    {"kind": "words", "n": 500, "seed": 7},
    {"kind": "words", "n": 8000, "seed": 8},
    {"kind": "words", "n": 65536, "seed": 9},
    {"kind": "words", "n": 400000, "seed": 10},
]
cases = [{"text": t, "len": len(zlib.compress(t.encode("utf-8")))} for t in texts]
for g in gens:
    g = dict(g)
    g["len"] = len(zlib.compress(generate(g)))
    cases.append(g)
json.dump({"zlib": zlib.ZLIB_RUNTIME_VERSION, "cases": cases}, open("zlib_len.json", "w"), ensure_ascii=False, indent=0)
print(len(cases))
