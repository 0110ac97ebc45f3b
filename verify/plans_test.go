package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hy3d/hy3d/engines"
)

func planSet(planBytes []byte, plan engines.Plan) *engines.Set {
	files := fstest.MapFS{"dit.onnx": {Data: []byte("onnx")}}
	if planBytes != nil {
		files[plan.File] = &fstest.MapFile{Data: planBytes}
	}
	return &engines.Set{Manifest: engines.Manifest{Name: "s", Graphs: map[string]engines.Graph{
		"dit":         {ONNX: "dit.onnx", MaxBatch: 2, Plan: &plan},
		"conditioner": {ONNX: "conditioner.onnx", MaxBatch: 2},
	}}, FS: files}
}

func TestCheckPlanAppliesTheRuntimesRules(t *testing.T) {
	body := []byte("not really a plan")
	sum := sha256.Sum256(body)
	good := engines.Plan{File: "plans/dit.plan", TensorRT: "10.3.0", ComputeCapability: "8.6", GPU: "NVIDIA GeForce RTX 3090",
		Precision: "fp16", SHA256: hex.EncodeToString(sum[:])}
	rtx3090 := Machine{TensorRT: "10.3.0.26", DeviceName: "NVIDIA GeForce RTX 3090", ComputeCapability: "8.6"}
	with := func(edit func(p *engines.Plan)) engines.Plan {
		p := good
		edit(&p)
		return p
	}
	tests := []struct {
		name     string
		body     []byte
		plan     engines.Plan
		machine  Machine
		checksum string
		loadable bool
		reasons  []string
	}{
		{"a matching plan loads; build numbers do not matter", body, good, rtx3090, "ok", true, nil},
		{"another TensorRT release", body, good, Machine{TensorRT: "10.4.0", ComputeCapability: "8.6"}, "ok", false,
			[]string{"built with TensorRT 10.3.0, this machine has 10.4.0"}},
		{"another GPU", body, good, Machine{TensorRT: "10.3.0", DeviceName: "NVIDIA L4", ComputeCapability: "8.9"}, "ok", false,
			[]string{"built for compute capability 8.6, device 0 (NVIDIA L4) is 8.9"}},
		{"a plan file that changed", []byte("something else"), good, rtx3090, "mismatch", false, []string{"checksum mismatch"}},
		{"a missing plan file", nil, good, rtx3090, "file missing", false, []string{"checksum file missing: plans/dit.plan"}},
		{"no checksum recorded", body, with(func(p *engines.Plan) { p.SHA256 = "" }), rtx3090, "not recorded", false, []string{"checksum not recorded"}},
		{"no TensorRT here", body, good, Machine{Unavailable: "built without TensorRT"}, "ok", false,
			[]string{"TensorRT unavailable on this machine"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := CheckPlan(planSet(tc.body, tc.plan), "dit", tc.machine)
			if c.Plan == nil || c.Loadable != tc.loadable || !strings.HasPrefix(c.Checksum, tc.checksum) {
				t.Fatalf("CheckPlan = %+v; want checksum %q, loadable %v", c, tc.checksum, tc.loadable)
			}
			for _, want := range tc.reasons {
				if !strings.Contains(strings.Join(c.Reasons, "; "), want) {
					t.Errorf("reasons %q lack %q", c.Reasons, want)
				}
			}
		})
	}
}

func TestCheckPlanOfAGraphWithoutPlanSaysONNXOnly(t *testing.T) {
	c := CheckPlan(planSet(nil, engines.Plan{File: "x"}), "conditioner", Machine{TensorRT: "10.3.0", ComputeCapability: "8.6"})
	if c.Plan != nil || c.Loadable || len(c.Reasons) != 1 || c.Reasons[0] != "no plan (ONNX only)" {
		t.Errorf("CheckPlan = %+v, want no plan (ONNX only)", c)
	}
}
