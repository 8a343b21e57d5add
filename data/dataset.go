package data

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lethe-ml/lethe/data/chat"
	"github.com/parquet-go/parquet-go"
)

// Example is one row of a dataset, in the fields of its Shape.
type Example struct {
	// Shape says which of the fields below hold the example.
	Shape Shape
	// Text is the text of a ShapeText example.
	Text string
	// Prompt and Completion are the halves of a ShapePromptCompletion example.
	Prompt, Completion string
	// Messages is the conversation of a ShapeMessages example.
	Messages []chat.Message
	// Split is the value of the split column when Split.Column is set.
	Split string
	// File and Row locate the example: Row counts the file's rows from 0.
	File string
	Row  int64
}

// Dataset is a set of Parquet files read with one SourceConfig. Open reads
// only the files' footers; rows are streamed one row group at a time, and
// within a row group one page at a time per column, reading only the
// columns the shape and split need. A Dataset holds no open files and may be
// read by several goroutines at once.
type Dataset struct {
	cfg   SourceConfig
	shape Shape
	files []fileInfo
	rows  int64
}

type fileInfo struct {
	path      string
	layout    layout
	rowGroups []int64 // rows in each row group
	firstRow  int64   // index of the file's first row among all files' rows
}

// unit is one row group: the smallest piece of a dataset that is read at once.
type unit struct {
	file, rowGroup int
	rows           int64
}

// Counts tells what a read went through.
type Counts struct {
	// Rows is how many rows were read.
	Rows int64
	// Examples is how many rows were passed on.
	Examples int64
	// Nulls is how many rows were dropped for a null field (NullSkip).
	Nulls int64
	// OutOfSplit is how many rows the Split left out.
	OutOfSplit int64
}

func (c *Counts) add(o Counts) {
	c.Rows += o.Rows
	c.Examples += o.Examples
	c.Nulls += o.Nulls
	c.OutOfSplit += o.OutOfSplit
}

// Open validates cfg, expands its globs, reads every file's footer and
// checks that each file has the columns of the shape (detected from the
// first file when cfg.Shape is empty). Errors name the file and the column.
func Open(ctx context.Context, cfg SourceConfig) (*Dataset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	paths, err := expandFiles(cfg.Files)
	if err != nil {
		return nil, err
	}
	d := &Dataset{cfg: cfg, shape: cfg.Shape}
	for _, path := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fi, err := d.openFile(path)
		if err != nil {
			return nil, err
		}
		fi.firstRow = d.rows
		for _, n := range fi.rowGroups {
			d.rows += n
		}
		d.files = append(d.files, fi)
	}
	return d, nil
}

func (d *Dataset) openFile(path string) (fileInfo, error) {
	f, pf, err := openParquet(path)
	if err != nil {
		return fileInfo{}, err
	}
	defer f.Close()
	root := pf.Root()
	if d.shape == ShapeAuto {
		if d.shape, err = detectShape(root, d.cfg.Columns); err != nil {
			return fileInfo{}, fmt.Errorf("open %s: %w", path, err)
		}
	}
	l, err := resolveLayout(root, d.shape, d.cfg)
	if err != nil {
		return fileInfo{}, fmt.Errorf("open %s: %w", path, err)
	}
	fi := fileInfo{path: path, layout: l}
	for _, rg := range pf.RowGroups() {
		fi.rowGroups = append(fi.rowGroups, rg.NumRows())
	}
	return fi, nil
}

// expandFiles turns paths and glob patterns into a list of files. A pattern
// that matches nothing and a path that does not exist are errors.
func expandFiles(patterns []string) ([]string, error) {
	var out []string
	for _, p := range patterns {
		if !strings.ContainsAny(p, `*?[\`) {
			st, err := os.Stat(p)
			if err != nil {
				return nil, err // *PathError names the file
			}
			if st.IsDir() {
				return nil, fmt.Errorf("%s is a directory; give its files or a glob such as %s", p, filepath.Join(p, "*.parquet"))
			}
			out = append(out, p)
			continue
		}
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("glob %q: %w", p, err)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("no files match %q", p)
		}
		out = append(out, matches...) // Glob sorts them
	}
	return out, nil
}

// Shape returns the shape the dataset is read as.
func (d *Dataset) Shape() Shape { return d.shape }

// Config returns the configuration with its defaults filled in.
func (d *Dataset) Config() SourceConfig { return d.cfg }

// Files returns the files read, globs expanded, in reading order.
func (d *Dataset) Files() []string {
	out := make([]string, len(d.files))
	for i, f := range d.files {
		out[i] = f.path
	}
	return out
}

// NumRows returns the number of rows in all files, from their metadata,
// before the split and the null policy drop any.
func (d *Dataset) NumRows() int64 { return d.rows }

// units lists every row group of every file in file order.
func (d *Dataset) units() []unit {
	var out []unit
	for i, f := range d.files {
		for j, n := range f.rowGroups {
			out = append(out, unit{file: i, rowGroup: j, rows: n})
		}
	}
	return out
}

// Each calls fn with every example in file and row order, streaming one row
// group at a time. It stops at the first error, from reading or from fn.
func (d *Dataset) Each(ctx context.Context, fn func(Example) error) (Counts, error) {
	r := d.newReader()
	defer r.close()
	var total Counts
	for _, u := range d.units() {
		c, err := r.readUnit(ctx, u, fn)
		total.add(c)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// reader reads row groups, keeping the last file it used open.
type reader struct {
	d     *Dataset
	split *rowSplit
	file  int
	f     *os.File
	pf    *parquet.File
}

func (d *Dataset) newReader() *reader {
	return &reader{d: d, split: newRowSplit(d.cfg.Split, d.rows), file: -1}
}

func (r *reader) close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f, r.pf, r.file = nil, nil, -1
	return err
}

// open makes file i the open one.
func (r *reader) open(i int) error {
	if r.file == i {
		return nil
	}
	r.close()
	f, pf, err := openParquet(r.d.files[i].path)
	if err != nil {
		return err
	}
	if got, want := len(pf.RowGroups()), len(r.d.files[i].rowGroups); got != want {
		f.Close()
		return fmt.Errorf("read %s: the file changed since it was opened (%d row groups, was %d)", r.d.files[i].path, got, want)
	}
	r.f, r.pf, r.file = f, pf, i
	return nil
}

// readUnit calls fn with the examples of one row group that pass the null
// policy and the split. Errors name the file, row group and column; errors
// from fn come back as they are.
func (r *reader) readUnit(ctx context.Context, u unit, fn func(Example) error) (Counts, error) {
	fi := &r.d.files[u.file]
	if err := r.open(u.file); err != nil {
		return Counts{}, err
	}
	wrap := func(err error) error { return fmt.Errorf("read %s: row group %d: %w", fi.path, u.rowGroup, err) }
	var g *rowGroupReader
	if err := recoverPanic(func() error { g = newRowGroupReader(r.pf, fi, u); return nil }); err != nil {
		return Counts{}, wrap(err)
	}
	defer g.close()
	var counts Counts
	for range u.rows {
		if counts.Rows%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return counts, err
			}
		}
		var ex Example
		var null string
		if err := recoverPanic(func() (err error) { null, err = g.next(&ex); return err }); err != nil {
			return counts, wrap(err)
		}
		counts.Rows++
		if !r.split.keep(fi.firstRow+ex.Row, ex.Split) {
			counts.OutOfSplit++
			continue
		}
		if null != "" {
			switch r.d.cfg.Nulls {
			case NullError:
				return counts, wrap(fmt.Errorf("row %d: column %q is null (set source.nulls to %q or %q to read such rows)", ex.Row, null, NullSkip, NullEmpty))
			case NullSkip:
				counts.Nulls++
				continue
			}
		}
		counts.Examples++
		if err := fn(ex); err != nil {
			return counts, err
		}
	}
	return counts, nil
}

// rowGroupReader assembles the rows of one row group from its leaf columns.
type rowGroupReader struct {
	fi      *fileInfo
	readers []*leafReader
	cells   [][]cell
	row     int64 // index in the file of the next row
}

func newRowGroupReader(pf *parquet.File, fi *fileInfo, u unit) *rowGroupReader {
	chunks := pf.RowGroups()[u.rowGroup].ColumnChunks()
	leaves := fi.layout.leaves()
	g := &rowGroupReader{fi: fi, cells: make([][]cell, len(leaves))}
	for _, leaf := range leaves {
		g.readers = append(g.readers, newLeafReader(chunks[leaf.index], leaf.name))
	}
	for i := range u.rowGroup {
		g.row += fi.rowGroups[i]
	}
	return g
}

// next decodes the next row into ex; null names its first null field.
func (g *rowGroupReader) next(ex *Example) (null string, err error) {
	for i, lr := range g.readers {
		err := recoverPanic(func() (err error) {
			g.cells[i], err = lr.readRow(g.cells[i][:0])
			return err
		})
		if err != nil {
			return "", fmt.Errorf("column %q, row %d: %w", lr.name, g.row, err)
		}
	}
	*ex = Example{File: g.fi.path, Row: g.row}
	g.row++
	null, err = g.fi.layout.decodeRow(g.cells, ex)
	if err != nil {
		return "", fmt.Errorf("row %d: %w", ex.Row, err)
	}
	return null, nil
}

func (g *rowGroupReader) close() {
	for _, lr := range g.readers {
		lr.close()
	}
}
