package data

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// newTestLoader opens src and builds a loader with the fake byte tokenizer.
func newTestLoader(t *testing.T, src SourceConfig, cfg LoaderConfig) *Loader {
	t.Helper()
	return newTestLoaderTokenize(t, src, TokenizeConfig{}, cfg)
}

// newTestLoaderTokenize is newTestLoader with a tokenization config.
func newTestLoaderTokenize(t *testing.T, src SourceConfig, tok TokenizeConfig, cfg LoaderConfig) *Loader {
	t.Helper()
	ds, err := Open(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	pre, err := NewPreprocessor(byteEncoder{}, RenderFunc(fakeChat), tok)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLoader(ds, pre, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// drain returns the next n batches (all when n < 0) and the iterator.
func drain(t *testing.T, l *Loader, from Position, n int) ([]*Batch, *Iterator) {
	t.Helper()
	it, err := l.Iterate(from)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { it.Close() })
	var out []*Batch
	for n < 0 || len(out) < n {
		b, err := it.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out, it
}

// segments decodes the byte-tokenizer ids of every example of a batch.
func segments(b *Batch) []string {
	var out []string
	for r := range b.Size {
		ids, seg := b.At(b.InputIDs, r), b.At(b.SegmentIDs, r)
		var cur []byte
		for i := range ids {
			if seg[i] == 0 {
				break
			}
			if i > 0 && seg[i] != seg[i-1] {
				out = append(out, string(cur))
				cur = nil
			}
			cur = append(cur, byte(ids[i]-10))
		}
		if len(cur) > 0 {
			out = append(out, string(cur))
		}
	}
	return out
}

func textLoader(t *testing.T, cfg LoaderConfig) *Loader {
	return newTestLoader(t, SourceConfig{Files: []string{fixtures + "text_plain_v1.parquet"}}, cfg)
}

func TestBucketingShapesAndTruncation(t *testing.T) {
	cfg := LoaderConfig{Collate: CollateConfig{BatchSize: 8, MaxLength: 128, Buckets: []int{32, 64}}}
	batches, it := drain(t, textLoader(t, cfg), Position{}, -1)
	prev := map[int]int{32: 0, 64: 32, 128: 64}
	var seen []string
	partial := 0
	for i, b := range batches {
		if b.Size != 8 {
			t.Fatalf("batch %d has %d rows", i, b.Size)
		}
		if _, ok := prev[b.Length]; !ok {
			t.Fatalf("batch %d has length %d, not a bucket", i, b.Length)
		}
		longest := 0
		for r := range b.Size {
			longest = max(longest, int(sum(b.At(b.AttentionMask, r))))
		}
		if longest <= prev[b.Length] || longest > b.Length {
			t.Errorf("batch %d: longest row %d tokens padded to %d; want the smallest bucket", i, longest, b.Length)
		}
		if b.Examples < b.Size {
			partial++
		}
		seen = append(seen, segments(b)...)
	}
	var want []string
	truncated := 0
	for i := range 1000 {
		s := loremRow(i)
		if len(s) > 128 {
			s = s[:128]
			truncated++
		}
		want = append(want, s)
	}
	slices.Sort(seen)
	slices.Sort(want)
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("the epoch's examples are not the dataset's, each once (got %d, want %d)", len(seen), len(want))
	}
	// 1000 rows: one window; at its end at most one partial batch per bucket.
	if partial > 3 {
		t.Errorf("%d partial batches, want at most 3", partial)
	}
	if c := it.Counts(); c.Truncated != int64(truncated) || c.Dropped != 0 || c.Read.Examples != 1000 {
		t.Errorf("counts = %+v, want %d truncated", c, truncated)
	}
}

func sum(xs []int32) (s int32) {
	for _, x := range xs {
		s += x
	}
	return s
}

func TestNoShuffleKeepsFileOrder(t *testing.T) {
	cfg := LoaderConfig{Collate: CollateConfig{BatchSize: 4, MaxLength: 256}}
	batches, _ := drain(t, textLoader(t, cfg), Position{}, 2)
	got := append(segments(batches[0]), segments(batches[1])...)
	for i, s := range got {
		if s != loremRow(i) {
			t.Fatalf("example %d = %q, want %q", i, s, loremRow(i))
		}
	}
}

func TestPacking(t *testing.T) {
	cfg := LoaderConfig{
		Collate: CollateConfig{BatchSize: 4, MaxLength: 64, Packing: true, PadID: fakePad},
		Shuffle: true, Seed: 3,
	}
	l := newTestLoaderTokenize(t, SourceConfig{Files: []string{fixtures + "prompt_completion_gzip.parquet"}},
		TokenizeConfig{AppendEOS: true, EOSID: fakeEOS}, cfg)
	batches, it := drain(t, l, Position{}, -1)
	var seen []string
	for i, b := range batches {
		if b.Size != 4 || b.Length != 64 {
			t.Fatalf("batch %d is %dx%d, want 4x64", i, b.Size, b.Length)
		}
		for r := range b.Size {
			ids, lab := b.At(b.InputIDs, r), b.At(b.Labels, r)
			pos, seg, att := b.At(b.PositionIDs, r), b.At(b.SegmentIDs, r), b.At(b.AttentionMask, r)
			for j := range ids {
				switch {
				case seg[j] == 0:
					if ids[j] != fakePad || lab[j] != IgnoreIndex || pos[j] != 0 || att[j] != 0 {
						t.Fatalf("batch %d row %d pos %d: padding is id %d label %d position %d mask %d", i, r, j, ids[j], lab[j], pos[j], att[j])
					}
				case j == 0 || seg[j] != seg[j-1]:
					if seg[j] != map[bool]int32{true: 1, false: seg[max(j-1, 0)] + 1}[j == 0] || pos[j] != 0 || lab[j] != IgnoreIndex || att[j] != 1 {
						t.Fatalf("batch %d row %d pos %d: example start has segment %d position %d label %d", i, r, j, seg[j], pos[j], lab[j])
					}
				default:
					if pos[j] != pos[j-1]+1 || att[j] != 1 {
						t.Fatalf("batch %d row %d pos %d: position %d after %d", i, r, j, pos[j], pos[j-1])
					}
				}
			}
		}
		seen = append(seen, segments(b)...)
	}
	eos := "\xf8" // segments decodes the EOS id 2 as byte(2-10)
	var want []string
	for i := range 300 {
		if i%50 != 7 {
			want = append(want, fmt.Sprintf("Q%d: name the %dth prime? A%d", i, i, i)+eos)
		}
	}
	slices.Sort(seen)
	slices.Sort(want)
	if !reflect.DeepEqual(seen, want) {
		t.Fatalf("packed examples differ from the dataset's 294 (got %d)", len(seen))
	}
	// Greedy packing: a row ends only when the next example does not fit.
	type row struct{ used, first int }
	var rows []row
	for _, b := range batches {
		for r := range b.Size {
			used := int(sum(b.At(b.AttentionMask, r)))
			if used == 0 {
				continue
			}
			seg, first := b.At(b.SegmentIDs, r), 0
			for first < len(seg) && seg[first] == 1 {
				first++
			}
			rows = append(rows, row{used, first})
		}
	}
	for i := 1; i < len(rows); i++ {
		if rows[i-1].used+rows[i].first <= 64 {
			t.Fatalf("row %d has %d tokens, and the next row's first example (%d tokens) would have fit", i-1, rows[i-1].used, rows[i].first)
		}
	}
	if want := (len(rows) + 3) / 4; len(batches) != want {
		t.Errorf("%d rows in %d batches, want %d", len(rows), len(batches), want)
	}
	if c := it.Counts(); c.Read.Nulls != 6 || c.Read.Examples != 294 {
		t.Errorf("counts = %+v", c)
	}
}

func TestShuffleDeterminism(t *testing.T) {
	src := SourceConfig{Files: []string{fixtures + "chat_snappy.parquet"}} // 4 row groups of 128, 128, 128, 116
	cfg := func(seed uint64) LoaderConfig {
		return LoaderConfig{
			Collate: CollateConfig{BatchSize: 5, MaxLength: 96, Buckets: []int{64, 80}},
			Shuffle: true, Seed: seed, WindowRows: 200, Epochs: 2,
		}
	}
	a, _ := drain(t, newTestLoader(t, src, cfg(1)), Position{}, -1)
	b, _ := drain(t, newTestLoader(t, src, cfg(1)), Position{}, -1)
	c, _ := drain(t, newTestLoader(t, src, cfg(2)), Position{}, -1)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave different batches")
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("seeds 1 and 2 gave the same batches")
	}
	// Each epoch holds every conversation once, in a different order.
	var epochs [2][]string
	e := 0
	for _, batch := range a {
		epochs[e] = append(epochs[e], segments(batch)...)
		if len(epochs[e]) == 500 {
			e++
		}
	}
	if e != 2 {
		t.Fatalf("epochs of %d and %d examples, want 500 each", len(epochs[0]), len(epochs[1]))
	}
	if slices.Equal(epochs[0], epochs[1]) {
		t.Error("both epochs have the same order")
	}
	for i := range 2 {
		sorted := slices.Sorted(slices.Values(epochs[i]))
		if len(slices.Compact(sorted)) != 500 {
			t.Errorf("epoch %d repeats examples", i)
		}
	}
	// The first batch does not come in file order.
	first := segments(a[0])
	inOrder := true
	for i, s := range first {
		want, _ := fakeChat(chatRow(i), false)
		inOrder = inOrder && s == want
	}
	if inOrder {
		t.Error("the shuffled first batch is in file order")
	}
}

func TestWindows(t *testing.T) {
	l := newTestLoader(t, SourceConfig{Files: []string{fixtures + "chat_*.parquet"}}, // 128,128,128,116 + 200,200,100
		LoaderConfig{Collate: CollateConfig{BatchSize: 1, MaxLength: 8}, WindowRows: 250})
	var sizes []int64
	for _, w := range l.windows(0) {
		var n int64
		for _, u := range w {
			n += u.rows
		}
		sizes = append(sizes, n)
	}
	if want := []int64{256, 444, 300}; !reflect.DeepEqual(sizes, want) {
		t.Errorf("unshuffled windows hold %v rows, want %v", sizes, want)
	}
	l.cfg.Shuffle = true
	w0, w1 := l.windows(0), l.windows(1)
	if reflect.DeepEqual(w0, w1) {
		t.Error("epochs 0 and 1 read the row groups in the same order")
	}
	var units []unit
	for _, w := range w0 {
		units = append(units, w...)
	}
	if len(units) != 7 {
		t.Errorf("a shuffled epoch reads %d row groups, want 7", len(units))
	}
}

func TestResumeEqualsUninterrupted(t *testing.T) {
	tests := []struct {
		name string
		src  SourceConfig
		cfg  LoaderConfig
	}{
		{"buckets, shuffled, 2 epochs, windows of 2 row groups", SourceConfig{Files: []string{fixtures + "chat_snappy.parquet"}},
			LoaderConfig{Collate: CollateConfig{BatchSize: 6, MaxLength: 96, Buckets: []int{64, 80}}, Shuffle: true, Seed: 9, WindowRows: 200, Epochs: 2}},
		{"packing, shuffled, 2 epochs", SourceConfig{Files: []string{fixtures + "prompt_completion_gzip.parquet"}},
			LoaderConfig{Collate: CollateConfig{BatchSize: 3, MaxLength: 100, Packing: true}, Shuffle: true, Seed: 4, Epochs: 2}},
		{"buckets, no shuffle, split", SourceConfig{Files: []string{fixtures + "text_*.parquet"}, Split: Split{Fraction: 0.3, Seed: 1, Part: PartEval}},
			LoaderConfig{Collate: CollateConfig{BatchSize: 7, MaxLength: 150, Buckets: []int{40, 80}}, WindowRows: 500}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all, _ := drain(t, newTestLoader(t, tt.src, tt.cfg), Position{}, -1)
			n := len(all)
			if n < 10 {
				t.Fatalf("only %d batches", n)
			}
			pending, later := false, false
			for _, k := range []int{0, 1, 2, 5, n / 3, n / 2, n/2 + 1, n - 1, n} {
				_, it := drain(t, newTestLoader(t, tt.src, tt.cfg), Position{}, k)
				js, err := json.Marshal(it.Position())
				if err != nil {
					t.Fatal(err)
				}
				var pos Position
				if err := json.Unmarshal(js, &pos); err != nil {
					t.Fatal(err)
				}
				for _, q := range append(pos.Buckets, append(pos.Rows, pos.Open)...) {
					pending = pending || len(q) > 0
				}
				later = later || pos.Epoch > 0 || pos.Window > 0
				if pos.Batches != int64(k) {
					t.Errorf("after %d batches the position counts %d", k, pos.Batches)
				}
				rest, _ := drain(t, newTestLoader(t, tt.src, tt.cfg), pos, -1)
				if len(rest) != n-k {
					t.Fatalf("resumed after %d of %d batches (position %s): %d batches follow, want %d", k, n, js, len(rest), n-k)
				}
				for i := range rest {
					if !reflect.DeepEqual(rest[i], all[k+i]) {
						t.Fatalf("resumed after %d batches (position %s): batch %d differs", k, js, k+i)
					}
				}
			}
			if !pending || !later {
				t.Errorf("no position tested had examples waiting (%v) or was past the first window (%v)", pending, later)
			}
		})
	}
}

func TestResumeRejectsOtherSettings(t *testing.T) {
	src := SourceConfig{Files: []string{fixtures + "prompt_completion_gzip.parquet"}}
	cfg := LoaderConfig{Collate: CollateConfig{BatchSize: 4, MaxLength: 64}, Shuffle: true, Seed: 1}
	_, it := drain(t, newTestLoader(t, src, cfg), Position{}, 3)
	pos := it.Position()
	cfg.Seed = 2
	if _, err := newTestLoader(t, src, cfg).Iterate(pos); err == nil || !strings.Contains(err.Error(), "saved for other data or settings") {
		t.Errorf("other seed: error = %v", err)
	}
	cfg.Seed = 1
	bad := pos
	bad.Next = 10000
	_, err := drain2(newTestLoader(t, src, cfg), bad)
	if err == nil || !strings.Contains(err.Error(), "takes 10000 examples of window 0, which has 294") {
		t.Errorf("position past the window: error = %v", err)
	}
}

func TestResumeWithMoreEpochs(t *testing.T) {
	src := SourceConfig{Files: []string{fixtures + "prompt_completion_gzip.parquet"}}
	cfg := LoaderConfig{Collate: CollateConfig{BatchSize: 8, MaxLength: 64}, Shuffle: true, Seed: 1, Epochs: 1}
	first, it := drain(t, newTestLoader(t, src, cfg), Position{}, -1)
	cfg.Epochs = 2
	all, _ := drain(t, newTestLoader(t, src, cfg), Position{}, -1)
	more, _ := drain(t, newTestLoader(t, src, cfg), it.Position(), -1)
	if !reflect.DeepEqual(append(first, more...), all) {
		t.Errorf("1 epoch then 1 more (%d+%d batches) differs from 2 epochs (%d)", len(first), len(more), len(all))
	}
}

func drain2(l *Loader, from Position) (*Batch, error) {
	it, err := l.Iterate(from)
	if err != nil {
		return nil, err
	}
	return it.Next(context.Background())
}

func TestDropsExamplesWithoutLoss(t *testing.T) {
	// max_length 10 keeps only the prompt "Qi: name t": no completion token is left.
	cfg := LoaderConfig{Collate: CollateConfig{BatchSize: 4, MaxLength: 10}}
	batches, it := drain(t, newTestLoader(t, SourceConfig{Files: []string{fixtures + "prompt_completion_gzip.parquet"}}, cfg), Position{}, -1)
	if len(batches) != 0 || it.Counts().Dropped != 294 {
		t.Errorf("%d batches, %d dropped; want 0 and 294", len(batches), it.Counts().Dropped)
	}
}

func TestLoaderConfigValidate(t *testing.T) {
	ds, err := Open(context.Background(), SourceConfig{Files: []string{fixtures + "text_plain_v1.parquet"}})
	if err != nil {
		t.Fatal(err)
	}
	pre, _ := NewPreprocessor(byteEncoder{}, nil, TokenizeConfig{})
	_, err = NewLoader(ds, pre, LoaderConfig{Collate: CollateConfig{BatchSize: 0, MaxLength: 0}, Epochs: -1})
	for _, want := range []string{"collate.batch_size", "collate.max_length", "epochs: must be >= 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want it to mention %q", err, want)
		}
	}
}

// TestFilter: a filter that drops, from epoch 1 on, the examples with an
// even number of tokens leaves epoch 0 whole, epoch 1 with only odd ones,
// counts what it left out, and resumes exactly.
func TestFilter(t *testing.T) {
	src := SourceConfig{Files: []string{fixtures + "text_plain_v1.parquet"}}
	cfg := LoaderConfig{Collate: CollateConfig{BatchSize: 4, MaxLength: 64, Buckets: []int{32}}, Shuffle: true, Seed: 3, Epochs: 2}
	keep := func(epoch int, s Sample) bool { return epoch == 0 || s.Len()%2 == 1 }
	newLoader := func() *Loader {
		l := newTestLoader(t, src, cfg)
		l.SetFilter(keep)
		return l
	}
	all, it := drain(t, newLoader(), Position{}, -1)
	plain, _ := drain(t, newTestLoader(t, src, cfg), Position{}, -1)
	count := func(bs []*Batch) (odd, even int) {
		for _, b := range bs {
			for r := range b.Size {
				n := 0
				for _, m := range b.At(b.AttentionMask, r) {
					n += int(m)
				}
				if n == 0 {
					continue
				}
				if n%2 == 1 {
					odd++
				} else {
					even++
				}
			}
		}
		return
	}
	half := len(plain) / 2 // epoch 0 has the same batches with and without the filter
	if !reflect.DeepEqual(all[:half], plain[:half]) {
		t.Fatal("the filter changed epoch 0")
	}
	odd0, even0 := count(plain[:half])
	odd1, even1 := count(all[half:])
	if even1 != 0 || odd1 != odd0 || int64(even0) != it.Counts().Filtered || even0 == 0 {
		t.Errorf("epoch 1: %d odd, %d even; epoch 0 had %d odd, %d even; filtered %d", odd1, even1, odd0, even0, it.Counts().Filtered)
	}
	_, it2 := drain(t, newLoader(), Position{}, half+3)
	rest, _ := drain(t, newLoader(), it2.Position(), -1)
	if !reflect.DeepEqual(rest, all[half+3:]) {
		t.Error("resuming a filtered epoch gives other batches")
	}
}
