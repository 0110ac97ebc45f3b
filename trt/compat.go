package trt

import (
	"errors"
	"fmt"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

// checkCompatible refuses a plan that the manifest says was built for
// another TensorRT version or another GPU than device of this runtime,
// naming both sides. TensorRT plans are tied to the exact TensorRT release
// (major.minor.patch) and to the compute capability they were built on;
// TensorRT would refuse them too, but later and less clearly.
func checkCompatible(graph string, plan engines.Plan, info Info, device int) error {
	if device < 0 || device >= len(info.Devices) {
		return fmt.Errorf("trt: %s: CUDA device %d does not exist (%d visible): %w",
			graph, device, len(info.Devices), tensor.ErrUnavailable)
	}
	dev := info.Devices[device]
	if plan.TensorRT == "" || plan.ComputeCapability == "" {
		return fmt.Errorf("trt: %s: the manifest's plan record lacks its TensorRT version or compute capability "+
			"(rebuild with tools/build-engines): %w", graph, tensor.ErrModelFile)
	}
	var errs []error
	if !engines.SameTensorRTRelease(plan.TensorRT, info.TensorRT) {
		errs = append(errs, fmt.Errorf("plan %s was built with TensorRT %s, this runtime is TensorRT %s",
			plan.File, plan.TensorRT, info.TensorRT))
	}
	if !engines.SameComputeCapability(plan.ComputeCapability, dev.ComputeCapability) {
		built := "compute capability " + plan.ComputeCapability
		if plan.GPU != "" {
			built = plan.GPU + " (" + built + ")"
		}
		errs = append(errs, fmt.Errorf("plan %s was built for %s, device %d is %s (compute capability %s)",
			plan.File, built, device, dev.Name, dev.ComputeCapability))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("trt: %s: %w; rebuild the plans on this machine with tools/build-engines: %w",
			graph, err, tensor.ErrIncompatible)
	}
	return nil
}
