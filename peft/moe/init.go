package moe

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/lethe-ml/lethe/peft/internal/host"
	"github.com/lethe-ml/lethe/peft/lora"
)

// initialize sets every module's tensors, module by module in the model's
// order, drawing the router, then each A, then each B (expert 0 first):
//
//	router   U(±1/√in) (torch's nn.Linear)
//	default  A ~ U(±1/√in) (kaiming_uniform with a = √5), B = 0
//	random   A ~ U(±1/√in), B ~ U(±1/√r)
//	gaussian A ~ N(0, (1/r)²), B = 0
//
// A shared A or B is drawn once.
func (a *Adapter) initialize(seed uint64) error {
	rng := host.NewRNG(seed, a.name)
	var errs []error
	for _, l := range a.layers {
		if err := l.initialize(&a.cfg, rng); err != nil {
			errs = append(errs, fmt.Errorf("moe: adapter %q: %s: %w", a.name, l.mod.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (l *layer) initialize(cfg *Config, rng *rand.Rand) error {
	in, r := l.mod.In, cfg.R
	if err := host.Write(l.router, host.Uniform(rng, in*cfg.Experts, 1/math.Sqrt(float64(in)))); err != nil {
		return err
	}
	var av []float32
	switch n := l.a.Shape().Size(); cfg.Init {
	case lora.InitDefault, lora.InitRandom:
		av = host.Uniform(rng, n, 1/math.Sqrt(float64(in)))
	case lora.InitGaussian:
		av = make([]float32, n)
		for i := range av {
			av[i] = float32(rng.NormFloat64() / float64(r))
		}
	default:
		return fmt.Errorf("init_lora_weights %q is not supported for mixtures", cfg.Init)
	}
	bv := make([]float32, l.b.Shape().Size())
	if cfg.Init == lora.InitRandom {
		bv = host.Uniform(rng, len(bv), 1/math.Sqrt(float64(r)))
	}
	if err := host.Write(l.a, av); err != nil {
		return err
	}
	return host.Write(l.b, bv)
}
