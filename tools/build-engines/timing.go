package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"

	"github.com/hy3d/hy3d/engines"
)

// timingArgs is the command line that times one plan at one batch size:
// every input at its optimal shape with the batch set to batch, the calls
// replayed from a CUDA graph as the server runs them, without host–device
// copies (the server keeps its tensors on the device between graphs), after
// a warm-up long enough for the clocks to settle.
func timingArgs(trtexec, plan string, device int, p graphProfile, batch int) []string {
	return []string{
		trtexec,
		"--loadEngine=" + plan,
		"--shapes=" + p.shapes(func(in inputProfile) []int64 {
			dims := append([]int64(nil), in.opt...)
			dims[0] = int64(batch)
			return dims
		}),
		"--device=" + strconv.Itoa(device),
		"--useCudaGraph",
		"--noDataTransfers",
		"--warmUp=1000",
		"--duration=5",
	}
}

var gpuComputeTime = regexp.MustCompile(`GPU Compute Time: min = [^,]+, max = [^,]+, mean = ([0-9.eE+-]+) ms, median = ([0-9.eE+-]+) ms`)

// computeTime reads the mean and median of trtexec's "GPU Compute Time"
// summary line.
func computeTime(output []byte) (mean, median float64, err error) {
	m := gpuComputeTime.FindSubmatch(output)
	if m == nil {
		return 0, 0, fmt.Errorf(`trtexec's output has no "GPU Compute Time: ... mean = X ms, median = Y ms" line`)
	}
	if mean, err = strconv.ParseFloat(string(m[1]), 64); err == nil {
		median, err = strconv.ParseFloat(string(m[2]), 64)
	}
	if err == nil && !(mean > 0 && median > 0) {
		err = fmt.Errorf("non-positive compute time (mean %v ms, median %v ms)", mean, median)
	}
	return mean, median, err
}

// timePlan times a built plan at each of its batch buckets.
func timePlan(ctx context.Context, trtexec string, env []string, device int, j job, stdout io.Writer) ([]engines.BucketTiming, error) {
	var out []engines.BucketTiming
	for _, b := range j.profile.buckets {
		args := timingArgs(trtexec, j.plan, device, j.profile, b)
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = env
		output, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("%s batch %d: trtexec failed (%w): %s\n%s", j.graph, b, err, shellQuote(args), tail(output, 20))
		}
		mean, median, err := computeTime(output)
		if err != nil {
			return nil, fmt.Errorf("%s batch %d: %w", j.graph, b, err)
		}
		fmt.Fprintf(stdout, "%s batch %d: median %.3f ms, mean %.3f ms\n", j.graph, b, median, mean)
		out = append(out, engines.BucketTiming{Batch: b, MedianMS: median, MeanMS: mean})
	}
	return out, nil
}
