package engines

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// TimingsFile is the name of a model set's plan timings, in the folder of
// its plans.
const TimingsFile = "timings.json"

// Timings are a model set's TensorRT plans timed on one GPU, batch bucket by
// batch bucket (tools/build-engines --time): what a cost model of the set on
// that card is fitted to (bench/schedsim -engines).
type Timings struct {
	ModelSet string                    `json:"model_set"`
	GPU      string                    `json:"gpu"`
	TensorRT string                    `json:"tensorrt"`
	Measured time.Time                 `json:"measured"`
	Graphs   map[string][]BucketTiming `json:"graphs"`
}

// BucketTiming is the GPU compute time of one call of a plan at one batch
// size, with every other dim at the profile's optimum, as trtexec reports it
// over many runs replayed from a CUDA graph.
type BucketTiming struct {
	Batch    int     `json:"batch"`
	MedianMS float64 `json:"median_ms"`
	MeanMS   float64 `json:"mean_ms"`
}

// ReadTimings reads and checks a timings file.
func ReadTimings(path string) (*Timings, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t Timings
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(t.Graphs) == 0 {
		return nil, fmt.Errorf("%s: no graph timed", path)
	}
	for g, buckets := range t.Graphs {
		for i, bt := range buckets {
			if bt.Batch < 1 || !(bt.MedianMS > 0) || (i > 0 && bt.Batch <= buckets[i-1].Batch) {
				return nil, fmt.Errorf("%s: %s bucket %d: want ascending batches ≥ 1 with positive times, got %+v", path, g, i, bt)
			}
		}
	}
	return &t, nil
}

// Write saves the timings as indented JSON.
func (t *Timings) Write(path string) error {
	if len(t.Graphs) == 0 {
		return errors.New("timings: no graph timed")
	}
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
