package lora

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/peft"
	"github.com/lethe-ml/lethe/peft/internal/host"
	"github.com/lethe-ml/lethe/peft/internal/jsonfile"
	"github.com/lethe-ml/lethe/train"
)

func baseLogits(t *testing.T, arch string) []float32 {
	t.Helper()
	return openExpected(t, filepath.Join(fixtures, arch, "expected.safetensors")).floats(t, "logits")
}

func readVar(t *testing.T, v *model.Variable) []float32 {
	t.Helper()
	vals, _, err := host.Read(v)
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

// TestAttachDefault: PEFT's default init (B = 0) leaves the model's output
// unchanged, A is U(±1/√in), and the saved config has exactly the fields
// PEFT 0.21 writes, with PEFT's values.
func TestAttachDefault(t *testing.T) {
	b := testBackend(t)
	m := loadModel(t, "llama")
	ids := fixtureIDs(t, "llama")
	a, err := Attach(m, "default", Config{R: 4, Alpha: 16, TargetModules: peft.NameList("q_proj", "v_proj")}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Modules(); len(got) != 4 || got[0] != "model.layers.0.self_attn.q_proj" {
		t.Errorf("modules %q", got)
	}
	logits, _ := forward(t, b, m, ids, a.Hooks(false))
	if d := maxAbsDiff(logits, baseLogits(t, "llama")); d > 1e-4 {
		t.Errorf("a fresh adapter changes the logits by %g", d)
	}
	l := a.layers[0]
	av := readVar(t, l.a)
	if mx := maxAbs(av); mx > 1/math.Sqrt(64) || mx < 0.5/math.Sqrt(64) {
		t.Errorf("A max %g, want near 1/8", mx)
	}
	if maxAbs(readVar(t, l.b)) != 0 || l.scale != 4 {
		t.Errorf("B not zero or scale %g", l.scale)
	}
	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
	ref, _ := os.ReadFile(filepath.Join(fixtures, "llama", "lora", "adapter_config.json"))
	gv, _ := jsonfile.Decode(got)
	rv, _ := jsonfile.Decode(ref)
	g, r := gv.(*jsonfile.Object), rv.(*jsonfile.Object)
	gk, rk := g.Keys(), r.Keys()
	slices.Sort(gk)
	slices.Sort(rk)
	if !slices.Equal(gk, rk) {
		t.Errorf("config keys %q, PEFT writes %q", gk, rk)
	}
	for k, want := range map[string]any{"r": 4, "lora_alpha": 16, "init_lora_weights": true, "base_model_name_or_path": m.Dir,
		"target_modules": []any{"q_proj", "v_proj"}, "lora_dropout": 0.0, "peft_version": PEFTVersion, "inference_mode": true} {
		if v, _ := g.Get(k); !jsonfile.Equal(v, want) {
			t.Errorf("%s = %v, want %v", k, v, want)
		}
	}
	for _, k := range rk { // the other fields have the fixture's (PEFT's default) values
		switch k {
		case "r", "lora_alpha", "init_lora_weights", "base_model_name_or_path", "target_modules":
			continue
		}
		gv, _ := g.Get(k)
		rv, _ := r.Get(k)
		if !jsonfile.Equal(gv, rv) {
			t.Errorf("%s = %v, PEFT's default is %v", k, gv, rv)
		}
	}
	if !strings.HasSuffix(string(got), "\n}") || !strings.Contains(string(got), "\n  \"bias\": \"none\",\n") {
		t.Errorf("not json.dumps(indent=2) format:\n%s", got)
	}
	// Load it back into another model: same tensors.
	a2, err := Load(loadModel(t, "llama"), dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(readVar(t, a2.layers[0].a), av) || a2.layers[0].scale != 4 {
		t.Error("round trip changed A or the scale")
	}
}

func TestAttachOptions(t *testing.T) {
	// GPT-2 with PEFT's default targets: c_attn, fan_in_fan_out set with a warning.
	a, err := Attach(loadModel(t, "gpt2"), "default", Config{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.layers) != 2 || !a.cfg.FanInFanOut || len(a.Warnings()) == 0 || a.cfg.R != 8 {
		t.Errorf("gpt2 defaults: %d layers, fan_in_fan_out %v, warnings %q", len(a.layers), a.cfg.FanInFanOut, a.Warnings())
	}
	// rank_pattern / alpha_pattern, rsLoRA, gaussian init.
	m := loadModel(t, "llama")
	cfg := Config{R: 8, Alpha: 8, TargetModules: peft.Regexp(`.*\.(q_proj|v_proj|down_proj)`), UseRSLoRA: true, Init: InitGaussian,
		RankPattern: []Pattern{{"q_proj", 2}}, AlphaPattern: []Pattern{{`layers\.1\.self_attn\.v_proj`, 32}},
		ExcludeModules: peft.NameList("layers.0.mlp.down_proj")}
	a, err = Attach(m, "x", cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]float64{}
	for _, l := range a.layers {
		got[l.mod.Name] = [2]float64{float64(l.r), l.scale}
	}
	want := map[string][2]float64{
		"model.layers.0.self_attn.q_proj": {2, 8 / math.Sqrt(2)}, "model.layers.1.self_attn.q_proj": {2, 8 / math.Sqrt(2)},
		"model.layers.0.self_attn.v_proj": {8, 8 / math.Sqrt(8)}, "model.layers.1.self_attn.v_proj": {8, 32 / math.Sqrt(8)},
		"model.layers.1.mlp.down_proj": {8, 8 / math.Sqrt(8)},
	}
	if len(got) != len(want) {
		t.Errorf("modules %v", got)
	}
	for k, w := range want {
		if g := got[k]; math.Abs(g[0]-w[0]) > 0 || math.Abs(g[1]-w[1]) > 1e-12 {
			t.Errorf("%s: rank, scale %v, want %v", k, g, w)
		}
	}
	var sum, sq float64
	var n int
	for _, l := range a.layers {
		for _, v := range readVar(t, l.a) {
			sum += float64(v)
			sq += float64(v) * float64(v)
			n++
		}
	}
	if std := math.Sqrt(sq/float64(n) - (sum/float64(n))*(sum/float64(n))); math.Abs(std-0.18) > 0.05 {
		t.Errorf("gaussian A std %g (ranks 2 and 8 mixed)", std)
	}
	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := Load(loadModel(t, "llama"), dir, "x")
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range back.layers {
		if l.r != a.layers[i].r || l.scale != a.layers[i].scale {
			t.Errorf("%s: round trip gives rank %d scale %g", l.mod.Name, l.r, l.scale)
		}
	}
}

func TestConfigErrorsAndUnknownKeys(t *testing.T) {
	m := loadModel(t, "llama")
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Bias: "all", TargetModules: peft.NameList("q_proj")}, "bias"},
		{Config{TargetModules: peft.NameList("embed_tokens")}, "not a linear layer"},
		{Config{TargetModules: peft.NameList("c_attn")}, "match no module"},
		{Config{TargetModules: peft.NameList("q_proj"), Dropout: 1}, "lora_dropout"},
		{Config{TargetModules: peft.NameList("q_proj"), Init: "olora"}, "olora"},
	} {
		if _, err := Attach(m, "bad", c.cfg, 0); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %q", c.cfg, err, c.want)
		}
	}
	if _, err := Attach(m, "a/b", Config{TargetModules: peft.NameList("q_proj")}, 0); err == nil {
		t.Error("adapter name with a slash accepted")
	}
	// A PEFT file with keys lethe does not know: warned about, kept on save.
	dir := t.TempDir()
	src := filepath.Join(fixtures, "llama", "lora")
	cfg, _ := os.ReadFile(filepath.Join(src, "adapter_config.json"))
	cfg = []byte(strings.Replace(string(cfg), "{\n", "{\n  \"future_option\": {\"x\": 1},\n", 1))
	os.WriteFile(filepath.Join(dir, "adapter_config.json"), cfg, 0o644)
	weights, _ := os.ReadFile(filepath.Join(src, "adapter_model.safetensors"))
	os.WriteFile(filepath.Join(dir, "adapter_model.safetensors"), weights, 0o644)
	a, err := Load(m, dir, "default")
	if err != nil {
		t.Fatal(err)
	}
	if w := a.Warnings(); len(w) != 1 || !strings.Contains(w[0], "future_option") {
		t.Errorf("warnings %q", w)
	}
	out := t.TempDir()
	if err := a.Save(out); err != nil {
		t.Fatal(err)
	}
	saved, _ := os.ReadFile(filepath.Join(out, "adapter_config.json"))
	if !strings.Contains(string(saved), "\"future_option\": {\n    \"x\": 1\n  },") {
		t.Errorf("unknown key not kept:\n%s", saved)
	}
	// Settings lethe cannot honour are errors naming the field.
	bad := strings.Replace(string(cfg), `"bias": "none"`, `"bias": "lora_only"`, 1)
	os.WriteFile(filepath.Join(dir, "adapter_config.json"), []byte(bad), 0o644)
	if _, err := Load(m, dir, "b2"); err == nil || !strings.Contains(err.Error(), "bias") || !strings.Contains(err.Error(), "adapter_config.json") {
		t.Errorf("bias lora_only: %v", err)
	}
	if _, err := Load(m, t.TempDir(), "b3"); err == nil {
		t.Error("empty folder loaded")
	}
}

// TestDoRAAttach: a fresh DoRA adapter (B = 0) has magnitude ‖W‖ per output
// row and leaves the output unchanged.
func TestDoRAAttach(t *testing.T) {
	b := testBackend(t)
	m := loadModel(t, "llama")
	a, err := Attach(m, "default", Config{R: 4, TargetModules: peft.NameList("o_proj", "up_proj"), UseDoRA: true}, 3)
	if err != nil {
		t.Fatal(err)
	}
	l := a.layers[0]
	w, err := readBase(m, l.mod)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(readVar(t, l.mag), columnNorms(w)); d > 1e-6 {
		t.Errorf("magnitude differs from ‖W‖ by %g", d)
	}
	logits, _ := forward(t, b, m, fixtureIDs(t, "llama"), a.Hooks(false))
	if d := maxAbsDiff(logits, baseLogits(t, "llama")); d > 1e-4 {
		t.Errorf("fresh DoRA changes the logits by %g", d)
	}
	if !slices.Contains(a.Params(), "base_model.model.model.layers.0.self_attn.o_proj.lora_magnitude_vector.default.weight") {
		t.Errorf("params %q", a.Params())
	}
}

// TestSet: several adapters on one model; active ones add up, disabling
// gives the base model, merging two LoRA adapters equals applying both.
func TestSet(t *testing.T) {
	b := testBackend(t)
	m := loadModel(t, "llama")
	ids := fixtureIDs(t, "llama")
	s := NewSet(m)
	lo, err := s.Load(filepath.Join(fixtures, "llama", "lora"), "lora")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(filepath.Join(fixtures, "llama", "rslora"), "rs"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(filepath.Join(fixtures, "llama", "dora"), "dora"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(filepath.Join(fixtures, "llama", "lora"), "lora"); err == nil {
		t.Error("duplicate name accepted")
	}
	if got := s.Active(); !slices.Equal(got, []string{"lora"}) {
		t.Errorf("active %q", got)
	}
	one, _ := forward(t, b, m, ids, s.Hooks(false))
	exp := openExpected(t, filepath.Join(fixtures, "llama", "lora", "expected.safetensors"))
	if d := maxAbsDiff(one, exp.floats(t, "logits")); d > 1e-4 {
		t.Errorf("active lora: %g", d)
	}
	if err := s.SetActive("lora", "rs"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetActive("nope"); err == nil {
		t.Error("unknown adapter activated")
	}
	both, _ := forward(t, b, m, ids, s.Hooks(false))
	if d := maxAbsDiff(both, one); d < 1e-3 {
		t.Errorf("the second adapter changes nothing (%g)", d)
	}
	if err := s.SetEnabled(false); err != nil {
		t.Fatal(err)
	}
	off, _ := forward(t, b, m, ids, s.Hooks(false))
	if d := maxAbsDiff(off, baseLogits(t, "llama")); d > 1e-4 {
		t.Errorf("disabled: %g", d)
	}
	s.SetEnabled(true)
	if err := s.Merge(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetEnabled(false); err == nil {
		t.Error("disabled while merged")
	}
	merged, _ := forward(t, b, m, ids, s.Hooks(false)) // merged adapters add no hooks
	if d := maxAbsDiff(merged, both); d > 1e-4 {
		t.Errorf("merging both differs from applying both by %g", d)
	}
	// Additive merges undo in any order.
	if err := lo.Unmerge(); err != nil {
		t.Fatal(err)
	}
	if err := s.Unmerge(); err != nil {
		t.Fatal(err)
	}
	base, _ := forward(t, b, m, ids, models.Hooks{})
	if d := maxAbsDiff(base, baseLogits(t, "llama")); d > 1e-4 {
		t.Errorf("after unmerge: %g", d)
	}
	// DoRA merged over LoRA must be unmerged first.
	if err := s.Merge("lora", "dora"); err != nil {
		t.Fatal(err)
	}
	if err := lo.Unmerge(); err == nil {
		t.Error("unmerged lora under dora")
	}
	if err := s.Unmerge(); err != nil {
		t.Fatal(err)
	}
	base, _ = forward(t, b, m, ids, models.Hooks{})
	if d := maxAbsDiff(base, baseLogits(t, "llama")); d > 1e-4 {
		t.Errorf("after unmerging dora and lora: %g", d)
	}
	if err := s.Delete("dora"); err != nil {
		t.Fatal(err)
	}
	if got := s.Names(); !slices.Equal(got, []string{"lora", "rs"}) {
		t.Errorf("after delete: %q", got)
	}
	if m.Store.GetVariable("/peft/dora/model.layers.0.self_attn.q_proj/lora_A") != nil {
		t.Error("deleted adapter's tensors remain")
	}
}

// TestModulesToSave: a full trained copy of lm_head, saved under PEFT's key,
// loaded back, merged.
func TestModulesToSave(t *testing.T) {
	b := testBackend(t)
	m := loadModel(t, "llama")
	ids := fixtureIDs(t, "llama")
	cfg := Config{R: 4, TargetModules: peft.NameList("q_proj", "lm_head"), ModulesToSave: []string{"lm_head"}}
	a, err := Attach(m, "default", cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(a.Modules(), "lm_head") || !slices.Equal(a.SavedModules(), []string{"lm_head"}) {
		t.Fatalf("modules %q saved %q", a.Modules(), a.SavedModules())
	}
	if !slices.Contains(a.Params(), "base_model.model.lm_head.modules_to_save.default.weight") {
		t.Errorf("params %q", a.Params())
	}
	tr, err := train.NewTrainer(m, b, train.TrainerOptions{Params: a.Params(), Vars: a.Vars(),
		Optimizer: train.OptimizerConfig{LR: 1e-2}, Loss: train.CausalLM(m, a.Hooks(true), a.Hooks(false), 0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Step([]*data.Batch{fixtureBatch(ids)}, 1e-2); err != nil {
		t.Fatal(err)
	}
	with, _ := forward(t, b, m, ids, a.Hooks(false))
	if d := maxAbsDiff(with, baseLogits(t, "llama")); d < 1e-3 {
		t.Fatalf("training changed nothing (%g)", d)
	}
	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	f := openExpected(t, filepath.Join(dir, "adapter_model.safetensors"))
	if info, ok := f.f.Info("base_model.model.lm_head.weight"); !ok || !slices.Equal(info.Shape, []int{320, 64}) {
		t.Errorf("lm_head copy: %v %v (keys %q)", info.Shape, ok, f.f.Names())
	}
	m2 := loadModel(t, "llama")
	a2, err := Load(m2, dir, "default")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := forward(t, b, m2, ids, a2.Hooks(false))
	if d := maxAbsDiff(again, with); d > 1e-5 {
		t.Errorf("reloaded adapter differs by %g", d)
	}
	if err := a2.Merge(); err != nil {
		t.Fatal(err)
	}
	merged, _ := forward(t, b, m2, ids, models.Hooks{})
	if d := maxAbsDiff(merged, with); d > 1e-4 {
		t.Errorf("merged differs by %g", d)
	}
	if err := a2.Unmerge(); err != nil {
		t.Fatal(err)
	}
	base, _ := forward(t, b, m2, ids, models.Hooks{})
	if d := maxAbsDiff(base, baseLogits(t, "llama")); d > 1e-4 {
		t.Errorf("unmerged differs from base by %g", d)
	}
}

// TestExportMerged: a merged model exported with models.Export loads as a
// plain checkpoint with the adapter's outputs.
func TestExportMerged(t *testing.T) {
	b := testBackend(t)
	for _, arch := range []string{"llama", "gpt2"} {
		m := loadModel(t, arch)
		dir := filepath.Join(fixtures, arch, "lora")
		a, err := Load(m, dir, "default")
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Merge(); err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		if err := m.Export(out, models.ExportOptions{}); err != nil {
			t.Fatal(err)
		}
		m2, err := models.Load(out, models.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := forward(t, b, m2, fixtureIDs(t, arch), models.Hooks{})
		exp := openExpected(t, filepath.Join(dir, "expected.safetensors"))
		if d := maxAbsDiff(got, exp.floats(t, "merged_logits")); d > 1e-4 {
			t.Errorf("%s: exported merged model differs by %g", arch, d)
		}
	}
}

// TestAddWeighted checks the combinations against their definitions on
// ΔW = scale·B·A.
func TestAddWeighted(t *testing.T) {
	m := loadModel(t, "llama")
	s := NewSet(m)
	l1, err := s.Load(filepath.Join(fixtures, "llama", "lora"), "one")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := s.Load(filepath.Join(fixtures, "llama", "rslora"), "two")
	if err != nil {
		t.Fatal(err)
	}
	delta := func(l *layer) *host.Matrix {
		d, err := l.delta()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	w := []float64{0.7, 0.4}
	cat, err := s.AddWeighted("cat", []string{"one", "two"}, w, WeightedOptions{Combination: Cat})
	if err != nil {
		t.Fatal(err)
	}
	if cat.layers[0].r != 8 || cat.layers[0].scale != 1 {
		t.Errorf("cat rank %d scale %g", cat.layers[0].r, cat.layers[0].scale)
	}
	for i, l := range cat.layers {
		want := delta(l1.layers[i])
		d2 := delta(l2.layers[i])
		for j := range want.Data {
			want.Data[j] = float32(w[0])*want.Data[j] + float32(w[1])*d2.Data[j]
		}
		if d := maxAbsDiff(delta(l).Data, want.Data); d > 1e-5 {
			t.Errorf("cat %s: ΔW differs from Σ wᵢΔWᵢ by %g", l.mod.Name, d)
		}
	}
	lin, err := s.AddWeighted("lin", []string{"one", "two"}, w, WeightedOptions{Combination: Linear})
	if err != nil {
		t.Fatal(err)
	}
	a1, a2, al := readVar(t, l1.layers[0].a), readVar(t, l2.layers[0].a), readVar(t, lin.layers[0].a)
	c1, c2 := math.Sqrt(w[0]*l1.layers[0].scale), math.Sqrt(w[1]*l2.layers[0].scale)
	for j := range al {
		if want := c1*float64(a1[j]) + c2*float64(a2[j]); math.Abs(float64(al[j])-want) > 1e-5 {
			t.Fatalf("linear A[%d] = %g, want %g", j, al[j], want)
		}
	}
	ties, err := s.AddWeighted("ties", []string{"one", "two"}, w, WeightedOptions{Combination: TIES, Density: 0.5})
	if err != nil || ties.layers[0].r != 4 {
		t.Fatalf("ties: %v", err)
	}
	if _, err := s.AddWeighted("svd", []string{"one", "two"}, w, WeightedOptions{Combination: "svd"}); err == nil || !strings.Contains(err.Error(), "svd") {
		t.Errorf("svd: %v", err)
	}
	// TIES on a hand example: prune to the top half by magnitude, elect
	// signs on the sum, average the agreeing weighted entries.
	x := &host.Matrix{Rows: 1, Cols: 4, Data: []float32{3, -1, 2, 0.5}}
	y := &host.Matrix{Rows: 1, Cols: 4, Data: []float32{-1, -4, 1, 0.1}}
	got := mergeTensors([]*host.Matrix{x, y}, []float64{1, 2}, TIES, WeightedOptions{Density: 0.5, MajoritySign: "total"})
	// pruned: x = [3, 0, 2, 0], y = [0, -4, 1, 0]; signs +,-,+,+(0)
	want := []float32{3, -8, (2 + 2) / 2.0, 0}
	if !slices.Equal(got.Data, want) {
		t.Errorf("ties %v, want %v", got.Data, want)
	}
}

// TestDropout: lora_dropout acts in training graphs only.
func TestDropout(t *testing.T) {
	b := testBackend(t)
	m := loadModel(t, "llama")
	ids := fixtureIDs(t, "llama")
	a, err := Load(m, filepath.Join(fixtures, "llama", "lora"), "default")
	if err != nil {
		t.Fatal(err)
	}
	a.cfg.Dropout = 0.5
	exp := openExpected(t, filepath.Join(fixtures, "llama", "lora", "expected.safetensors"))
	eval, _ := forward(t, b, m, ids, a.Hooks(false))
	if d := maxAbsDiff(eval, exp.floats(t, "logits")); d > 1e-4 {
		t.Errorf("eval with dropout configured: %g", d)
	}
	trainLogits, _ := forward(t, b, m, ids, a.Hooks(true))
	if d := maxAbsDiff(trainLogits, eval); d < 1e-3 {
		t.Errorf("dropout changed nothing in training (%g)", d)
	}
}

// TestWeightDropout checks LoRA Dropout's defining properties: a dropped row
// of A (input feature) and a dropped column of B (output feature)
// contribute nothing, kept ones are scaled by 1/(1−p), and the expectation
// of A'·B' is A·B.
func TestWeightDropout(t *testing.T) {
	b := testBackend(t)
	m := loadModel(t, "llama")
	const in, r, out, p = 6, 3, 5, 0.5
	av := make([]float32, in*r)
	bv := make([]float32, r*out)
	for i := range av {
		av[i] = float32(i%5) - 1.5
	}
	for i := range bv {
		bv[i] = float32(i%7)*0.3 - 0.8
	}
	exec, err := model.NewExec(b, m.Store, func(scope *model.Scope, a, bn *Node) []*Node {
		scope.SetTraining(a.Graph(), true)
		a2, b2 := weightDropout(m, a, bn, p)
		return []*Node{a2, b2, MatMul(a2, b2)}
	})
	if err != nil {
		t.Fatal(err)
	}
	at := tensors.FromFlatDataAndDimensions(av, in, r)
	bt := tensors.FromFlatDataAndDimensions(bv, r, out)
	want := host.MatMul(&host.Matrix{Rows: in, Cols: r, Data: av}, &host.Matrix{Rows: r, Cols: out, Data: bv})
	mean := make([]float64, in*out)
	const n = 3000
	var droppedRows, droppedCols int
	for s := 0; s < n; s++ {
		outs, err := exec.Call(at, bt)
		if err != nil {
			t.Fatal(err)
		}
		a2, b2, prod := flat(t, outs[0]), flat(t, outs[1]), flat(t, outs[2])
		for i := 0; i < in; i++ {
			dropped := a2[i*r] == 0 && a2[i*r+1] == 0 && a2[i*r+2] == 0
			for k := 0; k < r; k++ {
				if !dropped && a2[i*r+k] != 2*av[i*r+k] {
					t.Fatalf("kept row %d of A not scaled by 1/(1-p)", i)
				}
			}
			if dropped {
				droppedRows++
				for o := 0; o < out; o++ {
					if prod[i*out+o] != 0 {
						t.Fatalf("dropped input feature %d contributes %g", i, prod[i*out+o])
					}
				}
			}
		}
		for o := 0; o < out; o++ {
			dropped := b2[o] == 0 && b2[out+o] == 0 && b2[2*out+o] == 0
			if dropped {
				droppedCols++
				for i := 0; i < in; i++ {
					if prod[i*out+o] != 0 {
						t.Fatalf("dropped output feature %d gets %g", o, prod[i*out+o])
					}
				}
			}
		}
		for j, v := range prod {
			mean[j] += float64(v) / n
		}
	}
	if f := float64(droppedRows) / (n * in); math.Abs(f-p) > 0.03 {
		t.Errorf("rows dropped %.3f of the time, want %g", f, p)
	}
	if f := float64(droppedCols) / (n * out); math.Abs(f-p) > 0.03 {
		t.Errorf("columns dropped %.3f of the time, want %g", f, p)
	}
	worst := 0.0
	for j := range mean {
		worst = math.Max(worst, math.Abs(mean[j]-float64(want.Data[j])))
	}
	if worst > 0.1*maxAbs(want.Data) {
		t.Errorf("E[A'B'] differs from AB by %g (max |AB| %g)", worst, maxAbs(want.Data))
	}
	// The adapter applies it in training only.
	a, err := Attach(m, "wd", Config{R: 4, TargetModules: peft.NameList("q_proj"), Init: InitRandom, WeightDropout: 0.3}, 5)
	if err != nil {
		t.Fatal(err)
	}
	ids := fixtureIDs(t, "llama")
	e1, _ := forward(t, b, m, ids, a.Hooks(false))
	t1, _ := forward(t, b, m, ids, a.Hooks(true))
	if maxAbsDiff(e1, t1) < 1e-4 {
		t.Error("weight dropout changed nothing in training")
	}
	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	c, warnings, err := ReadConfig(dir)
	if err != nil || c.WeightDropout != 0.3 || len(warnings) != 0 {
		t.Errorf("weight dropout round trip: %v %q %v", c.WeightDropout, warnings, err)
	}
	_ = dtypes.Float32
}

// TestPiSSA: the adapter holds the top singular directions and the base
// keeps the residual, so the adapted model computes what the base did.
func TestPiSSA(t *testing.T) {
	b := testBackend(t)
	m := loadModel(t, "llama")
	ids := fixtureIDs(t, "llama")
	before, err := readBase(m, peft.Modules(m)[0])
	if err != nil {
		t.Fatal(err)
	}
	a, err := Attach(m, "pissa", Config{R: 4, Alpha: 4, TargetModules: peft.NameList("q_proj", "down_proj"), Init: InitPiSSA}, 6)
	if err != nil {
		t.Fatal(err)
	}
	logits, _ := forward(t, b, m, ids, a.Hooks(false))
	if d := maxAbsDiff(logits, baseLogits(t, "llama")); d > 1e-4 {
		t.Errorf("PiSSA changes the adapted model's logits by %g", d)
	}
	after, _ := readBase(m, a.layers[0].mod)
	norm := func(x []float32) float64 {
		s := 0.0
		for _, v := range x {
			s += float64(v) * float64(v)
		}
		return math.Sqrt(s)
	}
	// The residual loses the top-4 singular values' energy.
	if !(norm(after.Data) < 0.9*norm(before.Data)) {
		t.Errorf("residual norm %g vs %g: the top directions were not taken out", norm(after.Data), norm(before.Data))
	}
}
