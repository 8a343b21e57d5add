package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

type optim struct {
	LR    float64   `yaml:"lr"`
	Betas []float64 `yaml:"betas"`
}

type source struct {
	Files []string `yaml:"files"`
}

type recipe struct {
	Name      string            `yaml:"name"`
	Optimizer optim             `yaml:"optimizer"`
	Eval      *source           `yaml:"eval"`
	Sources   []source          `yaml:"sources"`
	Labels    map[string]string `yaml:"labels"`
	Inline    `yaml:",inline"`
}

type Inline struct {
	Seed int `yaml:"seed"`
}

const file = `
name: base
optimizer:
  lr: 1.0e-3
  betas: [0.9, 0.95]
sources:
  - files: [a.parquet]
seed: 3
`

func write(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "r.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadAndOverride(t *testing.T) {
	tests := []struct {
		name      string
		overrides []string
		want      recipe
	}{
		{"file only", nil, recipe{Name: "base", Optimizer: optim{LR: 1e-3, Betas: []float64{0.9, 0.95}},
			Sources: []source{{Files: []string{"a.parquet"}}}, Inline: Inline{Seed: 3}}},
		{"scalars, lists, new blocks and list elements",
			[]string{"optimizer.lr=2e-4", "optimizer.betas=[0.8, 0.9]", "eval.files=[e.parquet]", "sources.0.files=[b.parquet, c.parquet]",
				"labels.team=x", "seed=9", "name=with=equals"},
			recipe{Name: "with=equals", Optimizer: optim{LR: 2e-4, Betas: []float64{0.8, 0.9}}, Eval: &source{Files: []string{"e.parquet"}},
				Sources: []source{{Files: []string{"b.parquet", "c.parquet"}}}, Labels: map[string]string{"team": "x"}, Inline: Inline{Seed: 9}}},
	}
	p := write(t, file)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got recipe
			if err := Load(p, tc.overrides, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, file string
		overrides  []string
		want       []string // substrings of the error
	}{
		{"unknown key in file", "optimizer:\n  lrr: 1\n", nil,
			[]string{"r.yaml:2", `unknown key "lrr" in optimizer`, "known keys: betas, lr"}},
		{"unknown top-level key", "nmae: x\n", nil, []string{`unknown key "nmae"`, "name", "seed"}},
		{"unknown key in list element", "sources:\n  - file: a\n", nil, []string{`unknown key "file" in sources.0`}},
		{"unknown override", file, []string{"optimizer.lrr=1"}, []string{"override optimizer.lrr", `unknown key "lrr" in optimizer`}},
		{"override into a value", file, []string{"name.x=1"}, []string{"name is a value"}},
		{"override without =", file, []string{"optimizer.lr"}, []string{"want key=value"}},
		{"override index out of range", file, []string{"sources.4.files=[x]"}, []string{"sources has no element 4"}},
		{"override value with unknown keys", file, []string{"optimizer={lr: 1, momentum: 2}"}, []string{`unknown key "momentum"`}},
		{"wrong type", "optimizer:\n  lr: fast\n", nil, []string{"r.yaml", "fast"}},
		{"not a mapping", "- a\n- b\n", nil, []string{"must be a mapping"}},
		{"bad yaml", "a: [\n", nil, []string{"r.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got recipe
			err := Load(write(t, tc.file), tc.overrides, &got)
			if err == nil {
				t.Fatalf("no error, decoded %+v", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	var r recipe
	if err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil, &r); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestOverridesOnly(t *testing.T) {
	var r recipe
	if err := Load("", []string{"optimizer.lr=0.5"}, &r); err != nil {
		t.Fatal(err)
	}
	if r.Optimizer.LR != 0.5 {
		t.Errorf("lr %v", r.Optimizer.LR)
	}
}
