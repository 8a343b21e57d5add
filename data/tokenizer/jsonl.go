package tokenizer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
)

// maxLineBytes bounds one input line of the JSON-lines tools.
const maxLineBytes = 64 << 20

// jsonlBatch is how many lines EncodeJSONLines encodes at once.
const jsonlBatch = 256

// EncodeJSONLines reads one JSON string per line from r and writes one JSON
// object per line to w: {"ids":[...],"tokens":[...]}. Empty lines are
// skipped. It is the engine of `lethe tokenize`.
func (t *Tokenizer) EncodeJSONLines(ctx context.Context, r io.Reader, w io.Writer, addSpecialTokens bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	var texts []string
	lineNo := 0
	flush := func() error {
		encs, err := t.EncodeBatch(texts, addSpecialTokens)
		if err != nil {
			return err
		}
		for _, e := range encs {
			if err := enc.Encode(struct {
				IDs    []int    `json:"ids"`
				Tokens []string `json:"tokens"`
			}{e.IDs, e.Tokens}); err != nil {
				return err
			}
		}
		texts = texts[:0]
		return ctx.Err()
	}
	for sc.Scan() {
		lineNo++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var s string
		if err := json.Unmarshal(line, &s); err != nil {
			return fmt.Errorf("line %d: want a JSON string: %w", lineNo, err)
		}
		texts = append(texts, s)
		if len(texts) == jsonlBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", lineNo+1, err)
	}
	if err := flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// DecodeJSONLines reads {"ids":[...]} lines from r and writes
// {"text":"..."} lines to w. It is the engine of `lethe tokenize --decode`.
func (t *Tokenizer) DecodeJSONLines(ctx context.Context, r io.Reader, w io.Writer, skipSpecialTokens bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var in struct {
			IDs *[]int `json:"ids"`
		}
		if err := json.Unmarshal(line, &in); err != nil {
			return fmt.Errorf("line %d: want {\"ids\": [...]}: %w", lineNo, err)
		}
		if in.IDs == nil {
			return fmt.Errorf("line %d: missing field \"ids\"", lineNo)
		}
		text, err := t.Decode(*in.IDs, skipSpecialTokens)
		if err != nil {
			return fmt.Errorf("line %d: %w", lineNo, err)
		}
		if err := enc.Encode(struct {
			Text string `json:"text"`
		}{text}); err != nil {
			return err
		}
		if lineNo%jsonlBatch == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", lineNo+1, err)
	}
	return bw.Flush()
}
