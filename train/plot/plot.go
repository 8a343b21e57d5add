// Package plot draws the curves of a run's metrics log (train.ReadMetrics)
// to PNG, SVG or PDF with gonum.org/v1/plot.
package plot

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/lethe-ml/lethe/train"
)

// Options configure Save.
type Options struct {
	// Metrics are the values to draw, one line each [loss and eval_loss,
	// those present].
	Metrics []string
	// Title is the chart's title.
	Title string
	// LogY draws the y axis on a log scale (positive values only).
	LogY bool
	// Width and Height are the size in centimetres [16 x 10].
	Width, Height float64
}

// DefaultMetrics are drawn when Options.Metrics is empty.
var DefaultMetrics = []string{"loss", "eval_loss"}

// Save draws the metrics of recs against the step and writes the chart to
// path, in the format its extension names (.png, .svg, .pdf, .jpg, .tif,
// .eps), atomically. Records missing a metric (or holding NaN for it) are
// skipped for that line, so evaluation metrics logged every N steps draw
// as their own line.
func Save(recs []train.Record, path string, opts Options) error {
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	switch ext {
	case "png", "svg", "pdf", "jpg", "jpeg", "tif", "tiff", "eps":
	default:
		return fmt.Errorf("plot %s: unknown image format %q (want png, svg or pdf)", path, ext)
	}
	keys := opts.Metrics
	explicit := len(keys) > 0
	if !explicit {
		keys = DefaultMetrics
	}
	p := plot.New()
	p.Title.Text = opts.Title
	p.X.Label.Text = "step"
	p.Legend.Top = true
	if opts.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	var lines []any
	var drawn []string
	for _, k := range keys {
		var xy plotter.XYs
		for _, r := range recs {
			v, ok := r.Values[k]
			if !ok || math.IsNaN(v) || math.IsInf(v, 0) || (opts.LogY && v <= 0) {
				continue
			}
			xy = append(xy, plotter.XY{X: float64(r.Step), Y: v})
		}
		if len(xy) == 0 {
			if explicit {
				return fmt.Errorf("plot: no values of %q in the metrics (have %s)", k, strings.Join(Available(recs), ", "))
			}
			continue
		}
		lines = append(lines, k, xy)
		drawn = append(drawn, k)
	}
	if len(drawn) == 0 {
		return fmt.Errorf("plot: none of %s in the metrics (have %s)", strings.Join(keys, ", "), strings.Join(Available(recs), ", "))
	}
	if len(drawn) == 1 {
		p.Y.Label.Text = drawn[0]
	}
	add := plotutil.AddLinePoints
	for i := 1; i < len(lines); i += 2 {
		if len(lines[i].(plotter.XYs)) > 60 {
			add = plotutil.AddLines // glyphs would hide the curve
		}
	}
	if err := add(p, lines...); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return write(p, path, ext, opts)
}

// write renders p to path atomically.
func write(p *plot.Plot, path, ext string, opts Options) error {
	w, h := opts.Width, opts.Height
	if w <= 0 {
		w = 16
	}
	if h <= 0 {
		h = 10
	}
	wt, err := p.WriterTo(vg.Length(w)*vg.Centimeter, vg.Length(h)*vg.Centimeter, ext)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	dir, base := filepath.Dir(path), filepath.Base(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

// Series is one set of bars of a grouped bar chart.
type Series struct {
	Name   string
	Values []float64
}

// Bars draws a grouped bar chart (one group per label, one bar per series
// in each) to path, as Save does.
func Bars(path string, labels []string, series []Series, opts Options) error {
	ext := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	p := plot.New()
	p.Title.Text = opts.Title
	p.Legend.Top = true
	width := vg.Points(60 / float64(max(len(series), 1)))
	for i, s := range series {
		if len(s.Values) != len(labels) {
			return fmt.Errorf("plot: series %q has %d values for %d labels", s.Name, len(s.Values), len(labels))
		}
		bars, err := plotter.NewBarChart(plotter.Values(s.Values), width)
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		bars.Offset = width * vg.Length(float64(i)-float64(len(series)-1)/2)
		p.Add(bars)
		p.Legend.Add(s.Name, bars)
	}
	p.NominalX(labels...)
	return write(p, path, ext, opts)
}

// Available lists the metric names present in recs, sorted.
func Available(recs []train.Record) []string {
	var out []string
	for _, r := range recs {
		for k := range r.Values {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}
