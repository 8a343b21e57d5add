package topk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/parquet-go/parquet-go"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/models"
)

// Batches yields the batches Write runs the teacher over; *data.Iterator
// implements it.
type Batches interface {
	// Next returns the next batch, or io.EOF after the last.
	Next(ctx context.Context) (*data.Batch, error)
}

var _ Batches = (*data.Iterator)(nil)

// Slice returns the Batches of a fixed list.
func Slice(batches ...*data.Batch) Batches { return &sliceBatches{list: batches} }

type sliceBatches struct {
	list []*data.Batch
	next int
}

func (s *sliceBatches) Next(context.Context) (*data.Batch, error) {
	if s.next >= len(s.list) {
		return nil, io.EOF
	}
	s.next++
	return s.list[s.next-1], nil
}

// rowGroupBytes is about how many bytes of top-k data (ids and values) a
// row group holds: readers decode one row group at a time. A variable for
// tests.
var rowGroupBytes int64 = 32 << 20

// progressEvery is how often Write reports progress.
const progressEvery = 5 * time.Second

// Write runs teacher over every batch (inference only: no gradients, no
// dropout) and writes, for every example, the teacher's k most likely next
// tokens and their log-probabilities at every position to a cache file at
// path (see the package documentation for the format).
//
// Every segment of a batch row (data.Batch.SegmentIDs; padding rows are
// skipped) becomes one row of the file, in order, so packed and bucketed
// batches give the same file as one example at a time. The file is written
// to a temporary file in path's folder and renamed into place at the end:
// an error or a cancelled ctx leaves neither a partial file nor the
// temporary one. progress, when not nil, gets a line every few seconds and
// a last one (examples, tokens, tokens/s). k must be between 1 and the
// teacher's vocabulary size.
func Write(ctx context.Context, path string, teacher *models.Model, backend compute.Backend, batches Batches, k int, progress io.Writer) error {
	return write(ctx, path, teacher, backend, batches, k, progress, !isGoBackend(backend))
}

// isGoBackend reports whether b is the pure-Go backend, where top-k is
// selected on the host (see the package documentation).
func isGoBackend(b compute.Backend) bool {
	name := strings.ToLower(b.Name())
	return name == "go" || strings.HasPrefix(name, "go ") || strings.HasPrefix(name, "go:")
}

// write is Write with the place of the top-k selection given: onDevice runs
// graph.TopK in the teacher's graph, else the graph returns the whole
// log-softmax and selectTopK picks on the host.
func write(ctx context.Context, path string, teacher *models.Model, backend compute.Backend, batches Batches, k int, progress io.Writer, onDevice bool) (err error) {
	V := teacher.Config.VocabSize
	if k < 1 || k > V {
		return fmt.Errorf("topk: write %s: k = %d must be between 1 and the teacher's vocabulary size %d", path, k, V)
	}
	if progress == nil {
		progress = io.Discard
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("topk: write %s: %w", path, err)
	}
	exec, err := model.NewExec(backend, teacher.Store, func(_ *model.Scope, ids, mask, pos, seg *graph.Node) []*graph.Node {
		out := teacher.Forward(models.Inputs{IDs: ids, Mask: mask, Positions: pos, SegmentIDs: seg}, models.Options{})
		logits := out.Logits
		if logits.DType() != dtypes.Float32 {
			logits = graph.ConvertDType(logits, dtypes.Float32)
		}
		lp := graph.LogSoftmax(logits, -1)
		if onDevice {
			vals, idx := graph.TopK(lp, k, -1)
			return []*graph.Node{graph.ConvertDType(idx, dtypes.Int32), vals}
		}
		return []*graph.Node{lp}
	})
	if err != nil {
		return fmt.Errorf("topk: write %s: %w", path, err)
	}
	defer exec.Finalize()

	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("topk: write %s: %w", path, err)
	}
	tmp, finished := f.Name(), false
	defer func() {
		if !finished {
			f.Close()
			os.Remove(tmp)
		}
	}()
	var w *parquet.GenericWriter[row]
	err = recoverPanic(func() error {
		w = parquet.NewGenericWriter[row](f,
			parquet.Compression(&parquet.Zstd),
			parquet.KeyValueMetadata(MetaFormatVersion, strconv.Itoa(FormatVersion)),
			parquet.KeyValueMetadata(MetaK, strconv.Itoa(k)),
			parquet.KeyValueMetadata(MetaVocabSize, strconv.Itoa(V)),
			parquet.KeyValueMetadata(MetaTemperature, "1"),
			parquet.KeyValueMetadata(MetaTeacher, teacher.Dir),
			parquet.KeyValueMetadata(MetaTeacherType, teacher.Config.ModelType))
		return nil
	})
	if err != nil {
		return fmt.Errorf("topk: write %s: %w", path, err)
	}

	st := &writeState{path: path, exec: exec, k: k, vocab: V, onDevice: onDevice}
	start, lastReport := time.Now(), time.Now()
	var examples, tokens, groupBytes int64
	for nb := 0; ; nb++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("topk: write %s: %w", path, err)
		}
		b, err := batches.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("topk: write %s: batch %d: %w", path, nb, err)
		}
		rows, err := st.batch(nb, b)
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("topk: write %s: %w", path, err)
		}
		if len(rows) == 0 {
			continue
		}
		if err := recoverPanic(func() error { _, err := w.Write(rows); return err }); err != nil {
			return fmt.Errorf("topk: write %s: %w", path, err)
		}
		for _, r := range rows {
			examples++
			tokens += int64(len(r.InputIDs))
			groupBytes += int64(8 * len(r.TopKIDs))
		}
		if groupBytes >= rowGroupBytes {
			if err := recoverPanic(w.Flush); err != nil {
				return fmt.Errorf("topk: write %s: %w", path, err)
			}
			groupBytes = 0
		}
		if time.Since(lastReport) >= progressEvery {
			lastReport = time.Now()
			fmt.Fprintf(progress, "topk: %d examples, %d tokens, %.0f tokens/s\n", examples, tokens, rate(tokens, start))
		}
	}
	if examples == 0 {
		return fmt.Errorf("topk: write %s: the batches hold no example", path)
	}
	w.SetKeyValueMetadata(MetaExamples, strconv.FormatInt(examples, 10))
	w.SetKeyValueMetadata(MetaTokens, strconv.FormatInt(tokens, 10))
	err = recoverPanic(w.Close)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("topk: write %s: %w", path, err)
	}
	finished = true
	fmt.Fprintf(progress, "topk: wrote %s: %d examples, %d tokens, k=%d, %.0f tokens/s\n", path, examples, tokens, k, rate(tokens, start))
	return nil
}

func rate(tokens int64, start time.Time) float64 {
	s := time.Since(start).Seconds()
	if s <= 0 {
		return 0
	}
	return float64(tokens) / s
}

// writeState runs the teacher on batches and cuts them into rows.
type writeState struct {
	path     string
	exec     *model.Exec
	k, vocab int
	onDevice bool
	sel      selector
}

// batch runs the teacher on batch number nb and returns its examples as rows.
func (s *writeState) batch(nb int, b *data.Batch) ([]row, error) {
	if b == nil {
		return nil, fmt.Errorf("topk: write %s: batch %d is nil", s.path, nb)
	}
	B, L, K, V := b.Size, b.Length, s.k, s.vocab
	n := B * L
	fail := func(format string, args ...any) error {
		return fmt.Errorf("topk: write %s: batch %d: %s", s.path, nb, fmt.Sprintf(format, args...))
	}
	if B <= 0 || L <= 0 {
		return nil, fail("shape [%d, %d] is empty", B, L)
	}
	for _, c := range []struct {
		name     string
		v        []int32
		optional bool
	}{{"input_ids", b.InputIDs, false}, {"attention_mask", b.AttentionMask, false},
		{"labels", b.Labels, true}, {"position_ids", b.PositionIDs, true}, {"segment_ids", b.SegmentIDs, true}} {
		if len(c.v) != n && (!c.optional || c.v != nil) {
			return nil, fail("%s has %d values, want %d (size %d × length %d)", c.name, len(c.v), n, B, L)
		}
	}
	seg, pos := b.SegmentIDs, b.PositionIDs
	if seg == nil { // one example per row: its tokens
		seg = slices.Clone(b.AttentionMask)
	}
	if pos == nil {
		pos = make([]int32, n)
		for i := range n {
			if i%L > 0 && seg[i] != 0 && seg[i] == seg[i-1] {
				pos[i] = pos[i-1] + 1
			}
		}
	}
	hasTokens := false
	for i := range n {
		if seg[i] == 0 {
			continue
		}
		if b.AttentionMask[i] == 0 {
			return nil, fail("row %d, position %d: segment id %d on padding (attention_mask 0)", i/L, i%L, seg[i])
		}
		if id := b.InputIDs[i]; id < 0 || int(id) >= V {
			return nil, fail("row %d, position %d: token id %d is outside the teacher's vocabulary (size %d)", i/L, i%L, id, V)
		}
		hasTokens = true
	}
	if !hasTokens {
		return nil, nil
	}
	res, err := s.exec.Call(
		tensors.FromFlatDataAndDimensions(b.InputIDs, B, L),
		tensors.FromFlatDataAndDimensions(b.AttentionMask, B, L),
		tensors.FromFlatDataAndDimensions(pos, B, L),
		tensors.FromFlatDataAndDimensions(seg, B, L))
	if err != nil {
		return nil, fail("teacher: %v", err)
	}
	var devIDs []int32
	var devVals, logp []float32
	if s.onDevice {
		res[0].MustConstFlatData(func(f any) { devIDs = f.([]int32) })
		res[1].MustConstFlatData(func(f any) { devVals = f.([]float32) })
	} else {
		res[0].MustConstFlatData(func(f any) { logp = f.([]float32) })
	}
	defer func() {
		for _, t := range res {
			t.FinalizeAll()
		}
	}()

	var rows []row
	for r := range B {
		for j := 0; j < L; {
			i := r*L + j
			if seg[i] == 0 {
				j++
				continue
			}
			end := j
			for end < L && seg[r*L+end] == seg[i] {
				end++
			}
			T := end - j
			ex := row{
				InputIDs:     slices.Clone(b.InputIDs[i : i+T]),
				Labels:       make([]int32, T),
				TopKIDs:      make([]int32, T*K),
				TopKLogProbs: make([]float32, T*K),
			}
			if b.Labels != nil {
				copy(ex.Labels, b.Labels[i:i+T])
			} else {
				for t := range ex.Labels {
					ex.Labels[t] = data.IgnoreIndex
				}
			}
			for t := range T {
				p := i + t
				ids, vals := ex.TopKIDs[t*K:(t+1)*K], ex.TopKLogProbs[t*K:(t+1)*K]
				ok := true
				if s.onDevice {
					copy(ids, devIDs[p*K:(p+1)*K])
					copy(vals, devVals[p*K:(p+1)*K])
					for _, v := range vals {
						ok = ok && !math.IsNaN(float64(v))
					}
				} else {
					ok = s.sel.top(logp[p*V:(p+1)*V], ids, vals)
				}
				if !ok {
					return nil, fail("row %d, position %d: the teacher's log-probabilities are NaN", r, j+t)
				}
				for q, v := range vals {
					vals[q] = max(v, PadLogProb) // no -Inf in the file
				}
			}
			rows = append(rows, ex)
			j = end
		}
	}
	return rows, nil
}

// selector picks the k largest of a vector on the host.
type selector struct {
	idx []int32
}

// top writes the len(ids) largest values of v, in descending order (ties:
// smaller index first), to vals and their indices to ids. It returns false
// when v holds a NaN.
func (s *selector) top(v []float32, ids []int32, vals []float32) bool {
	k, V := len(ids), len(v)
	for _, x := range v {
		if x != x {
			return false
		}
	}
	// better(a, b): a ranks before b.
	better := func(a, b int32) bool { return v[a] > v[b] || v[a] == v[b] && a < b }
	cmp := func(a, b int32) int {
		if better(a, b) {
			return -1
		}
		if better(b, a) {
			return 1
		}
		return 0
	}
	if 4*k >= V { // close to a full sort anyway
		s.idx = s.idx[:0]
		for i := range V {
			s.idx = append(s.idx, int32(i))
		}
		slices.SortFunc(s.idx, cmp)
	} else {
		// A heap of the best k so far with the worst at the root.
		h := s.idx[:0]
		for i := range k {
			h = append(h, int32(i))
		}
		down := func(i int) {
			for {
				worst, l, r := i, 2*i+1, 2*i+2
				if l < k && better(h[worst], h[l]) {
					worst = l
				}
				if r < k && better(h[worst], h[r]) {
					worst = r
				}
				if worst == i {
					return
				}
				h[i], h[worst] = h[worst], h[i]
				i = worst
			}
		}
		for i := k/2 - 1; i >= 0; i-- {
			down(i)
		}
		for i := int32(k); int(i) < V; i++ {
			if better(i, h[0]) {
				h[0] = i
				down(0)
			}
		}
		slices.SortFunc(h, cmp)
		s.idx = h
	}
	for q := range k {
		ids[q] = s.idx[q]
		vals[q] = v[s.idx[q]]
	}
	return true
}

// recoverPanic runs fn and turns a panic inside it (parquet-go panics on
// some malformed input) into an error.
func recoverPanic(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parquet: %v", r)
		}
	}()
	return fn()
}
