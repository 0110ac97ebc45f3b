package schedulers

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/hy3d/hy3d/tensor"
)

// golden is one file of testdata/golden, written by tools/make-scheduler-goldens
// from diffusers run step by step.
type golden struct {
	Case            string          `json:"case"`
	Diffusers       string          `json:"diffusers"`
	Scheduler       string          `json:"scheduler"`
	Config          string          `json:"config"`
	Overrides       json.RawMessage `json:"overrides"`
	Steps           int             `json:"steps"`
	CustomTimesteps []int           `json:"custom_timesteps"`
	Timesteps       []float32       `json:"timesteps"`
	InitNoiseSigma  float32         `json:"init_noise_sigma"`
	Sample          string          `json:"sample"`
	StepsData       []struct {
		ModelInput  string  `json:"model_input"`
		ModelOutput string  `json:"model_output"`
		Noise       *string `json:"noise"`
		PrevSample  string  `json:"prev_sample"`
	} `json:"steps_data"`
}

func loadGoldens(t *testing.T) []golden {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden files under testdata/golden (%v)", err)
	}
	var out []golden
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var g golden
		if err := json.Unmarshal(data, &g); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(g.StepsData) != g.Steps || len(g.Timesteps) != g.Steps {
			t.Fatalf("%s: %d steps, %d step records, %d timesteps", p, g.Steps, len(g.StepsData), len(g.Timesteps))
		}
		out = append(out, g)
	}
	return out
}

func decodeTensor(t *testing.T, b64 string) []float32 {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	v, err := tensor.DecodeRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// config is the golden's scheduler_config.json with its from_config keyword
// overrides merged in, read through ParseConfig.
func (g golden) config(t *testing.T) Config {
	t.Helper()
	var merged map[string]any
	if err := json.Unmarshal([]byte(g.Config), &merged); err != nil {
		t.Fatal(err)
	}
	var overrides map[string]any
	if err := json.Unmarshal(g.Overrides, &overrides); err != nil {
		t.Fatal(err)
	}
	for k, v := range overrides {
		merged[k] = v
	}
	data, err := json.Marshal(merged)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (g golden) build(t *testing.T) Scheduler {
	t.Helper()
	cfg := g.config(t)
	var (
		s   Scheduler
		err error
	)
	switch g.Scheduler {
	case "EulerAncestralDiscreteScheduler":
		s, err = NewEulerAncestral(cfg, g.Steps)
	case "LCMScheduler":
		if g.CustomTimesteps != nil {
			s, err = NewLCMWithTimesteps(cfg, g.CustomTimesteps)
		} else {
			s, err = NewLCM(cfg, g.Steps)
		}
	case "UniPCMultistepScheduler":
		s, err = NewUniPC(cfg, g.Steps)
	default:
		t.Fatalf("unknown scheduler %q", g.Scheduler)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goldenULPs is the tolerance of the golden comparison, in units of
// float32's machine epsilon (2⁻²³) times the step's scale: the largest
// magnitude among the step's sample, model output, noise and expected
// result. The Go code repeats diffusers' float32 operations in diffusers'
// order, so what differs is rounding outside that order: PyTorch's
// vectorised torch.linspace (the beta ramp, one ulp on some betas), glibc's
// logf/expm1f against correctly rounded ones (one ulp on UniPC's λ and
// φ), and LAPACK's float32 2×2 solve for UniPC's corrector against a float64
// one. Each perturbs a coefficient by an ulp or two, and a step multiplies
// its operands by coefficients of up to a few units (UniPC's noise-prediction
// form scales ε by σ_t(e^h − 1)), so a step lands within some ulps of the
// scale: the largest distance measured is 12 (TestGoldenSteps logs it per
// case). A wrong formula, index or constant is off by orders of magnitude
// more; TestGoldenToleranceIsTight shows that a model output one part in
// 10⁴ off already fails.
const goldenULPs = 32

// within reports the first index where got and want differ by more than
// ulps·2⁻²³·scale, with the error in ulps of the scale.
func within(got, want []float32, scale, ulps float64) (int, float64) {
	tol := ulps * 0x1p-23 * scale
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if !(d <= tol) {
			return i, d / (0x1p-23 * scale)
		}
	}
	return -1, 0
}

func maxAbs(ts ...[]float32) float64 {
	m := 0.0
	for _, t := range ts {
		for _, v := range t {
			m = math.Max(m, math.Abs(float64(v)))
		}
	}
	return m
}

// TestGoldenSteps runs every golden case through the Go scheduler. In
// "isolated" mode each step starts from diffusers' own sample, so the check
// is of one step at a time (the multistep solver's memory still comes from
// the Go side); in "chained" mode each step starts from the Go result of the
// previous one, as in a real run. Every step's model input and result must
// lie within goldenULPs of diffusers' in isolated mode; in chained mode the
// model outputs stay diffusers' while the sample drifts, and a step passes
// the sample's difference on with a factor of about one, so the differences
// add up: step i is allowed goldenULPs of the sum of the scales of steps
// 0…i (early steps, at large σ, have the largest). The log gives the
// measured distance, in ulps of the step's own scale.
func TestGoldenSteps(t *testing.T) {
	for _, g := range loadGoldens(t) {
		for _, chained := range []bool{false, true} {
			mode := map[bool]string{false: "isolated", true: "chained"}[chained]
			t.Run(g.Case+"/"+mode, func(t *testing.T) {
				if g.Diffusers != "0.30.0" {
					t.Fatalf("golden from diffusers %s; the tolerance was set for 0.30.0", g.Diffusers)
				}
				s := g.build(t)
				ts := s.Timesteps()
				for i, want := range g.Timesteps {
					if ts[i] != want {
						t.Fatalf("timestep %d = %v, diffusers %v (all: %v)", i, ts[i], want, ts)
					}
				}
				if got := s.InitNoiseSigma(); math.Abs(float64(got-g.InitNoiseSigma)) > goldenULPs*0x1p-23*float64(g.InitNoiseSigma) {
					t.Fatalf("init noise sigma %v, diffusers %v", got, g.InitNoiseSigma)
				}
				sample := decodeTensor(t, g.Sample)
				worst, exact, total := 0.0, 0, 0
				scaleSum := 0.0
				for i, st := range g.StepsData {
					want := decodeTensor(t, st.PrevSample)
					wantInput := decodeTensor(t, st.ModelInput)
					m := decodeTensor(t, st.ModelOutput)
					var drawn []float32
					noise := NewQueuedNoise()
					if st.Noise != nil {
						drawn = decodeTensor(t, *st.Noise)
						noise = NewQueuedNoise(drawn)
					}
					scale := maxAbs(sample, m, drawn, want)
					scaleSum += scale
					allowed := float64(goldenULPs)
					if chained {
						allowed *= scaleSum / scale
					}
					if idx, ulps := within(s.ScaleModelInput(i, sample), wantInput, scale, allowed); idx >= 0 {
						t.Fatalf("step %d model input[%d] off by %.1f ulps", i, idx, ulps)
					}
					got, err := s.Step(i, m, sample, noise)
					if err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
					if noise.Remaining() != 0 {
						t.Fatalf("step %d drew no noise where diffusers drew %d values", i, len(drawn))
					}
					if idx, ulps := within(got, want, scale, allowed); idx >= 0 {
						t.Fatalf("step %d (t=%v) value %d = %v, diffusers %v: off by %.1f ulps of the step's scale",
							i, ts[i], idx, got[idx], want[idx], ulps)
					}
					for k := range want {
						total++
						if got[k] == want[k] {
							exact++
						}
						worst = math.Max(worst, math.Abs(float64(got[k])-float64(want[k]))/(0x1p-23*scale))
					}
					if chained {
						sample = got
					} else {
						sample = want
					}
				}
				t.Logf("%d steps: %.1f%% of values bit-exact, worst %.2f ulps of the step scale", g.Steps, 100*float64(exact)/float64(total), worst)
			})
		}
	}
}

// TestGoldenToleranceIsTight checks that the tolerance would catch a small
// real error: the middle step of every case, with the model output off by
// one part in ten thousand, must fall outside it. (At the first step of a
// zero-terminal-SNR Euler run the sample is ~10⁴ and diffusers' own float32
// result is only good to ~10⁻³, so no tolerance can see such an error there.)
func TestGoldenToleranceIsTight(t *testing.T) {
	for _, g := range loadGoldens(t) {
		t.Run(g.Case, func(t *testing.T) {
			s := g.build(t)
			sample := decodeTensor(t, g.Sample)
			mid := g.Steps / 2
			for i := 0; i <= mid; i++ {
				st := g.StepsData[i]
				m := decodeTensor(t, st.ModelOutput)
				if i == mid {
					for k := range m {
						m[k] *= 1 + 1e-4
					}
				}
				var drawn []float32
				noise := NewQueuedNoise()
				if st.Noise != nil {
					drawn = decodeTensor(t, *st.Noise)
					noise = NewQueuedNoise(drawn)
				}
				got, err := s.Step(i, m, sample, noise)
				if err != nil {
					t.Fatal(err)
				}
				want := decodeTensor(t, st.PrevSample)
				if idx, _ := within(got, want, maxAbs(sample, m, drawn, want), goldenULPs); (idx >= 0) != (i == mid) {
					t.Fatalf("step %d: outside the tolerance %v, want %v", i, idx >= 0, i == mid)
				}
				sample = want
			}
		})
	}
}
