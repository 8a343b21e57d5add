package facts

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/lethe-ml/lethe/data"
	"github.com/parquet-go/parquet-go"
)

// row is an Example as a Parquet row. The prompt and completion columns
// repeat the question and answer in the QA format (see Example.Prompt), so
// that the data package reads the file as prompt + completion rows and
// `lethe finetune` trains on it directly, picking a split through the
// split column.
type row struct {
	Question          string   `parquet:"question"`
	Answer            string   `parquet:"answer"`
	ParaphrasedAnswer string   `parquet:"paraphrased_answer"`
	PerturbedAnswers  []string `parquet:"perturbed_answers,list"`
	WrongAnswers      []string `parquet:"wrong_answers,list"`
	Entity            string   `parquet:"entity"`
	Kind              string   `parquet:"kind"`
	Fact              string   `parquet:"fact"`
	Split             string   `parquet:"split"`
	Prompt            string   `parquet:"prompt"`
	Completion        string   `parquet:"completion"`
}

// Columns lists the columns of the files Write writes, in order. The list
// columns perturbed_answers and wrong_answers are standard Parquet lists of
// strings; the rest are strings.
var Columns = []string{
	"question", "answer", "paraphrased_answer", "perturbed_answers", "wrong_answers",
	"entity", "kind", "fact", "split", "prompt", "completion",
}

// Write writes the examples to a Parquet file at path (zstd, one row per
// example, in order, with the columns of Columns). The file is written to a
// temporary file in the same directory and renamed over path once
// complete, so readers see the old file or the whole new one.
func Write(path string, ex []Example) error {
	rows := make([]row, len(ex))
	for i, e := range ex {
		rows[i] = row{
			Question:          e.Question,
			Answer:            e.Answer,
			ParaphrasedAnswer: e.ParaphrasedAnswer,
			PerturbedAnswers:  e.PerturbedAnswers,
			WrongAnswers:      e.WrongAnswers,
			Entity:            e.Entity,
			Kind:              e.Kind,
			Fact:              e.Fact,
			Split:             e.Split,
			Prompt:            e.Prompt(),
			Completion:        e.Completion(),
		}
	}
	if err := data.WriteFile(path, rows, data.WriteOptions{}); err != nil {
		return fmt.Errorf("facts: %w", err)
	}
	return nil
}

// Read reads a file written by Write. Errors name the file, and the row
// (counted from 0) for a row whose kind, fact or split is unknown, whose
// perturbed and wrong answers differ in number, or whose prompt and
// completion are not the rendering of its question and answer.
func Read(path string) ([]Example, error) {
	ex, err := read(path)
	if err != nil {
		return nil, fmt.Errorf("facts: read %s: %w", path, err)
	}
	return ex, nil
}

func read(path string) (ex []Example, err error) {
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
			ex, err = nil, fmt.Errorf("malformed Parquet file: %v", r)
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
	for _, c := range Columns {
		if !slices.Contains(have, c) {
			return nil, fmt.Errorf("no column %q; the columns are %s", c, quoteList(have))
		}
	}
	r := parquet.NewGenericReader[row](pf)
	defer r.Close()
	for {
		// A fresh buffer each time: the reader may reuse the slices of
		// the rows it reads into.
		buf := make([]row, 256)
		n, err := r.Read(buf)
		for _, rw := range buf[:n] {
			e, err := rw.example()
			if err != nil {
				return nil, fmt.Errorf("row %d: %w", len(ex), err)
			}
			ex = append(ex, e)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", len(ex), err)
		}
	}
	if int64(len(ex)) != pf.NumRows() {
		return nil, fmt.Errorf("read %d rows, the metadata says %d", len(ex), pf.NumRows())
	}
	return ex, nil
}

// example checks a row and returns its Example.
func (rw row) example() (Example, error) {
	e := Example{
		Question:          rw.Question,
		Answer:            rw.Answer,
		ParaphrasedAnswer: rw.ParaphrasedAnswer,
		PerturbedAnswers:  nilIfEmpty(rw.PerturbedAnswers),
		WrongAnswers:      nilIfEmpty(rw.WrongAnswers),
		Entity:            rw.Entity,
		Kind:              rw.Kind,
		Fact:              rw.Fact,
		Split:             rw.Split,
	}
	switch {
	case !slices.Contains(Kinds, e.Kind):
		return e, fmt.Errorf("unknown kind %q (want %s)", e.Kind, quoteList(Kinds))
	case specs[e.Fact].question == "":
		return e, fmt.Errorf("unknown fact %q", e.Fact)
	case !slices.Contains(Splits, e.Split):
		return e, fmt.Errorf("unknown split %q (want %s)", e.Split, quoteList(Splits))
	case len(e.PerturbedAnswers) != len(e.WrongAnswers):
		return e, fmt.Errorf("%d perturbed answers but %d wrong answers", len(e.PerturbedAnswers), len(e.WrongAnswers))
	case rw.Prompt != e.Prompt():
		return e, fmt.Errorf("prompt %q is not the rendering %q of the question", rw.Prompt, e.Prompt())
	case rw.Completion != e.Completion():
		return e, fmt.Errorf("completion %q is not the rendering %q of the answer", rw.Completion, e.Completion())
	}
	return e, nil
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}
