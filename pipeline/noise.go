package pipeline

import "math"

// Noise fills dst with standard normal samples determined by seed alone.
//
// Hunyuan3D draws its initial latents with torch.randn from a torch
// Generator, whose stream depends on the device (mt19937 on the CPU, Philox
// on CUDA) and cannot be reproduced without torch; what we keep is the
// property that matters to users: one seed gives the same latents, hence the
// same mesh on the same backend. The generator is written out here rather
// than taken from math/rand so that no Go release can change the stream:
// SplitMix64 (Steele, Lea & Flood 2014) gives 64-bit words; each pair of
// words becomes two uniforms u1 ∈ (0, 1], u2 ∈ [0, 1) with 53 bits each, and
// the Box–Muller transform turns them into √(−2 ln u1)·cos(2π u2) and
// √(−2 ln u1)·sin(2π u2), computed in float64 and rounded to float32.
func Noise(dst []float32, seed uint64) {
	g := splitMix64{state: seed}
	for i := 0; i < len(dst); i += 2 {
		u1 := float64(g.next()>>11+1) * 0x1p-53
		u2 := float64(g.next()>>11) * 0x1p-53
		r := math.Sqrt(-2 * math.Log(u1))
		s, c := math.Sincos(2 * math.Pi * u2)
		dst[i] = float32(r * c)
		if i+1 < len(dst) {
			dst[i+1] = float32(r * s)
		}
	}
}

// splitMix64 is the SplitMix64 generator: a Weyl sequence with golden-ratio
// increment, scrambled by two xor-shift-multiply rounds.
type splitMix64 struct{ state uint64 }

func (g *splitMix64) next() uint64 {
	g.state += 0x9e3779b97f4a7c15
	z := g.state
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
