package uncertainty

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// EigenConfig configures [EigenScore] and [EfficientEigenScore].
type EigenConfig struct {
	// Alpha is the ridge α added to the covariance [1e-3, as in INSIDE].
	Alpha float64
	// Normalize divides Σ by d−1, as the INSIDE reference code does
	// (alibaba/eigenscore, func/metric.py, getEigenIndicator_v0, which
	// takes torch.cov of the [K, d] embeddings: each row centred over its
	// d features, divided by d−1). That code also reports log10 instead
	// of ln: its number is EigenScore(Normalize: true) / ln 10.
	Normalize bool
	// Standardize replaces INSIDE's centring by the preprocessing of SeND's
	// Algorithm 1 (lines 1–6): every feature is standardised over the K
	// answers (mean 0, population standard deviation 1; features constant
	// over the answers become 0) and the matrix is divided by its largest
	// singular value, so that the eigenvalues of Σ lie in [0, 1]. The
	// score then depends only on the shape of the spread of the answers
	// around their mean, not on its size: K nearly identical answers
	// score like K unrelated ones. Use it to reproduce SeND's numbers.
	// Normalize is ignored.
	Standardize bool

	// The fields below are read by EfficientEigenScore only.

	// Moments is M, the highest Chebyshev degree: the expansion has
	// M+1 terms, m = 0..M [20, the value of SeND's timing experiments].
	Moments int
	// Probes is N_z, the number of Gaussian probe vectors of the
	// stochastic trace estimator. 0 computes each trace exactly with the
	// K unit vectors instead (K matrix–vector products per moment), which
	// leaves the truncation of the expansion as the only error.
	Probes int
	// Deflate is the number of largest eigenpairs taken out exactly
	// before the expansion [1]; negative for none (SeND's plain
	// expansion).
	Deflate int
	// Seed seeds the probes and the start vectors of the power method
	// (math/rand/v2 PCG).
	Seed uint64
}

func (c EigenConfig) alpha() float64 {
	if c.Alpha == 0 {
		return 1e-3
	}
	return c.Alpha
}

// EigenScore is the EigenScore of INSIDE (Chen et al. 2024, "INSIDE:
// LLMs' Internal States Retain the Power of Hallucination Detection",
// ICLR 2024): with the K answers' sentence embeddings z_1..z_K ∈ R^d
// (emb[k] = z_k, e.g. the middle-layer hidden state of the last token, or
// the mean last-layer hidden state of the answer) as the columns of
// Z ∈ R^{d×K}, and J_d = I_d − (1/d) 1 1ᵀ the centring matrix,
//
//	Σ = Zᵀ J_d Z ∈ R^{K×K},
//	EigenScore = (1/K) log det(Σ + α I_K) = (1/K) Σ_i ln(λ_i + α),
//
// λ_i the eigenvalues of Σ. J_d centres every embedding over its own d
// features (Σ_jk = (z_j − z̄_j 1)·(z_k − z̄_k 1), z̄ the mean feature), as in
// the paper and lm-polygraph's EigenScore; it is not the usual
// covariance across answers. Answers that agree give nearly equal
// embeddings, a nearly rank-one Σ and a low (very negative) score;
// diverse, likely hallucinated answers give a high one. The score is the
// differential entropy of a Gaussian with covariance Σ + αI up to
// constants (the paper's motivation).
//
// The eigenvalues are computed exactly (cyclic Jacobi, K is small);
// eigenvalues that rounding makes slightly negative count as 0. cfg.Alpha,
// cfg.Normalize and cfg.Standardize apply; the other fields are ignored.
// emb needs K ≥ 1 rows of the same length d ≥ 2 with finite entries.
func EigenScore(emb [][]float64, cfg EigenConfig) (float64, error) {
	x, scale, err := prepare("EigenScore", emb, cfg)
	if err != nil {
		return math.NaN(), err
	}
	K := len(x)
	g := make([][]float64, K)
	for i := range g {
		g[i] = make([]float64, K)
	}
	for i := range K {
		for j := i; j < K; j++ {
			v := scale * dot(x[i], x[j])
			g[i][j], g[j][i] = v, v
		}
	}
	lam := symEigenvalues(g)
	if cfg.Standardize {
		top := 0.0
		for _, l := range lam {
			top = max(top, l)
		}
		if top > 0 {
			for i := range lam {
				lam[i] /= top
			}
		}
	}
	alpha := cfg.alpha()
	var s float64
	for _, l := range lam {
		s += math.Log(max(l, 0) + alpha)
	}
	return s / float64(K), nil
}

// EfficientEigenScore is the Efficient EigenScore (EES) of SeND
// (Mohammadzadeh et al. 2024, "Hallucination Detox: Sensitive Neuron
// Dropout (SeND) for Large Language Model Training", Algorithm 1): an
// approximation of [EigenScore] that neither forms Σ nor decomposes it,
// using only products Σv = X(Xᵀv), X the [K, d] centred embeddings, at
// O(Kd) each. It follows the paper's steps:
//
//  1. The largest eigenvalue λ̂ of Σ by the power method (SeND scales the
//     embeddings by their largest singular value); the spectrum of
//     A = Σ + αI lies in [lo, hi] with lo = α (Σ is positive
//     semi-definite) and hi = 1.01·λ̂ + α, and Ã = (2A − (hi+lo)I)/(hi−lo)
//     has its spectrum in [−1, 1].
//  2. The Chebyshev coefficients c_m of f(x) = ln(((hi−lo)x + hi+lo)/2),
//     so that ln λ(A) = Σ_m c_m T_m(λ(Ã)). SeND integrates them by
//     Gaussian quadrature; here the closed form of that integral is used:
//     with r = (√hi − √lo)/(√hi + √lo),
//     c_0 = 2 ln((√hi + √lo)/2),  c_m = 2 (−1)^{m+1} r^m / m.
//  3. The density-of-states moments d_m = tr T_m(Ã), m = 0..M, by the
//     three-term recurrence T_{m+1} = 2ÃT_m − T_{m−1} applied to probe
//     vectors: Hutchinson's estimator (1/N_z) Σ_j z_jᵀ T_m(Ã) z_j with
//     z_j ~ N(0, I_K) (SeND's line 12), or the exact trace Σ_i e_iᵀ
//     T_m(Ã) e_i when cfg.Probes is 0.
//  4. EES = (1/K) Σ_{m=0..M} c_m d_m ≈ (1/K) log det(Σ + αI).
//
// One step is added, deflation (as Bhattacharjee, Jayaram, Musco, Musco &
// Ray combine it with Chebyshev moment matching for spectral densities):
// before the expansion, the cfg.Deflate largest eigenpairs (λ̂_i, v_i) are found by
// the power method on Σ restricted to the complement of those already
// found, contribute ln(λ̂_i + α) exactly, and the expansion runs on the
// rest of the spectrum (probes projected onto the complement, hi from
// the next eigenvalue). This matters for consistent answers: their
// embeddings share one large direction, so Σ has one eigenvalue many
// orders of magnitude above the others, which sit near α, where ln is
// hard to approximate by a polynomial on [α, λ_max]; without deflation
// 20 moments can then miss EigenScore by several nats.
//
// EES estimates the same number as [EigenScore] under the same cfg: by
// default INSIDE's EigenScore itself, and with cfg.Standardize the
// score on SeND's standardised scale, which is what SeND's EES
// approximates.
// The truncation error shrinks as Moments grows and as the ratio of the
// (remaining) largest eigenvalue to α falls. Answers in c clusters give c
// large eigenvalues (c − 1 with Standardize): set Deflate to c. The
// stochastic estimator adds an error of order ‖log A‖_F·√(2/N_z)/K, so a
// few tens of probes leave errors of tenths of a nat.
//
// Cost: O((Deflate+1)·P·Kd) for the power method (P its iterations,
// few when the top eigenvalue is isolated) plus O(M·N·Kd) for the
// moments, N = Probes or K. With the exact trace this exceeds
// EigenScore's O(K²d + K³) for every K, so for the K ≤ 64 answers of
// sampling-based detection EigenScore is both exact and cheaper; EES pays
// off with Probes ≪ K.
func EfficientEigenScore(emb [][]float64, cfg EigenConfig) (float64, error) {
	x, scale, err := prepare("EfficientEigenScore", emb, cfg)
	if err != nil {
		return math.NaN(), err
	}
	M := cfg.Moments
	if M == 0 {
		M = 20
	}
	deflate := cfg.Deflate
	if deflate == 0 {
		deflate = 1
	}
	if M < 1 || cfg.Probes < 0 {
		return math.NaN(), fmt.Errorf("uncertainty: EfficientEigenScore: Moments %d and Probes %d", cfg.Moments, cfg.Probes)
	}
	K, d := len(x), len(x[0])
	alpha := cfg.alpha()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6a09e667f3bcc909))

	var basis [][]float64 // the deflated eigenvectors, orthonormal
	project := func(v []float64) {
		for range 2 { // twice is enough (Kahan's "twice is enough")
			for _, b := range basis {
				p := dot(b, v)
				for i := range v {
					v[i] -= p * b[i]
				}
			}
		}
	}
	w := make([]float64, d)
	pv := make([]float64, K)
	// sigma computes out = P·scale·X Xᵀ·P v, P the projector onto the
	// complement of basis.
	sigma := func(out, v []float64) {
		copy(pv, v)
		project(pv)
		clear(w)
		for i, xi := range x {
			if pv[i] != 0 {
				for j, xij := range xi {
					w[j] += pv[i] * xij
				}
			}
		}
		for i, xi := range x {
			out[i] = scale * dot(xi, w)
		}
		project(out)
	}

	var logdet float64
	lmax := 0.0
	for first := true; ; first = false {
		lam, v := powerMethod(sigma, K, alpha, project, rng)
		if first && cfg.Standardize && lam > 0 {
			scale /= lam // SeND's scaling: the spectrum of Σ in [0, 1]
			lam = 1
		}
		if len(basis) >= deflate || lam <= 0 || len(basis) == K {
			lmax = lam
			break
		}
		basis = append(basis, v)
		logdet += math.Log(lam + alpha)
	}
	rest := K - len(basis) // dimension of the complement
	switch {
	case rest == 0:
		return logdet / float64(K), nil
	case lmax <= 1e-9*alpha: // Σ vanishes on the complement (to rounding): A = αI there
		return (logdet + float64(rest)*math.Log(alpha)) / float64(K), nil
	}

	lo, hi := alpha, 1.01*lmax+alpha
	a, b := (hi+lo)/2, (hi-lo)/2
	sl, sh := math.Sqrt(lo), math.Sqrt(hi)
	r := (sh - sl) / (sh + sl)
	c := make([]float64, M+1)
	c[0] = 2 * math.Log((sh+sl)/2)
	rm := 1.0
	for m := 1; m <= M; m++ {
		rm *= r
		c[m] = 2 * rm / float64(m)
		if m%2 == 0 {
			c[m] = -c[m]
		}
	}
	// at computes out = Ã v = (Σv + αv − a v)/b on the complement.
	sv := make([]float64, K)
	at := func(out, v []float64) {
		sigma(sv, v)
		for i := range out {
			out[i] = (sv[i] + (alpha-a)*v[i]) / b
		}
	}
	moments := make([]float64, M+1)
	probes := cfg.Probes
	exact := probes == 0
	if exact {
		probes = K
	}
	z := make([]float64, K)
	prev, cur, next := make([]float64, K), make([]float64, K), make([]float64, K)
	for p := range probes {
		if exact {
			clear(z)
			z[p] = 1
		} else {
			for i := range z {
				z[i] = rng.NormFloat64()
			}
		}
		project(z) // Σ_i (Pe_i)ᵀ f (Pe_i) = tr(P f P); E[(Pz)(Pz)ᵀ] = P
		copy(prev, z)
		moments[0] += dot(z, prev)
		at(cur, z)
		moments[1] += dot(z, cur)
		for m := 2; m <= M; m++ {
			at(next, cur)
			for i := range next {
				next[i] = 2*next[i] - prev[i]
			}
			moments[m] += dot(z, next)
			prev, cur, next = cur, next, prev
		}
	}
	var rlogdet float64
	for m := range moments {
		rlogdet += c[m] * moments[m]
	}
	if !exact {
		rlogdet /= float64(probes) // Hutchinson's mean over the probes
	}
	return (logdet + rlogdet) / float64(K), nil
}

// prepare checks emb and returns the centred (or standardised) rows and
// the factor by which X Xᵀ is multiplied to give Σ (before the division
// by the top eigenvalue that Standardize also applies).
func prepare(fn string, emb [][]float64, cfg EigenConfig) ([][]float64, float64, error) {
	if len(emb) == 0 {
		return nil, 0, fmt.Errorf("uncertainty: %s: no embeddings", fn)
	}
	d := len(emb[0])
	if d < 2 {
		return nil, 0, fmt.Errorf("uncertainty: %s: embeddings of dimension %d, want at least 2", fn, d)
	}
	if !(cfg.Alpha >= 0) {
		return nil, 0, fmt.Errorf("uncertainty: %s: alpha %v", fn, cfg.Alpha)
	}
	for k, e := range emb {
		if len(e) != d {
			return nil, 0, fmt.Errorf("uncertainty: %s: embedding %d has dimension %d, want %d", fn, k, len(e), d)
		}
		for j, v := range e {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, 0, fmt.Errorf("uncertainty: %s: embedding %d feature %d is %v", fn, k, j, v)
			}
		}
	}
	K := len(emb)
	x := make([][]float64, K)
	if cfg.Standardize {
		for k := range x {
			x[k] = make([]float64, d)
		}
		for j := range d {
			var mu float64
			for _, e := range emb {
				mu += e[j]
			}
			mu /= float64(K)
			var v float64
			for _, e := range emb {
				v += (e[j] - mu) * (e[j] - mu)
			}
			sd := math.Sqrt(v / float64(K))
			if sd == 0 {
				continue
			}
			for k, e := range emb {
				x[k][j] = (e[j] - mu) / sd
			}
		}
		return x, 1, nil
	}
	for k, e := range emb {
		var mu float64
		for _, v := range e {
			mu += v
		}
		mu /= float64(d)
		x[k] = make([]float64, d)
		for j, v := range e {
			x[k][j] = v - mu
		}
	}
	if cfg.Normalize {
		return x, 1 / float64(d-1), nil
	}
	return x, 1, nil
}

func dot(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// powerMethod estimates the largest eigenvalue θ and its eigenvector v
// of the positive semi-definite operator mul on the complement of the
// vectors that project removes, by power iteration from a random start.
// It stops when the residual r = Σv − θv is small enough that treating v
// as an exact eigenvector changes ln det(Σ + αI) by about
// ‖r‖²/(θα) ≤ 1e-9, when θ stagnates (relative change below 1e-14), or
// after 2000 steps. θ is a Rayleigh quotient, so at most the true value.
func powerMethod(mul func(out, v []float64), K int, alpha float64, project func([]float64), rng *rand.Rand) (float64, []float64) {
	v, u := make([]float64, K), make([]float64, K)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	project(v)
	nrm := math.Sqrt(dot(v, v))
	if nrm == 0 {
		return 0, v
	}
	for i := range v {
		v[i] /= nrm
	}
	lam := math.Inf(1)
	for range 2000 {
		mul(u, v)
		theta := dot(v, u)
		if !(theta > 0) {
			return 0, v
		}
		var r2 float64
		for i := range u {
			d := u[i] - theta*v[i]
			r2 += d * d
		}
		n := math.Sqrt(dot(u, u))
		for i := range v {
			v[i] = u[i] / n
		}
		if r2 <= 1e-9*theta*alpha || math.Abs(theta-lam) <= 1e-14*theta {
			return theta, v
		}
		lam = theta
	}
	return lam, v
}

// symEigenvalues returns the eigenvalues of the symmetric matrix a (which
// it overwrites) by the cyclic Jacobi method: sweeps of plane rotations
// that zero each off-diagonal entry in turn, until the off-diagonal mass
// is below 1e-30 of the total (about 6 to 10 sweeps).
func symEigenvalues(a [][]float64) []float64 {
	n := len(a)
	var total float64
	for i := range n {
		for j := range n {
			total += a[i][j] * a[i][j]
		}
	}
	for range 100 {
		var off float64
		for p := range n {
			for q := p + 1; q < n; q++ {
				off += a[p][q] * a[p][q]
			}
		}
		if off <= 1e-30*total || off == 0 {
			break
		}
		for p := range n {
			for q := p + 1; q < n; q++ {
				apq := a[p][q]
				if apq == 0 {
					continue
				}
				theta := (a[q][q] - a[p][p]) / (2 * apq)
				var t float64
				if math.Abs(theta) > 1e150 {
					t = 1 / (2 * theta)
				} else {
					t = 1 / (math.Abs(theta) + math.Sqrt(theta*theta+1))
					if theta < 0 {
						t = -t
					}
				}
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := range n { // columns p and q: A ← A·P
					akp, akq := a[k][p], a[k][q]
					a[k][p] = c*akp - s*akq
					a[k][q] = s*akp + c*akq
				}
				for k := range n { // rows p and q: A ← Pᵀ·A
					apk, aqk := a[p][k], a[q][k]
					a[p][k] = c*apk - s*aqk
					a[q][k] = s*apk + c*aqk
				}
				a[p][q], a[q][p] = 0, 0
			}
		}
	}
	lam := make([]float64, n)
	for i := range n {
		lam[i] = a[i][i]
	}
	return lam
}
