package schedulers

import "fmt"

// Noise is a source of standard normal values for the schedulers that draw
// fresh noise at a step (Euler Ancestral, LCM). A step draws one tensor of
// the sample's size, in the order diffusers draws it.
type Noise interface {
	// Fill writes len(dst) standard normal values into dst.
	Fill(dst []float32) error
}

// QueuedNoise hands out given tensors in order, one per Fill: the way a test
// or a parity run injects the noise a reference implementation drew.
type QueuedNoise struct {
	tensors [][]float32
}

// NewQueuedNoise returns a Noise that yields tensors in order.
func NewQueuedNoise(tensors ...[]float32) *QueuedNoise {
	return &QueuedNoise{tensors: tensors}
}

// Fill implements Noise; it fails when the queue is empty or the next
// tensor's size differs from dst's.
func (q *QueuedNoise) Fill(dst []float32) error {
	if len(q.tensors) == 0 {
		return fmt.Errorf("schedulers: queued noise exhausted")
	}
	next := q.tensors[0]
	if len(next) != len(dst) {
		return fmt.Errorf("schedulers: queued noise has %d values, the step needs %d", len(next), len(dst))
	}
	copy(dst, next)
	q.tensors = q.tensors[1:]
	return nil
}

// Remaining is the number of tensors not yet drawn.
func (q *QueuedNoise) Remaining() int { return len(q.tensors) }

// SeedSequence is a seeded Noise: its k-th Fill (from 0) calls
// fill(dst, seed+k), so one job seed gives one noise tensor per step, each
// reproducible on its own. fill is a seeded standard normal generator, such
// as the pipeline's.
type SeedSequence struct {
	seed uint64
	fill func(dst []float32, seed uint64)
}

// NewSeedSequence returns a Noise whose draws are fill(dst, seed), fill(dst,
// seed+1), ….
func NewSeedSequence(seed uint64, fill func(dst []float32, seed uint64)) *SeedSequence {
	return &SeedSequence{seed: seed, fill: fill}
}

// Fill implements Noise.
func (s *SeedSequence) Fill(dst []float32) error {
	s.fill(dst, s.seed)
	s.seed++
	return nil
}
