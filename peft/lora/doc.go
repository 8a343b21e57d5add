// Package lora implements LoRA and DoRA adapters with the semantics and
// file format of Hugging Face PEFT 0.21 (src/peft/tuners/lora: config.py,
// layer.py, model.py, variants.py, dora.py; utils/save_and_load.py).
//
// An adapter wraps linear projections of a models.Model: for an input x
// and the base output y of a wrapped module,
//
//	LoRA:  y + s · B·A·dropout(x),            s = alpha/r (alpha/√r with rsLoRA)
//	DoRA:  y + (g − 1)·(y − bias) + g · s · B·A·dropout(x),
//	       g = magnitude / ‖W + s·B·A‖ (per output row, no gradient)
//
// Its tensors are variables in the model's store under "peft/<name>/", and
// it acts only through the hooks its Hooks method returns (models.Hooks
// .Linear), so the plain forward pass of the model is unchanged:
//
//	a, err := lora.Attach(m, "default", lora.Config{R: 16, Alpha: 32,
//		TargetModules: peft.NameList("q_proj", "v_proj")}, seed)
//	tr, err := train.NewTrainer(m, backend, train.TrainerOptions{
//		Params: a.Params(), Vars: a.Vars(),
//		Loss:   train.CausalLM(m, a.Hooks(true), a.Hooks(false), 0), ...})
//	...
//	err = a.Save(dir)                // adapter_config.json + adapter_model.safetensors
//	err = a.Merge(); m.Export(out)   // merge_and_unload, then a transformers checkpoint
//
// Module selection follows PEFT's check_target_module_exists
// (target_modules as suffixes or a full-match regular expression,
// exclude_modules, layers_to_transform/layers_pattern, modules_to_save
// excluded) and rank_pattern/alpha_pattern its get_pattern_key. A Set holds
// several named adapters of one model: which are active, enabling and
// disabling them, merging and unmerging, and AddWeighted (PEFT's
// add_weighted_adapter with linear, cat, ties and magnitude_prune).
//
// Config.WeightDropout adds LoRA Dropout (Lin et al. 2024): dropout masks
// on the rows of A and the columns of B rather than on the input.
package lora
