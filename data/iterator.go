package data

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"path/filepath"
	"slices"
)

// DefaultWindowRows is the default LoaderConfig.WindowRows.
const DefaultWindowRows = 10000

// LoaderConfig configures a Loader.
type LoaderConfig struct {
	// Collate says how samples become batches.
	Collate CollateConfig `yaml:"collate" json:"collate"`
	// Shuffle shuffles the order of row groups every epoch and the examples
	// inside every window; see Loader.
	Shuffle bool `yaml:"shuffle,omitempty" json:"shuffle,omitempty"`
	// Seed makes the shuffle reproducible.
	Seed uint64 `yaml:"seed,omitempty" json:"seed,omitempty"`
	// WindowRows is the number of rows (counted from the metadata) of
	// whole row groups gathered into one shuffle window [10000]. A window is
	// held in memory; a row group larger than this is a window of its own.
	WindowRows int `yaml:"window_rows,omitempty" json:"window_rows,omitempty"`
	// Epochs is the number of passes over the data [1].
	Epochs int `yaml:"epochs,omitempty" json:"epochs,omitempty"`
}

// Validate checks c.
func (c LoaderConfig) Validate() error {
	var errs []error
	if err := c.Collate.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.WindowRows < 0 {
		errs = append(errs, fmt.Errorf("window_rows: must be >= 0, got %d", c.WindowRows))
	}
	if c.Epochs < 0 {
		errs = append(errs, fmt.Errorf("epochs: must be >= 0, got %d", c.Epochs))
	}
	return errors.Join(errs...)
}

// Loader turns a Dataset into batches, epoch after epoch.
//
// Shuffling streams: an epoch reads the dataset's row groups in an order
// drawn from (Seed, epoch), gathers consecutive row groups into windows of
// about WindowRows rows, and reads each window's examples in an order drawn
// from (Seed, epoch, window). Memory stays bounded by one window, each row
// group is read once per epoch, and an example can move anywhere in its
// window. Without Shuffle the order is the files' and no window is permuted.
//
// Batching happens inside a window: examples go, in window order, to the
// queue of their length bucket, and a queue that reaches BatchSize becomes a
// batch (with Packing, examples fill rows of MaxLength tokens in order, and
// BatchSize rows make a batch). At the end of a window the queues that are
// left are emitted, smallest bucket first, padded with empty rows if needed,
// so no example is lost and no batch mixes windows. Examples with no label
// left after truncation are dropped.
//
// This makes the position a few integers: the epoch, the window, how many of
// its examples were taken and which of them wait in queues. Resuming
// rereads that window and gives exactly the batches that would have followed.
type Loader struct {
	ds          *Dataset
	pre         *Preprocessor
	cfg         LoaderConfig
	lengths     []int
	units       []unit
	fingerprint string
	filter      func(epoch int, s Sample) bool
}

// SetFilter makes iterators leave out the examples for which keep returns
// false (Progressive Data Dropout, curriculum filters), after tokenization
// and truncation, before batching. keep must be deterministic for a given
// state: resuming from a Position gives the batches that would have
// followed only if keep decides as it did then (checkpoint its state).
// Set it before iterating; nil keeps every example.
func (l *Loader) SetFilter(keep func(epoch int, s Sample) bool) { l.filter = keep }

// NewLoader checks cfg and returns a Loader.
func NewLoader(ds *Dataset, pre *Preprocessor, cfg LoaderConfig) (*Loader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.WindowRows == 0 {
		cfg.WindowRows = DefaultWindowRows
	}
	if cfg.Epochs == 0 {
		cfg.Epochs = 1
	}
	l := &Loader{ds: ds, pre: pre, cfg: cfg, lengths: cfg.Collate.lengths(), units: ds.units()}
	l.fingerprint = l.computeFingerprint()
	return l, nil
}

// computeFingerprint hashes what decides the order and content of batches,
// so that a Position is not used with other data or settings.
func (l *Loader) computeFingerprint() string {
	h := fnv.New64a()
	for _, f := range l.ds.files {
		fmt.Fprintf(h, "%s:%v;", filepath.Base(f.path), f.rowGroups)
	}
	src := l.ds.cfg
	src.Files = nil
	cfg := l.cfg
	cfg.Epochs = 0 // more epochs may follow a resumed run
	js, _ := json.Marshal(struct {
		Source   SourceConfig
		Shape    Shape
		Tokenize TokenizeConfig
		Loader   LoaderConfig
	}{src, l.ds.shape, l.pre.cfg, cfg})
	h.Write(js)
	return fmt.Sprintf("%016x", h.Sum64())
}

// windows returns the windows of an epoch, each a list of row groups.
func (l *Loader) windows(epoch int) [][]unit {
	order := slices.Clone(l.units)
	if l.cfg.Shuffle {
		perm := newRNG(seedFor(l.cfg.Seed, epoch, -1)).perm(len(order))
		for i, j := range perm {
			order[i] = l.units[j]
		}
	}
	var out [][]unit
	var cur []unit
	var rows int64
	for _, u := range order {
		cur = append(cur, u)
		rows += u.rows
		if rows >= int64(l.cfg.WindowRows) {
			out = append(out, cur)
			cur, rows = nil, 0
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// Position is where an Iterator stands, between two batches. It marshals
// to JSON; Loader.Iterate resumes from it.
type Position struct {
	// Fingerprint identifies the data and settings the position belongs to.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Epoch counts from 0.
	Epoch int `json:"epoch"`
	// Window is the index of the current window in the epoch.
	Window int `json:"window"`
	// Next is how many of the window's examples (in its shuffled order)
	// were taken.
	Next int `json:"next"`
	// Buckets holds, per length bucket, the examples (indices in the
	// window's order) waiting for their batch to fill.
	Buckets [][]int `json:"buckets,omitempty"`
	// Rows and Open hold, with packing, the finished rows of the batch being
	// filled and the row being filled.
	Rows [][]int `json:"rows,omitempty"`
	Open []int   `json:"open,omitempty"`
	// Batches counts the batches returned since the first epoch began.
	Batches int64 `json:"batches"`
}

func (p Position) clone() Position {
	p.Buckets = cloneRows(p.Buckets)
	p.Rows = cloneRows(p.Rows)
	p.Open = slices.Clone(p.Open)
	return p
}

func cloneRows(rows [][]int) [][]int {
	if rows == nil {
		return nil
	}
	out := make([][]int, len(rows))
	for i, r := range rows {
		out[i] = slices.Clone(r)
	}
	return out
}

// IteratorCounts tells what an Iterator went through since it was created.
type IteratorCounts struct {
	// Read counts the rows of the windows read (a resumed window is read again).
	Read Counts
	// Dropped counts examples without any label after truncation.
	Dropped int64
	// Truncated counts examples longer than MaxLength.
	Truncated int64
	// Filtered counts examples the loader's filter left out.
	Filtered int64
}

// Iterator returns batches one after the other. It is not safe for
// concurrent use.
type Iterator struct {
	l       *Loader
	r       *reader
	pos     Position
	epoch   int      // epoch of windows
	windows [][]unit // windows of epoch
	win     *window
	counts  IteratorCounts
}

// window is the loaded data of the current window.
type window struct {
	epoch, index int
	examples     []Example
	order        []int // examples[order[k]] is the k-th example taken
	samples      []Sample
	encoded      []bool
	truncated    []bool
}

// Iterate returns an iterator starting at from; the zero Position is the
// start of the first epoch.
func (l *Loader) Iterate(from Position) (*Iterator, error) {
	if from.Fingerprint != "" && from.Fingerprint != l.fingerprint {
		return nil, fmt.Errorf("resume: the position was saved for other data or settings (fingerprint %s, now %s)", from.Fingerprint, l.fingerprint)
	}
	pos := from.clone()
	pos.Fingerprint = l.fingerprint
	if pos.Epoch < 0 || pos.Window < 0 || pos.Next < 0 {
		return nil, fmt.Errorf("resume: negative epoch, window or next in position %+v", from)
	}
	if l.cfg.Collate.Packing {
		if len(pos.Buckets) > 0 {
			return nil, errors.New("resume: the position has bucket queues but the loader packs")
		}
	} else {
		if len(pos.Rows) > 0 || len(pos.Open) > 0 {
			return nil, errors.New("resume: the position has packed rows but the loader does not pack")
		}
		if pos.Buckets == nil {
			pos.Buckets = make([][]int, len(l.lengths))
		}
		if len(pos.Buckets) != len(l.lengths) {
			return nil, fmt.Errorf("resume: the position has %d bucket queues, the loader %d buckets", len(pos.Buckets), len(l.lengths))
		}
	}
	return &Iterator{l: l, r: l.ds.newReader(), pos: pos, epoch: -1}, nil
}

// Position returns the position after the last batch returned.
func (it *Iterator) Position() Position { return it.pos.clone() }

// Counts returns what the iterator went through.
func (it *Iterator) Counts() IteratorCounts { return it.counts }

// Close releases the open file.
func (it *Iterator) Close() error { return it.r.close() }

// Next returns the next batch, or io.EOF after the last epoch.
func (it *Iterator) Next(ctx context.Context) (*Batch, error) {
	for {
		if it.pos.Epoch >= it.l.cfg.Epochs {
			return nil, io.EOF
		}
		if it.epoch != it.pos.Epoch {
			it.windows, it.epoch = it.l.windows(it.pos.Epoch), it.pos.Epoch
		}
		if it.pos.Window >= len(it.windows) {
			it.pos.Epoch++
			it.pos.Window = 0
			continue
		}
		if it.win == nil || it.win.epoch != it.pos.Epoch || it.win.index != it.pos.Window {
			if err := it.load(ctx); err != nil {
				return nil, err
			}
		}
		var b *Batch
		var err error
		if it.l.cfg.Collate.Packing {
			b, err = it.stepPacked()
		} else {
			b, err = it.stepBucketed()
		}
		if err != nil {
			return nil, err
		}
		if b != nil {
			it.pos.Batches++
			return b, nil
		}
		it.pos.Window++
		it.pos.Next = 0
		it.win = nil
	}
}

// load reads the current window and draws its order.
func (it *Iterator) load(ctx context.Context) error {
	w := &window{epoch: it.pos.Epoch, index: it.pos.Window}
	for _, u := range it.windows[it.pos.Window] {
		c, err := it.r.readUnit(ctx, u, func(ex Example) error {
			w.examples = append(w.examples, ex)
			return nil
		})
		it.counts.Read.add(c)
		if err != nil {
			return err
		}
	}
	n := len(w.examples)
	if it.l.cfg.Shuffle {
		w.order = newRNG(seedFor(it.l.cfg.Seed, w.epoch, w.index)).perm(n)
	} else {
		w.order = make([]int, n)
		for i := range w.order {
			w.order[i] = i
		}
	}
	w.samples, w.encoded, w.truncated = make([]Sample, n), make([]bool, n), make([]bool, n)
	if it.pos.Next > n {
		return fmt.Errorf("resume: the position takes %d examples of window %d, which has %d", it.pos.Next, w.index, n)
	}
	queues := [][][]int{it.pos.Buckets, it.pos.Rows, {it.pos.Open}}
	for _, qs := range queues {
		for _, q := range qs {
			for _, k := range q {
				if k < 0 || k >= it.pos.Next {
					return fmt.Errorf("resume: the position queues example %d of window %d, which was not taken yet", k, w.index)
				}
			}
		}
	}
	it.win = w
	return nil
}

// sample returns the k-th example of the window, tokenized and truncated.
func (it *Iterator) sample(k int) (Sample, error) {
	w := it.win
	if !w.encoded[k] {
		ex := w.examples[w.order[k]]
		s, err := it.l.pre.Encode(ex)
		if err != nil {
			return Sample{}, fmt.Errorf("%s, row %d: %w", ex.File, ex.Row, err)
		}
		w.truncated[k] = s.Len() > it.l.cfg.Collate.MaxLength
		w.samples[k], w.encoded[k] = s.truncate(it.l.cfg.Collate.MaxLength), true
	}
	return w.samples[k], nil
}

// take returns the next usable example of the window, or ok=false at its end.
func (it *Iterator) take() (k int, s Sample, ok bool, err error) {
	for it.pos.Next < len(it.win.order) {
		k = it.pos.Next
		if s, err = it.sample(k); err != nil {
			return 0, Sample{}, false, err
		}
		it.pos.Next++
		if it.win.truncated[k] {
			it.counts.Truncated++
		}
		if s.LossTokens() == 0 {
			it.counts.Dropped++
			continue
		}
		if it.l.filter != nil && !it.l.filter(it.pos.Epoch, s) {
			it.counts.Filtered++
			continue
		}
		return k, s, true, nil
	}
	return 0, Sample{}, false, nil
}

// rows turns lists of example indices into lists of samples.
func (it *Iterator) rows(idx [][]int) ([][]Sample, error) {
	out := make([][]Sample, len(idx))
	for i, row := range idx {
		for _, k := range row {
			s, err := it.sample(k)
			if err != nil {
				return nil, err
			}
			out[i] = append(out[i], s)
		}
	}
	return out, nil
}

// emit builds a batch whose rows are the given example indices.
func (it *Iterator) emit(idx [][]int, length int) (*Batch, error) {
	rows, err := it.rows(idx)
	if err != nil {
		return nil, err
	}
	for _, row := range idx {
		for _, k := range row {
			it.win.samples[k], it.win.encoded[k] = Sample{}, false // not needed again
		}
	}
	c := it.l.cfg.Collate
	return NewBatch(rows, c.BatchSize, length, c.PadID)
}

// stepBucketed takes examples until a bucket fills, then flushes the
// remaining queues at the end of the window. It returns nil when the window
// is done.
func (it *Iterator) stepBucketed() (*Batch, error) {
	p, size := &it.pos, it.l.cfg.Collate.BatchSize
	for {
		k, s, ok, err := it.take()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		b := bucket(it.l.lengths, s.Len())
		p.Buckets[b] = append(p.Buckets[b], k)
		if len(p.Buckets[b]) == size {
			idx := p.Buckets[b]
			p.Buckets[b] = nil
			return it.emit(oneEach(idx), it.l.lengths[b])
		}
	}
	// End of window: the smallest buckets first, size examples at a time.
	var idx []int
	length := 0
	for b := range p.Buckets {
		for len(p.Buckets[b]) > 0 && len(idx) < size {
			idx = append(idx, p.Buckets[b][0])
			p.Buckets[b] = p.Buckets[b][1:]
			length = it.l.lengths[b]
		}
		if len(p.Buckets[b]) == 0 {
			p.Buckets[b] = nil
		}
	}
	if len(idx) == 0 {
		return nil, nil
	}
	return it.emit(oneEach(idx), length)
}

// oneEach makes one row per example.
func oneEach(idx []int) [][]int {
	out := make([][]int, len(idx))
	for i, k := range idx {
		out[i] = []int{k}
	}
	return out
}

// stepPacked fills rows with examples in order, starting a new row when the
// next example does not fit, and returns a batch when BatchSize rows are
// full. It returns nil when the window is done.
func (it *Iterator) stepPacked() (*Batch, error) {
	p, c := &it.pos, it.l.cfg.Collate
	for {
		k, s, ok, err := it.take()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		used := 0
		for _, j := range p.Open {
			o, err := it.sample(j) // already encoded, unless the iterator just resumed
			if err != nil {
				return nil, err
			}
			used += o.Len()
		}
		if len(p.Open) > 0 && used+s.Len() > c.MaxLength {
			p.Rows = append(p.Rows, p.Open)
			p.Open = nil
			if len(p.Rows) == c.BatchSize {
				idx := p.Rows
				p.Rows, p.Open = nil, []int{k}
				return it.emit(idx, c.MaxLength)
			}
		}
		p.Open = append(p.Open, k)
	}
	if len(p.Open) > 0 {
		p.Rows = append(p.Rows, p.Open)
		p.Open = nil
	}
	if len(p.Rows) == 0 {
		return nil, nil
	}
	idx := p.Rows
	p.Rows = nil
	return it.emit(idx, c.MaxLength)
}
