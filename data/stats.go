package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
)

// StatsOptions configures Stats.
type StatsOptions struct {
	// Source names the files (paths or globs) and how to read them.
	Source SourceConfig
	// Tokenize says how examples are tokenized, as for training.
	Tokenize TokenizeConfig
	// Encoder is the tokenizer.
	Encoder Encoder
	// Chat renders messages datasets; it may be nil for other shapes.
	Chat ChatRenderer
}

// LengthStats are the token lengths of a dataset's examples, before any
// truncation. Percentiles use the nearest-rank method: pN is the smallest
// length that at least N% of the examples do not exceed.
type LengthStats struct {
	// Shape is the dataset's shape.
	Shape Shape
	// Counts tells how many rows were read and dropped.
	Counts Counts
	// Examples is the number of examples measured.
	Examples int
	// Tokens and LossTokens total the tokens and the labelled tokens.
	Tokens, LossTokens int64
	// Mean is Tokens / Examples.
	Mean float64
	// P50, P90, P95, P99 and Max are length percentiles in tokens.
	P50, P90, P95, P99, Max int
}

// Stats tokenizes every example and reports the distribution of their
// lengths, to choose MaxLength and Buckets. When w is not nil it prints a
// table to it.
func Stats(ctx context.Context, opts StatsOptions, w io.Writer) (LengthStats, error) {
	if opts.Encoder == nil {
		return LengthStats{}, errors.New("stats: no tokenizer given")
	}
	pre, err := NewPreprocessor(opts.Encoder, opts.Chat, opts.Tokenize)
	if err != nil {
		return LengthStats{}, err
	}
	ds, err := Open(ctx, opts.Source)
	if err != nil {
		return LengthStats{}, err
	}
	if ds.Shape() == ShapeMessages && opts.Chat == nil {
		return LengthStats{}, errors.New("stats: a messages dataset needs a chat template to count its tokens")
	}
	st := LengthStats{Shape: ds.Shape()}
	var lengths []int
	st.Counts, err = ds.Each(ctx, func(ex Example) error {
		s, err := pre.Encode(ex)
		if err != nil {
			return fmt.Errorf("%s, row %d: %w", ex.File, ex.Row, err)
		}
		lengths = append(lengths, s.Len())
		st.Tokens += int64(s.Len())
		st.LossTokens += int64(s.LossTokens())
		return nil
	})
	if err != nil {
		return LengthStats{}, err
	}
	st.Examples = len(lengths)
	if st.Examples > 0 {
		slices.Sort(lengths)
		st.Mean = float64(st.Tokens) / float64(st.Examples)
		st.P50 = percentile(lengths, 50)
		st.P90 = percentile(lengths, 90)
		st.P95 = percentile(lengths, 95)
		st.P99 = percentile(lengths, 99)
		st.Max = lengths[len(lengths)-1]
	}
	if w != nil {
		if err := st.print(w); err != nil {
			return st, err
		}
	}
	return st, nil
}

// percentile returns the nearest-rank p-th percentile of sorted values.
func percentile(sorted []int, p int) int {
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	return sorted[max(rank, 1)-1]
}

func (st LengthStats) print(w io.Writer) error {
	c := st.Counts
	_, err := fmt.Fprintf(w, `shape        %s
rows         %d
examples     %d (null rows skipped: %d, outside the split: %d)
tokens       %d (mean %.1f per example)
loss tokens  %d
p50          %d
p90          %d
p95          %d
p99          %d
max          %d
`, st.Shape, c.Rows, st.Examples, c.Nulls, c.OutOfSplit, st.Tokens, st.Mean, st.LossTokens, st.P50, st.P90, st.P95, st.P99, st.Max)
	return err
}
