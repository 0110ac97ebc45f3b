package trt

import (
	"errors"
	"strings"
	"testing"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

func fakeInfo() Info {
	return Info{
		TensorRT:    "10.3.0",
		CUDARuntime: "12.4",
		CUDADriver:  "12.6",
		Devices: []Device{
			{Index: 0, Name: "NVIDIA GeForce RTX 4090", ComputeCapability: "8.9", TotalMemory: 24 << 30},
			{Index: 1, Name: "NVIDIA A100-SXM4-80GB", ComputeCapability: "8.0", TotalMemory: 80 << 30},
		},
	}
}

func TestCheckCompatibleNamesBothSides(t *testing.T) {
	plan := engines.Plan{File: "plans/dit.plan", TensorRT: "10.3.0", ComputeCapability: "8.9", GPU: "NVIDIA GeForce RTX 4090"}
	cases := []struct {
		name     string
		edit     func(p *engines.Plan)
		device   int
		wantErr  error
		wantText []string
	}{
		{name: "same release and GPU", edit: func(*engines.Plan) {}},
		{name: "build number is ignored", edit: func(p *engines.Plan) { p.TensorRT = "10.3.0.26" }},
		{name: "other patch release", edit: func(p *engines.Plan) { p.TensorRT = "10.3.1" },
			wantErr: tensor.ErrIncompatible, wantText: []string{"TensorRT 10.3.1", "this runtime is TensorRT 10.3.0", "plans/dit.plan"}},
		{name: "other major release", edit: func(p *engines.Plan) { p.TensorRT = "8.6.1" },
			wantErr: tensor.ErrIncompatible, wantText: []string{"8.6.1", "10.3.0"}},
		{name: "unparsable version", edit: func(p *engines.Plan) { p.TensorRT = "ten" },
			wantErr: tensor.ErrIncompatible, wantText: []string{"ten", "10.3.0"}},
		{name: "other GPU", device: 1,
			wantErr: tensor.ErrIncompatible, wantText: []string{"NVIDIA GeForce RTX 4090 (compute capability 8.9)", "device 1 is NVIDIA A100-SXM4-80GB (compute capability 8.0)"}},
		{name: "other GPU without a recorded name", edit: func(p *engines.Plan) { p.GPU = ""; p.ComputeCapability = "8.6" },
			wantErr: tensor.ErrIncompatible, wantText: []string{"built for compute capability 8.6", "8.9"}},
		{name: "both differ", edit: func(p *engines.Plan) { p.TensorRT = "10.0.1"; p.ComputeCapability = "7.5" },
			wantErr: tensor.ErrIncompatible, wantText: []string{"10.0.1", "10.3.0", "7.5", "8.9"}},
		{name: "missing device", device: 2, wantErr: tensor.ErrUnavailable, wantText: []string{"device 2", "2 visible"}},
		{name: "record without version", edit: func(p *engines.Plan) { p.TensorRT = "" }, wantErr: tensor.ErrModelFile},
		{name: "record without compute capability", edit: func(p *engines.Plan) { p.ComputeCapability = "" }, wantErr: tensor.ErrModelFile},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := plan
			if tc.edit != nil {
				tc.edit(&p)
			}
			err := checkCompatible("dit", p, fakeInfo(), tc.device)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("checkCompatible: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("checkCompatible = %v, want %v", err, tc.wantErr)
			}
			for _, s := range tc.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}
