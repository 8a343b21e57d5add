package finetune

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/gomlx/compute"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/internal/memstat"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/peft"
	"github.com/lethe-ml/lethe/peft/lora"
	"github.com/lethe-ml/lethe/train"
)

// BenchOptions configure Bench. Zero values take the defaults in brackets,
// which are those of bench/torch/train_bench.py, PyTorch's reference.
type BenchOptions struct {
	// Mode is "lora" (frozen base, LoRA on every linear projection of
	// every layer; not the LM head or embeddings) or "full".
	Mode string
	// Batch and Seq are the shape of the batch of random token ids [8, 128].
	Batch, Seq int
	// Rank and Alpha are LoRA's r and lora_alpha [16, 32].
	Rank  int
	Alpha float64
	// Steps are timed after Warmup untimed ones (the first compiles) [5, 2].
	Steps, Warmup int
	// Seed draws the ids and the adapter's initialisation.
	Seed uint64
}

// BenchResult is one Bench measurement. Its JSON keys are those of
// train_bench.py's records.
type BenchResult struct {
	Mode      string `json:"mode"`
	Batch     int    `json:"batch"`
	Seq       int    `json:"seq"`
	Rank      int    `json:"rank,omitempty"`
	Trainable int64  `json:"trainable_parameters"`
	// TokensPerSecond is Batch·Seq over the median step time.
	TokensPerSecond float64 `json:"tokens_per_s"`
	MedianStepMS    float64 `json:"median_step_ms"`
	MinStepMS       float64 `json:"min_step_ms"`
	MaxStepMS       float64 `json:"max_step_ms"`
	// FirstStepSeconds includes compiling the training graph.
	FirstStepSeconds float64 `json:"first_step_s"`
	// PeakMemoryBytes is the process's peak resident memory (VmHWM) after
	// the steps: host memory, which on a GPU backend does not include the
	// device's.
	PeakMemoryBytes int64     `json:"peak_memory_bytes"`
	Losses          []float64 `json:"losses"`
}

// Bench times training steps (forward, loss over every position,
// backward, AdamW with lr 1e-4 and no weight decay) of m on a fixed batch
// of random ids. With Mode "lora" it attaches an adapter to m.
func Bench(ctx context.Context, m *models.Model, backend compute.Backend, opts BenchOptions) (BenchResult, error) {
	if opts.Mode == "" {
		opts.Mode = "lora"
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&opts.Batch, 8)
	def(&opts.Seq, 128)
	def(&opts.Rank, 16)
	def(&opts.Steps, 5)
	def(&opts.Warmup, 2)
	if opts.Alpha == 0 {
		opts.Alpha = 32
	}
	res := BenchResult{Mode: opts.Mode, Batch: opts.Batch, Seq: opts.Seq}
	to := train.TrainerOptions{Optimizer: train.OptimizerConfig{LR: 1e-4}, Seed: int64(opts.Seed)}
	if err := to.Optimizer.Validate(); err != nil {
		return res, err
	}
	var hooks models.Hooks
	switch opts.Mode {
	case "full":
		to.Params = m.ParamNames()
		res.Trainable = fullTuner{m}.Trainable()
	case "lora":
		a, err := lora.Attach(m, "bench", lora.Config{R: opts.Rank, Alpha: opts.Alpha, TargetModules: peft.Regexp(peft.AllLinear)}, opts.Seed)
		if err != nil {
			return res, err
		}
		hooks, to.Params, to.Vars = a.Hooks(true), a.Params(), a.Vars()
		res.Rank, res.Trainable = opts.Rank, (&loraTuner{a}).Trainable()
	default:
		return res, fmt.Errorf("bench: mode %q is not lora or full", opts.Mode)
	}
	to.Loss = train.CausalLM(m, hooks, hooks, 0)
	tr, err := train.NewTrainer(m, backend, to)
	if err != nil {
		return res, err
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 1))
	n := opts.Batch * opts.Seq
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(rng.IntN(m.Config.VocabSize))
	}
	ones := slices.Repeat([]int32{1}, n)
	pos := make([]int32, n)
	for i := range pos {
		pos[i] = int32(i % opts.Seq)
	}
	batch := &data.Batch{Size: opts.Batch, Length: opts.Seq, InputIDs: ids, Labels: ids, AttentionMask: ones,
		PositionIDs: pos, SegmentIDs: ones, Examples: opts.Batch, Tokens: n, LossTokens: n - opts.Batch}
	var times []time.Duration
	for i := range opts.Warmup + opts.Steps {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		start := time.Now()
		st, err := tr.Step([]*data.Batch{batch}, 1e-4)
		if err != nil {
			return res, fmt.Errorf("bench: step %d: %w", i+1, err)
		}
		d := time.Since(start)
		if i == 0 {
			res.FirstStepSeconds = d.Seconds()
		}
		if i >= opts.Warmup {
			times = append(times, d)
		}
		res.Losses = append(res.Losses, st.Loss)
	}
	slices.Sort(times)
	med := times[len(times)/2]
	if len(times)%2 == 0 {
		med = (times[len(times)/2-1] + times[len(times)/2]) / 2
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	res.MedianStepMS, res.MinStepMS, res.MaxStepMS = ms(med), ms(times[0]), ms(times[len(times)-1])
	res.TokensPerSecond = float64(n) / med.Seconds()
	res.PeakMemoryBytes = memstat.PeakRSS()
	return res, nil
}
