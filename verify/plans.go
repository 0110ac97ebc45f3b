package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/hy3d/hy3d/engines"
)

// Machine is what this machine offers TensorRT plans: the TensorRT release
// its runtime loads and the compute capability of the device plans would
// run on. Unavailable, when set, says why no plan can run here at all (the
// runtime's error); plans are then reported as not loadable without it.
type Machine struct {
	TensorRT          string // "10.3.0"
	Device            int
	DeviceName        string
	ComputeCapability string // "8.6"
	Unavailable       string
}

// PlanCheck says whether this machine can load one graph's plan, and why not.
type PlanCheck struct {
	Graph    string        `json:"graph"`
	Plan     *engines.Plan `json:"plan,omitempty"` // nil: the graph has no plan (ONNX only)
	Checksum string        `json:"checksum"`       // "ok", "mismatch (file sha256 …)", "file missing: …", "not recorded"
	Loadable bool          `json:"loadable"`
	Reasons  []string      `json:"reasons,omitempty"` // why not, one per failed check
}

// CheckPlan applies to graph's plan the checks trt.Runtime.Load makes before
// it deserializes one — the plan's file must have the recorded SHA-256, and
// its TensorRT release (major.minor.patch) and compute capability must be
// this machine's — without loading anything, so that they can be shown for
// every plan of a set, on machines with or without TensorRT.
func CheckPlan(set *engines.Set, graph string, m Machine) PlanCheck {
	c := PlanCheck{Graph: graph}
	g, ok := set.Graphs[graph]
	if !ok || g.Plan == nil {
		c.Reasons = []string{"no plan (ONNX only)"}
		return c
	}
	p := *g.Plan
	c.Plan = &p
	c.Checksum = checksum(set, p)
	if c.Checksum != "ok" {
		c.Reasons = append(c.Reasons, "checksum "+c.Checksum)
	}
	switch {
	case m.Unavailable != "":
		c.Reasons = append(c.Reasons, "TensorRT unavailable on this machine")
	default:
		if !engines.SameTensorRTRelease(p.TensorRT, m.TensorRT) {
			c.Reasons = append(c.Reasons, fmt.Sprintf("built with TensorRT %s, this machine has %s", orUnknown(p.TensorRT), m.TensorRT))
		}
		if !engines.SameComputeCapability(p.ComputeCapability, m.ComputeCapability) {
			c.Reasons = append(c.Reasons, fmt.Sprintf("built for compute capability %s, device %d (%s) is %s",
				orUnknown(p.ComputeCapability), m.Device, m.DeviceName, m.ComputeCapability))
		}
	}
	c.Loadable = len(c.Reasons) == 0
	return c
}

func orUnknown(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(not recorded)"
	}
	return s
}

func checksum(set *engines.Set, p engines.Plan) string {
	if strings.TrimSpace(p.SHA256) == "" {
		return "not recorded"
	}
	if p.File == "" {
		return "file not recorded"
	}
	f, err := set.FS.Open(p.File)
	if err != nil {
		return "file missing: " + p.File
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "file unreadable: " + err.Error()
	}
	got := hex.EncodeToString(h.Sum(nil))
	if !strings.EqualFold(got, strings.TrimSpace(p.SHA256)) {
		return "mismatch (file sha256 " + got[:12] + "…)"
	}
	return "ok"
}
