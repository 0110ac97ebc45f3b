// Package verify decides whether a model set's engines compute what its ONNX
// graphs compute. It owns the comparison metrics (per output: maximum, mean,
// median and 99th-percentile absolute and relative error, the worst element,
// and pass/fail under Polygraphy's rule that an element fails only when both
// its absolute and its relative error exceed their bounds), the agreement of
// occupancy signs near the surface after a short run of the whole sampler,
// the seeded inputs both sides are fed, the stored reference outputs that let
// a machine without a GPU check the comparison itself, and whether this
// machine can load each TensorRT plan a manifest records. It reaches the
// backends only through package pipeline's Loader and its own Backend
// interface, so `hy3d engines verify` compares TensorRT with ONNX Runtime on a
// GPU and ONNX Runtime with itself (two thread counts) or with a stored
// reference elsewhere, through the same code.
package verify
