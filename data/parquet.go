package data

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/parquet-go/parquet-go"
)

// readBufferSize is how much parquet-go reads at a time from each column chunk.
const readBufferSize = 256 << 10

// openParquet opens path and parses its footer; only the footer is read.
// The caller closes the returned *os.File. Panics of the Parquet library on
// malformed metadata come back as errors.
func openParquet(path string) (f *os.File, pf *parquet.File, err error) {
	f, err = os.Open(path)
	if err != nil {
		return nil, nil, err // *PathError already names the file
	}
	defer func() {
		if err != nil {
			f.Close()
			f = nil
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if err := checkTrailer(f, st.Size()); err != nil {
		return nil, nil, fmt.Errorf("open %s: not a readable Parquet file (truncated or corrupt?): %w", path, err)
	}
	err = recoverPanic(func() error {
		var err error
		pf, err = parquet.OpenFile(f, st.Size(),
			parquet.SkipPageIndex(true),
			parquet.SkipBloomFilters(true),
			parquet.ReadBufferSize(readBufferSize))
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: not a readable Parquet file (truncated or corrupt?): %w", path, err)
	}
	return f, pf, nil
}

// checkTrailer checks the last 8 bytes of a Parquet file (footer length and
// magic) before parquet-go reads the footer: it would allocate whatever
// length a corrupt trailer declares, up to 2 GiB, before finding that it
// does not fit the file.
func checkTrailer(f *os.File, size int64) error {
	const minSize = 4 + 4 + 4 // magic, footer length, magic (an empty footer cannot be valid, but let parquet-go say so)
	if size < minSize {
		return fmt.Errorf("%d bytes is too short", size)
	}
	var trailer [8]byte
	if _, err := f.ReadAt(trailer[:], size-8); err != nil {
		return err
	}
	if m := string(trailer[4:]); m != "PAR1" && m != "PARE" {
		return fmt.Errorf("no Parquet magic at the end of the file (found %q)", m)
	}
	if n := int64(binary.LittleEndian.Uint32(trailer[:4])); n > size-minSize {
		return fmt.Errorf("the footer length %d does not fit in the file's %d bytes", n, size)
	}
	return nil
}

// recoverPanic runs fn and turns a panic inside it into an error.
func recoverPanic(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parquet decoder panicked: %v", r)
		}
	}()
	return fn()
}

// cell is one value of a leaf column, copied out of the page that held it.
type cell struct {
	rep, def int
	null     bool
	s        string
}

// leafReader streams the values of one leaf column of one row group, page
// by page, and groups them into rows using the repetition levels. Only the
// current page is held in memory.
type leafReader struct {
	name  string
	kind  parquet.Kind
	pages parquet.Pages
	vals  parquet.ValueReader
	buf   []parquet.Value
	i, n  int
	done  bool
}

func newLeafReader(chunk parquet.ColumnChunk, name string) *leafReader {
	return &leafReader{
		name:  name,
		kind:  chunk.Type().Kind(),
		pages: chunk.Pages(),
		buf:   make([]parquet.Value, 256),
	}
}

// fill makes r.buf[r.i] the next value, or sets r.done at the end of the chunk.
func (r *leafReader) fill() error {
	for r.i >= r.n && !r.done {
		if r.vals == nil {
			page, err := r.pages.ReadPage()
			if errors.Is(err, io.EOF) {
				r.done = true
				return nil
			}
			if err != nil {
				return err
			}
			r.vals = page.Values()
		}
		n, err := r.vals.ReadValues(r.buf)
		r.i, r.n = 0, n
		switch {
		case errors.Is(err, io.EOF):
			r.vals = nil
		case err != nil:
			return err
		case n == 0:
			return io.ErrNoProgress
		}
	}
	return nil
}

// readRow appends the values of the next row to dst.
func (r *leafReader) readRow(dst []cell) ([]cell, error) {
	if err := r.fill(); err != nil {
		return dst, err
	}
	if r.done {
		return dst, errors.New("column chunk ended before the row group's last row")
	}
	if rep := r.buf[r.i].RepetitionLevel(); rep != 0 {
		return dst, fmt.Errorf("row starts with repetition level %d: %w", rep, parquet.ErrCorrupted)
	}
	for {
		dst = append(dst, r.cell(r.buf[r.i]))
		r.i++
		if err := r.fill(); err != nil {
			return dst, err
		}
		if r.done || r.buf[r.i].RepetitionLevel() == 0 {
			return dst, nil
		}
	}
}

func (r *leafReader) cell(v parquet.Value) cell {
	c := cell{rep: v.RepetitionLevel(), def: v.DefinitionLevel(), null: v.IsNull()}
	if !c.null {
		if r.kind == parquet.ByteArray || r.kind == parquet.FixedLenByteArray {
			c.s = string(v.ByteArray()) // copies: the page buffer is reused
		} else {
			c.s = v.String()
		}
	}
	return c
}

func (r *leafReader) close() error { return r.pages.Close() }
