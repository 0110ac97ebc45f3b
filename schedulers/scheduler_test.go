package schedulers

import (
	"errors"
	"slices"
	"testing"
)

func mustParse(t *testing.T, js string) Config {
	t.Helper()
	cfg, err := ParseConfig([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestHunyuanPresets checks the schedules Tencent's pipelines run: the step
// counts, the trailing grids and the turbo model's own timesteps.
func TestHunyuanPresets(t *testing.T) {
	cfg := mustParse(t, paint21Config)
	epsilon := mustParse(t, `{"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
		"steps_offset": 1, "timestep_spacing": "leading"}`)
	build := map[string]func() (Scheduler, error){
		"paint 2.0":       func() (Scheduler, error) { return NewPaint20(epsilon) },
		"paint 2.0 turbo": func() (Scheduler, error) { return NewPaint20Turbo(epsilon) },
		"paint 2.1":       func() (Scheduler, error) { return NewPaint21(cfg) },
		"delight":         func() (Scheduler, error) { return NewDelight(epsilon) },
	}
	tests := []struct {
		name        string
		steps       int
		first, last float32
		second      float32
	}{
		{"paint 2.0", 30, 999, 32, 966},
		{"paint 2.0 turbo", 10, 989, 98, 890},
		{"paint 2.1", 15, 999, 66, 932},
		{"delight", 50, 981, 1, 961}, // the config's own "leading" spacing with steps_offset 1
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := build[tc.name]()
			if err != nil {
				t.Fatal(err)
			}
			ts := s.Timesteps()
			if len(ts) != tc.steps || ts[0] != tc.first || ts[1] != tc.second || ts[len(ts)-1] != tc.last {
				t.Fatalf("timesteps %v, want %d from %v, %v to %v", ts, tc.steps, tc.first, tc.second, tc.last)
			}
		})
	}
	if got, want := HunyuanTurboTimesteps(1000), []int{989, 890, 791, 692, 593, 494, 395, 296, 197, 98}; !slices.Equal(got, want) {
		t.Fatalf("HunyuanTurboTimesteps(1000) = %v, want %v", got, want)
	}
}

func TestBuildRejectsUnsupportedOptions(t *testing.T) {
	tests := []struct {
		name  string
		build func() (Scheduler, error)
		want  error
	}{
		{"Euler with sample prediction", func() (Scheduler, error) {
			return NewEulerAncestral(mustParse(t, `{"prediction_type": "sample"}`), 10)
		}, ErrUnsupported},
		{"Euler with flow prediction", func() (Scheduler, error) {
			return NewEulerAncestral(mustParse(t, `{"prediction_type": "flow_prediction"}`), 10)
		}, ErrUnsupported},
		{"UniPC order 3", func() (Scheduler, error) { return NewUniPC(mustParse(t, `{"solver_order": 3}`), 10) }, ErrUnsupported},
		{"UniPC Karras sigmas", func() (Scheduler, error) {
			return NewUniPC(mustParse(t, `{"use_karras_sigmas": true}`), 10)
		}, ErrUnsupported},
		{"UniPC thresholding", func() (Scheduler, error) { return NewUniPC(mustParse(t, `{"thresholding": true}`), 10) }, ErrUnsupported},
		{"UniPC noise prediction to sigma 0", func() (Scheduler, error) {
			return NewUniPC(mustParse(t, `{"predict_x0": false}`), 10)
		}, ErrUnsupported},
		{"LCM thresholding", func() (Scheduler, error) { return NewLCM(mustParse(t, `{"thresholding": true}`), 4) }, ErrUnsupported},
		{"zero steps", func() (Scheduler, error) { return NewUniPC(Config{}, 0) }, ErrConfig},
		{"more steps than training steps", func() (Scheduler, error) {
			return NewEulerAncestral(mustParse(t, `{"num_train_timesteps": 10}`), 11)
		}, ErrConfig},
		{"trained betas of the wrong length", func() (Scheduler, error) {
			return NewUniPC(mustParse(t, `{"trained_betas": [0.1, 0.2]}`), 1)
		}, ErrConfig},
		{"zero SNR on a flat schedule", func() (Scheduler, error) {
			return NewUniPC(mustParse(t, `{"beta_start": 0, "beta_end": 0, "rescale_betas_zero_snr": true}`), 4)
		}, ErrConfig},
		{"Euler on a zero sigma", func() (Scheduler, error) {
			return NewEulerAncestral(mustParse(t, `{"beta_start": 0, "beta_end": 0.02, "timestep_spacing": "linspace"}`), 1000)
		}, ErrConfig},
		{"LCM more steps than distillation steps", func() (Scheduler, error) { return NewLCM(Config{}, 51) }, ErrConfig},
		{"LCM timesteps not descending", func() (Scheduler, error) { return NewLCMWithTimesteps(Config{}, []int{500, 500}) }, ErrConfig},
		{"LCM timestep past training", func() (Scheduler, error) { return NewLCMWithTimesteps(Config{}, []int{1000}) }, ErrConfig},
		{"LCM without timesteps", func() (Scheduler, error) { return NewLCMWithTimesteps(Config{}, nil) }, ErrConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.build(); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// TestStepMisuse covers the calls Step refuses: out of order, repeated,
// past the end, mismatched sizes, and missing or exhausted noise.
func TestStepMisuse(t *testing.T) {
	sample := []float32{1, 2, 3, 4}
	m := []float32{0.1, 0.2, 0.3, 0.4}
	newEuler := func() Scheduler {
		s, err := NewEulerAncestral(Config{}, 2)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	newUniPC := func() Scheduler {
		s, err := NewUniPC(Config{}, 2)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	noise := func() Noise { return NewQueuedNoise(make([]float32, 4), make([]float32, 4), make([]float32, 4)) }
	tests := []struct {
		name string
		run  func(s Scheduler) error
		sch  func() Scheduler
		want error
	}{
		{"step skipped", func(s Scheduler) error { _, err := s.Step(1, m, sample, noise()); return err }, newUniPC, ErrStep},
		{"step repeated", func(s Scheduler) error {
			if _, err := s.Step(0, m, sample, nil); err != nil {
				return err
			}
			_, err := s.Step(0, m, sample, nil)
			return err
		}, newUniPC, ErrStep},
		{"past the end", func(s Scheduler) error {
			for i := 0; i < 2; i++ {
				if _, err := s.Step(i, m, sample, nil); err != nil {
					return err
				}
			}
			_, err := s.Step(2, m, sample, nil)
			return err
		}, newUniPC, ErrStep},
		{"sizes differ", func(s Scheduler) error { _, err := s.Step(0, m[:3], sample, noise()); return err }, newEuler, ErrStep},
		{"empty tensors", func(s Scheduler) error { _, err := s.Step(0, nil, nil, noise()); return err }, newEuler, ErrStep},
		{"no noise for Euler", func(s Scheduler) error { _, err := s.Step(0, m, sample, nil); return err }, newEuler, ErrStep},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(tc.sch()); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("noise of the wrong size", func(t *testing.T) {
		if _, err := newEuler().Step(0, m, sample, NewQueuedNoise(make([]float32, 3))); err == nil {
			t.Fatal("a 3-value noise tensor for a 4-value sample was accepted")
		}
	})
	t.Run("noise exhausted", func(t *testing.T) {
		if _, err := newEuler().Step(0, m, sample, NewQueuedNoise()); err == nil {
			t.Fatal("a step drew from an empty noise queue")
		}
	})
	t.Run("a failed step can be retried", func(t *testing.T) {
		s := newEuler()
		if _, err := s.Step(0, m, sample, nil); err == nil {
			t.Fatal("step without noise accepted")
		}
		if _, err := s.Step(0, m, sample, noise()); err != nil {
			t.Fatalf("retry: %v", err)
		}
	})
}

// TestNoiseDrawCounts checks the draw counts that keep a
// seeded source in step with diffusers: LCM draws at every step but the
// last, Euler Ancestral at every step.
func TestNoiseDrawCounts(t *testing.T) {
	sample := []float32{0.5, -0.5}
	m := []float32{0.1, 0.2}
	tests := []struct {
		name  string
		build func() (Scheduler, error)
		draws int
	}{
		{"LCM, 4 steps", func() (Scheduler, error) { return NewLCM(Config{}, 4) }, 3},
		{"Euler Ancestral, 4 steps", func() (Scheduler, error) { return NewEulerAncestral(Config{}, 4) }, 4},
		{"UniPC, 4 steps", func() (Scheduler, error) { return NewUniPC(Config{}, 4) }, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.build()
			if err != nil {
				t.Fatal(err)
			}
			draws := 0
			noise := NewSeedSequence(7, func(dst []float32, seed uint64) {
				if seed != 7+uint64(draws) {
					t.Fatalf("draw %d seeded %d", draws, seed)
				}
				draws++
			})
			x := sample
			for i := range s.Timesteps() {
				if x, err = s.Step(i, m, x, noise); err != nil {
					t.Fatal(err)
				}
			}
			if draws != tc.draws {
				t.Fatalf("%d draws, want %d", draws, tc.draws)
			}
		})
	}
}
