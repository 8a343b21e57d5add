package recipe

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/lethe-ml/lethe/data"
	"github.com/lethe-ml/lethe/data/tokenizer"
	"github.com/lethe-ml/lethe/train/finetune"
)

// Source yields the batches a teacher cache covers (topk.Batches): the
// recipe's training data, one epoch, then its evaluation data, collated as
// a run collates them. Close it when done.
type Source struct{ its []*data.Iterator }

// CacheSource opens the batches `lethe distill cache-teacher` runs the
// teacher over. Training matches cached examples by their tokens, so the
// order and shuffling of the run do not matter.
func CacheSource(ctx context.Context, cfg Config) (*Source, error) {
	path := cfg.Tokenizer.Path
	if _, err := os.Stat(path); err != nil && cfg.Student != nil && path == cfg.Model.Path {
		path = cfg.TeacherList()[0].Path // the student, not made yet, will have the teacher's tokenizer
	}
	tok, err := tokenizer.Load(path)
	if err != nil {
		return nil, err
	}
	tr, ev, err := finetune.Loaders(ctx, cfg.Config, tok, 1)
	if err != nil {
		return nil, err
	}
	s := &Source{}
	for _, l := range []*data.Loader{tr, ev} {
		if l == nil {
			continue
		}
		it, err := l.Iterate(data.Position{})
		if err != nil {
			s.Close()
			return nil, err
		}
		s.its = append(s.its, it)
	}
	return s, nil
}

// Next returns the next batch, or io.EOF after the last.
func (s *Source) Next(ctx context.Context) (*data.Batch, error) {
	for len(s.its) > 0 {
		b, err := s.its[0].Next(ctx)
		if errors.Is(err, io.EOF) {
			s.its[0].Close()
			s.its = s.its[1:]
			continue
		}
		return b, err
	}
	return nil, io.EOF
}

// Close releases the data files.
func (s *Source) Close() {
	for _, it := range s.its {
		it.Close()
	}
	s.its = nil
}
