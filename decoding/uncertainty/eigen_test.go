package uncertainty

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSymEigenvalues(t *testing.T) {
	for _, c := range []struct {
		a    [][]float64
		want []float64
	}{
		{[][]float64{{2, 1, 0}, {1, 2, 1}, {0, 1, 2}}, []float64{2 - math.Sqrt2, 2, 2 + math.Sqrt2}},
		{[][]float64{{4, 0}, {0, -1}}, []float64{-1, 4}},
		{[][]float64{{1, 1}, {1, 1}}, []float64{0, 2}},
		{[][]float64{{5}}, []float64{5}},
	} {
		got := symEigenvalues(c.a)
		slices.Sort(got)
		for i := range got {
			if math.Abs(got[i]-c.want[i]) > 1e-14 {
				t.Errorf("eigenvalues = %v, want %v", got, c.want)
				break
			}
		}
	}
}

func TestEigenScoreHandComputed(t *testing.T) {
	const a = 1e-3
	for _, c := range []struct {
		name string
		emb  [][]float64
		cfg  EigenConfig
		want float64
	}{
		// x_i = e_i − 1/3: Σ = I − (1/3)11ᵀ, eigenvalues 1, 1, 0.
		{"unit vectors", [][]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, EigenConfig{},
			(2*math.Log(1+a) + math.Log(a)) / 3},
		// x1 = (2,−1,−1)/3, x2 = (−1,2,−1)/3: Σ = [[2/3, −1/3], [−1/3, 2/3]],
		// eigenvalues 1 and 1/3.
		{"two of three", [][]float64{{1, 0, 0}, {0, 1, 0}}, EigenConfig{},
			(math.Log(1+a) + math.Log(1.0/3+a)) / 2},
		// The same divided by d − 1 = 2, as torch.cov: 1/2 and 1/6.
		{"normalized", [][]float64{{1, 0, 0}, {0, 1, 0}}, EigenConfig{Normalize: true},
			(math.Log(0.5+a) + math.Log(1.0/6+a)) / 2},
		// Centring over the features ignores a constant added to one
		// embedding: both rows become (1, −1), Σ = [[2, 2], [2, 2]].
		{"shifted copies", [][]float64{{1, -1}, {2, 0}}, EigenConfig{},
			(math.Log(4+a) + math.Log(a)) / 2},
		{"alpha", [][]float64{{1, -1}, {2, 0}}, EigenConfig{Alpha: 0.5},
			(math.Log(4.5) + math.Log(0.5)) / 2},
		// Constant embeddings: Σ = 0.
		{"constant", [][]float64{{3, 3, 3}, {1, 1, 1}}, EigenConfig{}, math.Log(a)},
		{"one answer", [][]float64{{1, 0, 0}}, EigenConfig{}, math.Log(2.0/3 + a)},
		// Standardised, any two distinct answers are ±u: Σ ∝ [[1, −1], [−1, 1]],
		// scaled to eigenvalues 1 and 0, whatever the embeddings' scale.
		{"standardized pair", [][]float64{{1, 0, 5}, {0, 2, 5}}, EigenConfig{Standardize: true},
			(math.Log(1+a) + math.Log(a)) / 2},
		{"standardized pair scaled", [][]float64{{100, 0, 5}, {0, 0.02, 5}}, EigenConfig{Standardize: true},
			(math.Log(1+a) + math.Log(a)) / 2},
	} {
		got, err := EigenScore(c.emb, c.cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !closeTo(got, c.want, 1e-13) {
			t.Errorf("%s: EigenScore = %.17g, want %.17g", c.name, got, c.want)
		}
	}
}

func randomEmbeddings(rng *rand.Rand, K, d, clusters int, noise float64) [][]float64 {
	centres := make([][]float64, clusters)
	for c := range centres {
		centres[c] = make([]float64, d)
		for j := range centres[c] {
			centres[c][j] = 3 * rng.NormFloat64()
		}
	}
	emb := make([][]float64, K)
	for i := range emb {
		emb[i] = make([]float64, d)
		for j := range emb[i] {
			emb[i][j] = centres[i%clusters][j] + noise*rng.NormFloat64()
		}
	}
	return emb
}

func TestEigenScoreProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	emb := randomEmbeddings(rng, 6, 40, 6, 1)
	base, _ := EigenScore(emb, EigenConfig{})
	// Invariant to the order of the answers and to a constant added to
	// an embedding's features.
	perm := [][]float64{emb[3], emb[0], emb[5], emb[1], emb[4], emb[2]}
	shifted := slices.Clone(emb)
	shifted[2] = slices.Clone(emb[2])
	for j := range shifted[2] {
		shifted[2][j] += 10
	}
	for name, e := range map[string][][]float64{"permuted": perm, "shifted": shifted} {
		if got, _ := EigenScore(e, EigenConfig{}); math.Abs(got-base) > 1e-12 {
			t.Errorf("%s: EigenScore = %v, want %v", name, got, base)
		}
	}
	// Consistent answers score lower than diverse ones.
	low, _ := EigenScore(randomEmbeddings(rng, 6, 40, 1, 0.01), EigenConfig{})
	high, _ := EigenScore(randomEmbeddings(rng, 6, 40, 6, 1), EigenConfig{})
	if !(low < high) {
		t.Errorf("consistent %v not below diverse %v", low, high)
	}
	// Normalize: eigenvalues divided by d − 1.
	lam := func(e [][]float64, cfg EigenConfig) float64 { v, _ := EigenScore(e, cfg); return v }
	x, _, _ := prepare("", emb, EigenConfig{})
	g := make([][]float64, len(x))
	for i := range g {
		g[i] = make([]float64, len(x))
		for j := range g[i] {
			g[i][j] = dot(x[i], x[j]) / 39
		}
	}
	var want float64
	for _, l := range symEigenvalues(g) {
		want += math.Log(l + 1e-3)
	}
	if got := lam(emb, EigenConfig{Normalize: true}); math.Abs(got-want/6) > 1e-12 {
		t.Errorf("Normalize: %v, want %v", got, want/6)
	}
}

func TestEfficientEigenScore(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		name           string
		K, d, clusters int
		noise          float64
		cfg            EigenConfig
		tol            float64
	}{
		// Unrelated answers: no eigenvalue near α; 20 moments give a few
		// hundredths of a nat, 100 a few thousandths.
		{"random 8x64", 8, 64, 8, 1, EigenConfig{}, 0.05},
		{"random 16x32", 16, 32, 16, 1, EigenConfig{}, 0.05},
		{"random 32x128", 32, 128, 32, 1, EigenConfig{}, 0.05},
		{"random 5x1000", 5, 1000, 5, 1, EigenConfig{}, 0.05},
		{"random, 100 moments", 8, 64, 8, 1, EigenConfig{Moments: 100}, 0.01},
		// Consistent answers: one dominant direction, removed by the
		// default deflation; the rest of the spectrum is close to α.
		{"consistent", 10, 256, 1, 0.01, EigenConfig{}, 1e-4},
		{"very consistent", 10, 256, 1, 0.001, EigenConfig{}, 1e-4},
		{"three clusters", 12, 256, 3, 0.01, EigenConfig{Deflate: 3}, 1e-4},
		{"standardized", 8, 64, 8, 1, EigenConfig{Standardize: true}, 0.05},
		{"standardized, 100 moments", 8, 64, 8, 1, EigenConfig{Standardize: true, Moments: 100}, 1e-3},
		{"standardized clusters", 12, 256, 3, 0.01, EigenConfig{Standardize: true, Deflate: 2}, 1e-4},
		{"alpha 0.1", 8, 64, 8, 1, EigenConfig{Alpha: 0.1}, 0.05},
		{"normalized", 8, 64, 8, 1, EigenConfig{Normalize: true}, 0.05},
		{"one answer", 1, 16, 1, 1, EigenConfig{}, 1e-9},
		{"all deflated", 3, 16, 3, 1, EigenConfig{Deflate: 3}, 1e-6},
	} {
		emb := randomEmbeddings(rng, c.K, c.d, c.clusters, c.noise)
		want, err := EigenScore(emb, c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := EfficientEigenScore(emb, c.cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if math.Abs(got-want) > c.tol {
			t.Errorf("%s: EES = %.6f, EigenScore = %.6f (|diff| %.2g > %g)", c.name, got, want, math.Abs(got-want), c.tol)
		}
	}
}

// Without deflation the expansion must resolve ln on [α, λ_max] with
// λ_max/α ≈ 10⁶ for consistent answers, and 20 moments cannot: this is
// why Deflate defaults to 1.
func TestEfficientEigenScoreNeedsDeflation(t *testing.T) {
	emb := randomEmbeddings(rand.New(rand.NewPCG(3, 4)), 10, 256, 1, 0.01)
	want, _ := EigenScore(emb, EigenConfig{})
	plain, _ := EfficientEigenScore(emb, EigenConfig{Deflate: -1})
	deflated, _ := EfficientEigenScore(emb, EigenConfig{})
	if math.Abs(plain-want) < 1 || math.Abs(deflated-want) > 1e-4 {
		t.Errorf("EigenScore %.4f: plain EES %.4f, deflated %.4f", want, plain, deflated)
	}
}

// Hutchinson's estimator: the error is within a few standard deviations
// √(2/N_z)·‖ln A‖_F/K, and the result is a function of the seed.
func TestEfficientEigenScoreProbes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct{ K, d, probes int }{{8, 64, 30}, {8, 64, 200}, {16, 32, 100}, {5, 1000, 50}} {
		emb := randomEmbeddings(rng, c.K, c.d, c.K, 1)
		want, _ := EigenScore(emb, EigenConfig{})
		x, _, _ := prepare("", emb, EigenConfig{})
		g := make([][]float64, c.K)
		for i := range g {
			g[i] = make([]float64, c.K)
			for j := range g[i] {
				g[i][j] = dot(x[i], x[j])
			}
		}
		var fro float64
		for _, l := range symEigenvalues(g) {
			fro += math.Pow(math.Log(max(l, 0)+1e-3), 2)
		}
		sd := math.Sqrt(2/float64(c.probes)*fro) / float64(c.K)
		for seed := range uint64(3) {
			cfg := EigenConfig{Probes: c.probes, Seed: seed}
			got, err := EfficientEigenScore(emb, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-want) > 4*sd+0.02 {
				t.Errorf("K=%d d=%d Nz=%d seed %d: EES %.4f, EigenScore %.4f, sd %.3f", c.K, c.d, c.probes, seed, got, want, sd)
			}
			if again, _ := EfficientEigenScore(emb, cfg); again != got {
				t.Errorf("seed %d: %v then %v", seed, got, again)
			}
		}
	}
}

func TestEigenScoreErrors(t *testing.T) {
	nan := math.NaN()
	for name, c := range map[string]struct {
		emb [][]float64
		cfg EigenConfig
	}{
		"none":           {nil, EigenConfig{}},
		"dimension 1":    {[][]float64{{1}, {2}}, EigenConfig{}},
		"ragged":         {[][]float64{{1, 2}, {1, 2, 3}}, EigenConfig{}},
		"NaN":            {[][]float64{{1, nan}}, EigenConfig{}},
		"Inf":            {[][]float64{{1, math.Inf(1)}}, EigenConfig{}},
		"negative alpha": {[][]float64{{1, 2}}, EigenConfig{Alpha: -1}},
	} {
		if got, err := EigenScore(c.emb, c.cfg); err == nil || !math.IsNaN(got) {
			t.Errorf("EigenScore(%s) = %v, %v; want NaN and an error", name, got, err)
		}
		if got, err := EfficientEigenScore(c.emb, c.cfg); err == nil || !math.IsNaN(got) {
			t.Errorf("EfficientEigenScore(%s) = %v, %v; want NaN and an error", name, got, err)
		}
	}
	for _, cfg := range []EigenConfig{{Moments: -1}, {Probes: -2}} {
		if _, err := EfficientEigenScore([][]float64{{1, 2}, {3, 5}}, cfg); err == nil {
			t.Errorf("EfficientEigenScore(%+v): no error", cfg)
		}
	}
	// Constant embeddings: Σ = 0 and EES = ln α exactly.
	if got, err := EfficientEigenScore([][]float64{{2, 2}, {5, 5}}, EigenConfig{}); err != nil || got != math.Log(1e-3) {
		t.Errorf("EES(constant) = %v, %v; want ln 1e-3", got, err)
	}
}

// TestEfficientEigenScoreNearlyIdentical: answers whose embeddings differ
// only by rounding (Σ has one eigenvalue and the rest are rounding noise)
// get EigenScore's value, not NaN.
func TestEfficientEigenScoreNearlyIdentical(t *testing.T) {
	row := []float64{0.3, -1.2, 2.5, 0.7}
	var emb [][]float64
	for k := range 5 {
		r := append([]float64(nil), row...)
		r[k%4] += float64(k) * 1e-15
		emb = append(emb, r)
	}
	e, err := EfficientEigenScore(emb, EigenConfig{})
	want, _ := EigenScore(emb, EigenConfig{})
	if err != nil || math.IsNaN(e) || math.Abs(e-want) > 1e-6 {
		t.Errorf("EES %v (%v), EigenScore %v", e, err, want)
	}
}
