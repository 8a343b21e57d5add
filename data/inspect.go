package data

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
)

// InspectOptions configures Inspect.
type InspectOptions struct {
	// Source names the files (paths or globs) and how to read them.
	Source SourceConfig
	// Samples is how many examples to print.
	Samples int
	// MaxChars shortens each printed string to this many characters; 0
	// prints them whole.
	MaxChars int
}

// Inspect prints each file's row counts, compression and schema, then the
// detected shape and the first Samples examples as JSON. An invalid
// configuration or a file that cannot be read is an error; a shape that
// cannot be detected is printed as such.
func Inspect(ctx context.Context, opts InspectOptions, w io.Writer) error {
	if err := opts.Source.Validate(); err != nil {
		return err
	}
	paths, err := expandFiles(opts.Source.Files)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	var total int64
	for _, path := range paths {
		n, err := describeFile(&out, path)
		if err != nil {
			return err
		}
		total += n
	}
	fmt.Fprintf(&out, "total: %d file(s), %d rows\n", len(paths), total)
	if _, err := w.Write(out.Bytes()); err != nil {
		return err
	}
	out.Reset()

	src := opts.Source
	src.Files = paths
	ds, err := Open(ctx, src)
	if err != nil {
		fmt.Fprintf(w, "shape: not detected: %v\n", err)
		return nil
	}
	fmt.Fprintf(&out, "shape: %s (%s)\n", ds.Shape(), ds.describeColumns())
	if opts.Samples > 0 {
		fmt.Fprintf(&out, "samples:\n")
		n := 0
		stop := errors.New("enough samples")
		_, err := ds.Each(ctx, func(ex Example) error {
			fmt.Fprintf(&out, "  %s row %d: %s\n", filepath.Base(ex.File), ex.Row, sampleJSON(ex, opts.MaxChars))
			if n++; n == opts.Samples {
				return stop
			}
			return nil
		})
		if err != nil && !errors.Is(err, stop) {
			return err
		}
	}
	_, err = w.Write(out.Bytes())
	return err
}

// describeFile prints one file's metadata and returns its row count.
func describeFile(w io.Writer, path string) (int64, error) {
	f, pf, err := openParquet(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	md := pf.Metadata()
	var sizes []string
	for _, rg := range pf.RowGroups() {
		sizes = append(sizes, fmt.Sprint(rg.NumRows()))
	}
	var codecs []string
	for _, rg := range md.RowGroups {
		for _, c := range rg.Columns {
			if s := c.MetaData.Codec.String(); !slices.Contains(codecs, s) {
				codecs = append(codecs, s)
			}
		}
	}
	fmt.Fprintf(w, "file: %s\n", path)
	fmt.Fprintf(w, "  rows: %d in %d row group(s)", pf.NumRows(), len(sizes))
	if len(sizes) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(sizes, ", "))
	}
	fmt.Fprintln(w)
	if len(codecs) > 0 {
		fmt.Fprintf(w, "  compression: %s\n", strings.Join(codecs, ", "))
	}
	if md.CreatedBy != "" {
		fmt.Fprintf(w, "  created by: %s\n", md.CreatedBy)
	}
	fmt.Fprintf(w, "  schema:\n")
	for _, line := range strings.Split(strings.TrimRight(schemaString(pf.Schema()), "\n"), "\n") {
		fmt.Fprintf(w, "    %s\n", strings.ReplaceAll(line, "\t", "  "))
	}
	return pf.NumRows(), nil
}

func schemaString(s *parquet.Schema) (out string) {
	if err := recoverPanic(func() error { out = s.String(); return nil }); err != nil {
		return "(cannot print the schema: " + err.Error() + ")"
	}
	return out
}

// describeColumns says which columns the shape is read from.
func (d *Dataset) describeColumns() string {
	c := d.cfg.Columns
	var s string
	switch d.shape {
	case ShapeText:
		s = fmt.Sprintf("column %q", c.Text)
	case ShapePromptCompletion:
		s = fmt.Sprintf("columns %q and %q", c.Prompt, c.Completion)
	case ShapeMessages:
		s = fmt.Sprintf("column %q, fields %q and %q", c.Messages, c.Role, c.Content)
	}
	if d.cfg.Split.Column != "" {
		s += fmt.Sprintf("; split column %q in %q", d.cfg.Split.Column, d.cfg.Split.Values)
	}
	return s
}

// sampleJSON prints an example's fields as one line of JSON.
func sampleJSON(ex Example, maxChars int) string {
	short := func(s string) string {
		if maxChars <= 0 || utf8.RuneCountInString(s) <= maxChars {
			return s
		}
		r := []rune(s)
		return string(r[:maxChars]) + fmt.Sprintf("… (%d more characters)", len(r)-maxChars)
	}
	type kv struct {
		k string
		v any
	}
	var fields []kv
	switch ex.Shape {
	case ShapeText:
		fields = append(fields, kv{"text", short(ex.Text)})
	case ShapePromptCompletion:
		fields = append(fields, kv{"prompt", short(ex.Prompt)}, kv{"completion", short(ex.Completion)})
	case ShapeMessages:
		type message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		}
		msgs := make([]message, len(ex.Messages))
		for i, m := range ex.Messages {
			msgs[i] = message{m.Role, short(m.Content)}
		}
		fields = append(fields, kv{"messages", msgs})
	}
	if ex.Split != "" {
		fields = append(fields, kv{"split", ex.Split})
	}
	marshal := func(b *bytes.Buffer, v any) {
		enc := json.NewEncoder(b)
		enc.SetEscapeHTML(false)
		enc.Encode(v)
		b.Truncate(b.Len() - 1) // Encode ends with a newline
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		marshal(&b, f.k)
		b.WriteByte(':')
		marshal(&b, f.v)
	}
	b.WriteByte('}')
	return b.String()
}
