package finetune

import (
	"encoding/json"
	"fmt"

	"github.com/gomlx/compute"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/models"
	"github.com/lethe-ml/lethe/train/dropout"
)

// progressive runs Progressive Data Dropout in the loop: before each step
// it scores the step's examples with the current weights (no dropout), and
// at the end of an epoch the examples the model got right are left out of
// the following epochs (dropout.Progressive decides which, and until when).
type progressive struct {
	p       *dropout.Progressive
	scorer  *dropout.Scorer
	pending map[uint64]dropout.ExampleStat
}

func newProgressive(b compute.Backend, m *models.Model, cfg dropout.ProgressiveConfig, maxLength int) (*progressive, error) {
	p, err := dropout.NewProgressive(cfg, maxLength)
	if err != nil {
		return nil, fmt.Errorf("dropout.progressive: %w", err)
	}
	return &progressive{p: p, scorer: dropout.NewScorer(b, m), pending: map[uint64]dropout.ExampleStat{}}, nil
}

// keep is the loader's filter.
func (p *progressive) keep(epoch int, s data.Sample) bool {
	ids := make([]int32, len(s.IDs))
	for i, id := range s.IDs {
		ids[i] = int32(id)
	}
	return p.p.Keep(epoch, ids)
}

// observe scores the examples of a step.
func (p *progressive) observe(batches []*data.Batch) error {
	for _, b := range batches {
		stats, err := p.scorer.Score(b)
		if err != nil {
			return fmt.Errorf("dropout.progressive: %w", err)
		}
		for _, s := range stats {
			p.pending[s.Key] = s
		}
	}
	return nil
}

// endEpoch applies the epoch's observations.
func (p *progressive) endEpoch() {
	stats := make([]dropout.ExampleStat, 0, len(p.pending))
	for _, s := range p.pending {
		stats = append(stats, s)
	}
	p.p.Observe(stats)
	clear(p.pending)
}

// dropped is the number of examples left out.
func (p *progressive) dropped() int { return p.p.Dropped() }

// progressiveSaved is the checkpoint form (TrainerState.Extra).
type progressiveSaved struct {
	Right   json.RawMessage       `json:"right"`
	Pending []dropout.ExampleStat `json:"pending"`
}

func (p *progressive) save() (map[string]json.RawMessage, error) {
	right, err := json.Marshal(p.p)
	if err != nil {
		return nil, err
	}
	ps := progressiveSaved{Right: right}
	for _, s := range p.pending {
		ps.Pending = append(ps.Pending, s)
	}
	raw, err := json.Marshal(ps)
	if err != nil {
		return nil, err
	}
	return map[string]json.RawMessage{"progressive": raw}, nil
}

func (p *progressive) restore(extra map[string]json.RawMessage) error {
	raw, ok := extra["progressive"]
	if !ok {
		return fmt.Errorf("the checkpoint has no progressive data dropout state")
	}
	var ps progressiveSaved
	if err := json.Unmarshal(raw, &ps); err != nil {
		return fmt.Errorf("progressive data dropout state: %w", err)
	}
	if err := json.Unmarshal(ps.Right, p.p); err != nil {
		return fmt.Errorf("progressive data dropout state: %w", err)
	}
	clear(p.pending)
	for _, s := range ps.Pending {
		p.pending[s.Key] = s
	}
	return nil
}
