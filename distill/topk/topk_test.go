package topk

import (
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/parquet-go/parquet-go"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/internal/backend"
	"github.com/lethe-ml/lethe/models"
)

const vocab = 64

func testBackend(t testing.TB) compute.Backend {
	t.Helper()
	spec := os.Getenv("LETHE_TEST_BACKEND")
	if spec == "" {
		spec = "go:ops_sequential"
	}
	b, _, err := backend.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tinyTeacher is a random 2-layer Llama with a 64-token vocabulary. Its
// LM head is scaled up so that its next-token distributions are far from
// uniform (log-probs spread over a few nats).
func tinyTeacher(t testing.TB) *models.Model {
	t.Helper()
	cfg, err := models.ParseConfig([]byte(`{"model_type": "llama", "vocab_size": 64, "hidden_size": 16,
		"intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
		"max_position_embeddings": 64}`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.New(cfg, models.LoadOptions{}, 7)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := m.Param("lm_head.weight")
	val, err := v.Value()
	if err != nil {
		t.Fatal(err)
	}
	var w []float32
	val.MustConstFlatData(func(f any) { w = slices.Clone(f.([]float32)) })
	for i := range w {
		w[i] *= 50
	}
	v.MustSetValue(tensors.FromFlatDataAndDimensions(w, val.Shape().Dimensions...))
	return m
}

// examples returns n random token sequences of 3 to 12 tokens.
func examples(n int, seed uint64) []data.Sample {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]data.Sample, n)
	for i := range out {
		T := 3 + rng.IntN(10)
		s := data.Sample{IDs: make([]int32, T), Labels: make([]int32, T)}
		for j := range T {
			s.IDs[j] = int32(rng.IntN(vocab))
			s.Labels[j] = s.IDs[j]
		}
		s.Labels[0] = data.IgnoreIndex
		out[i] = s
	}
	return out
}

func mustBatch(t testing.TB, rows [][]data.Sample, size, length int) *data.Batch {
	t.Helper()
	b, err := data.NewBatch(rows, size, length, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testBatches lays out 7 examples as the cache sees them: a bucketed batch
// of one example per row (with an empty last row) and a packed batch of
// two rows. The file's rows follow exs in order.
func testBatches(t testing.TB) ([]data.Sample, []*data.Batch) {
	exs := examples(7, 3)
	b1 := mustBatch(t, [][]data.Sample{{exs[0]}, {exs[1]}, {exs[2]}}, 4, 16)
	b2 := mustBatch(t, [][]data.Sample{{exs[3], exs[4]}, {exs[5], exs[6]}}, 2, 26)
	return exs, []*data.Batch{b1, b2}
}

// reference runs the teacher on each example alone and returns its
// log-softmax [T][V] in float64, computed on the host.
func reference(t testing.TB, m *models.Model, b compute.Backend, exs []data.Sample) [][][]float64 {
	t.Helper()
	exec, err := model.NewExec(b, m.Store, func(_ *model.Scope, ids *graph.Node) *graph.Node {
		return m.Forward(models.Inputs{IDs: ids}, models.Options{}).Logits
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	out := make([][][]float64, len(exs))
	for i, ex := range exs {
		T := len(ex.IDs)
		res, err := exec.Call(tensors.FromFlatDataAndDimensions(ex.IDs, 1, T))
		if err != nil {
			t.Fatal(err)
		}
		var logits []float32
		res[0].MustConstFlatData(func(f any) { logits = slices.Clone(f.([]float32)) })
		out[i] = make([][]float64, T)
		for p := range T {
			row := logits[p*vocab : (p+1)*vocab]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = max(mx, float64(v))
			}
			z := 0.0
			for _, v := range row {
				z += math.Exp(float64(v) - mx)
			}
			out[i][p] = make([]float64, vocab)
			for j, v := range row {
				out[i][p][j] = float64(v) - mx - math.Log(z)
			}
		}
	}
	return out
}

// writeCache writes the test batches' cache with k tokens and opens it.
func writeCache(t testing.TB, m *models.Model, b compute.Backend, k int, onDevice bool) *Cache {
	t.Helper()
	_, batches := testBatches(t)
	path := filepath.Join(t.TempDir(), "teacher.parquet")
	var progress strings.Builder
	if err := write(context.Background(), path, m, b, Slice(batches...), k, &progress, onDevice); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "7 examples") {
		t.Errorf("progress %q does not report the 7 examples", progress.String())
	}
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestFullVocabulary: with k = V the cache holds the whole log-softmax of
// every position of every example (packed or not), sorted, and equal to
// the teacher's own run on the example alone.
func TestFullVocabulary(t *testing.T) {
	b := testBackend(t)
	m := tinyTeacher(t)
	exs, _ := testBatches(t)
	ref := reference(t, m, b, exs)
	c := writeCache(t, m, b, vocab, false)
	if c.K() != vocab || c.Vocab() != vocab || c.Len() != len(exs) {
		t.Fatalf("K %d, Vocab %d, Len %d; want %d, %d, %d", c.K(), c.Vocab(), c.Len(), vocab, vocab, len(exs))
	}
	if _, typ := c.Teacher(); typ != "llama" {
		t.Errorf("teacher model_type %q, want llama", typ)
	}
	spread := 0.0
	for r, ex := range exs {
		if got := c.InputIDs(r); !slices.Equal(got, ex.IDs) {
			t.Fatalf("row %d: input_ids %v, want %v", r, got, ex.IDs)
		}
		ids, lps, err := c.Example(r)
		if err != nil {
			t.Fatal(err)
		}
		T := len(ex.IDs)
		if len(ids) != T*vocab || len(lps) != T*vocab {
			t.Fatalf("row %d: %d ids and %d log-probs, want %d", r, len(ids), len(lps), T*vocab)
		}
		for p := range T {
			pi, pl := ids[p*vocab:(p+1)*vocab], lps[p*vocab:(p+1)*vocab]
			sum := 0.0
			seen := make([]bool, vocab)
			for q := range vocab {
				if seen[pi[q]] {
					t.Fatalf("row %d position %d: id %d twice", r, p, pi[q])
				}
				seen[pi[q]] = true
				if d := math.Abs(float64(pl[q]) - ref[r][p][pi[q]]); d > 1e-5 {
					t.Errorf("row %d position %d id %d: cached %.7f, teacher %.7f", r, p, pi[q], pl[q], ref[r][p][pi[q]])
				}
				if q > 0 && pl[q] > pl[q-1] {
					t.Errorf("row %d position %d: not sorted: %g after %g", r, p, pl[q], pl[q-1])
				}
				sum += math.Exp(float64(pl[q]))
			}
			if math.Abs(sum-1) > 1e-5 {
				t.Errorf("row %d position %d: probabilities sum to %.7f", r, p, sum)
			}
			spread = max(spread, float64(pl[0]-pl[vocab-1]))
		}
	}
	if spread < 1 {
		t.Errorf("the teacher's log-probs span only %.3f nats: the test distributions are too flat", spread)
	}
}

// TestTopK: with k < V the cached values are the k largest of the
// teacher's log-softmax, with their ids, whether selected on the host or
// by graph.TopK; both give the same file contents.
func TestTopK(t *testing.T) {
	b := testBackend(t)
	m := tinyTeacher(t)
	exs, _ := testBatches(t)
	ref := reference(t, m, b, exs)
	const k = 5
	var results [2][][]int32
	for i, onDevice := range []bool{false, true} {
		t.Run("device="+strconv.FormatBool(onDevice), func(t *testing.T) {
			c := writeCache(t, m, b, k, onDevice)
			for r := range exs {
				ids, lps, err := c.Example(r)
				if err != nil {
					t.Fatal(err)
				}
				results[i] = append(results[i], ids)
				for p := range ref[r] {
					want := slices.Clone(ref[r][p])
					sort.Sort(sort.Reverse(sort.Float64Slice(want)))
					for q := range k {
						id, lp := ids[p*k+q], float64(lps[p*k+q])
						if math.Abs(lp-want[q]) > 1e-5 || math.Abs(ref[r][p][id]-lp) > 1e-5 {
							t.Errorf("row %d position %d rank %d: id %d log-prob %.7f; want the value %.7f (the teacher gives id %d %.7f)",
								r, p, q, id, lp, want[q], id, ref[r][p][id])
						}
					}
				}
			}
		})
	}
	for r := range results[0] {
		if !slices.Equal(results[0][r], results[1][r]) {
			t.Errorf("row %d: host selection %v, graph.TopK %v", r, results[0][r], results[1][r])
		}
	}
}

// TestSelector checks the host selection against a full sort, ties
// included (smaller id first), for every k.
func TestSelector(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	v := make([]float32, 40)
	for i := range v {
		v[i] = float32(rng.IntN(8)) // many ties
	}
	order := make([]int32, len(v))
	for i := range order {
		order[i] = int32(i)
	}
	sort.SliceStable(order, func(a, b int) bool { return v[order[a]] > v[order[b]] })
	var s selector
	for k := 1; k <= len(v); k++ {
		ids, vals := make([]int32, k), make([]float32, k)
		if !s.top(v, ids, vals) {
			t.Fatal("NaN reported")
		}
		if !slices.Equal(ids, order[:k]) {
			t.Fatalf("k=%d: %v, want %v", k, ids, order[:k])
		}
	}
	v[3] = float32(math.NaN())
	if s.top(v, make([]int32, 3), make([]float32, 3)) {
		t.Error("NaN not reported")
	}
}

// TestBatchRoundTrip: the cached targets come back for batches that
// reorder, pad to a longer length and pack the examples, by row index
// (Batch + Verify) and by content (ForBatch).
func TestBatchRoundTrip(t *testing.T) {
	b := testBackend(t)
	m := tinyTeacher(t)
	exs, _ := testBatches(t)
	const k = 4
	// A row group per batch, and no memory to keep one but the last used.
	defer func(n int64) { rowGroupBytes = n }(rowGroupBytes)
	rowGroupBytes = 1
	c := writeCache(t, m, b, k, false)
	if n := len(c.pf.RowGroups()); n != 2 {
		t.Fatalf("%d row groups, want 2", n)
	}
	c.SetMemory(0)
	check := func(name string, tg *Targets, row, start, ex int) {
		t.Helper()
		ids, lps, err := c.Example(ex)
		if err != nil {
			t.Fatal(err)
		}
		at := (row*tg.Length + start) * k
		if !slices.Equal(tg.IDs[at:at+len(ids)], ids) || !slices.Equal(tg.LogProbs[at:at+len(lps)], lps) {
			t.Errorf("%s: batch row %d from %d: targets differ from example %d", name, row, start, ex)
		}
	}
	padding := func(name string, tg *Targets, row, from, to int) {
		t.Helper()
		for q := (row*tg.Length + from) * k; q < (row*tg.Length+to)*k; q++ {
			if tg.IDs[q] != 0 || tg.LogProbs[q] != PadLogProb {
				t.Fatalf("%s: batch row %d: padding value %d: id %d log-prob %g", name, row, q, tg.IDs[q], tg.LogProbs[q])
			}
		}
	}

	// By row index: examples 5, 0, 3 padded to 20, and an empty row.
	rows := []int{5, 0, 3, -1}
	const length = 20
	batch := mustBatch(t, [][]data.Sample{{exs[5]}, {exs[0]}, {exs[3]}}, 4, length)
	if err := c.Verify(rows, batch); err != nil {
		t.Fatal(err)
	}
	tg, err := c.Batch(rows, length)
	if err != nil {
		t.Fatal(err)
	}
	if tg.Size != 4 || tg.Length != length || tg.K != k || len(tg.IDs) != 4*length*k {
		t.Fatalf("targets [%d, %d, %d] with %d ids", tg.Size, tg.Length, tg.K, len(tg.IDs))
	}
	for i, r := range rows {
		T := 0
		if r >= 0 {
			check("Batch", tg, i, 0, r)
			T = len(exs[r].IDs)
		}
		padding("Batch", tg, i, T, length)
	}
	ids, lps := tg.Tensors()
	if !slices.Equal(ids.Shape().Dimensions, []int{4, length, k}) || !slices.Equal(lps.Shape().Dimensions, []int{4, length, k}) {
		t.Errorf("tensors %s and %s", ids.Shape(), lps.Shape())
	}
	byContent, err := c.ForBatch(batch)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(byContent.IDs, tg.IDs) || !slices.Equal(byContent.LogProbs, tg.LogProbs) {
		t.Error("ForBatch and Batch disagree on the same batch")
	}

	// By content, packed in another order and length.
	packed := mustBatch(t, [][]data.Sample{{exs[6], exs[1], exs[2]}, {exs[4]}}, 3, 40)
	tg, err = c.ForBatch(packed)
	if err != nil {
		t.Fatal(err)
	}
	start := 0
	for _, e := range []int{6, 1, 2} {
		check("ForBatch", tg, 0, start, e)
		start += len(exs[e].IDs)
	}
	padding("ForBatch", tg, 0, start, 40)
	check("ForBatch", tg, 1, 0, 4)
	padding("ForBatch", tg, 1, len(exs[4].IDs), 40)
	padding("ForBatch", tg, 2, 0, 40)
	if n := len(c.groups); n != 1 {
		t.Errorf("%d row groups in memory with no memory budget, want the last used only", n)
	}

	// A length too short for an example.
	if _, err := c.Batch([]int{0}, 2); err == nil || !strings.Contains(err.Error(), "row 0") {
		t.Errorf("Batch into length 2: error %v, want one naming row 0", err)
	}
}

// TestMismatch: a batch whose tokens are not the cached ones is an error
// naming the file, the row and input_ids.
func TestMismatch(t *testing.T) {
	b := testBackend(t)
	m := tinyTeacher(t)
	exs, _ := testBatches(t)
	c := writeCache(t, m, b, 2, false)
	changed := exs[2]
	changed.IDs = slices.Clone(changed.IDs)
	changed.IDs[1] = (changed.IDs[1] + 1) % vocab
	batch := mustBatch(t, [][]data.Sample{{exs[0]}, {changed}}, 2, 16)
	base := filepath.Base(c.Path())
	err := c.Verify([]int{0, 2}, batch)
	if err == nil || !strings.Contains(err.Error(), base) || !strings.Contains(err.Error(), "row 2") ||
		!strings.Contains(err.Error(), "input_ids") || !strings.Contains(err.Error(), "token 1") {
		t.Errorf("Verify: %v", err)
	}
	longer := mustBatch(t, [][]data.Sample{{exs[0], exs[1]}}, 1, 32)
	if err := c.Verify([]int{0}, longer); err == nil || !strings.Contains(err.Error(), "row 0") {
		t.Errorf("Verify of a row with more tokens: %v", err)
	}
	_, err = c.ForBatch(batch)
	if err == nil || !strings.Contains(err.Error(), base) || !strings.Contains(err.Error(), "batch row 1") || !strings.Contains(err.Error(), "input_ids") {
		t.Errorf("ForBatch: %v", err)
	}
}

// writeRaw writes rows of any type with footer metadata.
func writeRaw[T any](t testing.TB, path string, rows []T, meta map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var opts []parquet.WriterOption
	for k, v := range meta {
		opts = append(opts, parquet.KeyValueMetadata(k, v))
	}
	w := parquet.NewGenericWriter[T](f, opts...)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func goodMeta(k int) map[string]string {
	return map[string]string{MetaFormatVersion: "1", MetaK: strconv.Itoa(k), MetaVocabSize: "64", MetaTemperature: "1"}
}

func rawRows(k int) []row {
	var out []row
	for _, T := range []int{3, 5} {
		r := row{InputIDs: make([]int32, T), Labels: make([]int32, T), TopKIDs: make([]int32, T*k), TopKLogProbs: make([]float32, T*k)}
		for q := range r.TopKLogProbs {
			r.TopKIDs[q] = int32(q % k)
			r.TopKLogProbs[q] = -float32(q%k + 1)
		}
		out = append(out, r)
	}
	return out
}

// TestCorrupt: every malformed file is an error naming the file and the
// field at fault; the row when the fault is a row's.
func TestCorrupt(t *testing.T) {
	type noLogProbs struct {
		InputIDs []int32 `parquet:"input_ids,list"`
		TopKIDs  []int32 `parquet:"topk_ids,list"`
	}
	cases := []struct {
		name  string
		make  func(path string)
		field string
		// lazy faults show when the row is read, not at Open.
		lazy bool
	}{
		{"missing file", func(string) {}, "no such file", false},
		{"not parquet", func(p string) { os.WriteFile(p, []byte("input_ids,topk_ids\n1,2\n"), 0o644) }, "Parquet", false},
		{"truncated", func(p string) {
			writeRaw(t, p, rawRows(2), goodMeta(2))
			raw, _ := os.ReadFile(p)
			os.WriteFile(p, raw[:len(raw)-20], 0o644)
		}, "Parquet", false},
		{"missing column", func(p string) {
			writeRaw(t, p, []noLogProbs{{InputIDs: []int32{1}, TopKIDs: []int32{1}}}, goodMeta(1))
		}, "topk_logprobs", false},
		{"missing k", func(p string) {
			meta := goodMeta(2)
			delete(meta, MetaK)
			writeRaw(t, p, rawRows(2), meta)
		}, MetaK, false},
		{"bad version", func(p string) {
			meta := goodMeta(2)
			meta[MetaFormatVersion] = "9"
			writeRaw(t, p, rawRows(2), meta)
		}, MetaFormatVersion, false},
		{"temperature", func(p string) {
			meta := goodMeta(2)
			meta[MetaTemperature] = "2"
			writeRaw(t, p, rawRows(2), meta)
		}, MetaTemperature, false},
		{"k above vocab", func(p string) {
			meta := goodMeta(2)
			meta[MetaVocabSize] = "1"
			writeRaw(t, p, rawRows(2), meta)
		}, MetaK, false},
		{"wrong k in metadata", func(p string) { writeRaw(t, p, rawRows(2), goodMeta(3)) }, "row 0: column topk_ids", false},
		{"row lengths", func(p string) {
			rows := rawRows(2)
			rows[0].TopKLogProbs = append(rows[0].TopKLogProbs, -1) // 7 and 9 instead of 6 and 10: same total
			rows[1].TopKLogProbs = rows[1].TopKLogProbs[:9]
			writeRaw(t, p, rows, goodMeta(2))
		}, "row 0: column topk_logprobs", true},
		{"id outside vocab", func(p string) {
			rows := rawRows(2)
			rows[1].TopKIDs[4] = 64
			writeRaw(t, p, rows, goodMeta(2))
		}, "row 1: column topk_ids", true},
		{"NaN log-prob", func(p string) {
			rows := rawRows(2)
			rows[1].TopKLogProbs[2] = float32(math.NaN())
			writeRaw(t, p, rows, goodMeta(2))
		}, "row 1: column topk_logprobs", true},
		{"token outside vocab", func(p string) {
			rows := rawRows(2)
			rows[1].InputIDs[0] = 99
			writeRaw(t, p, rows, goodMeta(2))
		}, "row 1: column input_ids", false},
		{"empty example", func(p string) {
			rows := rawRows(2)
			rows[1] = row{InputIDs: []int32{}, Labels: []int32{}, TopKIDs: []int32{}, TopKLogProbs: []float32{}}
			writeRaw(t, p, rows, goodMeta(2))
		}, "row 1: column input_ids", false},
		{"examples count", func(p string) {
			meta := goodMeta(2)
			meta[MetaExamples] = "5"
			writeRaw(t, p, rawRows(2), meta)
		}, MetaExamples, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cache-"+strings.ReplaceAll(tc.name, " ", "-")+".parquet")
			tc.make(path)
			c, err := Open(path)
			if tc.lazy {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer c.Close()
				_, err = c.Batch([]int{0, 1}, 8)
			} else if err == nil {
				c.Close()
				t.Fatal("no error")
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s and %q", err, path, tc.field)
			}
		})
	}
	// The good raw file opens and reads.
	path := filepath.Join(t.TempDir(), "good.parquet")
	writeRaw(t, path, rawRows(2), goodMeta(2))
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Batch([]int{1, 0}, 5); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrent reads a file of many row groups from several goroutines
// with a memory budget that keeps evicting (run it with -race).
func TestConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "groups.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var opts []parquet.WriterOption
	for k, v := range goodMeta(2) {
		opts = append(opts, parquet.KeyValueMetadata(k, v))
	}
	w := parquet.NewGenericWriter[row](f, append(opts, parquet.MaxRowsPerRowGroup(3))...)
	var rows []row
	for i := range 20 {
		r := rawRows(2)[i%2]
		r.InputIDs = slices.Clone(r.InputIDs)
		r.InputIDs[0] = int32(i)
		r.TopKIDs = slices.Clone(r.TopKIDs)
		r.TopKIDs[0] = int32(i)
		rows = append(rows, r)
	}
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n := len(c.pf.RowGroups()); n != 7 {
		t.Fatalf("%d row groups, want 7", n)
	}
	c.SetMemory(100)
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			for i := range 200 {
				r := (i*7 + g) % 20
				ids, _, err := c.Example(r)
				if err == nil && ids[0] != int32(r) {
					err = errors.New("wrong row")
				}
				if found, ok := c.Find(rows[r].InputIDs); err == nil && (!ok || found != r) {
					err = errors.New("Find: wrong row")
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// cancelAfter cancels its context when the batch after the first n is asked for.
type cancelAfter struct {
	Batches
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Next(ctx context.Context) (*data.Batch, error) {
	if c.n == 0 {
		c.cancel()
	}
	c.n--
	return c.Batches.Next(ctx)
}

// TestAtomic: a cancelled or failed Write leaves the destination as it was
// (absent, or its old version) and no temporary file; k is checked.
func TestAtomic(t *testing.T) {
	b := testBackend(t)
	m := tinyTeacher(t)
	_, batches := testBatches(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "teacher.parquet")
	entries := func() []string {
		des, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, d := range des {
			names = append(names, d.Name())
		}
		return names
	}

	ctx, cancel := context.WithCancel(context.Background())
	err := Write(ctx, path, m, b, &cancelAfter{Slice(batches...), 1, cancel}, 3, io.Discard)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), path) {
		t.Fatalf("cancelled write: %v", err)
	}
	if names := entries(); len(names) != 0 {
		t.Errorf("a cancelled write left %v", names)
	}

	// An old version survives a cancelled rewrite.
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := Write(ctx, path, m, b, Slice(batches...), 3, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled write: %v", err)
	}
	if raw, _ := os.ReadFile(path); string(raw) != "old" || len(entries()) != 1 {
		t.Errorf("after a cancelled rewrite: %q, files %v", raw, entries())
	}
	os.Remove(path)

	for _, k := range []int{0, -1, vocab + 1} {
		err := Write(context.Background(), path, m, b, Slice(batches...), k, nil)
		if err == nil || !strings.Contains(err.Error(), "k = "+strconv.Itoa(k)) || !strings.Contains(err.Error(), "64") {
			t.Errorf("k=%d: %v", k, err)
		}
	}
	if err := Write(context.Background(), path, m, b, Slice(), 3, nil); err == nil || !strings.Contains(err.Error(), "no example") {
		t.Errorf("no batches: %v", err)
	}
	bad := mustBatch(t, [][]data.Sample{{{IDs: []int32{1, 99}, Labels: []int32{-100, 99}}}}, 1, 4)
	if err := Write(context.Background(), path, m, b, Slice(bad), 3, nil); err == nil || !strings.Contains(err.Error(), "token id 99") {
		t.Errorf("token outside the vocabulary: %v", err)
	}
	if names := entries(); len(names) != 0 {
		t.Errorf("failed writes left %v", names)
	}
}
