package moe

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/peft"
	"github.com/lethe-ml/lethe/peft/internal/host"
	"github.com/lethe-ml/lethe/peft/internal/jsonfile"
	"github.com/lethe-ml/lethe/peft/lora"
	"github.com/lethe-ml/lethe/train"
)

var qv = peft.NameList("q_proj", "v_proj")

// lnRows returns the logits ln(w) of rows of positive weights, so that the
// router probabilities are w / Σw.
func lnRows(rows ...[]float64) *tensors.Tensor {
	var out []float32
	for _, r := range rows {
		for _, w := range r {
			out = append(out, float32(math.Log(w)))
		}
	}
	return tensors.FromFlatDataAndDimensions(out, len(rows), len(rows[0]))
}

func close2(got []float32, want []float64, tol float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if math.Abs(float64(got[i])-want[i]) > tol {
			return false
		}
	}
	return true
}

// TestLoRAEquivalence: one expert with k = 1 is plain LoRA. A mixture and
// a lora adapter with the same A and B give the same logits, whatever is
// shared, with rsLoRA and with a capacity (which one expert never
// exceeds at factor 1).
func TestLoRAEquivalence(t *testing.T) {
	b := testBackend(t)
	m := loadModel(t)
	ids, base := fixture(t)
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"plain", Config{}},
		{"rslora", Config{UseRSLoRA: true}},
		{"shareA", Config{Share: ShareA}},
		{"shareB", Config{Share: ShareB}},
		{"capacity", Config{CapacityFactor: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, err := lora.Attach(m, "lora_"+c.name, lora.Config{R: 4, Alpha: 16, UseRSLoRA: c.cfg.UseRSLoRA, TargetModules: qv, Init: lora.InitRandom}, 7)
			if err != nil {
				t.Fatal(err)
			}
			cfg := c.cfg
			cfg.Experts, cfg.TopK, cfg.R, cfg.Alpha, cfg.TargetModules = 1, 1, 4, 16, qv
			a, err := Attach(m, "moe_"+c.name, cfg, 8)
			if err != nil {
				t.Fatal(err)
			}
			lt := l.Tensors()
			if len(a.layers) != 4 {
				t.Fatalf("%d modules", len(a.layers))
			}
			for _, ml := range a.layers {
				for kind, v := range map[string]*model.Variable{"lora_A.weight": ml.a, "lora_B.weight": ml.b} {
					if err := host.Write(v, readVar(t, lt[ml.key(kind)])); err != nil {
						t.Fatal(err)
					}
				}
			}
			want := forward(t, b, m, ids, l.Hooks(false), false)
			got := forward(t, b, m, ids, a.Hooks(false), false)
			d := maxAbsDiff(got, want)
			if d > 1e-5 {
				t.Errorf("logits differ from LoRA's by %.3g", d)
			}
			if moved := maxAbsDiff(want, base); moved < 1e-2 {
				t.Errorf("the LoRA update moves the logits by only %.3g: the check is vacuous", moved)
			}
			t.Logf("max |moe − lora| = %.3g (the update moves logits by %.3g)", d, maxAbsDiff(want, base))
		})
	}
}

// TestRoute checks gates against hand-computed values: top-k of the
// softmax, ties to the lower expert index, renormalisation over the k,
// and capacity dropping the later tokens in token order.
func TestRoute(t *testing.T) {
	b := testBackend(t)
	for _, c := range []struct {
		name     string
		weights  [][]float64 // router probabilities up to normalisation
		k, cap   int
		gates    [][]float64
		assigned [][]float64
	}{
		{"top2", [][]float64{{1, 2, 3, 4}, {4, 3, 2, 1}}, 2, 0,
			[][]float64{{0, 0, 3. / 7, 4. / 7}, {4. / 7, 3. / 7, 0, 0}},
			[][]float64{{0, 0, 1, 1}, {1, 1, 0, 0}}},
		{"ties", [][]float64{{2, 2, 1, 1}, {3, 1, 1, 1}, {1, 1, 1, 1}}, 2, 0,
			[][]float64{{.5, .5, 0, 0}, {.75, .25, 0, 0}, {.5, .5, 0, 0}},
			[][]float64{{1, 1, 0, 0}, {1, 1, 0, 0}, {1, 1, 0, 0}}},
		{"top1", [][]float64{{1, 5, 2}, {1, 1, 1}}, 1, 0,
			[][]float64{{0, 1, 0}, {1, 0, 0}},
			[][]float64{{0, 1, 0}, {1, 0, 0}}},
		{"capacity top1", [][]float64{{3, 1}, {4, 1}, {1, 3}, {5, 1}}, 1, 2,
			[][]float64{{1, 0}, {1, 0}, {0, 1}, {0, 0}},
			[][]float64{{1, 0}, {1, 0}, {0, 1}, {1, 0}}},
		{"capacity top2", [][]float64{{3, 2, 1}, {1, 2, 3}, {2, 1, 3}}, 2, 1,
			[][]float64{{.6, .4, 0}, {0, 0, .6}, {0, 0, 0}},
			[][]float64{{1, 1, 0}, {0, 1, 1}, {1, 0, 1}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			outs, err := ExecOnceN(b, func(logits *Node) []*Node {
				r := route(logits, c.k, c.cap)
				return []*Node{r.gates, r.assigned}
			}, lnRows(c.weights...))
			if err != nil {
				t.Fatal(err)
			}
			var gates, assigned []float64
			for i := range c.gates {
				gates = append(gates, c.gates[i]...)
				assigned = append(assigned, c.assigned[i]...)
			}
			if got := flat(t, outs[0]); !close2(got, gates, 1e-6) {
				t.Errorf("gates %v, want %v", got, gates)
			}
			if got := flat(t, outs[1]); !close2(got, assigned, 0) {
				t.Errorf("assigned %v, want %v", got, assigned)
			}
		})
	}
}

// TestCapacity checks Config.capacity: expert_capacity wins, else
// ⌈factor·k·S/N⌉, else none.
func TestCapacity(t *testing.T) {
	for _, c := range []struct {
		cfg    Config
		tokens int
		want   int
	}{
		{Config{Experts: 4, TopK: 2}, 24, 0},
		{Config{Experts: 4, TopK: 2, Capacity: 5, CapacityFactor: 2}, 24, 5},
		{Config{Experts: 4, TopK: 2, CapacityFactor: 1}, 24, 12},
		{Config{Experts: 4, TopK: 1, CapacityFactor: 1.25}, 10, 4}, // ⌈3.125⌉
		{Config{Experts: 3, TopK: 2, CapacityFactor: 1}, 7, 5},     // ⌈4.67⌉
	} {
		if got := c.cfg.capacity(c.tokens); got != c.want {
			t.Errorf("%+v with %d tokens: capacity %d, want %d", c.cfg, c.tokens, got, c.want)
		}
	}
}

// TestBalanceLoss: N·Σ fₑ·Pₑ is 1 for uniform router probabilities and
// matches hand-computed values, and its gradient with respect to the
// logits is the hand-derived one.
func TestBalanceLoss(t *testing.T) {
	b := testBackend(t)
	for _, c := range []struct {
		name    string
		weights [][]float64
		k       int
		want    float64
		grad    []float64 // d loss / d logits, when checked
	}{
		{"uniform k2", [][]float64{{1, 1, 1, 1}, {1, 1, 1, 1}, {1, 1, 1, 1}}, 2, 1, nil},
		{"uniform k1", [][]float64{{1, 1, 1}, {1, 1, 1}}, 1, 1, nil},
		{"balanced", [][]float64{{3, 1}, {1, 3}}, 1, 1, nil},
		// f = [1, 0], P = [(.75+.6)/2, …]: 2·0.675; dL/dlogit(s, 0) =
		// (2/S)·p₀(1−p₀) = .1875, .24 and the opposite for expert 1.
		{"skewed", [][]float64{{3, 1}, {3, 2}}, 1, 1.35, []float64{.1875, -.1875, .24, -.24}},
		// Both tokens pick experts 2 and 3: f = [0, 0, .5, .5],
		// P = [.1, .2, .35, .35]: 4·.35.
		{"skewed k2", [][]float64{{1, 2, 3, 4}, {1, 2, 4, 3}}, 2, 1.4, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			outs, err := ExecOnceN(b, func(logits *Node) []*Node {
				l := balanceLoss(route(logits, c.k, 0), c.k)
				return []*Node{l, Gradient(l, logits)[0]}
			}, lnRows(c.weights...))
			if err != nil {
				t.Fatal(err)
			}
			got := flat(t, outs[0])[0]
			if math.Abs(float64(got)-c.want) > 1e-6 {
				t.Errorf("balance loss %.7g, want %g", got, c.want)
			}
			if c.grad != nil {
				if g := flat(t, outs[1]); !close2(g, c.grad, 1e-6) {
					t.Errorf("gradient %v, want %v", g, c.grad)
				}
			}
		})
	}
}

// TestRouterGradient: with B zero (the default init) the LM loss does not
// depend on the routers, so their gradient comes from the balance term
// alone: zero without it, nonzero with it; one trainer step with
// CausalLM then moves every router.
func TestRouterGradient(t *testing.T) {
	b := testBackend(t)
	m := loadModel(t)
	ids, _ := fixture(t)
	a, err := Attach(m, "default", Config{Experts: 4, TopK: 2, R: 4, TargetModules: qv}, 1)
	if err != nil {
		t.Fatal(err)
	}
	routers := []*model.Variable{}
	for _, l := range a.layers {
		routers = append(routers, l.router)
	}
	cleared := false
	outs, err := model.CallOnceN(b, m.Store, func(scope *model.Scope, idsN *Node) []*Node {
		g := idsN.Graph()
		scope.SetTraining(g, true)
		in := train.Inputs{IDs: idsN, Labels: idsN}
		lm := train.CausalLM(m, a.Hooks(true), a.Hooks(false), 0)(in, true).Loss
		bl := a.BalanceLoss(g)
		cleared = a.BalanceLoss(g) == nil
		total := Add(lm, MulScalar(bl, a.cfg.BalanceCoef))
		withBalance := a.CausalLM(a.Hooks(true), a.Hooks(false), 0)(in, true).Loss
		eval := a.CausalLM(a.Hooks(true), a.Hooks(false), 0)(in, false).Loss
		var nodes []*Node
		for _, r := range routers {
			nodes = append(nodes, r.NodeValue(g))
		}
		out := []*Node{bl, lm, withBalance, eval}
		out = append(out, Gradient(lm, nodes...)...)
		return append(out, Gradient(total, nodes...)...)
	}, tensors.FromFlatDataAndDimensions(ids, 2, 12))
	if err != nil {
		t.Fatal(err)
	}
	if !cleared {
		t.Error("BalanceLoss did not clear the graph's losses")
	}
	lm, withBalance, eval := flat(t, outs[1])[0], flat(t, outs[2])[0], flat(t, outs[3])[0]
	if want := float64(lm) + 0.01*float64(flat(t, outs[0])[0]); math.Abs(float64(withBalance)-want) > 1e-6 || eval != lm {
		t.Errorf("CausalLM loss %.7g, want LM %.7g + 0.01·balance = %.7g; evaluation %.7g, want %.7g", withBalance, lm, want, eval, lm)
	}
	outs = append(outs[:1], outs[4:]...)
	bl := flat(t, outs[0])[0]
	if bl < 1 || bl > 4 {
		t.Errorf("balance loss %g, want in [1, N]", bl)
	}
	n := len(routers)
	for i := range n {
		lmGrad, totalGrad := maxAbs(flat(t, outs[1+i])), maxAbs(flat(t, outs[1+n+i]))
		if lmGrad != 0 || totalGrad < 1e-7 {
			t.Errorf("%s: router grad max %.3g from the LM loss (want 0), %.3g with the balance term (want > 0)", a.layers[i].mod.Name, lmGrad, totalGrad)
		}
		if i == 0 {
			t.Logf("balance loss %.4f; router grad max %.3g (LM only) and %.3g (with 0.01·balance)", bl, lmGrad, totalGrad)
		}
	}

	before := [][]float32{}
	for _, r := range routers {
		before = append(before, readVar(t, r))
	}
	tr, err := train.NewTrainer(m, b, train.TrainerOptions{Params: a.Params(), Vars: a.Vars(),
		Optimizer: train.OptimizerConfig{LR: 1e-2}, Loss: a.CausalLM(a.Hooks(true), a.Hooks(false), 0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Step([]*data.Batch{fixtureBatch(ids)}, 1e-2); err != nil {
		t.Fatal(err)
	}
	for i, r := range routers {
		if d := maxAbsDiff(readVar(t, r), before[i]); d < 1e-4 {
			t.Errorf("%s: one step moved the router by %.3g", a.layers[i].mod.Name, d)
		}
	}
	// B has moved: now the LM loss itself reaches the routers.
	grads, err := model.CallOnceN(b, m.Store, func(scope *model.Scope, idsN *Node) []*Node {
		g := idsN.Graph()
		scope.SetTraining(g, true)
		lm := train.CausalLM(m, a.Hooks(true), a.Hooks(false), 0)(train.Inputs{IDs: idsN, Labels: idsN}, true).Loss
		var nodes []*Node
		for _, r := range routers {
			nodes = append(nodes, r.NodeValue(g))
		}
		return Gradient(lm, nodes...)
	}, tensors.FromFlatDataAndDimensions(ids, 2, 12))
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range grads {
		if mx := maxAbs(flat(t, g)); mx < 1e-7 {
			t.Errorf("%s: after one step the LM loss's router gradient is %.3g", a.layers[i].mod.Name, mx)
		} else if i == 0 {
			t.Logf("after one step: LM-loss router grad max %.3g", mx)
		}
	}
}

// TestExpertDropout: each gate is dropped with probability p and the kept
// ones are scaled by 1/(1−p), so the mean of the dropped gates is the
// gates; p = 0 is the identity, and an adapter without dropout computes
// the same in training and evaluation, and differs with it.
func TestExpertDropout(t *testing.T) {
	b := testBackend(t)
	store := model.NewStore()
	if err := store.SetRNGStateFromSeed(3); err != nil {
		t.Fatal(err)
	}
	row := []float32{0, 3. / 7, 4. / 7, .25, .75}
	const M = 20000
	var gv []float32
	for range M {
		gv = append(gv, row...)
	}
	gates := tensors.FromFlatDataAndDimensions(gv, M, len(row))
	for _, p := range []float64{0, 0.3} {
		out, err := model.CallOnce(b, store, func(_ *model.Scope, g *Node) *Node { return expertDropout(store, g, p) }, gates)
		if err != nil {
			t.Fatal(err)
		}
		got := flat(t, out)
		if p == 0 {
			if !slices.Equal(got, gv) {
				t.Error("p = 0 changed the gates")
			}
			continue
		}
		mean := make([]float64, len(row))
		var dropped, nonzero int
		for i, v := range got {
			e := i % len(row)
			mean[e] += float64(v) / M
			if row[e] == 0 {
				continue
			}
			nonzero++
			switch {
			case v == 0:
				dropped++
			case math.Abs(float64(v)-float64(row[e])/(1-p)) > 1e-6:
				t.Fatalf("kept gate %g, want %g/(1−p)", v, row[e])
			}
		}
		frac := float64(dropped) / float64(nonzero)
		if math.Abs(frac-p) > 0.01 {
			t.Errorf("dropped %.4f of the gates, want %g", frac, p)
		}
		worst := 0.0
		for e := range row {
			worst = math.Max(worst, math.Abs(mean[e]-float64(row[e])))
		}
		// The standard error of a mean is at most 0.75·√(p/(1−p))/√M ≈ 0.0035.
		if worst > 0.012 {
			t.Errorf("mean of dropped gates %v differs from %v by %.4f", mean, row, worst)
		}
		t.Logf("p=%g: dropped %.4f, max |mean − gate| %.4f", p, frac, worst)
	}

	m := loadModel(t)
	ids, _ := fixture(t)
	for i, c := range []struct {
		name    string
		p       float64
		differs bool
	}{{"none", 0, false}, {"p=0.5", 0.5, true}} {
		a, err := Attach(m, "ed"+strconv.Itoa(i), Config{R: 4, TargetModules: qv, Init: lora.InitRandom, ExpertDropout: c.p}, 2)
		if err != nil {
			t.Fatal(err)
		}
		eval := forward(t, b, m, ids, a.Hooks(false), false)
		tr := forward(t, b, m, ids, a.Hooks(true), true)
		if d := maxAbsDiff(eval, tr); (d > 1e-4) != c.differs {
			t.Errorf("%s: training and evaluation logits differ by %.3g", c.name, d)
		}
	}
}

// TestShared: MoSLD (one A per module) and shared B keep one shared
// matrix per module in Params, Vars and the file, and the number of
// trainable values is the closed form.
func TestShared(t *testing.T) {
	b := testBackend(t)
	m := loadModel(t)
	ids, base := fixture(t)
	const N, r = 4, 4
	// llama fixture: q_proj 64→64, v_proj 64→32, two layers.
	perModule := func(in, out int, s Share) int {
		n := N * in // router
		if s == ShareA {
			n += r * in
		} else {
			n += N * r * in
		}
		if s == ShareB {
			n += out * r
		} else {
			n += N * out * r
		}
		return n
	}
	for _, c := range []struct {
		share     Share
		numParams int // hand-computed
	}{
		{ShareNone, 2 * (256 + 1024 + 1024 + 256 + 1024 + 512)},
		{ShareA, 2 * (256 + 256 + 1024 + 256 + 256 + 512)},
		{ShareB, 2 * (256 + 1024 + 256 + 256 + 1024 + 128)},
	} {
		name := "share" + string(c.share)
		t.Run(name, func(t *testing.T) {
			a, err := Attach(m, name, Config{Experts: N, TopK: 2, R: r, TargetModules: qv, Share: c.share, SharedDropout: map[bool]float64{true: 0, false: 0.1}[c.share == ShareNone]}, 4)
			if err != nil {
				t.Fatal(err)
			}
			closed := 2 * (perModule(64, 64, c.share) + perModule(64, 32, c.share))
			if got := a.NumParams(); got != closed || got != c.numParams {
				t.Errorf("%d trainable values, closed form %d, by hand %d", got, closed, c.numParams)
			}
			if got := len(a.Params()); got != 12 || len(a.Vars()) != 12 {
				t.Errorf("%d params, %d vars, want 3 per module", got, len(a.Vars()))
			}
			l := a.layers[0]
			wantA, wantB := []int{N, 64, r}, []int{N, r, 64}
			switch c.share {
			case ShareA:
				wantA = []int{64, r}
			case ShareB:
				wantB = []int{r, 64}
			}
			if !slices.Equal(l.a.Shape().Dimensions, wantA) || !slices.Equal(l.b.Shape().Dimensions, wantB) {
				t.Errorf("A %v, B %v, want %v, %v", l.a.Shape().Dimensions, l.b.Shape().Dimensions, wantA, wantB)
			}
			// Fresh default init: B zero, A U(±1/8), router U(±1/8).
			if av, rv := maxAbs(readVar(t, l.a)), maxAbs(readVar(t, l.router)); av > 0.125 || av < 0.1 || rv > 0.125 || rv < 0.1 || maxAbs(readVar(t, l.b)) != 0 {
				t.Errorf("init: max |A| %g, max |router| %g, want just under 1/8; B must be zero", av, rv)
			}
			if d := maxAbsDiff(forward(t, b, m, ids, a.Hooks(false), false), base); d > 1e-5 {
				t.Errorf("a fresh adapter changes the logits by %g", d)
			}
			dir := t.TempDir()
			if err := a.Save(dir); err != nil {
				t.Fatal(err)
			}
			f := openFile(t, filepath.Join(dir, "adapter_model.safetensors"))
			names := f.Names()
			count := func(sub string) int {
				n := 0
				for _, k := range names {
					if strings.Contains(k, sub) {
						n++
					}
				}
				return n
			}
			wantKeys := map[string]int{".lora_router.weight": 4, ".lora_A.weight": 0, ".lora_A.experts.": 16, ".lora_B.weight": 0, ".lora_B.experts.": 16}
			switch c.share {
			case ShareA:
				wantKeys[".lora_A.weight"], wantKeys[".lora_A.experts."] = 4, 0
			case ShareB:
				wantKeys[".lora_B.weight"], wantKeys[".lora_B.experts."] = 4, 0
			}
			for sub, n := range wantKeys {
				if got := count(sub); got != n {
					t.Errorf("%d file keys with %q, want %d", got, sub, n)
				}
			}
			total := 0
			for _, k := range names {
				info, _ := f.Info(k)
				total += info.NumElements()
			}
			if total != closed || !slices.Equal(names, sortedCopy(a.Keys())) {
				t.Errorf("file holds %d values (want %d), keys %q", total, closed, names)
			}
			if info, _ := f.Info("base_model.model.model.layers.0.self_attn.v_proj.lora_router.weight"); !slices.Equal(info.Shape, []int{N, 64}) {
				t.Errorf("router shape %v", info.Shape)
			}
		})
	}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestSaveLoad: Save then Load gives the same tensors, logits and files;
// an unknown config key is kept and warned about; broken folders give
// errors naming the file.
func TestSaveLoad(t *testing.T) {
	b := testBackend(t)
	m := loadModel(t)
	ids, _ := fixture(t)
	cfg := Config{Experts: 3, TopK: 2, R: 4, Alpha: 8, TargetModules: qv, Init: lora.InitRandom, CapacityFactor: 1.5,
		ExpertDropout: 0.1, Dropout: 0.05, BalanceCoef: 0.02}
	a, err := Attach(m, "orig", cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	// The file holds torch layouts: expert 1's A of the first module is
	// the transpose of A[1].
	f := openFile(t, filepath.Join(dir, "adapter_model.safetensors"))
	l0 := a.layers[0]
	a1, err := f.Float32(l0.key("lora_A.experts.1.weight"))
	if err != nil {
		t.Fatal(err)
	}
	av := readVar(t, l0.a)
	if want := (&host.Matrix{Rows: 64, Cols: 4, Data: av[64*4 : 2*64*4]}).T().Data; !slices.Equal(a1, want) {
		t.Error("lora_A.experts.1.weight is not A[1]ᵀ")
	}

	m2 := loadModel(t)
	back, err := Load(m2, dir, "back")
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Warnings()) != 0 {
		t.Errorf("warnings %q", back.Warnings())
	}
	got, want := back.Config(), a.Config()
	got.raw = nil
	if jg, _ := got.JSON(); !bytes.Equal(jg, mustJSON(t, want)) {
		t.Errorf("loaded config\n%s\nwant\n%s", jg, mustJSON(t, want))
	}
	av2 := back.Vars()
	for name, v := range a.Vars() {
		name2 := strings.Replace(name, ".orig.", ".back.", 1)
		if w, ok := av2[name2]; !ok || !slices.Equal(readVar(t, w), readVar(t, v)) {
			t.Errorf("%s differs after the round trip", name)
		}
	}
	if d := maxAbsDiff(forward(t, b, m2, ids, back.Hooks(false), false), forward(t, b, m, ids, a.Hooks(false), false)); d != 0 {
		t.Errorf("reloaded adapter's logits differ by %g", d)
	}
	dir2 := t.TempDir()
	if err := back.Save(dir2); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"adapter_config.json", "adapter_model.safetensors"} {
		x, _ := os.ReadFile(filepath.Join(dir, name))
		y, _ := os.ReadFile(filepath.Join(dir2, name))
		if !bytes.Equal(x, y) {
			t.Errorf("re-saved %s differs (%d vs %d bytes)", name, len(x), len(y))
		}
	}
	cfgText, _ := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
	obj, _ := jsonfile.Decode(cfgText)
	for k, v := range map[string]any{"peft_type": "LETHE_MOLORA", "format_version": 1, "num_experts": 3, "top_k": 2, "r": 4,
		"lora_alpha": 8, "capacity_factor": 1.5, "expert_capacity": 0, "expert_dropout": 0.1, "lora_dropout": 0.05,
		"router_aux_loss_coef": 0.02, "shared_projection": nil, "init_lora_weights": false, "inference_mode": true,
		"target_modules": []any{"q_proj", "v_proj"}, "task_type": "CAUSAL_LM", "base_model_name_or_path": m.Dir} {
		if got, ok := obj.(*jsonfile.Object).Get(k); !ok || !jsonfile.Equal(got, v) {
			t.Errorf("adapter_config.json %s = %v, want %v", k, got, v)
		}
	}

	// An unknown key: kept on save, reported as a warning.
	unk := t.TempDir()
	withKey := strings.Replace(string(cfgText), "{\n", "{\n  \"future_option\": [1, 2],\n", 1)
	os.WriteFile(filepath.Join(unk, "adapter_config.json"), []byte(withKey), 0o644)
	weights, _ := os.ReadFile(filepath.Join(dir, "adapter_model.safetensors"))
	os.WriteFile(filepath.Join(unk, "adapter_model.safetensors"), weights, 0o644)
	u, err := Load(loadModel(t), unk, "u")
	if err != nil {
		t.Fatal(err)
	}
	if w := u.Warnings(); len(w) != 1 || !strings.Contains(w[0], "future_option") || !strings.Contains(w[0], "adapter_config.json") {
		t.Errorf("warnings %q", w)
	}
	out := t.TempDir()
	if err := u.Save(out); err != nil {
		t.Fatal(err)
	}
	saved, _ := os.ReadFile(filepath.Join(out, "adapter_config.json"))
	if !strings.Contains(string(saved), "\"future_option\": [\n    1,\n    2\n  ],") {
		t.Errorf("unknown key not kept:\n%s", saved)
	}

	// Broken folders.
	for _, c := range []struct {
		name   string
		config string // "" keeps the saved one; "-" removes it
		weight []byte // nil keeps the saved one
		noW    bool
		want   []string
	}{
		{"missing weights", "", nil, true, []string{"adapter_model.safetensors"}},
		{"truncated weights", "", weights[:len(weights)/2], false, []string{"adapter_model.safetensors"}},
		{"missing config", "-", nil, false, []string{"adapter_config.json"}},
		{"corrupt config", "{\"peft_type\": ", nil, false, []string{"adapter_config.json"}},
		{"lora file", strings.Replace(string(cfgText), "LETHE_MOLORA", "LORA", 1), nil, false, []string{"adapter_config.json", "peft_type"}},
		{"bad top_k", strings.Replace(string(cfgText), "\"top_k\": 2", "\"top_k\": 5", 1), nil, false, []string{"adapter_config.json", "top_k"}},
		{"bad share", strings.Replace(string(cfgText), "\"shared_projection\": null", "\"shared_projection\": \"C\"", 1), nil, false, []string{"adapter_config.json", "shared_projection"}},
		{"fewer experts", strings.Replace(string(cfgText), "\"num_experts\": 3", "\"num_experts\": 2", 1), nil, false,
			[]string{"adapter_model.safetensors", "lora_router.weight", "shape"}},
		{"fewer targets", strings.Replace(string(cfgText), "\"v_proj\"", "\"q_proj\"", 1), nil, false,
			[]string{"adapter_model.safetensors", "does not account for", "v_proj"}},
		{"shared A", strings.Replace(string(cfgText), "\"shared_projection\": null", "\"shared_projection\": \"A\"", 1), nil, false,
			[]string{"adapter_model.safetensors", "lora_A.weight", "missing"}},
		{"more experts", strings.Replace(string(cfgText), "\"num_experts\": 3", "\"num_experts\": 4", 1), nil, false,
			[]string{"adapter_model.safetensors", "lora_router.weight"}},
		{"other rank", strings.Replace(string(cfgText), "\"r\": 4", "\"r\": 2", 1), nil, false,
			[]string{"adapter_model.safetensors", "lora_A.experts.0.weight", "shape"}},
	} {
		d := t.TempDir()
		switch c.config {
		case "":
			os.WriteFile(filepath.Join(d, "adapter_config.json"), cfgText, 0o644)
		case "-":
		default:
			os.WriteFile(filepath.Join(d, "adapter_config.json"), []byte(c.config), 0o644)
		}
		w := c.weight
		if w == nil {
			w = weights
		}
		if !c.noW {
			os.WriteFile(filepath.Join(d, "adapter_model.safetensors"), w, 0o644)
		}
		mb := loadModel(t)
		_, err := Load(mb, d, "x")
		if err == nil {
			t.Errorf("%s: loaded", c.name)
			continue
		}
		for _, s := range c.want {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not name %q", c.name, err, s)
			}
		}
		for range mb.Store.RootScope().At("peft").At("x").IterVariables() {
			t.Errorf("%s: a failed load left tensors in the store", c.name)
			break
		}
	}
}

func mustJSON(t *testing.T, c Config) []byte {
	t.Helper()
	j, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestArchitectures: GPT-2's Conv1D modules (the default c_attn), a head
// tied to the embeddings and Mixtral's expert MLPs take mixtures too; the
// update moves the logits and survives a save and load.
func TestArchitectures(t *testing.T) {
	b := testBackend(t)
	for _, c := range []struct {
		arch    string
		targets peft.Targets
		modules []string
	}{
		{"gpt2", peft.Targets{}, []string{"transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn"}},
		{"gemma", peft.NameList("lm_head"), []string{"lm_head"}},
		{"mixtral", peft.Regexp(`.*\.experts\.0\.w2`), []string{"model.layers.0.block_sparse_moe.experts.0.w2", "model.layers.1.block_sparse_moe.experts.0.w2"}},
	} {
		t.Run(c.arch, func(t *testing.T) {
			m := loadArch(t, c.arch)
			ids, base := archFixture(t, c.arch)
			a, err := Attach(m, "x", Config{Experts: 3, TopK: 2, R: 2, TargetModules: c.targets, Init: lora.InitRandom}, 3)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a.Modules(), c.modules) {
				t.Errorf("modules %q, want %q", a.Modules(), c.modules)
			}
			got := forward(t, b, m, ids, a.Hooks(false), false)
			if d := maxAbsDiff(got, base); d < 1e-3 {
				t.Errorf("the adapter moves the logits by only %.3g", d)
			}
			dir := t.TempDir()
			if err := a.Save(dir); err != nil {
				t.Fatal(err)
			}
			m2 := loadArch(t, c.arch)
			back, err := Load(m2, dir, "x")
			if err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(forward(t, b, m2, ids, back.Hooks(false), false), got); d != 0 {
				t.Errorf("reloaded logits differ by %g", d)
			}
		})
	}
}

// TestConfigErrors: bad settings are errors naming the field, and a
// negative BalanceCoef turns the balance loss off (saved as 0, loaded as
// 0, not the default).
func TestConfigErrors(t *testing.T) {
	m := loadModel(t)
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Experts: 2, TopK: 3}, "top_k"},
		{Config{R: -1}, "r:"},
		{Config{ExpertDropout: 1}, "expert_dropout"},
		{Config{Dropout: -0.1}, "lora_dropout"},
		{Config{SharedDropout: 0.1}, "shared_dropout"},
		{Config{Share: "C"}, "shared_projection"},
		{Config{Capacity: -1}, "expert_capacity"},
		{Config{Init: lora.InitPiSSA}, "init_lora_weights"},
		{Config{TargetModules: peft.NameList("embed_tokens")}, "not a linear layer"},
	} {
		if _, err := Attach(m, "bad", c.cfg, 0); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %q", c.cfg, err, c.want)
		}
	}
	if _, err := Attach(m, "a/b", Config{}, 0); err == nil {
		t.Error("adapter name with a slash accepted")
	}
	a, err := Attach(m, "nobal", Config{BalanceCoef: -1, R: 2}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Modules(); !slices.Equal(got, []string{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
		"model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"}) {
		t.Errorf("default targets: %q", got)
	}
	if _, err := Attach(m, "nobal", Config{}, 0); err == nil {
		t.Error("second adapter with the same name accepted")
	}
	defer func() {
		if err := a.Delete(); err != nil {
			t.Fatal(err)
		}
		for v := range m.Store.RootScope().At("peft").At("nobal").IterVariables() {
			t.Errorf("Delete left %s", v.Path())
			break
		}
		if _, err := Attach(m, "nobal", Config{}, 0); err != nil {
			t.Errorf("attach after delete: %v", err)
		}
	}()
	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	c, _, err := ReadConfig(dir)
	if err != nil || c.BalanceCoef != 0 || c.balanceCoef() != 0 || c.Experts != 4 || c.TopK != 2 {
		t.Errorf("read back: coef %g, experts %d, top_k %d, %v", c.BalanceCoef, c.Experts, c.TopK, err)
	}
}

// TestTraining: a few AdamW steps of SiRA and of MoSLD (with every
// dropout, capacity and the balance loss) lower the evaluation loss on a
// fixed batch.
func TestTraining(t *testing.T) {
	b := testBackend(t)
	ids, _ := fixture(t)
	batch := fixtureBatch(ids)
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"SiRA", Config{Experts: 4, TopK: 2, R: 4, Alpha: 8, Dropout: 0.05, ExpertDropout: 0.1, CapacityFactor: 1.25}},
		{"MoSLD", Config{Experts: 4, TopK: 2, R: 4, Alpha: 8, Share: ShareA, SharedDropout: 0.1, ExpertDropout: 0.1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := loadModel(t)
			cfg := c.cfg
			cfg.TargetModules = peft.NameList("q_proj", "v_proj", "o_proj")
			a, err := Attach(m, "default", cfg, 9)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := train.NewTrainer(m, b, train.TrainerOptions{Params: a.Params(), Vars: a.Vars(), Seed: 1,
				Optimizer: train.OptimizerConfig{LR: 2e-2, Betas: []float64{0.9, 0.999}, Eps: 1e-8},
				Loss:      a.CausalLM(a.Hooks(true), a.Hooks(false), 0)})
			if err != nil {
				t.Fatal(err)
			}
			ev0, err := tr.Evaluate([]*data.Batch{batch})
			if err != nil {
				t.Fatal(err)
			}
			var losses []float64
			for range 6 {
				r, err := tr.Step([]*data.Batch{batch}, 2e-2)
				if err != nil {
					t.Fatal(err)
				}
				losses = append(losses, r.Loss)
			}
			ev1, err := tr.Evaluate([]*data.Batch{batch})
			if err != nil {
				t.Fatal(err)
			}
			if !(ev1.Loss < ev0.Loss-0.05) || !(losses[len(losses)-1] < losses[0]) {
				t.Errorf("loss %.4f → %.4f (training %.4f)", ev0.Loss, ev1.Loss, losses)
			}
			t.Logf("eval loss %.4f → %.4f; step losses %.4f", ev0.Loss, ev1.Loss, losses)
		})
	}
	_ = dtypes.Float32
}
