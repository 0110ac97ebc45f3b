package schedulers

// How Tencent's Hunyuan3D-Paint pipelines build their schedulers from a
// checkpoint's scheduler_config.json: the class, the keyword arguments they
// pass to from_config and the number of steps they run.
const (
	// Paint20Steps is the 2.0 paint model's Euler Ancestral step count.
	Paint20Steps = 30
	// DelightSteps is the delight model's Euler Ancestral step count.
	DelightSteps = 50
	// Paint21Steps is the 2.1 paint model's UniPC step count.
	Paint21Steps = 15
)

// NewPaint20 is the 2.0 paint scheduler: Euler Ancestral with
// timestep_spacing "trailing", 30 steps.
func NewPaint20(cfg Config) (*EulerAncestral, error) {
	cfg.TimestepSpacing = Some("trailing")
	return NewEulerAncestral(cfg, Paint20Steps)
}

// NewDelight is the delight model's scheduler: Euler Ancestral on its config
// as shipped, 50 steps.
func NewDelight(cfg Config) (*EulerAncestral, error) {
	return NewEulerAncestral(cfg, DelightSteps)
}

// NewPaint20Turbo is the 2.0-turbo paint scheduler: LCM on
// HunyuanTurboTimesteps.
func NewPaint20Turbo(cfg Config) (*LCM, error) {
	cfg.TimestepSpacing = Some("trailing") // as Tencent passes it; LCM's schedule does not read it
	return NewLCMWithTimesteps(cfg, HunyuanTurboTimesteps(cfg.NumTrainTimesteps.Or(1000)))
}

// NewPaint21 is the 2.1 paint scheduler: UniPC with timestep_spacing
// "trailing", 15 steps.
func NewPaint21(cfg Config) (*UniPC, error) {
	cfg.TimestepSpacing = Some("trailing")
	return NewUniPC(cfg, Paint21Steps)
}

// HunyuanTurboTimesteps are the turbo pipeline's ten timesteps: the
// pipeline's 30-step DDIM grid (k·⌊T/30⌋ − 1 for k = 1…30) taken at indices
// 29, 26, …, 2, which is 989, 890, …, 98 for T = 1000.
func HunyuanTurboTimesteps(numTrainTimesteps int) []int {
	const ddimSteps, stride = 30, 3
	ratio := numTrainTimesteps / ddimSteps
	var out []int
	for index := ddimSteps - 1; index >= 0; index -= stride {
		out = append(out, (index+1)*ratio-1)
	}
	return out
}
