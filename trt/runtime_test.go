package trt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

func TestLibraryABIMatchesTheHeader(t *testing.T) {
	if got := libraryABIVersion(); got != headerABIVersion {
		t.Fatalf("libhy3d.a has ABI %d, hy3d.h says %d: rebuild with make native", got, headerABIVersion)
	}
}

func TestCheckABIRefusesAnotherVersion(t *testing.T) {
	if err := checkABI(2, 2); err != nil {
		t.Fatalf("checkABI(2, 2) = %v", err)
	}
	err := checkABI(1, 2)
	if !errors.Is(err, tensor.ErrUnavailable) {
		t.Fatalf("checkABI(1, 2) = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "ABI version 1") || !strings.Contains(err.Error(), "built for 2") {
		t.Errorf("error %q should name both versions", err)
	}
}

func TestNewRuntimeWithoutTensorRTIsUnavailable(t *testing.T) {
	if libraryHasTensorRT() {
		t.Skip("this libhy3d.a has TensorRT (the GPU tests cover it)")
	}
	_, err := NewRuntime(Options{CUDAGraphs: true})
	if !errors.Is(err, tensor.ErrUnavailable) {
		t.Fatalf("NewRuntime = %v, want ErrUnavailable", err)
	}
	// The message is the native library's own, through the real bridge.
	if !strings.Contains(err.Error(), "built without TensorRT") {
		t.Errorf("error %q lacks the native explanation", err)
	}
}

func TestNewRuntimeRejectsBadBuckets(t *testing.T) {
	for _, buckets := range [][]int{{0, 2}, {4, 2}, {2, 2}, {-1}} {
		_, err := NewRuntime(Options{BatchBuckets: buckets})
		if err == nil || !strings.Contains(err.Error(), "batch buckets") {
			t.Errorf("NewRuntime(buckets %v) = %v, want a bucket error", buckets, err)
		}
	}
}

func TestVersionFormatting(t *testing.T) {
	cases := []struct {
		got, want string
	}{
		{tensorRTVersion(100300), "10.3.0"},
		{tensorRTVersion(101302), "10.13.2"},
		{cudaVersion(12040), "12.4"},
		{cudaVersion(11080), "11.8"},
		{cudaVersion(0), ""},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// planSet is a model set whose dit graph records a plan with the given
// contents, built for the first device of fakeInfo.
func planSet(contents []byte, sum string) *engines.Set {
	if sum == "" {
		h := sha256.Sum256(contents)
		sum = hex.EncodeToString(h[:])
	}
	g := engines.Graph{
		ONNX:     "dit.onnx",
		MaxBatch: 4,
		Inputs:   []engines.TensorSpec{{Name: "latents", Shape: []int64{-1, 8, 4}}},
		Outputs:  []engines.TensorSpec{{Name: "velocity", Shape: []int64{-1, 8, 4}}},
		Plan: &engines.Plan{File: "plans/dit.plan", TensorRT: "10.3.0", ComputeCapability: "8.9",
			GPU: "NVIDIA GeForce RTX 4090", Precision: "fp16", BatchBuckets: []int{1, 2, 4}, SHA256: sum},
	}
	return &engines.Set{
		Manifest: engines.Manifest{Name: "fake", Graphs: map[string]engines.Graph{"dit": g, "vae_latents": {ONNX: "v.onnx", MaxBatch: 1}}},
		FS:       fstest.MapFS{"plans/dit.plan": {Data: contents}},
	}
}

func TestLoadChecksTheManifestBeforeTheNativeLoad(t *testing.T) {
	plan := []byte("ftrt not really a plan")
	cases := []struct {
		name    string
		set     *engines.Set
		graph   string
		device  int
		wantErr error
		want    string
	}{
		{"unknown graph", planSet(plan, ""), "conditioner", 0, tensor.ErrModelFile, "no graph"},
		{"graph without a plan", planSet(plan, ""), "vae_latents", 0, tensor.ErrModelFile, "tools/build-engines"},
		{"plan for another GPU", planSet(plan, ""), "dit", 1, tensor.ErrIncompatible, "A100"},
		{"checksum mismatch", planSet(plan, strings.Repeat("ab", 32)), "dit", 0, tensor.ErrModelFile, "sha256"},
		{"malformed checksum", planSet(plan, "xyz"), "dit", 0, tensor.ErrModelFile, "not a SHA-256"},
		{"plan file missing", func() *engines.Set {
			s := planSet(plan, "")
			s.FS = fstest.MapFS{}
			return s
		}(), "dit", 0, tensor.ErrModelFile, "read plan"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &Runtime{opts: Options{Device: tc.device}, info: fakeInfo()}
			_, err := r.Load(context.Background(), tc.set, tc.graph)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Load = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestLoadReachesTheNativeLibrary(t *testing.T) {
	if libraryHasTensorRT() {
		t.Skip("this libhy3d.a has TensorRT (the GPU tests cover it)")
	}
	// Everything the manifest promises holds, so the call goes through the
	// cgo bridge, and the CPU-only library answers.
	r := &Runtime{opts: Options{Device: 0, CUDAGraphs: true}, info: fakeInfo()}
	_, err := r.Load(context.Background(), planSet([]byte("ftrt plan bytes"), ""), "dit")
	if !errors.Is(err, tensor.ErrUnavailable) || !strings.Contains(err.Error(), "without TensorRT") {
		t.Fatalf("Load = %v, want the native ErrUnavailable", err)
	}
}

func TestLoadHonoursADoneContext(t *testing.T) {
	r := &Runtime{opts: Options{}, info: fakeInfo()}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Load(ctx, planSet([]byte("x"), ""), "dit"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Load = %v, want context.Canceled", err)
	}
}

func TestCheckContractComparesTheEngineWithTheManifest(t *testing.T) {
	g := engines.Graph{
		Inputs:  []engines.TensorSpec{{Name: "latents", Shape: []int64{-1, 8, 4}}, {Name: "timestep", Shape: []int64{-1}}},
		Outputs: []engines.TensorSpec{{Name: "velocity", Shape: []int64{-1, 8, 4}}},
	}
	good := func() ([]tensor.Info, []tensor.Info) {
		return []tensor.Info{
				{Name: "timestep", DType: tensor.Float32, Dims: []int64{-1}},
				{Name: "latents", DType: tensor.Float32, Dims: []int64{-1, 8, 4}},
			},
			[]tensor.Info{{Name: "velocity", DType: tensor.Float32, Dims: []int64{-1, 8, 4}}}
	}
	cases := []struct {
		name    string
		edit    func(in, out []tensor.Info) ([]tensor.Info, []tensor.Info)
		wantErr error
	}{
		{"matching (any order)", func(in, out []tensor.Info) ([]tensor.Info, []tensor.Info) { return in, out }, nil},
		{"half output", func(in, out []tensor.Info) ([]tensor.Info, []tensor.Info) {
			out[0].DType = tensor.Float16
			return in, out
		}, tensor.ErrDType},
		{"renamed input", func(in, out []tensor.Info) ([]tensor.Info, []tensor.Info) {
			in[0].Name = "sigma"
			return in, out
		}, tensor.ErrModelFile},
		{"missing input", func(in, out []tensor.Info) ([]tensor.Info, []tensor.Info) { return in[:1], out }, tensor.ErrModelFile},
		{"other static dim", func(in, out []tensor.Info) ([]tensor.Info, []tensor.Info) {
			in[1].Dims = []int64{-1, 8, 5}
			return in, out
		}, tensor.ErrModelFile},
		{"other rank", func(in, out []tensor.Info) ([]tensor.Info, []tensor.Info) {
			out[0].Dims = []int64{-1, 32}
			return in, out
		}, tensor.ErrModelFile},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, out := tc.edit(good())
			err := checkContract("dit", g, in, out)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("checkContract: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("checkContract = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestNativeErrorsWrapTheTensorSentinels(t *testing.T) {
	cases := []struct {
		st   status
		want error
	}{
		{statusUnavailable, tensor.ErrUnavailable},
		{statusIncompatible, tensor.ErrIncompatible},
		{statusShape, tensor.ErrShape},
		{statusIO, tensor.ErrModelFile},
	}
	for _, tc := range cases {
		err := nativeError("load", tc.st, "native says why")
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "native says why") {
			t.Errorf("nativeError(%v) = %v, want %v with the message", tc.st, err, tc.want)
		}
	}
	err := nativeError("run", statusRuntime, "enqueueV3 failed")
	if !strings.Contains(err.Error(), "runtime error") {
		t.Errorf("nativeError(runtime) = %v, want the status named", err)
	}
}
