package data

import (
	"errors"
	"fmt"
	"strings"
)

// Shape is the layout of a dataset's rows.
type Shape string

const (
	// ShapeAuto asks Open to detect the shape from the schema of the first file.
	ShapeAuto Shape = ""
	// ShapeText is one string column of raw text; every token is trained on.
	ShapeText Shape = "text"
	// ShapePromptCompletion is two string columns; by default only the
	// completion is trained on.
	ShapePromptCompletion Shape = "prompt_completion"
	// ShapeMessages is one column holding a list of {role, content} structs,
	// rendered with a chat template; by default only assistant turns are
	// trained on.
	ShapeMessages Shape = "messages"
)

// NullPolicy says what reading does with a row whose text, prompt,
// completion, messages list or message role is null.
type NullPolicy string

const (
	// NullSkip drops such rows (the default); Counts.Nulls counts them.
	NullSkip NullPolicy = "skip"
	// NullError fails with an error naming the file, row and column.
	NullError NullPolicy = "error"
	// NullEmpty reads a null string as "" and a null list as no messages.
	NullEmpty NullPolicy = "empty"
)

// Columns names the columns that hold each shape's fields. Empty names take
// the defaults in brackets.
type Columns struct {
	// Text is the column of ShapeText ["text"].
	Text string `yaml:"text,omitempty" json:"text,omitempty"`
	// Prompt is the prompt column of ShapePromptCompletion ["prompt"].
	Prompt string `yaml:"prompt,omitempty" json:"prompt,omitempty"`
	// Completion is the completion column of ShapePromptCompletion ["completion"].
	Completion string `yaml:"completion,omitempty" json:"completion,omitempty"`
	// Messages is the list-of-structs column of ShapeMessages ["messages"].
	Messages string `yaml:"messages,omitempty" json:"messages,omitempty"`
	// Role is the struct field holding a message's role ["role"].
	Role string `yaml:"role,omitempty" json:"role,omitempty"`
	// Content is the struct field holding a message's text ["content"]. A
	// null content reads as "" (tool-call turns have none).
	Content string `yaml:"content,omitempty" json:"content,omitempty"`
}

// Split selects part of a dataset, either by the value of a column or by a
// seeded pseudo-random fraction of the rows. Set Column or Fraction, not
// both; the zero Split keeps every row.
type Split struct {
	// Column keeps the rows whose value in this column is one of Values
	// (for example split == "forget"). String, integer and boolean columns
	// are compared through their text form; a null matches "".
	Column string `yaml:"column,omitempty" json:"column,omitempty"`
	// Values lists the accepted values of Column.
	Values []string `yaml:"values,omitempty" json:"values,omitempty"`

	// Fraction is the share of all rows (across every file, counted from
	// the metadata, before nulls are dropped) that form the "eval" part,
	// chosen by a seeded permutation so that exactly round(Fraction*rows)
	// rows are held out. The rest is the "train" part.
	Fraction float64 `yaml:"fraction,omitempty" json:"fraction,omitempty"`
	// Seed chooses the permutation; the same seed and files give the same parts.
	Seed uint64 `yaml:"seed,omitempty" json:"seed,omitempty"`
	// Part is "train" or "eval": which side of Fraction to read.
	Part string `yaml:"part,omitempty" json:"part,omitempty"`
}

// Split parts for Split.Part.
const (
	PartTrain = "train"
	PartEval  = "eval"
)

// SourceConfig says which Parquet files to read and how to map their columns
// onto a Shape.
type SourceConfig struct {
	// Files are paths or glob patterns (path/filepath.Match syntax); each
	// pattern's matches are read in lexical order, patterns in the order given.
	Files []string `yaml:"files" json:"files"`
	// Shape is the row layout; empty detects it from the first file's schema
	// (a messages list of {role, content}, then prompt + completion, then text).
	Shape Shape `yaml:"shape,omitempty" json:"shape,omitempty"`
	// Columns renames the columns each shape reads.
	Columns Columns `yaml:"columns,omitempty" json:"columns,omitempty"`
	// Split keeps only part of the rows.
	Split Split `yaml:"split,omitempty" json:"split,omitempty"`
	// Nulls is what to do with rows whose fields are null [skip].
	Nulls NullPolicy `yaml:"nulls,omitempty" json:"nulls,omitempty"`
}

// withDefaults returns c with empty column names and policies filled in.
func (c SourceConfig) withDefaults() SourceConfig {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Columns.Text, "text")
	def(&c.Columns.Prompt, "prompt")
	def(&c.Columns.Completion, "completion")
	def(&c.Columns.Messages, "messages")
	def(&c.Columns.Role, "role")
	def(&c.Columns.Content, "content")
	if c.Nulls == "" {
		c.Nulls = NullSkip
	}
	return c
}

// Validate checks c and reports every problem, each naming the offending field.
func (c SourceConfig) Validate() error {
	var errs []error
	if len(c.Files) == 0 {
		errs = append(errs, errors.New("source.files: no files given"))
	}
	for i, f := range c.Files {
		if strings.TrimSpace(f) == "" {
			errs = append(errs, fmt.Errorf("source.files[%d]: empty path", i))
		}
	}
	switch c.Shape {
	case ShapeAuto, ShapeText, ShapePromptCompletion, ShapeMessages:
	default:
		errs = append(errs, fmt.Errorf("source.shape: unknown shape %q (want %q, %q, %q or empty to detect it)",
			c.Shape, ShapeText, ShapePromptCompletion, ShapeMessages))
	}
	switch c.Nulls {
	case "", NullSkip, NullError, NullEmpty:
	default:
		errs = append(errs, fmt.Errorf("source.nulls: unknown policy %q (want %q, %q or %q)", c.Nulls, NullSkip, NullError, NullEmpty))
	}
	d := c.withDefaults().Columns
	if d.Prompt == d.Completion {
		errs = append(errs, fmt.Errorf("source.columns: prompt and completion are the same column %q", d.Prompt))
	}
	if d.Role == d.Content {
		errs = append(errs, fmt.Errorf("source.columns: role and content are the same field %q", d.Role))
	}
	if err := c.Split.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s Split) validate() error {
	byColumn := s.Column != "" || len(s.Values) > 0
	byFraction := s.Fraction != 0 || s.Part != ""
	switch {
	case byColumn && byFraction:
		return errors.New("source.split: column/values and fraction/part are mutually exclusive; set one")
	case byColumn && s.Column == "":
		return errors.New("source.split.column: values are set but no column is named")
	case byColumn && len(s.Values) == 0:
		return fmt.Errorf("source.split.values: no values given for column %q", s.Column)
	case byFraction && !(s.Fraction > 0 && s.Fraction < 1):
		return fmt.Errorf("source.split.fraction: must be in (0, 1), got %v", s.Fraction)
	case byFraction && s.Part != PartTrain && s.Part != PartEval:
		return fmt.Errorf("source.split.part: must be %q or %q, got %q", PartTrain, PartEval, s.Part)
	}
	return nil
}
