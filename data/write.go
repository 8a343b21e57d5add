package data

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lethe-ml/lethe/data/chat"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
)

// DefaultRowGroupRows is the default WriteOptions.RowGroupRows.
const DefaultRowGroupRows = 4096

// WriteOptions configures the Parquet files lethe writes.
type WriteOptions struct {
	// Compression is "zstd" (the default), "snappy", "gzip", "lz4" or "none".
	Compression string `yaml:"compression,omitempty" json:"compression,omitempty"`
	// RowGroupRows is the number of rows per row group [4096]. Readers hold
	// one row group at a time, and a Loader shuffles the order of row groups.
	RowGroupRows int64 `yaml:"row_group_rows,omitempty" json:"row_group_rows,omitempty"`
}

func (o WriteOptions) parquetOptions() ([]parquet.WriterOption, error) {
	var codec compress.Codec
	switch o.Compression {
	case "", "zstd":
		codec = &parquet.Zstd
	case "snappy":
		codec = &parquet.Snappy
	case "gzip":
		codec = &parquet.Gzip
	case "lz4":
		codec = &parquet.Lz4Raw
	case "none":
		codec = &parquet.Uncompressed
	default:
		return nil, fmt.Errorf("write: unknown compression %q (want zstd, snappy, gzip, lz4 or none)", o.Compression)
	}
	if o.RowGroupRows < 0 {
		return nil, fmt.Errorf("write: row_group_rows must be >= 0, got %d", o.RowGroupRows)
	}
	rows := o.RowGroupRows
	if rows == 0 {
		rows = DefaultRowGroupRows
	}
	return []parquet.WriterOption{parquet.Compression(codec), parquet.MaxRowsPerRowGroup(rows)}, nil
}

// Writer writes rows of the struct type T to a Parquet file; the columns
// follow T's `parquet:"name"` field tags as parquet-go reads them (slices
// need `parquet:"name,list"` to be written as standard lists).
//
// The rows go to a temporary file in the destination's directory, which
// Close renames over the destination once everything is written and synced:
// the destination is either absent, its old version, or complete. Abort,
// or a failed Close, removes the temporary file; defer Abort right after
// Create.
type Writer[T any] struct {
	path, tmp string
	f         *os.File
	w         *parquet.GenericWriter[T]
	finished  bool
}

// Create starts writing path.
func Create[T any](path string, opts WriteOptions) (*Writer[T], error) {
	popts, err := opts.parquetOptions()
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	w := &Writer[T]{path: path, tmp: f.Name(), f: f}
	err = recoverPanic(func() error {
		w.w = parquet.NewGenericWriter[T](f, popts...)
		return nil
	})
	if err != nil {
		w.Abort()
		return nil, fmt.Errorf("write %s: cannot write rows of type %T: %w", path, *new(T), err)
	}
	return w, nil
}

// Write appends rows.
func (w *Writer[T]) Write(rows ...T) error {
	if w.finished {
		return fmt.Errorf("write %s: the writer is closed", w.path)
	}
	err := recoverPanic(func() error {
		_, err := w.w.Write(rows)
		return err
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	return nil
}

// Close finishes the file and moves it to its destination.
func (w *Writer[T]) Close() error {
	if w.finished {
		return nil
	}
	err := recoverPanic(w.w.Close)
	if err == nil {
		err = w.f.Sync()
	}
	if err == nil {
		err = w.f.Chmod(0o644)
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.tmp, w.path)
	}
	w.finished = true
	if err != nil {
		os.Remove(w.tmp)
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	return nil
}

// Abort drops the temporary file; after Close it does nothing.
func (w *Writer[T]) Abort() error {
	if w.finished {
		return nil
	}
	w.finished = true
	w.f.Close()
	if err := os.Remove(w.tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("write %s: remove temporary file: %w", w.path, err)
	}
	return nil
}

// WriteFile writes rows to path atomically (see Writer).
func WriteFile[T any](path string, rows []T, opts WriteOptions) error {
	w, err := Create[T](path, opts)
	if err != nil {
		return err
	}
	defer w.Abort()
	if err := w.Write(rows...); err != nil {
		return err
	}
	return w.Close()
}

// TextRow is a row of a ShapeText file.
type TextRow struct {
	Text string `parquet:"text"`
}

// PromptCompletionRow is a row of a ShapePromptCompletion file.
type PromptCompletionRow struct {
	Prompt     string `parquet:"prompt"`
	Completion string `parquet:"completion"`
}

// MessagesRow is a row of a ShapeMessages file: a standard Parquet list of
// {role, content} structs, the layout pyarrow writes for a list of dicts.
type MessagesRow struct {
	Messages []MessageRow `parquet:"messages,list"`
}

// MessageRow is one message of a MessagesRow.
type MessageRow struct {
	Role    string `parquet:"role"`
	Content string `parquet:"content"`
}

// WriteExamples writes examples of one shape to path atomically, in that
// shape's default columns ("text"; "prompt", "completion"; "messages" with
// "role" and "content").
func WriteExamples(path string, shape Shape, examples []Example, opts WriteOptions) error {
	for i, ex := range examples {
		if ex.Shape != shape {
			return fmt.Errorf("write %s: example %d has shape %q, not %q", path, i, ex.Shape, shape)
		}
	}
	switch shape {
	case ShapeText:
		rows := make([]TextRow, len(examples))
		for i, ex := range examples {
			rows[i] = TextRow{Text: ex.Text}
		}
		return WriteFile(path, rows, opts)
	case ShapePromptCompletion:
		rows := make([]PromptCompletionRow, len(examples))
		for i, ex := range examples {
			rows[i] = PromptCompletionRow{Prompt: ex.Prompt, Completion: ex.Completion}
		}
		return WriteFile(path, rows, opts)
	case ShapeMessages:
		rows := make([]MessagesRow, len(examples))
		for i, ex := range examples {
			rows[i] = MessagesRow{Messages: messageRows(ex.Messages)}
		}
		return WriteFile(path, rows, opts)
	}
	return fmt.Errorf("write %s: unknown shape %q", path, shape)
}

func messageRows(msgs []chat.Message) []MessageRow {
	out := make([]MessageRow, len(msgs))
	for i, m := range msgs {
		out[i] = MessageRow{Role: m.Role, Content: m.Content}
	}
	return out
}
