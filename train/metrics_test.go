package train

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMetricsLogRoundTripAndResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), MetricsFile)
	l, err := OpenMetricsLog(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	for s := 1; s <= 5; s++ {
		v := map[string]float64{"loss": 1 / float64(s), "lr": 1e-3}
		if s == 4 {
			v["eval_loss"] = math.NaN()
		}
		if err := l.Write(Record{Step: s, Values: v}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	recs, err := ReadMetrics(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 || recs[2].Values["loss"] != 1.0/3 || recs[0].Time.IsZero() || !math.IsNaN(recs[3].Values["eval_loss"]) {
		t.Fatalf("read back %+v", recs)
	}
	// A run resumed from the checkpoint of step 3 drops steps 4 and 5.
	l, err = OpenMetricsLog(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	l.Write(Record{Step: 4, Values: map[string]float64{"loss": 0.2}})
	l.Close()
	recs, _ = ReadMetrics(path)
	if len(recs) != 4 || recs[3].Step != 4 || recs[3].Values["loss"] != 0.2 || recs[2].Values["loss"] != 1.0/3 {
		t.Fatalf("after resume %+v", recs)
	}
	// A torn last line is ignored; a bad line before it is an error.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"step":5,"lo`)
	f.Close()
	if recs, err = ReadMetrics(path); err != nil || len(recs) != 4 {
		t.Fatalf("torn line: %v, %d records", err, len(recs))
	}
	os.WriteFile(path, []byte("{\"step\":1}\nnot json\n{\"step\":2}\n"), 0o644)
	if _, err := ReadMetrics(path); err == nil || !strings.Contains(err.Error(), MetricsFile+":2") {
		t.Errorf("bad line: %v", err)
	}
}

func TestProgressLine(t *testing.T) {
	p := Progress{Total: 100}
	p.Start(10)
	p.start = p.start.Add(-20 * time.Second) // 20 s for 10 steps
	got := p.Line(20, 2.5, 3e-4, 1.25, 12345.6)
	want := "step 20/100  loss 2.5000  lr 0.0003  grad_norm 1.25  tokens/s 12,346  eta 2m40s"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	for v, w := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567"} {
		if s := thousands(v); s != w {
			t.Errorf("thousands(%v) = %s", v, s)
		}
	}
}
