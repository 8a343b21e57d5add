package unlearn

import (
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/train"
)

// Part names the rows of an unlearning step.
type Part int

// The parts of a step, in the order their rows are stacked.
const (
	// Forget rows hold the data to forget (question and original answer).
	Forget Part = iota
	// Retain rows hold data whose behaviour must be kept.
	Retain
	// Alternate rows hold the forget questions with another answer (a
	// refusal for IdkDPO).
	Alternate
	numParts
)

// String returns the part's name.
func (p Part) String() string {
	return [...]string{"forget", "retain", "alternate"}[p]
}

// Layout says how many rows each part has in a step's batch; the rows are
// stacked forget, retain, alternate.
type Layout [numParts]int

// rows returns the first row of p and its row count.
func (l Layout) rows(p Part) (start, n int) {
	for q := Forget; q < p; q++ {
		start += l[q]
	}
	return start, l[p]
}

// Pass is one forward pass over a step's stacked rows (of the model being
// unlearned, or of the frozen reference).
type Pass struct {
	layout Layout
	out    models.Outputs
	labels *Node
	logp   *Node // [B, T-1] log p(label), 0 where ignored
	valid  *Node // [B, T-1]
}

// newPass runs m on the inputs.
func newPass(m *models.Model, in train.Inputs, opts models.Options, layout Layout) *Pass {
	out := m.Forward(models.Inputs{IDs: in.IDs, Mask: in.Mask, Positions: in.Positions, SegmentIDs: in.Segments}, opts)
	logp, valid := models.TokenLogProbs(out.Logits, in.Labels)
	return &Pass{layout: layout, out: out, labels: in.Labels, logp: logp, valid: valid}
}

// View is the part of a Pass that belongs to one Part.
type View struct {
	// Logits [b, T, V] and Labels [b, T] of the part's rows.
	Logits, Labels *Node
	// LogP [b, T-1] is log p(next label) (0 where the label is ignored)
	// and Valid [b, T-1] is 1 where it is not.
	LogP, Valid *Node
	// Hidden are the hidden states [b, T, H] (see models.Outputs.Hidden).
	Hidden []*Node
}

// View returns the rows of part p.
func (p *Pass) View(part Part) View {
	start, n := p.layout.rows(part)
	rows := func(x *Node) *Node { return SliceAxis(x, 0, AxisRange(start, start+n)) }
	v := View{Logits: rows(p.out.Logits), Labels: rows(p.labels), LogP: rows(p.logp), Valid: rows(p.valid)}
	for _, h := range p.out.Hidden {
		v.Hidden = append(v.Hidden, rows(h))
	}
	return v
}

// SeqLogProb is Σₜ log p(yₜ) over each row's answer tokens [b].
func (v View) SeqLogProb() *Node { return ReduceSum(v.LogP, -1) }

// SeqTokens is the number of answer tokens of each row [b], at least 1.
func (v View) SeqTokens() *Node {
	n := ReduceSum(v.Valid, -1)
	return Max(n, OnesLike(n))
}

// RowMean averages x [b] over the rows that have answer tokens (rows
// without any, padding a short part, count for nothing).
func (v View) RowMean(x *Node) *Node {
	has := ConvertDType(GreaterThan(ReduceSum(v.Valid, -1), ZerosLike(ReduceSum(v.Valid, -1))), x.DType())
	n := ReduceAllSum(has)
	return Div(ReduceAllSum(Mul(x, has)), Max(n, OnesLike(n)))
}

// HiddenMean averages x [b, T, H] over the positions whose label is not
// ignored (the answer tokens) and the hidden dimension.
func (v View) HiddenMean(x *Node) *Node {
	mask := ConvertDType(GreaterOrEqual(v.Labels, ZerosLike(v.Labels)), x.DType()) // [b, T]
	H := x.Shape().Dimensions[2]
	n := MulScalar(ReduceAllSum(mask), float64(H))
	return Div(ReduceAllSum(Mul(x, InsertAxes(mask, -1))), Max(n, OnesLike(n)))
}

// NLL is the mean negative log-likelihood over the part's answer tokens
// (transformers' causal-LM loss).
func (v View) NLL() *Node {
	n := ReduceAllSum(v.Valid)
	return Div(Neg(ReduceAllSum(v.LogP)), Max(n, OnesLike(n)))
}

// TokenMean averages x [b, T-1] over the answer tokens.
func (v View) TokenMean(x *Node) *Node {
	n := ReduceAllSum(v.Valid)
	return Div(ReduceAllSum(Mul(x, v.Valid)), Max(n, OnesLike(n)))
}

// shiftedLogits are the logits that predict the labels [b, T-1, V], in
// float32.
func (v View) shiftedLogits() *Node {
	T := v.Logits.Shape().Dimensions[1]
	return ConvertDType(SliceAxis(v.Logits, 1, AxisRange(0, T-1)), dtypes.Float32)
}

// stack concatenates the batches of a step's parts (nil parts are empty)
// into one batch, right-padding every row to the longest.
func stack(parts [numParts]*data.Batch) (*data.Batch, Layout) {
	var layout Layout
	L := 0
	for p, b := range parts {
		if b != nil {
			layout[p] = b.Size
			L = max(L, b.Length)
		}
	}
	out := &data.Batch{Length: L}
	for _, b := range parts {
		if b == nil {
			continue
		}
		for r := 0; r < b.Size; r++ {
			pad := L - b.Length
			row := func(f []int32, fill int32) []int32 {
				x := append([]int32(nil), b.At(f, r)...)
				for range pad {
					x = append(x, fill)
				}
				return x
			}
			padID := int32(0)
			if b.Length > 0 {
				padID = b.At(b.InputIDs, r)[b.Length-1] // any id: masked out
			}
			out.InputIDs = append(out.InputIDs, row(b.InputIDs, padID)...)
			out.Labels = append(out.Labels, row(b.Labels, data.IgnoreIndex)...)
			out.AttentionMask = append(out.AttentionMask, row(b.AttentionMask, 0)...)
			out.PositionIDs = append(out.PositionIDs, row(b.PositionIDs, 0)...)
			out.SegmentIDs = append(out.SegmentIDs, row(b.SegmentIDs, 0)...)
		}
		out.Size += b.Size
		out.Examples += b.Examples
		out.Tokens += b.Tokens
		out.LossTokens += b.LossTokens
	}
	return out, layout
}

// newPassFromOutputs is a Pass over given outputs (tests, and objectives
// computed from logits made elsewhere).
func newPassFromOutputs(out models.Outputs, labels *Node, layout Layout) *Pass {
	logp, valid := models.TokenLogProbs(out.Logits, labels)
	return &Pass{layout: layout, out: out, labels: labels, logp: logp, valid: valid}
}
