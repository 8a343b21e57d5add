package facts

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/unlearn/internal/rowfile"
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

func read(path string) ([]Example, error) {
	rows, err := rowfile.Parquet[row](path, Columns...)
	if err != nil {
		return nil, err
	}
	ex := make([]Example, len(rows))
	for i, rw := range rows {
		if ex[i], err = rw.example(); err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
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
