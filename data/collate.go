package data

import (
	"errors"
	"fmt"
	"slices"
)

// CollateConfig says how tokenized examples become fixed-shape batches.
//
// GoMLX compiles one graph per input shape, so batches come in few shapes:
// every batch has BatchSize rows, and its length is one of Buckets (the
// smallest that holds its longest example) or, with Packing, MaxLength.
type CollateConfig struct {
	// BatchSize is the number of rows of every batch.
	BatchSize int `yaml:"batch_size" json:"batch_size"`
	// MaxLength truncates examples (keeping their start) and is the longest
	// padded length.
	MaxLength int `yaml:"max_length" json:"max_length"`
	// Buckets are the padded lengths, ascending; MaxLength is added when
	// missing. Empty means every batch is padded to MaxLength.
	Buckets []int `yaml:"buckets,omitempty" json:"buckets,omitempty"`
	// Packing concatenates examples into rows of MaxLength tokens; see Batch
	// for the position and segment ids that keep them apart. Excludes Buckets.
	Packing bool `yaml:"packing,omitempty" json:"packing,omitempty"`
	// PadID is the token id of padding.
	PadID int `yaml:"pad_id" json:"pad_id"`
}

// Validate checks c.
func (c CollateConfig) Validate() error {
	var errs []error
	if c.BatchSize <= 0 {
		errs = append(errs, fmt.Errorf("collate.batch_size: must be positive, got %d", c.BatchSize))
	}
	if c.MaxLength <= 1 {
		errs = append(errs, fmt.Errorf("collate.max_length: must be at least 2, got %d", c.MaxLength))
	}
	if c.PadID < 0 {
		errs = append(errs, fmt.Errorf("collate.pad_id: must be >= 0, got %d", c.PadID))
	}
	if c.Packing && len(c.Buckets) > 0 {
		errs = append(errs, errors.New("collate: packing fills every row to max_length, so buckets do not apply; set one of them"))
	}
	for i, b := range c.Buckets {
		switch {
		case b <= 0:
			errs = append(errs, fmt.Errorf("collate.buckets[%d]: must be positive, got %d", i, b))
		case i > 0 && b <= c.Buckets[i-1]:
			errs = append(errs, fmt.Errorf("collate.buckets[%d]: must be larger than the previous bucket (%d), got %d", i, c.Buckets[i-1], b))
		case b > c.MaxLength:
			errs = append(errs, fmt.Errorf("collate.buckets[%d]: %d is larger than max_length %d", i, b, c.MaxLength))
		}
	}
	return errors.Join(errs...)
}

// lengths returns the padded lengths, ascending, ending with MaxLength.
func (c CollateConfig) lengths() []int {
	out := slices.Clone(c.Buckets)
	if len(out) == 0 || out[len(out)-1] != c.MaxLength {
		out = append(out, c.MaxLength)
	}
	return out
}

// bucket returns the index in lengths of the smallest length >= n.
func bucket(lengths []int, n int) int {
	i, _ := slices.BinarySearch(lengths, n)
	return min(i, len(lengths)-1)
}

// Batch is a batch of token sequences for a causal LM. Every field is a
// row-major [Size, Length] matrix.
//
// A row holds one example, or with packing several examples one after the
// other. PositionIDs restart at 0 at each example's first token, and
// SegmentIDs number the examples of a row 1, 2, ... with 0 for padding, so a
// model builds the block-diagonal causal mask of a packed row as
//
//	attend(i, j) = SegmentIDs[i] == SegmentIDs[j] && SegmentIDs[i] != 0 && j <= i
//
// and never lets a token see another example. Labels are IgnoreIndex at
// every example's first token and on padding, so the shifted loss never
// predicts one example from another. Rows that hold no example (the last
// batch of a window may have fewer examples than rows) are all padding:
// their AttentionMask is all 0, so use a large finite negative, not -Inf,
// when masking scores.
type Batch struct {
	// Size and Length are the shape of every field: Size rows of Length tokens.
	Size, Length int
	// InputIDs are the token ids, PadID on padding.
	InputIDs []int32
	// Labels are the targets (see Sample.Labels), IgnoreIndex where there is no loss.
	Labels []int32
	// AttentionMask is 1 on tokens and 0 on padding.
	AttentionMask []int32
	// PositionIDs are each token's position in its own example, 0 on padding.
	PositionIDs []int32
	// SegmentIDs number the examples of each row from 1; padding is 0.
	SegmentIDs []int32
	// Examples, Tokens and LossTokens count the examples, the non-padding
	// tokens and the labels that are not IgnoreIndex.
	Examples, Tokens, LossTokens int
	// Extra are side inputs an objective reads with the tokens, e.g. the
	// offline teacher's top-k log-probabilities of distillation
	// (train.Inputs.Extra holds them as graph nodes).
	Extra []Extra
}

// Extra is a named side input of a batch: K values per token, [Size,
// Length, K] row-major, in Int32 or in Float32.
type Extra struct {
	Name    string
	K       int
	Int32   []int32
	Float32 []float32
}

// At returns the field's row i, e.g. b.At(b.InputIDs, 0).
func (b *Batch) At(field []int32, i int) []int32 { return field[i*b.Length : (i+1)*b.Length] }

// NewBatch lays out rows (each a list of samples packed one after the
// other) as a batch of size rows of length tokens, padding missing rows and
// the end of every row.
func NewBatch(rows [][]Sample, size, length, padID int) (*Batch, error) {
	if len(rows) > size {
		return nil, fmt.Errorf("collate: %d rows do not fit a batch of %d", len(rows), size)
	}
	n := size * length
	b := &Batch{
		Size: size, Length: length,
		InputIDs:      make([]int32, n),
		Labels:        make([]int32, n),
		AttentionMask: make([]int32, n),
		PositionIDs:   make([]int32, n),
		SegmentIDs:    make([]int32, n),
	}
	for i := range b.InputIDs {
		b.InputIDs[i] = int32(padID)
		b.Labels[i] = IgnoreIndex
	}
	for r, row := range rows {
		t := r * length
		for seg, s := range row {
			if t+s.Len() > (r+1)*length {
				return nil, fmt.Errorf("collate: row %d holds more than %d tokens", r, length)
			}
			for j := range s.IDs {
				b.InputIDs[t] = s.IDs[j]
				b.Labels[t] = s.Labels[j]
				if j == 0 {
					b.Labels[t] = IgnoreIndex
				}
				b.AttentionMask[t] = 1
				b.PositionIDs[t] = int32(j)
				b.SegmentIDs[t] = int32(seg + 1)
				if b.Labels[t] != IgnoreIndex {
					b.LossTokens++
				}
				t++
			}
			b.Tokens += s.Len()
			b.Examples++
		}
	}
	return b, nil
}
