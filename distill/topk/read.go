package topk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/parquet-go/parquet-go"

	"github.com/lethe-ml/lethe/data"
)

// DefaultMemory is how many bytes of decoded top-k data (ids and values) a
// Cache keeps in memory by default; see Cache.SetMemory.
const DefaultMemory = 1 << 30

// Cache reads a top-k teacher cache written by Write.
//
// Open reads the footer and the input_ids column (to match batches and
// check them); the top-k columns are decoded one row group at a time when
// first needed, and the least recently used row groups are dropped past a
// memory budget. A Cache is safe for concurrent use.
type Cache struct {
	path               string
	f                  *os.File
	pf                 *parquet.File
	k, vocab           int
	teacher, modelType string

	colIDs, colLPs int // leaf column indices of topk_ids and topk_logprobs
	defIDs, defLPs int // their max definition levels

	tokens     []int32 // input_ids of every row, one after the other
	offs       []int   // row r is tokens[offs[r]:offs[r+1]]
	groupStart []int   // row group g holds rows groupStart[g]:groupStart[g+1]
	index      map[uint64][]int32

	mu     sync.Mutex
	groups map[int]*group
	lru    []int // row groups in memory, least recently used first
	memory int64
	held   int64
}

// group is the decoded top-k data of one row group: row r's [T, K] values
// start at (offs[r] - offs[first]) * K.
type group struct {
	ids   []int32
	lps   []float32
	bytes int64
}

// Targets are a batch's cached top-k targets: IDs and LogProbs are
// row-major [Size, Length, K], id 0 and PadLogProb where there is no cached
// target. They are distill.Sparse's inputs.
type Targets struct {
	Size, Length, K int
	IDs             []int32
	LogProbs        []float32
}

// Tensors returns IDs and LogProbs as [Size, Length, K] tensors.
func (t *Targets) Tensors() (ids, logprobs *tensors.Tensor) {
	return tensors.FromFlatDataAndDimensions(t.IDs, t.Size, t.Length, t.K),
		tensors.FromFlatDataAndDimensions(t.LogProbs, t.Size, t.Length, t.K)
}

func newTargets(size, length, k int) *Targets {
	t := &Targets{Size: size, Length: length, K: k,
		IDs: make([]int32, size*length*k), LogProbs: make([]float32, size*length*k)}
	for i := range t.LogProbs {
		t.LogProbs[i] = PadLogProb
	}
	return t
}

// Open opens a cache file and checks its footer metadata, its columns and
// their lengths; errors name the file, and the row (or row group) and the
// column at fault. Close it when done.
func Open(path string) (c *Cache, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("topk: %w", err) // *PathError names the file
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	fail := func(format string, args ...any) error {
		return fmt.Errorf("topk: %s: %s", path, fmt.Sprintf(format, args...))
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fail("%v", err)
	}
	if err := checkTrailer(f, st.Size()); err != nil {
		return nil, fail("not a Parquet file (truncated or corrupt?): %v", err)
	}
	var pf *parquet.File
	err = recoverPanic(func() error {
		var err error
		pf, err = parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
		return err
	})
	if err != nil {
		return nil, fail("not a readable Parquet file (truncated or corrupt?): %v", err)
	}
	c = &Cache{path: path, f: f, pf: pf, groups: map[int]*group{}, memory: DefaultMemory}

	// Footer metadata.
	meta := func(key string) (string, error) {
		v, ok := pf.Lookup(key)
		if !ok {
			return "", fail("footer metadata %s is missing (not a lethe top-k teacher cache?)", key)
		}
		return v, nil
	}
	metaInt := func(key string) (int, error) {
		s, err := meta(key)
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return 0, fail("footer metadata %s = %q: want a positive integer", key, s)
		}
		return n, nil
	}
	version, err := metaInt(MetaFormatVersion)
	if err != nil {
		return nil, err
	}
	if version != FormatVersion {
		return nil, fail("footer metadata %s = %d: this lethe reads format version %d", MetaFormatVersion, version, FormatVersion)
	}
	if c.k, err = metaInt(MetaK); err != nil {
		return nil, err
	}
	if c.vocab, err = metaInt(MetaVocabSize); err != nil {
		return nil, err
	}
	if c.k > c.vocab {
		return nil, fail("footer metadata %s = %d is larger than %s = %d", MetaK, c.k, MetaVocabSize, c.vocab)
	}
	temp, err := meta(MetaTemperature)
	if err != nil {
		return nil, err
	}
	if t, err := strconv.ParseFloat(temp, 64); err != nil || t != 1 {
		return nil, fail("footer metadata %s = %q: only temperature 1 is supported", MetaTemperature, temp)
	}
	c.teacher, _ = pf.Lookup(MetaTeacher)
	c.modelType, _ = pf.Lookup(MetaTeacherType)

	// Columns.
	leaf := func(name string, kind parquet.Kind) (parquet.LeafColumn, error) {
		var found [][]string
		for _, p := range pf.Schema().Columns() {
			if p[0] == name {
				found = append(found, p)
			}
		}
		if len(found) == 0 {
			return parquet.LeafColumn{}, fail("column %s is missing (not a lethe top-k teacher cache?)", name)
		}
		lc, ok := pf.Schema().Lookup(found[0]...)
		if len(found) > 1 || !ok || lc.MaxRepetitionLevel != 1 || lc.Node.Type().Kind() != kind {
			return parquet.LeafColumn{}, fail("column %s is not a list of %s", name, kind)
		}
		return lc, nil
	}
	ids, err := leaf(ColInputIDs, parquet.Int32)
	if err != nil {
		return nil, err
	}
	topIDs, err := leaf(ColTopKIDs, parquet.Int32)
	if err != nil {
		return nil, err
	}
	topLPs, err := leaf(ColTopKLogProbs, parquet.Float)
	if err != nil {
		return nil, err
	}
	c.colIDs, c.defIDs = topIDs.ColumnIndex, topIDs.MaxDefinitionLevel
	c.colLPs, c.defLPs = topLPs.ColumnIndex, topLPs.MaxDefinitionLevel

	// input_ids, and the lengths of the top-k columns from the row groups'
	// metadata (each row is decoded and checked when it is first read).
	c.offs = []int{0}
	c.groupStart = []int{0}
	for g, rg := range pf.RowGroups() {
		first := len(c.offs) - 1
		flat, offs, err := readColumn(rg, ids.ColumnIndex, ids.MaxDefinitionLevel, parquet.Value.Int32)
		if err != nil {
			return nil, fail("row group %d: column %s: %v", g, ColInputIDs, err)
		}
		if n := int64(len(offs) - 1); n != rg.NumRows() {
			return nil, fail("row group %d: column %s has %d rows, the row group %d", g, ColInputIDs, n, rg.NumRows())
		}
		for r := range len(offs) - 1 {
			toks := flat[offs[r]:offs[r+1]]
			if len(toks) == 0 {
				return nil, fail("row %d: column %s is empty", first+r, ColInputIDs)
			}
			for t, id := range toks {
				if id < 0 || int(id) >= c.vocab {
					return nil, fail("row %d: column %s: token id %d at position %d is outside the vocabulary (size %d)", first+r, ColInputIDs, id, t, c.vocab)
				}
			}
			c.offs = append(c.offs, len(c.tokens)+offs[r+1])
		}
		c.tokens = append(c.tokens, flat...)
		c.groupStart = append(c.groupStart, len(c.offs)-1)
		want := int64(len(flat)) * int64(c.k)
		for _, col := range []struct {
			name  string
			index int
		}{{ColTopKIDs, c.colIDs}, {ColTopKLogProbs, c.colLPs}} {
			if got := rg.ColumnChunks()[col.index].NumValues(); got != want {
				if _, err := c.decode(g); err != nil { // names the row
					return nil, err
				}
				return nil, fail("row group %d (rows %d-%d): column %s holds %d values, want %d (%d tokens × k=%d)",
					g, first, len(c.offs)-2, col.name, got, want, len(flat), c.k)
			}
		}
	}
	if s, ok := pf.Lookup(MetaExamples); ok && s != strconv.Itoa(c.Len()) {
		return nil, fail("footer metadata %s = %s, but the file holds %d rows", MetaExamples, s, c.Len())
	}
	if c.Len() == 0 {
		return nil, fail("the file holds no rows")
	}
	c.index = make(map[uint64][]int32, c.Len())
	for r := range c.Len() {
		h := hashTokens(c.tokens[c.offs[r]:c.offs[r+1]])
		c.index[h] = append(c.index[h], int32(r))
	}
	return c, nil
}

// Close closes the file.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.groups, c.lru, c.held = map[int]*group{}, nil, 0
	return c.f.Close()
}

// Path returns the file's path.
func (c *Cache) Path() string { return c.path }

// K returns the number of tokens cached per position.
func (c *Cache) K() int { return c.k }

// Vocab returns the teacher's vocabulary size.
func (c *Cache) Vocab() int { return c.vocab }

// Len returns the number of cached examples (rows).
func (c *Cache) Len() int { return len(c.offs) - 1 }

// Teacher returns the teacher's checkpoint folder and model_type, as
// recorded by Write.
func (c *Cache) Teacher() (dir, modelType string) { return c.teacher, c.modelType }

// SetMemory sets how many bytes of decoded top-k data the cache keeps [1 GiB];
// the row group in use is kept whatever its size.
func (c *Cache) SetMemory(bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.memory = bytes
	c.evict(-1)
}

// InputIDs returns a copy of the tokens of cached example row.
func (c *Cache) InputIDs(row int) []int32 {
	return slices.Clone(c.tokens[c.offs[row]:c.offs[row+1]])
}

// Find returns the cached example whose tokens are tokens.
func (c *Cache) Find(tokens []int32) (row int, ok bool) {
	for _, r := range c.index[hashTokens(tokens)] {
		if slices.Equal(c.tokens[c.offs[r]:c.offs[r+1]], tokens) {
			return int(r), true
		}
	}
	return 0, false
}

// Example returns the cached top-k of example row, both row-major [T, K]
// for its T tokens.
func (c *Cache) Example(row int) (ids []int32, logprobs []float32, err error) {
	if row < 0 || row >= c.Len() {
		return nil, nil, fmt.Errorf("topk: %s: row %d is out of range (the file holds %d rows)", c.path, row, c.Len())
	}
	i, l, err := c.view(row)
	if err != nil {
		return nil, nil, err
	}
	return slices.Clone(i), slices.Clone(l), nil
}

// Batch returns the targets of cached examples laid out one per batch row
// and padded to length: batch row i holds example rows[i] at positions
// 0..T-1, or only padding when rows[i] < 0. Use it when the batch rows are
// known to be these examples (Verify checks it); ForBatch matches them by
// content instead.
func (c *Cache) Batch(rows []int, length int) (*Targets, error) {
	out := newTargets(len(rows), length, c.k)
	for i, r := range rows {
		if r < 0 {
			continue
		}
		if r >= c.Len() {
			return nil, fmt.Errorf("topk: %s: batch row %d: row %d is out of range (the file holds %d rows)", c.path, i, r, c.Len())
		}
		if err := c.place(out, i, 0, r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Verify checks that batch row i of b holds exactly cached example rows[i]
// (its tokens from position 0, then padding), or only padding when
// rows[i] < 0: the check that goes with Batch. The error names the row
// and the first differing token.
func (c *Cache) Verify(rows []int, b *data.Batch) error {
	if len(rows) != b.Size {
		return fmt.Errorf("topk: %s: %d rows for a batch of %d", c.path, len(rows), b.Size)
	}
	for i, r := range rows {
		ids, mask := b.At(b.InputIDs, i), b.At(b.AttentionMask, i)
		var want []int32
		if r >= 0 {
			if r >= c.Len() {
				return fmt.Errorf("topk: %s: batch row %d: row %d is out of range (the file holds %d rows)", c.path, i, r, c.Len())
			}
			want = c.tokens[c.offs[r]:c.offs[r+1]]
		}
		if len(want) > b.Length {
			return fmt.Errorf("topk: %s: row %d: column %s has %d tokens, more than the batch length %d", c.path, r, ColInputIDs, len(want), b.Length)
		}
		for t := range b.Length {
			switch {
			case t < len(want) && (mask[t] == 0 || ids[t] != want[t]):
				return fmt.Errorf("topk: %s: row %d: column %s differs from batch row %d at token %d (cached %d, batch %d, attention_mask %d): did the data or the tokenizer change since the cache was written?",
					c.path, r, ColInputIDs, i, t, want[t], ids[t], mask[t])
			case t >= len(want) && mask[t] != 0:
				return fmt.Errorf("topk: %s: row %d: batch row %d has more tokens than the cached %s (%d): did the data or the tokenizer change since the cache was written?",
					c.path, r, i, ColInputIDs, len(want))
			}
		}
	}
	return nil
}

// ForBatch returns the targets of b: every example of b (each segment of
// each row, see data.Batch; a row's non-padding tokens when SegmentIDs is
// nil) is looked up by its tokens among the cached examples and gets its
// targets at its positions. An example found nowhere is an error naming
// the batch row: the data, tokenizer or truncation changed since the cache
// was written. Give it the batch as the loader made it, before any
// augmentation that changes tokens (token dropout).
func (c *Cache) ForBatch(b *data.Batch) (*Targets, error) {
	L := b.Length
	if len(b.InputIDs) != b.Size*L || len(b.AttentionMask) != b.Size*L || b.SegmentIDs != nil && len(b.SegmentIDs) != b.Size*L {
		return nil, fmt.Errorf("topk: %s: malformed batch: fields of %d, %d and %d values for shape [%d, %d]",
			c.path, len(b.InputIDs), len(b.AttentionMask), len(b.SegmentIDs), b.Size, L)
	}
	seg := b.SegmentIDs
	if seg == nil {
		seg = b.AttentionMask
	}
	out := newTargets(b.Size, L, c.k)
	for i := range b.Size {
		s, ids := b.At(seg, i), b.At(b.InputIDs, i)
		for j := 0; j < L; {
			if s[j] == 0 {
				j++
				continue
			}
			end := j
			for end < L && s[end] == s[j] {
				end++
			}
			r, ok := c.Find(ids[j:end])
			if !ok {
				return nil, fmt.Errorf("topk: %s: batch row %d, tokens %d-%d (%d tokens, segment %d): no cached example has these %s: did the data, the tokenizer or max_length change since the cache was written?",
					c.path, i, j, end-1, end-j, s[j], ColInputIDs)
			}
			if err := c.place(out, i, j, r); err != nil {
				return nil, err
			}
			j = end
		}
	}
	return out, nil
}

// place copies example row's targets to batch row i from position start.
func (c *Cache) place(out *Targets, i, start, row int) error {
	T := c.offs[row+1] - c.offs[row]
	if start+T > out.Length {
		return fmt.Errorf("topk: %s: row %d: column %s has %d tokens, more than fit batch row %d (length %d, from position %d)",
			c.path, row, ColInputIDs, T, i, out.Length, start)
	}
	ids, lps, err := c.view(row)
	if err != nil {
		return err
	}
	at := (i*out.Length + start) * c.k
	copy(out.IDs[at:], ids)
	copy(out.LogProbs[at:], lps)
	return nil
}

// view returns example row's top-k data (not to be modified).
func (c *Cache) view(row int) (ids []int32, lps []float32, err error) {
	g, _ := slices.BinarySearch(c.groupStart, row+1)
	g-- // the last group starting at or before row
	c.mu.Lock()
	defer c.mu.Unlock()
	grp, ok := c.groups[g]
	if !ok {
		if grp, err = c.decode(g); err != nil {
			return nil, nil, err
		}
		c.groups[g] = grp
		c.held += grp.bytes
	}
	c.lru = append(slices.DeleteFunc(c.lru, func(x int) bool { return x == g }), g)
	c.evict(g)
	base := c.offs[c.groupStart[g]]
	from, to := (c.offs[row]-base)*c.k, (c.offs[row+1]-base)*c.k
	return grp.ids[from:to], grp.lps[from:to], nil
}

// evict drops the least recently used row groups, but keep, past the
// memory budget. c.mu is held.
func (c *Cache) evict(keep int) {
	for i := 0; c.held > c.memory && i < len(c.lru); {
		g := c.lru[i]
		if g == keep {
			i++
			continue
		}
		c.held -= c.groups[g].bytes
		delete(c.groups, g)
		c.lru = slices.Delete(c.lru, i, i+1)
	}
}

// decode reads and checks the top-k columns of row group g.
func (c *Cache) decode(g int) (*group, error) {
	rg := c.pf.RowGroups()[g]
	first, last := c.groupStart[g], c.groupStart[g+1]
	ids, idOffs, err := readColumn(rg, c.colIDs, c.defIDs, parquet.Value.Int32)
	if err != nil {
		return nil, fmt.Errorf("topk: %s: row group %d: column %s: %v", c.path, g, ColTopKIDs, err)
	}
	lps, lpOffs, err := readColumn(rg, c.colLPs, c.defLPs, parquet.Value.Float)
	if err != nil {
		return nil, fmt.Errorf("topk: %s: row group %d: column %s: %v", c.path, g, ColTopKLogProbs, err)
	}
	for _, col := range []struct {
		name string
		offs []int
	}{{ColTopKIDs, idOffs}, {ColTopKLogProbs, lpOffs}} {
		if len(col.offs)-1 != last-first {
			return nil, fmt.Errorf("topk: %s: row group %d: column %s has %d rows, column %s %d", c.path, g, col.name, len(col.offs)-1, ColInputIDs, last-first)
		}
		for r := first; r < last; r++ {
			T := c.offs[r+1] - c.offs[r]
			if n := col.offs[r-first+1] - col.offs[r-first]; n != T*c.k {
				hint := ""
				if n%T == 0 {
					hint = fmt.Sprintf(": %d per token, does %s match the data?", n/T, MetaK)
				}
				return nil, fmt.Errorf("topk: %s: row %d: column %s has %d values, want %d (%d tokens of %s × k=%d)%s",
					c.path, r, col.name, n, T*c.k, T, ColInputIDs, c.k, hint)
			}
		}
	}
	for q, id := range ids {
		if id < 0 || int(id) >= c.vocab {
			r, _ := slices.BinarySearch(idOffs, q+1)
			return nil, fmt.Errorf("topk: %s: row %d: column %s: token id %d is outside the vocabulary (size %d)", c.path, first+r-1, ColTopKIDs, id, c.vocab)
		}
	}
	for q, v := range lps {
		if v != v || v > 1e-3 {
			r, _ := slices.BinarySearch(lpOffs, q+1)
			return nil, fmt.Errorf("topk: %s: row %d: column %s: %g is not a log-probability", c.path, first+r-1, ColTopKLogProbs, v)
		}
		lps[q] = max(v, PadLogProb) // -Inf from another writer
	}
	return &group{ids: ids, lps: lps, bytes: int64(4*len(ids) + 4*len(lps))}, nil
}

// readColumn decodes leaf column col (a list of maxDef definition levels)
// of rg into one flat slice; row r is flat[offs[r]:offs[r+1]].
func readColumn[T any](rg parquet.RowGroup, col, maxDef int, conv func(parquet.Value) T) (flat []T, offs []int, err error) {
	err = recoverPanic(func() error {
		chunk := rg.ColumnChunks()[col]
		flat = make([]T, 0, chunk.NumValues())
		pages := chunk.Pages()
		defer pages.Close()
		buf := make([]parquet.Value, 4096)
		for {
			page, err := pages.ReadPage()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			vals := page.Values()
			for {
				n, err := vals.ReadValues(buf)
				for _, v := range buf[:n] {
					if v.RepetitionLevel() == 0 {
						offs = append(offs, len(flat))
					} else if len(offs) == 0 {
						return fmt.Errorf("a row starts with repetition level %d: %w", v.RepetitionLevel(), parquet.ErrCorrupted)
					}
					if v.DefinitionLevel() == maxDef {
						flat = append(flat, conv(v))
					}
				}
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return err
				}
				if n == 0 {
					return io.ErrNoProgress
				}
			}
			parquet.Release(page)
		}
		offs = append(offs, len(flat))
		return nil
	})
	return flat, offs, err
}

// checkTrailer checks the last 8 bytes of a Parquet file (footer length and
// magic) before parquet-go reads the footer, which would allocate whatever
// length a corrupt trailer declares.
func checkTrailer(f *os.File, size int64) error {
	const minSize = 4 + 4 + 4
	if size < minSize {
		return fmt.Errorf("%d bytes is too short", size)
	}
	var trailer [8]byte
	if _, err := f.ReadAt(trailer[:], size-8); err != nil {
		return err
	}
	if m := string(trailer[4:]); m != "PAR1" {
		return fmt.Errorf("no Parquet magic at the end of the file (found %q)", m)
	}
	if n := int64(binary.LittleEndian.Uint32(trailer[:4])); n > size-minSize {
		return fmt.Errorf("the footer length %d does not fit in the file's %d bytes", n, size)
	}
	return nil
}

// hashTokens is FNV-1a over the tokens' 32-bit words.
func hashTokens(tokens []int32) uint64 {
	h := uint64(14695981039346656037)
	for _, t := range tokens {
		h ^= uint64(uint32(t))
		h *= 1099511628211
	}
	return h ^ uint64(len(tokens))
}
