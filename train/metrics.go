package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// MetricsFile is the name of the JSON-lines metrics log in a run folder.
const MetricsFile = "metrics.jsonl"

// Record is one line of a metrics log: the optimizer step, the wall time
// and named values ("loss", "lr", "grad_norm", "tokens_per_s",
// "eval_loss", ...). Lines are JSON objects with "step", "time" (RFC 3339)
// and one number per value, so any JSON tool reads them.
type Record struct {
	Step   int
	Time   time.Time
	Values map[string]float64
}

// MarshalJSON writes the record as one flat object, keys sorted.
func (r Record) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, `{"step":%d`, r.Step)
	if !r.Time.IsZero() {
		fmt.Fprintf(&buf, `,"time":%q`, r.Time.UTC().Format(time.RFC3339Nano))
	}
	keys := make([]string, 0, len(r.Values))
	for k := range r.Values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := r.Values[k]
		if math.IsNaN(v) || math.IsInf(v, 0) {
			fmt.Fprintf(&buf, `,%q:null`, k) // JSON has no NaN
			continue
		}
		kj, _ := json.Marshal(k)
		vj, _ := json.Marshal(v)
		fmt.Fprintf(&buf, `,%s:%s`, kj, vj)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON reads a record written by MarshalJSON (null values read
// as NaN; non-numeric fields other than time are ignored).
func (r *Record) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*r = Record{Values: map[string]float64{}}
	for k, v := range raw {
		switch k {
		case "step":
			if err := json.Unmarshal(v, &r.Step); err != nil {
				return fmt.Errorf("step: %w", err)
			}
		case "time":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("time: %w", err)
			}
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return fmt.Errorf("time: %w", err)
			}
			r.Time = t
		default:
			if string(v) == "null" {
				r.Values[k] = math.NaN()
				continue
			}
			var f float64
			if json.Unmarshal(v, &f) == nil {
				r.Values[k] = f
			}
		}
	}
	return nil
}

// MetricsLog appends records to a metrics.jsonl file, one line per
// record, synced to the file as they are written.
type MetricsLog struct {
	f *os.File
}

// OpenMetricsLog opens the log at path for appending. With keepUpTo >= 0
// (resuming from a checkpoint at that step) it first drops the records of
// later steps, which the resumed run will write again; with keepUpTo < 0 it
// starts an empty log.
func OpenMetricsLog(path string, keepUpTo int) (*MetricsLog, error) {
	var keep []byte
	if keepUpTo >= 0 {
		recs, err := ReadMetrics(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for _, r := range recs {
			if r.Step <= keepUpTo {
				line, _ := json.Marshal(r)
				keep = append(append(keep, line...), '\n')
			}
		}
	}
	if err := WriteFileAtomic(path, keep); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &MetricsLog{f: f}, nil
}

// Write appends one record; a zero Time is set to now.
func (l *MetricsLog) Write(r Record) error {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := l.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("metrics %s: %w", l.f.Name(), err)
	}
	return nil
}

// Close closes the file.
func (l *MetricsLog) Close() error { return l.f.Close() }

// ReadMetrics reads a metrics.jsonl file (or the one in a run folder). A
// torn last line (a run killed while writing) is ignored; a malformed line
// elsewhere is an error naming it.
func ReadMetrics(path string) ([]Record, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, MetricsFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer f.Close()
	var out []Record
	rd := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := rd.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("metrics %s: %w", path, err)
		}
		complete := strings.HasSuffix(line, "\n")
		if s := strings.TrimSpace(line); s != "" {
			var r Record
			if uerr := json.Unmarshal([]byte(s), &r); uerr != nil {
				if !complete {
					break // torn last line
				}
				return nil, fmt.Errorf("metrics %s:%d: %w", path, n, uerr)
			}
			out = append(out, r)
		}
		if err != nil {
			break
		}
	}
	return out, nil
}

// WriteFileAtomic writes data to a temporary file next to path and
// renames it into place: readers see the old file or the new one, never a
// partial one.
func WriteFileAtomic(path string, data []byte) error {
	dir, base := filepath.Dir(path), filepath.Base(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// WriteJSONAtomic writes v as indented JSON to path, atomically.
func WriteJSONAtomic(path string, v any) error {
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, append(js, '\n'))
}

// Progress formats the one-line training progress reports.
type Progress struct {
	// Total is the number of optimizer steps of the run.
	Total int
	start time.Time
	from  int
}

// Start marks the start (or resumption, at step from) of training.
func (p *Progress) Start(from int) {
	p.start, p.from = time.Now(), from
}

// Line formats the report after step (1-based count of steps done).
func (p *Progress) Line(step int, loss, lr, gradNorm, tokensPerSec float64) string {
	eta := "?"
	if done := step - p.from; done > 0 && p.Total > 0 {
		per := time.Since(p.start) / time.Duration(done)
		eta = (per * time.Duration(max(0, p.Total-step))).Round(time.Second).String()
	}
	return fmt.Sprintf("step %d/%d  loss %.4f  lr %.3g  grad_norm %.3g  tokens/s %s  eta %s",
		step, p.Total, loss, lr, gradNorm, thousands(tokensPerSec), eta)
}

// thousands formats a rate with thousands separators.
func thousands(v float64) string {
	n := int64(math.Round(v))
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
