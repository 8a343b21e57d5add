package dropout

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/models"
)

// Key identifies an example by its token ids as the batches hold them
// (after collate truncation): FNV-1a (64 bits) of the ids as little-endian
// int32s.
func Key(ids []int32) uint64 {
	h := fnv.New64a()
	var buf [4]byte
	for _, id := range ids {
		binary.LittleEndian.PutUint32(buf[:], uint32(id))
		h.Write(buf[:])
	}
	return h.Sum64()
}

// ExampleStat is how well the model predicts one example: its loss tokens
// (labels that are not data.IgnoreIndex), how many of them the argmax of
// the logits predicts, and the sum of their losses.
type ExampleStat struct {
	Key     uint64
	Tokens  int
	Correct int
	// Loss is the sum of the token losses (nats).
	Loss float64
}

// Accuracy is the fraction of loss tokens predicted by argmax.
func (s ExampleStat) Accuracy() float64 {
	if s.Tokens == 0 {
		return 0
	}
	return float64(s.Correct) / float64(s.Tokens)
}

// MeanLoss is the mean token loss.
func (s ExampleStat) MeanLoss() float64 {
	if s.Tokens == 0 {
		return 0
	}
	return s.Loss / float64(s.Tokens)
}

// TokenStats computes, for logits [B, T, V] and labels [B, T] (unshifted,
// -100 ignored, as data.Batch holds them), per position t the hit (1 when
// argmax of logits[t-1] is labels[t]) and the loss -log p(labels[t]), both
// float32 [B, T] and 0 where there is no label (and at t = 0).
func TokenStats(logits, labels *Node) (hit, nll *Node) {
	dims := logits.Shape().Dimensions
	B, T, V := dims[0], dims[1], dims[2]
	lg := ConvertDType(SliceAxis(logits, 1, AxisRange(0, T-1)), dtypes.Float32) // [B, T-1, V]
	target := ConvertDType(SliceAxis(labels, 1, AxisRange(1, T)), dtypes.Int32) // [B, T-1]
	valid := GreaterOrEqual(target, ZerosLike(target))
	safe := Where(valid, target, ZerosLike(target))
	validF := ConvertDType(valid, dtypes.Float32)
	hit = Mul(ConvertDType(Equal(ArgMax(lg, -1, dtypes.Int32), safe), dtypes.Float32), validF)
	nll = Mul(Neg(ReduceSum(Mul(LogSoftmax(lg, -1), OneHot(safe, V, dtypes.Float32)), -1)), validF)
	zero := Zeros(logits.Graph(), shapes.Make(dtypes.Float32, B, 1))
	return Concatenate([]*Node{zero, hit}, 1), Concatenate([]*Node{zero, nll}, 1)
}

// ExampleStats groups per-position results of TokenStats for batch b
// (row-major [Size, Length]) by example: the segments of each row, in order.
// Examples with no loss token are left out.
func ExampleStats(b *data.Batch, hit, nll []float32) ([]ExampleStat, error) {
	n := b.Size * b.Length
	if len(hit) != n || len(nll) != n {
		return nil, fmt.Errorf("dropout: example stats: %d hits and %d losses for a batch of %d×%d", len(hit), len(nll), b.Size, b.Length)
	}
	var out []ExampleStat
	for r := range b.Size {
		var ids []int32
		var cur ExampleStat
		seg := int32(0)
		flush := func() {
			if seg != 0 && cur.Tokens > 0 {
				cur.Key = Key(ids)
				out = append(out, cur)
			}
			ids, cur = ids[:0], ExampleStat{}
		}
		for t := range b.Length {
			i := r*b.Length + t
			s := b.SegmentIDs[i]
			if s != seg {
				flush()
				seg = s
			}
			if s == 0 {
				continue
			}
			ids = append(ids, b.InputIDs[i])
			if b.Labels[i] != data.IgnoreIndex {
				cur.Tokens++
				if hit[i] > 0.5 {
					cur.Correct++
				}
				cur.Loss += float64(nll[i])
			}
		}
		flush()
	}
	return out, nil
}

// Scorer computes ExampleStats of batches with a model (no hooks): the
// per-example correctness Progressive data dropout needs. Score batches
// without token masking. Not safe for concurrent use.
type Scorer struct {
	m       *models.Model
	backend compute.Backend
	mu      sync.Mutex
	exec    *model.Exec
}

// NewScorer returns a Scorer of m on backend.
func NewScorer(backend compute.Backend, m *models.Model) *Scorer {
	return &Scorer{m: m, backend: backend}
}

// Score runs the model on b and returns the stats of its examples.
func (s *Scorer) Score(b *data.Batch) ([]ExampleStat, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exec == nil {
		var err error
		s.exec, err = model.NewExec(s.backend, s.m.Store, func(scope *model.Scope, in []*Node) []*Node {
			g := in[0].Graph()
			scope.SetTraining(g, true) // weights as parameters: they change between epochs
			out := s.m.Forward(models.Inputs{IDs: in[0], Mask: in[2], Positions: in[3], SegmentIDs: in[4]}, models.Options{})
			hit, nll := TokenStats(out.Logits, in[1])
			return []*Node{hit, nll}
		})
		if err != nil {
			return nil, fmt.Errorf("dropout: scorer: %w", err)
		}
	}
	shape := []int{b.Size, b.Length}
	out, err := s.exec.Call(
		tensors.FromFlatDataAndDimensions(b.InputIDs, shape...),
		tensors.FromFlatDataAndDimensions(b.Labels, shape...),
		tensors.FromFlatDataAndDimensions(b.AttentionMask, shape...),
		tensors.FromFlatDataAndDimensions(b.PositionIDs, shape...),
		tensors.FromFlatDataAndDimensions(b.SegmentIDs, shape...))
	if err != nil {
		return nil, fmt.Errorf("dropout: scorer: %w", err)
	}
	var hit, nll []float32
	out[0].MustConstFlatData(func(f any) { hit = slices.Clone(f.([]float32)) })
	out[1].MustConstFlatData(func(f any) { nll = slices.Clone(f.([]float32)) })
	return ExampleStats(b, hit, nll)
}

// Progressive is Progressive Data Dropout (S et al. 2025, "Progressive Data
// Dropout: An Embarrassingly Simple Approach to Faster Training"), its
// difficulty-based variant for LMs: it records which examples the model
// gets right (ProgressiveConfig.Criterion) and leaves them out of later
// epochs, until the revision epoch, from which every example is trained
// again. An example's status is its latest observation: scoring the whole
// training set each epoch (Scorer) re-examines dropped examples as the
// paper's code does; scoring only the examples trained keeps dropped ones
// out for good.
type Progressive struct {
	cfg       ProgressiveConfig
	maxLength int
	right     map[uint64]bool
}

// NewProgressive returns a Progressive for cfg. maxLength is the collate
// max_length (0: no truncation): samples are keyed on their first
// maxLength ids, as batches hold them.
func NewProgressive(cfg ProgressiveConfig, maxLength int) (*Progressive, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Progressive{cfg: cfg, maxLength: maxLength, right: map[uint64]bool{}}, nil
}

// Right reports whether the model gets the example of s right.
func (p *Progressive) Right(s ExampleStat) bool {
	switch p.cfg.criterion() {
	case CriterionAccuracy:
		return s.Tokens > 0 && s.Accuracy() >= p.cfg.Threshold
	case CriterionLoss:
		return s.Tokens > 0 && s.MeanLoss() <= p.cfg.Threshold
	}
	return s.Tokens > 0 && s.Correct == s.Tokens
}

// Observe records the latest stats of examples and returns how many of
// them the model gets right.
func (p *Progressive) Observe(stats []ExampleStat) int {
	n := 0
	for _, s := range stats {
		if p.Right(s) {
			p.right[s.Key] = true
			n++
		} else {
			delete(p.right, s.Key)
		}
	}
	return n
}

// Dropped is the number of examples currently marked right.
func (p *Progressive) Dropped() int { return len(p.right) }

// Keep reports whether epoch (0-based) trains the example with token ids
// ids (a data.Sample's IDs, truncated here to maxLength). Disabled, it
// keeps everything.
func (p *Progressive) Keep(epoch int, ids []int32) bool {
	if !p.cfg.Enabled || (p.cfg.RevisionEpoch > 0 && epoch >= p.cfg.RevisionEpoch) {
		return true
	}
	if p.maxLength > 0 && len(ids) > p.maxLength {
		ids = ids[:p.maxLength]
	}
	return !p.right[Key(ids)]
}

// Filter returns the samples epoch trains, in order (a new slice).
func (p *Progressive) Filter(epoch int, samples []data.Sample) []data.Sample {
	var out []data.Sample
	for _, s := range samples {
		if p.Keep(epoch, s.IDs) {
			out = append(out, s)
		}
	}
	return out
}

// progressiveState is Progressive's checkpoint form (train.TrainerState's
// Extra): the keys of the examples marked right, in hex, sorted.
type progressiveState struct {
	Right []string `json:"right"`
}

// MarshalJSON saves the examples marked right.
func (p *Progressive) MarshalJSON() ([]byte, error) {
	keys := make([]uint64, 0, len(p.right))
	for k := range p.right {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	st := progressiveState{Right: make([]string, len(keys))}
	for i, k := range keys {
		st.Right[i] = fmt.Sprintf("%016x", k)
	}
	return json.Marshal(st)
}

// UnmarshalJSON restores what MarshalJSON saved (into a Progressive made by
// NewProgressive).
func (p *Progressive) UnmarshalJSON(b []byte) error {
	var st progressiveState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("dropout: progressive state: %w", err)
	}
	p.right = make(map[uint64]bool, len(st.Right))
	for _, s := range st.Right {
		k, err := strconv.ParseUint(s, 16, 64)
		if err != nil {
			return fmt.Errorf("dropout: progressive state: key %q: %w", s, err)
		}
		p.right[k] = true
	}
	return nil
}
