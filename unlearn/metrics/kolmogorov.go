package metrics

import "math"

// This file ports the survival function of scipy.stats.kstwo, the
// distribution of the one-sample two-sided Kolmogorov–Smirnov statistic
// D_n (scipy/stats/_ksstats.py, kolmogn with cdf=False), and the exact
// one-sided Smirnov tail it needs (scipy.special.smirnov).
//
// References:
//   - Simard, R. and L'Ecuyer, P. (2011), "Computing the Two-Sided
//     Kolmogorov-Smirnov Distribution", Journal of Statistical Software
//     39(11): which method to use for which (n, x).
//   - Durbin (1968) and Marsaglia, Tsang & Wang (2003): the matrix method.
//   - Pomeranz (1974): the recursion.
//   - Pelz & Good (1976): the small-x expansion.
//   - Birnbaum & Tingey (1951): the one-sided tail.

const (
	ksE128   = 128
	ksMinLog = -708 // _MIN_LOG in _ksstats.py
	// cephesMinLog is MINLOG of cephes: log(2^-1022).
	cephesMinLog = -7.08396418532264106224e2
	// smirnovMaxComputeN is SMIRNOV_MAX_COMPUTE_N: above it the Smirnov
	// tail is approximated.
	smirnovMaxComputeN = 1000000
)

var (
	ksEP128 = math.Ldexp(1, ksE128)
	ksEM128 = math.Ldexp(1, -ksE128)
)

// kstwoSF returns P(D_n ≥ x) for the one-sample two-sided KS statistic
// with n observations, following SciPy's kolmogn(n, x, cdf=False).
func kstwoSF(x float64, n int) float64 {
	if n <= 0 || math.IsNaN(x) {
		return math.NaN()
	}
	if x >= 1 {
		return 0
	}
	if x <= 0 {
		return 1
	}
	fn := float64(n)
	t := fn * x
	if t <= 1 { // Ruben–Gambino: 1/(2n) ≤ x ≤ 1/n.
		if t <= 0.5 {
			return 1
		}
		var prob float64
		if n <= 140 {
			prob = 1
			for i := 1; i <= n; i++ {
				prob *= float64(i) * (1 / fn) * (2*t - 1)
			}
		} else {
			prob = math.Exp(logNFactorialDivNPowN(fn) + fn*math.Log(2*t-1))
		}
		return clip01(1 - prob)
	}
	if t >= fn-1 { // Ruben–Gambino.
		return clip01(2 * math.Pow(1-x, fn))
	}
	if x >= 0.5 { // Exact: twice the one-sided tail.
		return clip01(2 * smirnovSF(n, x))
	}
	nxsquared := t * x
	if n <= 140 {
		if nxsquared <= 0.754693 {
			return clip01(1 - kolmognDMTW(n, x))
		}
		if nxsquared <= 4 {
			return clip01(1 - kolmognPomeranz(n, x))
		}
		return clip01(2 * smirnovSF(n, x))
	}
	if nxsquared >= 370 {
		return 0
	}
	if nxsquared >= 2.2 {
		return clip01(2 * smirnovSF(n, x))
	}
	var cdf float64
	switch {
	case nxsquared >= 18:
		cdf = 1
	case n <= 100000 && fn*math.Pow(x, 1.5) <= 1.4:
		cdf = kolmognDMTW(n, x)
	default:
		cdf = kolmognPelzGood(n, x)
	}
	return clip01(1 - cdf)
}

// stirlingCoeffs are B_{2j}/(2j)/(2j−1) for j = 8, …, 1.
var stirlingCoeffs = [...]float64{
	-2.955065359477124183e-2, 6.4102564102564102564e-3,
	-1.9175269175269175269e-3, 8.4175084175084175084e-4,
	-5.952380952380952381e-4, 7.9365079365079365079e-4,
	-2.7777777777777777778e-3, 8.3333333333333333333e-2,
}

// logNFactorialDivNPowN is log(n!/n^n) by Stirling's series, with n·log n
// removed up front.
func logNFactorialDivNPowN(n float64) float64 {
	rn := 1 / n
	x := rn / n
	var poly float64
	for _, c := range stirlingCoeffs {
		poly = poly*x + c
	}
	return math.Log(n)/2 - n + math.Log(2*math.Pi)/2 + rn*poly
}

// kolmognDMTW is P(D_n ≤ d) by Durbin's matrix algorithm as Marsaglia,
// Tsang and Wang (2003) compute it: with d = (k−h)/n, the (k, k) entry of
// (n!/n^n)·H^n for an m×m matrix H, m = 2k−1, with rescaling by 2^±128.
func kolmognDMTW(n int, d float64) float64 {
	if d >= 1 {
		return 1
	}
	nd := float64(n) * d
	if nd <= 0.5 {
		return 0
	}
	k := int(math.Ceil(nd))
	h := float64(k) - nd
	m := 2*k - 1

	v := make([]float64, m)
	w := make([]float64, m)
	fac := 1.0
	for j := 1; j <= m; j++ {
		v[j-1] = 1 - math.Pow(h, float64(j))
		w[j-1] = fac
		fac /= float64(j)
		v[j-1] *= fac
	}
	tt := math.Pow(math.Max(2*h-1, 0), float64(m)) - 2*math.Pow(h, float64(m))
	v[m-1] = (1 + tt) * fac

	H := newSquare(m)
	for i := 1; i < m; i++ {
		for r := i - 1; r < m; r++ {
			H[r*m+i] = w[r-(i-1)]
		}
	}
	for r := range m {
		H[r*m] = v[r]
	}
	for c := range m {
		H[(m-1)*m+c] = v[m-1-c]
	}

	Hpwr := newSquare(m)
	for i := range m {
		Hpwr[i*m+i] = 1
	}
	expnt, Hexpnt := 0, 0
	for nn := n; nn > 0; nn /= 2 {
		if nn%2 == 1 {
			Hpwr = matMul(Hpwr, H, m)
			expnt += Hexpnt
		}
		H = matMul(H, H, m)
		Hexpnt *= 2
		if math.Abs(H[(k-1)*m+k-1]) > ksEP128 {
			for i := range H {
				H[i] /= ksEP128
			}
			Hexpnt += ksE128
		}
	}
	p := Hpwr[(k-1)*m+k-1]
	fn := float64(n)
	for i := 1; i <= n; i++ {
		p = float64(i) * p / fn
		if math.Abs(p) < ksEM128 {
			p *= ksEP128
			expnt -= ksE128
		}
	}
	if expnt != 0 {
		p = math.Ldexp(p, expnt)
	}
	return clip01(p)
}

func newSquare(m int) []float64 { return make([]float64, m*m) }

// matMul returns a·b for row-major m×m matrices.
func matMul(a, b []float64, m int) []float64 {
	c := make([]float64, m*m)
	for i := range m {
		for l := range m {
			ail := a[i*m+l]
			if ail == 0 {
				continue
			}
			row := b[l*m : l*m+m]
			out := c[i*m : i*m+m]
			for j, blj := range row {
				out[j] += ail * blj
			}
		}
	}
	return c
}

// pomeranzJ1J2 returns the first and last non-zero columns of row i of
// Pomeranz's recursion.
func pomeranzJ1J2(i, n, ll, ceilf, roundf int) (int, int) {
	var j1, j2 int
	if i == 0 {
		j1, j2 = -ll-ceilf-1, ll+ceilf-1
	} else {
		ip1div2, ip1mod2 := (i+1)/2, (i+1)%2
		switch {
		case ip1mod2 == 0 && ip1div2 == n+1:
			j1, j2 = n-ll-ceilf-1, n+ll+ceilf-1
		case ip1mod2 == 0:
			j1, j2 = ip1div2-1-ll-roundf-1, ip1div2+ll-1+ceilf-1
		default:
			j1, j2 = ip1div2-1-ll-1, ip1div2+ll+roundf-1
		}
	}
	return max(j1+2, 0), min(j2, n)
}

// kolmognPomeranz is P(D_n ≤ x) by Pomeranz's (1974) recursion: 2n+1
// convolutions of a row with (almost) Poisson probabilities, of which
// only a sliding window is non-zero, rescaled by 2^±128 against underflow.
func kolmognPomeranz(n int, x float64) float64 {
	t := float64(n) * x
	ll := int(math.Floor(t))
	f := t - float64(ll)
	g := math.Min(f, 1-f)
	ceilf, roundf := 0, 0
	if f > 0 {
		ceilf = 1
	}
	if f > 0.5 {
		roundf = 1
	}
	npwrs := 2 * (ll + 1)
	gpower := make([]float64, npwrs)      // (g/n)^m/m!
	twogpower := make([]float64, npwrs)   // (2g/n)^m/m!
	onem2gpower := make([]float64, npwrs) // ((1−2g)/n)^m/m!
	gpower[0], twogpower[0], onem2gpower[0] = 1, 1, 1
	fn := float64(n)
	gOverN, twoGOverN, oneMinusTwoGOverN := g/fn, 2*g/fn, (1-2*g)/fn
	for m := 1; m < npwrs; m++ {
		gpower[m] = gpower[m-1] * gOverN / float64(m)
		twogpower[m] = twogpower[m-1] * twoGOverN / float64(m)
		onem2gpower[m] = onem2gpower[m-1] * oneMinusTwoGOverN / float64(m)
	}

	V0 := make([]float64, npwrs)
	V1 := make([]float64, npwrs)
	V1[0] = 1
	V0s, V1s := 0, 0
	expnt := 0
	j1, j2 := pomeranzJ1J2(0, n, ll, ceilf, roundf)
	conv := make([]float64, 2*npwrs)
	for i := 1; i < 2*n+2; i++ {
		k1 := j1
		V0, V1 = V1, V0
		V0s, V1s = V1s, V0s
		clear(V1)
		j1, j2 = pomeranzJ1J2(i, n, ll, ceilf, roundf)
		pwrs := onem2gpower
		switch {
		case i == 1 || i == 2*n+1:
			pwrs = gpower
		case i%2 == 1:
			pwrs = twogpower
		}
		ln2 := j2 - k1 + 1
		if ln2 <= 0 {
			continue
		}
		// Full convolution of V0[k1−V0s : k1−V0s+ln2] with pwrs[:ln2].
		a := V0[min(k1-V0s, npwrs):min(k1-V0s+ln2, npwrs)]
		b := pwrs[:min(ln2, npwrs)]
		nc := len(a) + len(b) - 1
		conv = conv[:0]
		for range nc {
			conv = append(conv, 0)
		}
		for p, ap := range a {
			for q, bq := range b {
				conv[p+q] += ap * bq
			}
		}
		convStart, convLen := j1-k1, j2-j1+1
		for c := 0; c < convLen && convStart+c < len(conv); c++ {
			V1[c] = conv[convStart+c]
		}
		vmax := math.Inf(-1)
		for _, val := range V1 {
			vmax = max(vmax, val)
		}
		if vmax > 0 && vmax < ksEM128 {
			for c := range V1 {
				V1[c] *= ksEP128
			}
			expnt -= ksE128
		}
		V1s = V0s + j1 - k1
	}
	ans := V1[n-V1s]
	for m := 1; m <= n; m++ {
		if math.Abs(ans) > ksEP128 {
			ans *= ksEM128
			expnt += ksE128
		}
		ans *= float64(m)
	}
	if expnt != 0 {
		ans = math.Ldexp(ans, expnt)
	}
	return clip01(ans)
}

// kolmognPelzGood is the Pelz–Good (1976) approximation of P(D_n ≤ x):
// Li-Chien and Korolyuk's K0(z) + K1(z)/√n + K2(z)/n + K3(z)/n^1.5 with
// z = x√n, each K transformed by Jacobi theta identities for small z.
func kolmognPelzGood(n int, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	fn := float64(n)
	z := math.Sqrt(fn) * x
	z2, z3, z4, z6 := z*z, z*z*z, math.Pow(z, 4), math.Pow(z, 6)

	qlog := -math.Pi * math.Pi / 8 / z2
	if qlog < ksMinLog {
		return 0
	}
	q := math.Exp(qlog)
	pi2, pi4, pi6 := math.Pi*math.Pi, math.Pow(math.Pi, 4), math.Pow(math.Pi, 6)

	k1a := -z2
	k1b := pi2 / 4
	k2a := 6*z6 + 2*z4
	k2b := (2*z4 - 5*z2) * pi2 / 4
	k2c := pi4 * (1 - 2*z2) / 16
	k3d := pi6 * (5 - 30*z2) / 64
	k3c := pi4 * (-60*z2 + 212*z4) / 16
	k3b := pi2 * (135*z4 - 96*z6) / 4
	k3a := -30*z6 - 90*math.Pow(z, 8)

	var K [4]float64
	maxk := int(math.Ceil(16 * z / math.Pi))
	for k := maxk; k > 0; k-- {
		m := float64(2*k - 1)
		m2, m4, m6 := m*m, math.Pow(m, 4), math.Pow(m, 6)
		qpower := math.Pow(q, float64(8*k))
		coeffs := [4]float64{
			1,
			k1a + k1b*m2,
			k2a + k2b*m2 + k2c*m4,
			k3a + k3b*m2 + k3c*m4 + k3d*m6,
		}
		for i := range K {
			K[i] = K[i]*qpower + coeffs[i]
		}
	}
	sqrt2pi := math.Sqrt(2 * math.Pi)
	div := [4]float64{z, 6 * z4, 72 * math.Pow(z, 7), 6480 * math.Pow(z, 10)}
	for i := range K {
		K[i] = K[i] * q * sqrt2pi / div[i]
	}

	q = math.Exp(-pi2 / 2 / z2)
	var k2extra, k3extra float64
	sqrt3z := math.Sqrt(3) * z
	for k := maxk; k > 0; k-- {
		fk := float64(k)
		ksq := fk * fk
		qp := math.Pow(q, ksq)
		kspi := math.Pi * fk
		k2extra += ksq * qp
		k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp
	}
	K[2] += k2extra * pi2 * sqrt2pi / (-36 * z3)
	K[3] += k3extra * pi2 * sqrt2pi / (216 * z6)
	var sum float64
	for i := range K {
		sum += K[i] / math.Pow(fn, float64(i)/2)
	}
	return sum
}

// smirnovSF is the one-sided Kolmogorov–Smirnov tail P(D+_n ≥ x)
// (scipy.special.smirnov), by the Birnbaum–Tingey sum
//
//	P(D+_n ≥ x) = x · Σ_{v=0}^{⌊n(1−x)⌋} C(n, v) (x + v/n)^(v−1) (1 − x − v/n)^(n−v),
//
// whose terms are all positive. SciPy sums it in double-double
// arithmetic; here each term is a float64 product carried as mantissa and
// binary exponent, from the exact split n·x = ⌊n·x⌋ + α, which keeps the
// relative error near n·1e-16. It is only called for the upper tail
// (x ≥ 0.5, or n·x² > 2.2), where SciPy also uses this lower sum.
func smirnovSF(n int, x float64) float64 {
	if !(n > 0 && x >= 0 && x <= 1) {
		return math.NaN()
	}
	if n == 1 {
		return 1 - x
	}
	if x == 0 {
		return 1
	}
	if x == 1 {
		return 0
	}
	fn := float64(n)
	nxfl, alpha := modNX(n, x)
	if nxfl == 0 || (nxfl == 1 && alpha == 0) { // x ≤ 1/n
		return 1 - x*math.Pow(1+x, fn-1)
	}
	if -2*fn*x*x < cephesMinLog {
		return 0
	}
	if nxfl >= n-1 { // x ≥ 1 − 1/n
		return math.Pow(1-x, fn)
	}
	if n > smirnovMaxComputeN {
		logp := -math.Pow(6*fn*x+1, 2) / 18 / fn
		if logp < -math.Ln2 {
			return math.Exp(logp)
		}
		return 1 - (-math.Expm1(logp))
	}
	nx := float64(nxfl) + alpha
	// Term v is C(n, v)·(x + v/n)^(v−1)·(1 − x − v/n)^(n−v); each factor is
	// kept as a mantissa and a binary exponent so that neither the
	// binomial nor the powers overflow or underflow on the way.
	cMan, cExp := 1.0, 0
	var sum float64
	for v := 0; v <= n-nxfl-1; v++ {
		fv := float64(v)
		t1Man, t1Exp := powScaled((fv+nx)/fn, v-1)
		t2Man, t2Exp := powScaled(((fn-fv-float64(nxfl))-alpha)/fn, n-v)
		sum += math.Ldexp(cMan*t1Man*t2Man, cExp+t1Exp+t2Exp)
		// C(n, v+1) = C(n, v)·(n−v)/(v+1).
		var e int
		cMan, e = math.Frexp(cMan * (float64(n-v) / float64(v+1)))
		cExp += e
	}
	return clip01(x * sum)
}

// powScaled returns y^m as mant·2^exp with mant in [0.5, 1), by binary
// powering with renormalisation after each product (for m < 0 it inverts
// y first). y must be positive and finite.
func powScaled(y float64, m int) (mant float64, exp int) {
	if m < 0 {
		y, m = 1/y, -m
	}
	mant, exp = 0.5, 1
	base, bexp := math.Frexp(y)
	for m > 0 {
		var e int
		if m&1 == 1 {
			mant, e = math.Frexp(mant * base)
			exp += e + bexp
		}
		base, e = math.Frexp(base * base)
		bexp = 2*bexp + e
		m >>= 1
	}
	return mant, exp
}

// modNX splits n·x exactly into ⌊n·x⌋ and a remainder α in [0, 1).
func modNX(n int, x float64) (int, float64) {
	fn := float64(n)
	hi := fn * x
	lo := math.FMA(fn, x, -hi)
	fl := math.Floor(hi)
	alpha := (hi - fl) + lo
	if alpha < 0 {
		fl--
		alpha++
	}
	if alpha >= 1 {
		fl++
		alpha--
	}
	return int(fl), alpha
}
