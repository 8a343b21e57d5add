package quickstart

import (
	"context"
	"embed"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/train/finetune"
	"github.com/lethe-ml/lethe/unlearn/facts"
)

// assets holds the byte-level tokenizer of the benchmark's models (the
// 256 bytes and three special tokens; ids 0-2 are <pad>, <|im_start|>,
// <|im_end|>).
//
//go:embed assets/tokenizer.json assets/tokenizer_config.json
var assets embed.FS

// ModelConfig is the shape of the benchmark's models: a 4-layer Llama,
// hidden 128, on the byte tokenizer (about 0.9M parameters).
const ModelConfig = `{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 320,
 "hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 4, "num_attention_heads": 4,
 "num_key_value_heads": 2, "head_dim": 32, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
 "max_position_embeddings": 256, "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2,
 "pad_token_id": 0, "hidden_act": "silu", "torch_dtype": "float32"}`

// Files and folders of a prepared benchmark folder.
const (
	DataFile  = "facts.parquet" // the benchmark (facts.Default)
	FullDir   = "full"          // the model trained on forget + retain
	RetainDir = "retain"        // the model trained on retain only (the unlearning target)
)

// PrepareOptions configure Prepare.
type PrepareOptions struct {
	// Dir receives the data and the two models.
	Dir string
	// Backend is the training backend spec ("" = auto).
	Backend string
	// Epochs over the training split [100]; LR the peak learning rate
	// [3e-3].
	Epochs int
	LR     float64
	// Seed of the weights' initialisation and of training [1].
	Seed uint64
	// Log receives progress.
	Log io.Writer
}

// Prepare writes the benchmark data and trains the two models the
// benchmark starts from, from the same random initialisation: Dir/full on
// the forget and retain splits, Dir/retain on the retain split alone.
// The holdout split is never trained.
func Prepare(ctx context.Context, opts PrepareOptions) error {
	if opts.Epochs == 0 {
		opts.Epochs = 100
	}
	if opts.LR == 0 {
		opts.LR = 3e-3
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return err
	}
	ex, err := facts.Default()
	if err != nil {
		return err
	}
	data := filepath.Join(opts.Dir, DataFile)
	if err := facts.Write(data, ex); err != nil {
		return err
	}
	init := filepath.Join(opts.Dir, "init")
	if err := writeInit(init, opts.Seed); err != nil {
		return err
	}
	defer os.RemoveAll(init)
	for _, run := range []struct {
		dir    string
		splits string
	}{{FullDir, "[forget, retain]"}, {RetainDir, "[retain]"}} {
		runDir := filepath.Join(opts.Dir, "runs", run.dir)
		cfg, err := finetune.LoadConfig("", []string{
			"model.path=" + init,
			"model.backend=" + opts.Backend,
			"data.train.files=[" + data + "]",
			"data.train.split={column: split, values: " + run.splits + "}",
			"data.eval.files=[" + data + "]",
			"data.eval.split={column: split, values: " + run.splits + "}",
			"data.collate={batch_size: 32, max_length: 64, buckets: [64]}",
			"data.shuffle=true",
			fmt.Sprintf("optimizer.lr=%g", opts.LR),
			"optimizer.weight_decay=0",
			"optimizer.max_grad_norm=1",
			"schedule.name=cosine",
			"schedule.warmup_steps=20",
			fmt.Sprintf("training.epochs=%d", opts.Epochs),
			fmt.Sprintf("training.seed=%d", opts.Seed),
			"training.log_every=50",
			"training.eval_every=500",
			"data.eval_batches=4",
			"output.dir=" + runDir,
			"output.overwrite=true",
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(opts.Log, "lethe: training the %s model on %s\n", run.dir, run.splits)
		res, err := finetune.Run(ctx, cfg, finetune.Options{Log: opts.Log})
		if err != nil {
			return fmt.Errorf("train the %s model: %w", run.dir, err)
		}
		dst := filepath.Join(opts.Dir, run.dir)
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
		if err := os.Rename(res.Model, dst); err != nil {
			return err
		}
	}
	return nil
}

// writeInit writes the randomly initialised model with its tokenizer.
func writeInit(dir string, seed uint64) error {
	cfg, err := models.ParseConfig([]byte(ModelConfig))
	if err != nil {
		return err
	}
	m, err := models.New(cfg, models.LoadOptions{}, seed)
	if err != nil {
		return err
	}
	if err := m.Export(dir, models.ExportOptions{}); err != nil {
		return err
	}
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
