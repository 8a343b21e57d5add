// Package hints implements hint (intermediate-feature) distillation losses
// between a student's and a teacher's hidden states, for lethe's models:
//
//   - FitNets (Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR
//     2015): a learned linear regressor per layer pair maps the student's
//     states into the teacher's space; the loss is the L2 (MSE) or cosine
//     distance to the teacher's states.
//   - V_kD (Miles, Elezi, Deng, "V_kD: Improving Knowledge Distillation
//     using Orthogonal Projections", CVPR 2024): the projection is
//     constrained to be (semi-)orthogonal, parametrised by a matrix
//     exponential so that it stays orthogonal under any update, and the
//     teacher's features are normalised (standardised) before an L2 loss.
//   - Several teachers (Sarıyıldız et al., "UNIC: Universal Classification
//     Models via Multi-teacher Distillation", ECCV 2024): one Hints per
//     teacher (UNIC's per-teacher projector heads, at several depths its
//     ladder of projectors), their losses combined by Mix with weights and
//     UNIC's teacher dropping.
//
// Hidden states are models.Outputs.Hidden ([B, T, H] each: the embeddings,
// then every layer, the last after the final norm), layer pairs index them
// (Pair, Map), and a mask [B, T] (the attention mask, say) selects the
// tokens the per-token means run over.
//
// The projections live in the student's store and train with it. A
// distillation objective for train.NewTrainer looks like
//
//	h, err := hints.New(student.Store, hints.Config{Kind: hints.KindVkD, Seed: 1},
//		hints.SideOf(student.Config), hints.SideOf(teacher.Config))
//	loss := func(in train.Inputs, training bool) models.Outputs {
//		out := student.Forward(in.ModelInputs(), models.Options{})
//		ref := teacher.Forward(in.ModelInputs(), models.Options{})
//		out.Loss = Add(out.Loss, MulScalar(h.Loss(out.Hidden, ref.Hidden, in.Mask), 0.5))
//		return out
//	}
//	tr, err := train.NewTrainer(student, backend, train.TrainerOptions{
//		Params: append(student.ParamNames(), h.Params()...), Vars: h.Vars(), Loss: loss})
//
// with the teacher's weights in the student's store, so that both models
// run in one graph (models.Model.Frozen makes such a copy).
package hints
