package cutout

import "math"

// gmmComponents is GrabCut's number of Gaussians per colour model.
const gmmComponents = 5

// gaussian is one full-covariance component over RGB (0–255 units).
type gaussian struct {
	mean    [3]float64
	inv     [9]float64 // inverse covariance, row-major
	logNorm float64    // log weight − ½ log det Σ − (3/2) log 2π
}

// gmm is a colour model: a Gaussian mixture over RGB, as in GrabCut.
type gmm struct{ comps []gaussian }

// cost is the negative log-likelihood of colour c under its most likely
// component (GrabCut's data term with the component assignment k_n; it
// differs from the mixture's by at most log gmmComponents).
func (m *gmm) cost(c [3]float32) float32 {
	best := math.Inf(-1)
	for k := range m.comps {
		best = max(best, m.comps[k].logDensity(c))
	}
	return float32(-best)
}

func (g *gaussian) logDensity(c [3]float32) float64 {
	d0, d1, d2 := float64(c[0])-g.mean[0], float64(c[1])-g.mean[1], float64(c[2])-g.mean[2]
	q := d0*(g.inv[0]*d0+g.inv[1]*d1+g.inv[2]*d2) +
		d1*(g.inv[3]*d0+g.inv[4]*d1+g.inv[5]*d2) +
		d2*(g.inv[6]*d0+g.inv[7]*d1+g.inv[8]*d2)
	return g.logNorm - 0.5*q
}

// nearest is the component with the highest weighted density at c.
func (m *gmm) nearest(c [3]float32) int {
	best, arg := math.Inf(-1), 0
	for k := range m.comps {
		if v := m.comps[k].logDensity(c); v > best {
			best, arg = v, k
		}
	}
	return arg
}

// fitGMM fits a mixture of up to gmmComponents Gaussians to samples.
// Components start from deterministic k-means (farthest-point seeds over a
// subsample), then every sample goes to its most likely component and each
// component takes the mean and covariance of its samples (GrabCut's hard
// assignment). minVar floors each variance so a flat colour (a clean studio
// backdrop, an unshaded object) still gets a usable density. It returns false
// when there are no samples.
func fitGMM(samples [][3]float32, minVar float64) (gmm, bool) {
	if len(samples) == 0 {
		return gmm{}, false
	}
	centres := kmeansSeeds(samples)
	label := make([]uint8, len(samples))
	for i, c := range samples {
		label[i] = uint8(nearestCentre(centres, c))
	}
	m := estimate(samples, label, len(centres), minVar)
	for i, c := range samples {
		label[i] = uint8(m.nearest(c))
	}
	return estimate(samples, label, len(m.comps), minVar), true
}

// kmeansSeeds runs a few Lloyd iterations from farthest-point seeds on at
// most 2048 evenly spaced samples.
func kmeansSeeds(samples [][3]float32) [][3]float32 {
	stride := max(1, len(samples)/2048)
	var sub [][3]float32
	for i := 0; i < len(samples); i += stride {
		sub = append(sub, samples[i])
	}
	centres := [][3]float32{sub[0]}
	far := make([]float32, len(sub))
	for i, c := range sub {
		far[i] = dist2(c, centres[0])
	}
	for len(centres) < gmmComponents {
		arg := 0
		for i, d := range far {
			if d > far[arg] {
				arg = i
			}
		}
		if far[arg] == 0 {
			break
		}
		centres = append(centres, sub[arg])
		for i, c := range sub {
			far[i] = min(far[i], dist2(c, sub[arg]))
		}
	}
	sum := make([][3]float64, len(centres))
	count := make([]int, len(centres))
	for range 6 {
		clear(sum)
		clear(count)
		for _, c := range sub {
			k := nearestCentre(centres, c)
			count[k]++
			for j := range 3 {
				sum[k][j] += float64(c[j])
			}
		}
		for k := range centres {
			if count[k] > 0 {
				for j := range 3 {
					centres[k][j] = float32(sum[k][j] / float64(count[k]))
				}
			}
		}
	}
	return centres
}

func nearestCentre(centres [][3]float32, c [3]float32) int {
	arg := 0
	for k := 1; k < len(centres); k++ {
		if dist2(c, centres[k]) < dist2(c, centres[arg]) {
			arg = k
		}
	}
	return arg
}

func dist2(a, b [3]float32) float32 {
	d0, d1, d2 := a[0]-b[0], a[1]-b[1], a[2]-b[2]
	return d0*d0 + d1*d1 + d2*d2
}

// estimate computes the weight, mean and covariance of each labelled group;
// empty groups are dropped.
func estimate(samples [][3]float32, label []uint8, k int, minVar float64) gmm {
	type moments struct {
		n  float64
		s  [3]float64
		ss [9]float64
	}
	acc := make([]moments, k)
	for i, c := range samples {
		a := &acc[label[i]]
		a.n++
		for p := range 3 {
			a.s[p] += float64(c[p])
			for q := range 3 {
				a.ss[3*p+q] += float64(c[p]) * float64(c[q])
			}
		}
	}
	total := float64(len(samples))
	var m gmm
	for _, a := range acc {
		if a.n == 0 {
			continue
		}
		var g gaussian
		var cov [9]float64
		for p := range 3 {
			g.mean[p] = a.s[p] / a.n
		}
		for p := range 3 {
			for q := range 3 {
				cov[3*p+q] = a.ss[3*p+q]/a.n - g.mean[p]*g.mean[q]
			}
			cov[4*p] = max(cov[4*p], 0) + minVar
		}
		det := invert3(&cov, &g.inv)
		g.logNorm = math.Log(a.n/total) - 0.5*math.Log(det) - 1.5*math.Log(2*math.Pi)
		m.comps = append(m.comps, g)
	}
	return m
}

// invert3 writes the inverse of the symmetric positive-definite c into inv
// and returns det c.
func invert3(c, inv *[9]float64) float64 {
	a, b, cc := c[0], c[1], c[2]
	d, e, f := c[3], c[4], c[5]
	g, h, i := c[6], c[7], c[8]
	A, B, C := e*i-f*h, -(d*i - f*g), d*h-e*g
	det := a*A + b*B + cc*C
	inv[0], inv[3], inv[6] = A/det, B/det, C/det
	inv[1], inv[4], inv[7] = -(b*i-cc*h)/det, (a*i-cc*g)/det, -(a*h-b*g)/det
	inv[2], inv[5], inv[8] = (b*f-cc*e)/det, -(a*f-cc*d)/det, (a*e-b*d)/det
	return det
}
