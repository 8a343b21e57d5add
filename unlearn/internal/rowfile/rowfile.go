// Package rowfile reads the rows of benchmark files as users download
// them from the Hub: Parquet, JSON lines or one JSON array, into structs
// whose parquet and json tags name the columns.
package rowfile

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// Parquet reads every row of a Parquet file into T; columns lists the
// columns that must be present (others of T may be missing). A file
// holding fewer or more rows than its metadata says is an error.
func Parquet[T any](path string, columns ...string) (rows []T, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	// parquet-go panics on some malformed files; report those as errors.
	defer func() {
		if r := recover(); r != nil {
			rows, err = nil, fmt.Errorf("malformed Parquet file: %v", r)
		}
	}()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return nil, err
	}
	var have []string
	for _, fl := range pf.Schema().Fields() {
		have = append(have, fl.Name())
	}
	for _, c := range columns {
		if !slices.Contains(have, c) {
			return nil, fmt.Errorf("no column %q; the columns are %s", c, quoteList(have))
		}
	}
	r := parquet.NewGenericReader[T](pf)
	defer r.Close()
	for {
		buf := make([]T, 256)
		n, err := r.Read(buf)
		rows = append(rows, buf[:n]...)
		if errors.Is(err, io.EOF) {
			if int64(len(rows)) != pf.NumRows() {
				return nil, fmt.Errorf("read %d rows, the metadata says %d", len(rows), pf.NumRows())
			}
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", len(rows), err)
		}
	}
}

// quoteList renders names as "a", "b".
func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

// JSON reads JSON lines (the Hub's .json files) or one JSON array into T.
func JSON[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	first, err := br.Peek(1)
	if err != nil {
		return nil, fmt.Errorf("empty file")
	}
	dec := json.NewDecoder(br)
	var rows []T
	if first[0] == '[' {
		if err := dec.Decode(&rows); err != nil {
			return nil, err
		}
		return rows, nil
	}
	for {
		var r T
		err := dec.Decode(&r)
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", len(rows), err)
		}
		rows = append(rows, r)
	}
}
