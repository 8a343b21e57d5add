// Package moe implements mixtures of LoRA experts: SiRA (Zhu et al. 2023,
// "SiRA: Sparse Mixture of Low Rank Adaptation") and MoSLD (Zhao et al.
// 2024, "MoSLD: An Extremely Parameter-Efficient Mixture-of-Shared LoRAs
// for Multi-Task Learning").
//
// Every target module gets N LoRA experts (Aₑ [r, in], Bₑ [out, r]) and a
// router (a linear map in → N without bias). For the S tokens of a batch,
// x [S, in] and the module's base output y:
//
//	p      = softmax(x·Rᵀ)                      router probabilities [S, N]
//	K      = top-k mask of p (ties: lower expert index first)
//	g      = K·p / Σₑ K·p                        gates, renormalised over the top k
//	capacity: an expert takes at most C tokens per batch, in token order
//	          (C = expert_capacity, or ⌈capacity_factor·k·S/N⌉); the
//	          overflow's gate is zeroed (the token keeps y, as in SiRA)
//	expert dropout (training): each gate gₛₑ is dropped with probability
//	          expert_dropout and the kept ones scaled by 1/(1−p) (SiRA's
//	          dropout on the gating output: a dropped expert contributes
//	          nothing to that token)
//	y'     = y + s · Σₑ gₑ · Bₑ·Aₑ·dropout(x),   s = alpha/r (alpha/√r with rsLoRA)
//
// The load-balancing loss of a module is Switch Transformer's
//
//	N · Σₑ fₑ·Pₑ,  fₑ = (tokens routed to e)/(k·S),  Pₑ = mean over tokens of pₑ
//
// which is 1 under uniform routing; BalanceLoss averages it over the
// modules of a graph and CausalLM adds router_aux_loss_coef times it to the
// training loss. With one expert and k = 1 the adapter is plain LoRA.
//
// MoSLD (shared_projection "A"): one A per module shared by all experts,
// each expert keeping its own B; shared_dropout drops entries of the shared
// matrix in training (scaled by 1/(1−p)). "B" shares B instead.
//
// # Training
//
// Attach (or Load) an adapter, train its Params, and take the loss from
// the adapter, which adds the balance term to training graphs:
//
//	a, err := moe.Attach(m, "default", moe.Config{Experts: 4, TopK: 2, R: 8}, seed)
//	...
//	tr, err := train.NewTrainer(m, backend, train.TrainerOptions{
//		Params: a.Params(), Vars: a.Vars(), Optimizer: opt,
//		Loss:   a.CausalLM(a.Hooks(true), a.Hooks(false), 0),
//	})
//
// Hooks(true) records every module's balance loss in the state of the
// graph being built; AddBalance (which CausalLM uses) wraps any
// train.LossFunc whose training graphs run those hooks, alone or composed
// with others (peft.ComposeHooks), and adds router_aux_loss_coef times
// their mean. Evaluation graphs get no balance term. The hooks do not see
// the attention mask: padding tokens are routed like the others and count
// towards capacities and the balance loss.
//
// # Files
//
// PEFT has no format for these adapters; lethe writes PEFT-style folders:
//
// adapter_config.json, json.dumps(indent=2, sort_keys=True) like PEFT's:
//
//	peft_type             "LETHE_MOLORA"
//	format_version        1
//	task_type             "CAUSAL_LM"
//	base_model_name_or_path
//	target_modules, exclude_modules, layers_to_transform, layers_pattern
//	                      as in PEFT's LoraConfig (same matching rules)
//	r, lora_alpha, use_rslora, lora_dropout
//	                      as in LoraConfig
//	init_lora_weights     true (A kaiming-uniform, B zero) | false | "gaussian"
//	num_experts           N
//	top_k                 k
//	expert_capacity       C (0: none, or from capacity_factor)
//	capacity_factor       float (0: no limit unless expert_capacity)
//	expert_dropout        float
//	shared_projection     null | "A" (MoSLD) | "B"
//	shared_dropout        float
//	router_aux_loss_coef  float
//	inference_mode        true
//
// adapter_model.safetensors (metadata {"format": "pt"}), float32, torch
// layouts, for every target module M:
//
//	base_model.model.M.lora_router.weight          [N, in]
//	base_model.model.M.lora_A.experts.E.weight     [r, in]   (E = 0..N-1; or, shared,
//	base_model.model.M.lora_A.weight               [r, in])
//	base_model.model.M.lora_B.experts.E.weight     [out, r]  (or, shared,
//	base_model.model.M.lora_B.weight               [out, r])
package moe
