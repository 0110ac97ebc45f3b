package schedulers

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// paint21Config is a DDIM scheduler_config.json with the values reported
// for the Hunyuan3D-2.1 paint checkpoint (v-prediction, zero terminal SNR,
// trailing spacing) and the other keys of a Stable Diffusion 2 DDIM config.
const paint21Config = `{
  "_class_name": "DDIMScheduler",
  "beta_end": 0.012,
  "beta_schedule": "scaled_linear",
  "beta_start": 0.00085,
  "clip_sample": false,
  "num_train_timesteps": 1000,
  "prediction_type": "v_prediction",
  "rescale_betas_zero_snr": true,
  "set_alpha_to_one": false,
  "steps_offset": 1,
  "timestep_spacing": "trailing",
  "trained_betas": null
}`

func TestParseConfigReadsWhatIsSet(t *testing.T) {
	tests := []struct {
		name string
		json string
		want Config
	}{
		{"paint 2.1 DDIM config", paint21Config, Config{
			ClassName:           "DDIMScheduler",
			NumTrainTimesteps:   Some(1000),
			BetaStart:           Some(0.00085),
			BetaEnd:             Some(0.012),
			BetaSchedule:        Some("scaled_linear"),
			PredictionType:      Some("v_prediction"),
			TimestepSpacing:     Some("trailing"),
			StepsOffset:         Some(1),
			RescaleBetasZeroSNR: Some(true),
			ClipSample:          Some(false),
		}},
		{"empty object leaves everything unset", `{}`, Config{}},
		{"integral float counts as a whole number", `{"num_train_timesteps": 1000.0}`, Config{NumTrainTimesteps: Some(1000)}},
		{"unknown and private keys are ignored", `{"skip_prk_steps": true, "_foo": [1], "clip_sample_range": 1.5}`,
			Config{ClipSampleRange: Some(1.5)}},
		{"UniPC keys", `{"solver_order": 2, "solver_type": "bh1", "predict_x0": false, "lower_order_final": true,
			"disable_corrector": [0, 3], "final_sigmas_type": "sigma_min", "use_karras_sigmas": false}`, Config{
			SolverOrder: Some(2), SolverType: Some("bh1"), PredictX0: Some(false), LowerOrderFinal: Some(true),
			DisableCorrector: Some([]int{0, 3}), FinalSigmasType: Some("sigma_min"), UseKarrasSigmas: Some(false),
		}},
		{"LCM keys", `{"original_inference_steps": 50, "timestep_scaling": 10.0, "thresholding": false}`, Config{
			OriginalInferenceSteps: Some(50), TimestepScaling: Some(10.0), Thresholding: Some(false),
		}},
		{"trained betas", `{"trained_betas": [0.1, 0.2]}`, Config{TrainedBetas: Some([]float64{0.1, 0.2})}},
		{"non-string class name is left empty", `{"_class_name": 3}`, Config{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseConfig = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseConfigRejectsMalformedInput(t *testing.T) {
	tests := []struct{ name, json string }{
		{"not JSON", `{"beta_start": `},
		{"array", `[1, 2]`},
		{"null", `null`},
		{"trailing data", `{} {}`},
		{"string for a number", `{"beta_start": "0.1"}`},
		{"number for a bool", `{"clip_sample": 1}`},
		{"fractional count", `{"num_train_timesteps": 999.5}`},
		{"zero training steps", `{"num_train_timesteps": 0}`},
		{"too many training steps", `{"num_train_timesteps": 1e9}`},
		{"negative beta", `{"beta_start": -0.1}`},
		{"beta of one", `{"beta_end": 1.5}`},
		{"unknown schedule", `{"beta_schedule": "sigmoid"}`},
		{"unknown spacing", `{"timestep_spacing": "middle"}`},
		{"unknown prediction", `{"prediction_type": "x0"}`},
		{"negative offset", `{"steps_offset": -1}`},
		{"zero clip range", `{"clip_sample_range": 0}`},
		{"trained beta out of range", `{"trained_betas": [0.1, 2]}`},
		{"corrector index not a number", `{"disable_corrector": ["a"]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseConfig([]byte(tc.json)); !errors.Is(err, ErrConfig) {
				t.Fatalf("ParseConfig(%s) = %v, want ErrConfig", tc.json, err)
			}
		})
	}
	if _, err := ParseConfig([]byte(`{"x": "` + strings.Repeat("a", maxConfigBytes) + `"}`)); !errors.Is(err, ErrConfig) {
		t.Fatalf("oversized config: %v, want ErrConfig", err)
	}
}

// FuzzParseConfig feeds arbitrary bytes to ParseConfig and every accepted
// config to every scheduler: nothing may panic, every failure must be one of
// the package's errors, and a scheduler that is built must give as many
// timesteps as steps, inside the training range, and run all of them.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(paint21Config), uint8(15))
	f.Add([]byte(`{}`), uint8(3))
	f.Add([]byte(`{"beta_schedule": "squaredcos_cap_v2", "prediction_type": "sample", "solver_order": 1}`), uint8(4))
	f.Add([]byte(`{"num_train_timesteps": 7, "timestep_spacing": "leading", "steps_offset": 3}`), uint8(7))
	f.Add([]byte(`{"trained_betas": [0.1, 0.2, 0.3], "num_train_timesteps": 3}`), uint8(2))
	f.Add([]byte(`{"predict_x0": false, "final_sigmas_type": "sigma_min", "solver_type": "bh1"}`), uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, steps uint8) {
		cfg, err := ParseConfig(data)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("ParseConfig error %v does not wrap ErrConfig", err)
			}
			return
		}
		n := int(steps%16) + 1
		builders := map[string]func() (Scheduler, error){
			"euler": func() (Scheduler, error) { return NewEulerAncestral(cfg, n) },
			"lcm":   func() (Scheduler, error) { return NewLCM(cfg, n) },
			"unipc": func() (Scheduler, error) { return NewUniPC(cfg, n) },
			"turbo": func() (Scheduler, error) { return NewPaint20Turbo(cfg) },
		}
		for name, build := range builders {
			s, err := build()
			if err != nil {
				if !errors.Is(err, ErrConfig) && !errors.Is(err, ErrUnsupported) {
					t.Fatalf("%s: error %v wraps neither ErrConfig nor ErrUnsupported", name, err)
				}
				continue
			}
			ts := s.Timesteps()
			if name != "turbo" && len(ts) != n {
				t.Fatalf("%s: %d timesteps for %d steps", name, len(ts), n)
			}
			limit := float32(cfg.NumTrainTimesteps.Or(1000) + cfg.StepsOffset.Or(0))
			for _, v := range ts {
				if !(v >= 0 && v < limit) {
					t.Fatalf("%s: timestep %v outside [0, %v)", name, v, limit)
				}
			}
			sample := []float32{1, -1, 0.5, 0}
			zeros := make([]float32, len(sample))
			for i := range ts {
				if _, err := s.Step(i, zeros, s.ScaleModelInput(i, sample), NewSeedSequence(1, fillOnes)); err != nil {
					t.Fatalf("%s step %d: %v", name, i, err)
				}
			}
		}
	})
}

func fillOnes(dst []float32, _ uint64) {
	for i := range dst {
		dst[i] = 1
	}
}
