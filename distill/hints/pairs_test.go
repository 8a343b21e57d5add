package hints

import (
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/ml/model"
)

func TestMap(t *testing.T) {
	cases := []struct {
		ls, lt int
		want   []Pair
	}{
		{2, 4, []Pair{{0, 0}, {1, 2}, {2, 4}}},
		{4, 4, []Pair{{0, 0}, {1, 1}, {2, 2}, {3, 3}, {4, 4}}},
		// 7/3 = 2.33 → 2, 14/3 = 4.67 → 5.
		{3, 7, []Pair{{0, 0}, {1, 2}, {2, 5}, {3, 7}}},
		// A deeper student: 0.5 rounds up, states share teacher states.
		{4, 2, []Pair{{0, 0}, {1, 1}, {2, 1}, {3, 2}, {4, 2}}},
		{0, 3, nil},
	}
	for _, c := range cases {
		if got := Map(c.ls, c.lt); !slices.Equal(got, c.want) {
			t.Errorf("Map(%d, %d) = %v, want %v", c.ls, c.lt, got, c.want)
		}
	}
}

func TestValidatePairs(t *testing.T) {
	cases := []struct {
		name   string
		pairs  []Pair
		ls, lt int
		want   string // error substring; "" for none
	}{
		{"default", Map(3, 7), 3, 7, ""},
		{"student too deep", []Pair{{0, 0}, {5, 2}}, 4, 4, "pair 1 (5→2): student hidden state 5 is out of range [0, 4]"},
		{"negative teacher", []Pair{{1, -1}}, 2, 4, "pair 0 (1→-1): teacher hidden state -1 is out of range [0, 4]"},
		{"teacher too deep", []Pair{{1, 2}, {2, 4}, {2, 5}}, 2, 4, "pair 2 (2→5): teacher hidden state 5 is out of range [0, 4]"},
		{"repeat", []Pair{{1, 2}, {2, 4}, {1, 2}}, 2, 4, "pair 2 (1→2) repeats pair 0"},
		{"empty", nil, 2, 4, "no layer pairs"},
		{"no layers", []Pair{{0, 0}}, 0, 4, "layer counts must be positive"},
	}
	for _, c := range cases {
		err := ValidatePairs(c.pairs, c.ls, c.lt)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestNewConfig(t *testing.T) {
	st, te := Side{Layers: 2, Hidden: 3}, Side{Layers: 4, Hidden: 5}
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"bad kind", Config{Kind: "pkd"}, `kind "pkd" is not supported`},
		{"bad loss", Config{Loss: "l1"}, `loss "l1" is not supported`},
		{"bad norm", Config{Normalize: "whiten"}, `normalization "whiten" is not supported`},
		{"vkd bias", Config{Kind: KindVkD, Bias: true}, "has no bias"},
		{"bad pair", Config{Pairs: []Pair{{3, 1}}}, "pair 0 (3→1): student hidden state 3 is out of range [0, 2]"},
		{"slash", Config{Name: "a/b"}, "must not contain '/'"},
	}
	for _, c := range cases {
		store := model.NewStore()
		_, err := New(store, c.cfg, st, te)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
		if n := store.NumVariables(); n != 0 {
			t.Errorf("%s: a failed New left %d variables", c.name, n)
		}
	}

	// Defaults, variables and names.
	store := model.NewStore()
	h, err := New(store, Config{Bias: true, Name: "dino"}, st, te)
	if err != nil {
		t.Fatal(err)
	}
	cfg := h.Config()
	if cfg.Kind != KindFitNets || cfg.Loss != LossMSE || cfg.Normalize != NormNone || !slices.Equal(cfg.Pairs, Map(2, 4)) {
		t.Errorf("defaults: %+v", cfg)
	}
	wantParams := []string{
		"/distill_hints/dino/s0-t0/weight", "/distill_hints/dino/s0-t0/bias",
		"/distill_hints/dino/s1-t2/weight", "/distill_hints/dino/s1-t2/bias",
		"/distill_hints/dino/s2-t4/weight", "/distill_hints/dino/s2-t4/bias",
	}
	if got := h.Params(); !slices.Equal(got, wantParams) {
		t.Errorf("Params = %q, want %q", got, wantParams)
	}
	vars := h.Vars()
	if v := vars["/distill_hints/dino/s1-t2/weight"]; v == nil || !slices.Equal(v.Shape().Dimensions, []int{3, 5}) {
		t.Errorf("weight variable %v, want [3, 5]", v)
	}
	if _, err := New(store, Config{Name: "dino"}, st, te); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Errorf("second hints of one name: error %v", err)
	}
	v, err := New(store, Config{Kind: KindVkD, Name: "mae"}, st, te)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Config().Normalize; got != NormStandardize {
		t.Errorf("V_kD's default normalization %q", got)
	}
	if got, want := v.Params(), []string{"/distill_hints/mae/s0-t0/skew", "/distill_hints/mae/s1-t2/skew", "/distill_hints/mae/s2-t4/skew"}; !slices.Equal(got, want) {
		t.Errorf("V_kD Params = %q, want %q", got, want)
	}
	if err := v.Delete(store); err != nil {
		t.Fatal(err)
	}
	if n := store.NumVariables(); n != 6 {
		t.Errorf("after Delete: %d variables, want FitNets' 6", n)
	}
}
