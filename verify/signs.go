package verify

import (
	"fmt"
	"math"
)

// DefaultAgreement is the fraction of near-surface grid points whose
// occupancy sign must agree between the two sides. The band is the one
// coarse-to-fine decoding refines (|logit| < volume.refine_band, 0.95 for
// Hunyuan3D), so the points counted are the ones that place the surface. An
// FP16 error ε in the logits flips only points with |logit| < ε; with logits
// spread over the band that is about ε/band of them, some 1 % at ε = 1e-2.
// A flipped point there moves the surface by a fraction of a cell, which
// cleanup and decimation do not preserve anyway, while a broken engine
// disagrees on tens of percent. 0.98 sits between the two.
const DefaultAgreement = 0.98

// SignAgreement compares two occupancy volumes (logits, positive inside)
// over the same grid.
type SignAgreement struct {
	Points int     `json:"points"`
	Band   float64 `json:"band"`
	// Near counts the points with |logit| < Band on either side; Agree those
	// of them that are inside on both sides or outside on both.
	Near     int     `json:"near"`
	Agree    int     `json:"agree"`
	Fraction float64 `json:"fraction"` // Agree/Near, 1 when Near is 0
	// Inside counts the points inside on each side; IoU is the
	// intersection over union of the two insides, over the whole grid.
	InsideGot  int     `json:"inside_got"`
	InsideWant int     `json:"inside_want"`
	IoU        float64 `json:"iou"`
	NaN        int     `json:"nan"` // points with a NaN on either side; they fail
	Threshold  float64 `json:"threshold"`
	Pass       bool    `json:"pass"`
}

// CompareSigns compares the occupancy signs of got and want (a point is
// inside when its logit is > 0, as for marching cubes at level 0) near the
// surface. It passes when Fraction ≥ threshold and no point is NaN.
func CompareSigns(got, want []float32, band, threshold float64) (SignAgreement, error) {
	if len(got) != len(want) {
		return SignAgreement{}, fmt.Errorf("verify: volumes of %d and %d points", len(got), len(want))
	}
	if !(band > 0) || !(threshold >= 0 && threshold <= 1) {
		return SignAgreement{}, fmt.Errorf("verify: band %v must be positive and threshold %v within [0, 1]", band, threshold)
	}
	s := SignAgreement{Points: len(got), Band: band, Threshold: threshold}
	both := 0
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) || math.IsNaN(w) {
			s.NaN++
			s.Near++
			continue
		}
		gi, wi := g > 0, w > 0
		if gi {
			s.InsideGot++
		}
		if wi {
			s.InsideWant++
		}
		if gi && wi {
			both++
		}
		if math.Abs(g) < band || math.Abs(w) < band {
			s.Near++
			if gi == wi {
				s.Agree++
			}
		}
	}
	s.Fraction = 1
	if s.Near > 0 {
		s.Fraction = float64(s.Agree) / float64(s.Near)
	}
	s.IoU = 1
	if union := s.InsideGot + s.InsideWant - both; union > 0 {
		s.IoU = float64(both) / float64(union)
	}
	s.Pass = s.NaN == 0 && s.Fraction >= threshold
	return s, nil
}
