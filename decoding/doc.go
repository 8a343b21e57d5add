// Package decoding is the host side of text generation: it reads a Hugging
// Face generation_config.json, turns each step's row of next-token logits
// into a token the way transformers 5 does for greedy decoding and
// multinomial sampling, and tracks which sequences have finished.
//
// One decoding step for sequence i of a batch is
//
//	cfg, _ := decoding.LoadGenerationConfig(dir)        // + Merge(cfg, overrides)
//	chain, _ := decoding.NewChain(cfg, vocabSize)       // once
//	streams[i] = decoding.NewSampler(cfg, seed).Stream(seqID)  // once per sequence
//	stopper, _ := decoding.NewStopper(cfg, budgets)     // once per batch
//
//	chain.Process(row, promptAndGenerated, step)        // every step, every row
//	tok, _ := streams[i].Next(row)
//	done, _ := stopper.Update(tokens)                   // after all rows
//
// # What follows transformers, and where it was read
//
// Defaults (transformers 5, src/transformers/generation/configuration_utils.py,
// GenerationConfig.__init__ and GenerationConfig._get_default_generation_params):
// every field of a v5 GenerationConfig starts as None, and
// GenerationMixin._prepare_generation_config (generation/utils.py) fills the
// fields still None, after the model's generation_config.json, with
// max_length 20, min_length 0, do_sample false, num_beams 1, temperature 1.0,
// top_k 50, top_p 1.0, typical_p 1.0, repetition_penalty 1.0 (min_p has no
// default: None, i.e. off). So top_k = 50 applies to any sampling run whose
// file does not set top_k (Llama 3 Instruct's does not). Defaults returns
// these values.
//
// Lengths (utils.py, GenerationMixin._prepare_generated_length): max_new_tokens
// wins over max_length; with neither set in the file or by the caller,
// max_length becomes prompt length + 20, capped at max_position_embeddings.
// min_new_tokens, when set, overwrites min_length with prompt length +
// min_new_tokens. See GenerationConfig.MaxNewTokensFor.
//
// Processor order (utils.py, GenerationMixin._get_logits_processor): the
// processors always built come first, in this order (lethe implements the
// marked ones, GenerationConfig.Warnings reports the others when set):
// guidance_scale, sequence_bias, encoder_repetition_penalty,
// *repetition_penalty, no_repeat_ngram_size, encoder_no_repeat_ngram_size,
// bad_words_ids, *min_length, *min_new_tokens, forced_bos_token_id,
// forced_eos_token_id, remove_invalid_values, exponential_decay_length_penalty,
// suppress_tokens, begin_suppress_tokens. Then, only when do_sample is true,
// the warpers: *temperature (if != 1), top_h, *top_k (if != 0), *top_p (if
// < 1), *min_p (if set), *typical_p (if < 1), epsilon_cutoff, eta_cutoff,
// with min_tokens_to_keep = 1 outside beam search. Greedy decoding therefore
// ignores temperature, top_k, top_p, min_p and typical_p entirely.
//
// Each processor's arithmetic follows generation/logits_process.py; see the
// type's comment for the exact comparison (TopP's float32 "cumsum <= 1 -
// top_p" on a stable ascending sort, TopK keeping ties with the k-th value,
// MinP relative to the top probability, and so on).
//
// Picking (utils.py, GenerationMixin._sample): greedy is torch.argmax of the
// processed scores (first index among ties); sampling is
// torch.multinomial(softmax(scores)). A finished sequence keeps receiving
// pad_token_id, which _prepare_special_tokens sets to eos_token_id[0] when
// the configuration has no pad id; the EOS token that finished it stays in
// its output.
//
// Random numbers cannot match torch's; instead every sequence has its own
// PCG stream derived from (seed, sequence id), so results do not depend on
// batch composition.
//
// The transformers sources were read from stored copies of a 5.x tree
// (its utils.py builds TopHLogitsWarper and announces the removal of
// deprecated cache names in v5.13); shared/fixtures was written by 5.17.
// Line numbers move between releases, so the functions are named instead.
package decoding
