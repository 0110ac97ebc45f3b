package paint

import (
	"context"
	"testing"
)

// BenchmarkPaint paints a 2,208-face sphere into a 512² texture with each
// random tiny set at its default steps: the host-side cost of the stages
// around the (tiny) models.
func BenchmarkPaint(b *testing.B) {
	for _, name := range []string{"tiny-paint-2.0", "tiny-paint-2.0-turbo", "tiny-paint-2.1"} {
		b.Run(name, func(b *testing.B) {
			p := newPainter(b, name)
			m, pic := sphere(24, 48), quadrants(256)
			b.ResetTimer()
			for range b.N {
				if _, err := p.Paint(context.Background(), m, pic, Options{TextureSize: 512, Seed: 1}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStepTogether runs the denoising loops of three jobs (the same
// 528-face sphere and picture, seeds 1–3, each set's default steps) stepped
// together in shared paint_unet calls, and one job after another; the jobs
// are prepared and conditioned outside the timer, so the numbers compare
// the loops alone.
func BenchmarkStepTogether(b *testing.B) {
	for _, name := range []string{"tiny-paint-2.0", "tiny-paint-2.0-turbo", "tiny-paint-2.1"} {
		p := newPainter(b, name)
		m, pic := sphere(12, 24), quadrants(64)
		ready := func() []*Job {
			jobs := make([]*Job, 3)
			for i := range jobs {
				j, err := p.Prepare(context.Background(), m, pic, Options{TextureSize: 64, Seed: uint64(i + 1)})
				if err != nil {
					b.Fatal(err)
				}
				jobs[i] = j
			}
			for _, err := range p.Condition(context.Background(), jobs) {
				if err != nil {
					b.Fatal(err)
				}
			}
			return jobs
		}
		loop := func(b *testing.B, jobs []*Job) {
			for !jobs[len(jobs)-1].Done() {
				if err := p.Step(context.Background(), jobs); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.Run(name+"/together", func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				jobs := ready()
				b.StartTimer()
				loop(b, jobs)
			}
		})
		b.Run(name+"/one-after-another", func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				jobs := ready()
				b.StartTimer()
				for _, j := range jobs {
					loop(b, []*Job{j})
				}
			}
		})
	}
}
