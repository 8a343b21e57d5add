// Package dropout is lethe's family of dropout-style regularisers for
// fine-tuning, each a configuration option (Config) turned into
// models.Hooks for training graphs, or into a transform of data batches:
//
//   - inverted dropout on attention probabilities, residual branches,
//     embeddings and the LoRA input (Srivastava et al. 2014, "Dropout: a
//     simple way to prevent neural networks from overfitting");
//   - early, late, linear and constant schedules of every rate (Liu et al.
//     2023, "Dropout Reduces Underfitting");
//   - multi-sample dropout on the penultimate representation (Inoue 2019,
//     "Multi-Sample Dropout for Accelerated Training and Better
//     Generalization");
//   - LayerDrop and pruning to any depth at inference (Fan, Grave & Joulin
//     2019, "Reducing Transformer Depth on Demand with Structured Dropout");
//   - very large dropout on the penultimate representation (Zhang & Bottou
//     2024, "Fine-tuning with Very Large Dropout");
//   - Mixout (Lee, Cho & Kang 2020, "Mixout: Effective Regularization to
//     Finetune Large-scale Pretrained Language Models");
//   - Token-Level Masking of attention connections (Wu et al. 2023, "TLM:
//     Token-Level Masking for Transformers") and token masking of the
//     input, in full or only in the completion as Masked Thought (Chen et
//     al. 2024, "Masked Thought: Simply Masking Partial Reasoning Steps Can
//     Improve Mathematical Reasoning Learning of Language Models");
//   - Progressive Data Dropout (S et al. 2025, "Progressive Data Dropout:
//     An Embarrassingly Simple Approach to Faster Training").
//
// Random masks come from the model store's generator
// (model.Store.RandomUniform), a store variable that GoMLX threads through
// every graph: runs are reproducible by seed (train.TrainerOptions.Seed)
// and resume exactly from a checkpoint. Rates live in store variables too
// (scope "dropout", one float32 scalar per site) that SetStep rewrites
// before each step, so a schedule never recompiles a graph. Training
// graphs must bind variables as parameters (model.Store.SetTraining(g,
// true), as train.Trainer does): backends that embed variables as
// constants otherwise freeze the rates at compile time.
//
// A recipe uses it as
//
//	reg, err := dropout.New(m, cfg.Dropout)
//	loss := train.CausalLM(m, reg.Hooks(), reg.EvalHooks(), reg.HeadSamples())
//	for step := range total {
//		reg.SetStep(step, total)
//		batch = reg.MaskBatch(batch, rng) // token masking / Masked Thought
//		trainer.Step(...)
//	}
package dropout
