package lora

import (
	"fmt"
	"slices"

	"github.com/lethe-ml/lethe/peft/internal/host"
)

// Merge adds the adapter into the base weights of the model (it mutates
// them) and calls Model.WeightsChanged; its hooks then do nothing, so the
// plain forward pass computes what the adapted one did, and models.Export
// writes a checkpoint transformers loads with the adapter baked in (PEFT's
// merge_and_unload). As PEFT's Linear.merge:
//
//	LoRA: W ← W + scale·B·A
//	DoRA: n = ‖W + scale·B·A‖ per output row (kept for Unmerge),
//	      W ← (magnitude/n) · (W + scale·B·A)
//	modules_to_save: the module's weights become the trained copy.
//
// in the stored layout (lethe keeps W [in, out], so it adds scale·(A·B)
// with A [in, r], B [r, out]). A module whose weight is tied to the input
// embeddings cannot be merged.
func (a *Adapter) Merge() error { return a.set.Merge(a.name) }

// Unmerge undoes Merge (see Set.Unmerge).
func (a *Adapter) Unmerge() error { return a.set.unmerge(a) }

// Merge merges the named adapters (the active ones when none is named)
// into the base weights, in order; see Adapter.Merge.
func (s *Set) Merge(names ...string) error {
	if len(names) == 0 {
		names = s.active
	}
	for _, n := range names {
		a, ok := s.adapters[n]
		if !ok {
			return fmt.Errorf("lora: merge: no adapter %q", n)
		}
		if a.merged {
			continue // PEFT warns and skips
		}
		if err := a.merge(); err != nil {
			return err
		}
		s.merged = append(s.merged, a)
	}
	return nil
}

// Unmerge undoes every merge, last merged first (PEFT's unmerge_adapter).
func (s *Set) Unmerge() error {
	for len(s.merged) > 0 {
		if err := s.unmerge(s.merged[len(s.merged)-1]); err != nil {
			return err
		}
	}
	return nil
}

// unmerge undoes one adapter's merge. Adapters merged after it must not
// touch the same modules unless both are plain additive LoRA (then the
// order does not matter).
func (s *Set) unmerge(a *Adapter) error {
	if !a.merged {
		return nil
	}
	i := slices.Index(s.merged, a)
	for _, later := range s.merged[i+1:] {
		if shared := sharedModule(a, later); shared != "" && (!a.additive() || !later.additive()) {
			return fmt.Errorf("lora: unmerge %q: %q was merged after it into %s; unmerge %q first", a.name, later.name, shared, later.name)
		}
	}
	if err := a.unmerge(); err != nil {
		return err
	}
	s.merged = slices.Delete(s.merged, i, i+1)
	return nil
}

func sharedModule(a, b *Adapter) string {
	mods := map[string]bool{}
	for _, n := range a.Modules() {
		mods[n] = true
	}
	for _, n := range a.SavedModules() {
		mods[n] = true
	}
	for _, n := range append(b.Modules(), b.SavedModules()...) {
		if mods[n] {
			return n
		}
	}
	return ""
}

// additive reports whether merging is W += ΔW (plain LoRA, no copies).
func (a *Adapter) additive() bool { return !a.cfg.UseDoRA && len(a.saved) == 0 }

func (a *Adapter) merge() error {
	m := a.set.m
	for _, l := range a.layers {
		if l.mod.Tied {
			return fmt.Errorf("lora: merge %q: %s shares its weight with the input embeddings; merging would change them too", a.name, l.mod.Name)
		}
	}
	for _, sm := range a.saved {
		if sm.mod.Tied {
			return fmt.Errorf("lora: merge %q: %s shares its weight with the input embeddings; merging its copy would change them too", a.name, sm.mod.Name)
		}
	}
	for _, l := range a.layers {
		w, err := readBase(m, l.mod)
		if err != nil {
			return fmt.Errorf("lora: merge %q: %s: %w", a.name, l.mod.Name, err)
		}
		d, err := l.delta()
		if err != nil {
			return fmt.Errorf("lora: merge %q: %s: %w", a.name, l.mod.Name, err)
		}
		for i := range w.Data {
			w.Data[i] += d.Data[i]
		}
		if l.mag != nil {
			norm := columnNorms(w)
			mag, _, err := host.Read(l.mag)
			if err != nil {
				return fmt.Errorf("lora: merge %q: %w", a.name, err)
			}
			scaleColumns(w, mag, norm, false)
			l.mergedNorm = norm
		}
		if err := writeBase(m, l.mod, w); err != nil {
			return fmt.Errorf("lora: merge %q: %s: %w", a.name, l.mod.Name, err)
		}
	}
	for _, sm := range a.saved {
		if err := sm.swapIn(a); err != nil {
			return err
		}
	}
	a.merged = true
	m.WeightsChanged()
	return nil
}

func (a *Adapter) unmerge() error {
	m := a.set.m
	for _, l := range a.layers {
		w, err := readBase(m, l.mod)
		if err != nil {
			return fmt.Errorf("lora: unmerge %q: %s: %w", a.name, l.mod.Name, err)
		}
		if l.mag != nil {
			mag, _, err := host.Read(l.mag)
			if err != nil {
				return fmt.Errorf("lora: unmerge %q: %w", a.name, err)
			}
			scaleColumns(w, mag, l.mergedNorm, true)
			l.mergedNorm = nil
		}
		d, err := l.delta()
		if err != nil {
			return fmt.Errorf("lora: unmerge %q: %s: %w", a.name, l.mod.Name, err)
		}
		for i := range w.Data {
			w.Data[i] -= d.Data[i]
		}
		if err := writeBase(m, l.mod, w); err != nil {
			return fmt.Errorf("lora: unmerge %q: %s: %w", a.name, l.mod.Name, err)
		}
	}
	for _, sm := range a.saved {
		if err := sm.swapOut(a); err != nil {
			return err
		}
	}
	a.merged = false
	m.WeightsChanged()
	return nil
}

// scaleColumns multiplies (or, with divide, divides) every output column o
// of w [in, out] by mag[o]/norm[o].
func scaleColumns(w *host.Matrix, mag, norm []float32, divide bool) {
	f := make([]float32, w.Cols)
	for o := range f {
		f[o] = mag[o] / norm[o]
		if divide {
			f[o] = 1 / f[o]
		}
	}
	for i := 0; i < w.Rows; i++ {
		row := w.Data[i*w.Cols : (i+1)*w.Cols]
		for o := range row {
			row[o] *= f[o]
		}
	}
}

// swapIn copies the trained module into the base weights, keeping the
// originals.
func (sm *savedModule) swapIn(a *Adapter) error {
	m := a.set.m
	bw, _ := m.Param(sm.mod.Weight)
	var err error
	if sm.origW, _, err = host.Read(bw); err != nil {
		return fmt.Errorf("lora: merge %q: %w", a.name, err)
	}
	vals, _, err := host.Read(sm.w)
	if err != nil {
		return fmt.Errorf("lora: merge %q: %w", a.name, err)
	}
	if err := host.Write(bw, vals); err != nil {
		return fmt.Errorf("lora: merge %q: %w", a.name, err)
	}
	if sm.bias != nil {
		bb, _ := m.Param(sm.mod.Bias)
		if sm.origBias, _, err = host.Read(bb); err != nil {
			return fmt.Errorf("lora: merge %q: %w", a.name, err)
		}
		vals, _, err := host.Read(sm.bias)
		if err != nil {
			return fmt.Errorf("lora: merge %q: %w", a.name, err)
		}
		if err := host.Write(bb, vals); err != nil {
			return fmt.Errorf("lora: merge %q: %w", a.name, err)
		}
	}
	return nil
}

// swapOut restores the base weights saved by swapIn.
func (sm *savedModule) swapOut(a *Adapter) error {
	m := a.set.m
	bw, _ := m.Param(sm.mod.Weight)
	if err := host.Write(bw, sm.origW); err != nil {
		return fmt.Errorf("lora: unmerge %q: %w", a.name, err)
	}
	sm.origW = nil
	if sm.bias != nil {
		bb, _ := m.Param(sm.mod.Bias)
		if err := host.Write(bb, sm.origBias); err != nil {
			return fmt.Errorf("lora: unmerge %q: %w", a.name, err)
		}
		sm.origBias = nil
	}
	return nil
}
