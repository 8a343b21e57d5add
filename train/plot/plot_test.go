package plot

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lethe-ml/lethe/train"
)

func records() []train.Record {
	var recs []train.Record
	for s := 1; s <= 20; s++ {
		v := map[string]float64{"loss": 3 * math.Exp(-float64(s)/8), "lr": 1e-3}
		if s%5 == 0 {
			v["eval_loss"] = 3.1 * math.Exp(-float64(s)/9)
		}
		recs = append(recs, train.Record{Step: s, Values: v})
	}
	return recs
}

func TestSaveFormats(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		file  string
		opts  Options
		check func(t *testing.T, b []byte)
	}{
		{"loss.png", Options{Title: "run"}, func(t *testing.T, b []byte) {
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			// 16 x 10 cm at gonum's default 96 dpi.
			if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w != 605 || h != 378 {
				t.Errorf("png is %dx%d", w, h)
			}
		}},
		{"loss.svg", Options{LogY: true}, func(t *testing.T, b []byte) {
			if !bytes.HasPrefix(b, []byte("<?xml")) || !bytes.Contains(b, []byte("eval_loss")) || !bytes.Contains(b, []byte(">loss<")) {
				t.Errorf("svg lacks the legend: %.200s", b)
			}
		}},
		{"lr.pdf", Options{Metrics: []string{"lr"}}, func(t *testing.T, b []byte) {
			if !bytes.HasPrefix(b, []byte("%PDF")) {
				t.Errorf("not a pdf: %.20q", b)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			p := filepath.Join(dir, tc.file)
			if err := Save(records(), p, tc.opts); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, b)
		})
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestSaveErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		file string
		opts Options
		want string
	}{
		{"x.gif", Options{}, "unknown image format"},
		{"x.png", Options{Metrics: []string{"accuracy"}}, `no values of "accuracy" in the metrics (have eval_loss, loss, lr)`},
	} {
		err := Save(records(), filepath.Join(dir, tc.file), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.file, err, tc.want)
		}
	}
	if err := Save(nil, filepath.Join(dir, "y.png"), Options{}); err == nil {
		t.Error("empty metrics drew a chart")
	}
}

// TestBars draws a grouped bar chart in each format and rejects a series
// of the wrong length.
func TestBars(t *testing.T) {
	dir := t.TempDir()
	series := []Series{{"forget", []float64{0.9, 0.1}}, {"retain", []float64{0.9, 0.8}}}
	for _, ext := range []string{"png", "svg"} {
		path := filepath.Join(dir, "bars."+ext)
		if err := Bars(path, []string{"before", "npo"}, series, Options{Title: "t"}); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil || st.Size() < 500 {
			t.Errorf("%s: %v", path, err)
		}
	}
	if err := Bars(filepath.Join(dir, "x.png"), []string{"a"}, series, Options{}); err == nil {
		t.Error("series longer than the labels: no error")
	}
}
