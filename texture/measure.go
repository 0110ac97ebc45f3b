package texture

import (
	"fmt"
	"math"

	"github.com/hy3d/hy3d/mesh"
)

// MeasureAtlas scores any atlas of m — ours or another tool's — with the
// figures BuildAtlas reports, at a texture of size texels: chart count (UV
// islands: faces joined by shared atlas vertices), L2 stretch, utilization
// and overlapping texel centres. Duration is left zero.
func MeasureAtlas(m *mesh.Mesh, a *Atlas, size int) (AtlasStats, error) {
	const op = "measure atlas"
	if err := checkSize(op, size); err != nil {
		return AtlasStats{}, err
	}
	if err := m.Validate(); err != nil {
		return AtlasStats{}, fmt.Errorf("%s: %w: %w", op, ErrInvalidInput, err)
	}
	if len(a.Indices) != len(m.Indices) || len(a.UV) != 2*len(a.Xref) {
		return AtlasStats{}, fmt.Errorf("%s: %w: atlas does not belong to this mesh", op, ErrInvalidInput)
	}
	for _, v := range a.Indices {
		if int(v) >= len(a.Xref) || int(a.Xref[v]) >= m.VertexCount() {
			return AtlasStats{}, fmt.Errorf("%s: %w: atlas index out of range", op, ErrInvalidInput)
		}
	}
	var st AtlasStats
	st.Charts = islands(a)
	st.StretchL2 = stretchL2(m, a)
	ids := make([]int32, size*size)
	if err := nativeRasterizeUV(a.UV, a.Indices, size, size, 0, ids, nil); err != nil {
		return AtlasStats{}, err
	}
	covered := 0
	for _, f := range ids {
		if f >= 0 {
			covered++
		}
	}
	st.Utilization = float64(covered) / float64(size*size)
	st.OverlapTexels = overlapTexels(a, size)
	return st, nil
}

// islands counts the connected components of faces sharing atlas vertices.
func islands(a *Atlas) int {
	parent := make([]int32, len(a.Xref))
	for i := range parent {
		parent[i] = int32(i)
	}
	var find func(int32) int32
	find = func(x int32) int32 {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	used := make([]bool, len(a.Xref))
	for f := 0; f+2 < len(a.Indices); f += 3 {
		r := find(int32(a.Indices[f]))
		for _, v := range a.Indices[f : f+3] {
			used[v] = true
			parent[find(int32(v))] = r
		}
	}
	n := 0
	for v := range parent {
		if used[v] && find(int32(v)) == int32(v) {
			n++
		}
	}
	return n
}

// stretchL2 is Sander et al.'s L2 stretch over the faces with area in 3D
// and in UV, normalized so an isometry up to one global scale gives 1.
func stretchL2(m *mesh.Mesh, a *Atlas) float64 {
	var sum, area3, area2 float64
	for f := 0; f+2 < len(a.Indices); f += 3 {
		var q [3][3]float64
		var s, t [3]float64
		for k := 0; k < 3; k++ {
			v := a.Indices[f+k]
			x := a.Xref[v]
			q[k] = [3]float64{float64(m.Vertices[3*x]), float64(m.Vertices[3*x+1]), float64(m.Vertices[3*x+2])}
			s[k], t[k] = float64(a.UV[2*v]), float64(a.UV[2*v+1])
		}
		a2 := ((s[1]-s[0])*(t[2]-t[0]) - (s[2]-s[0])*(t[1]-t[0])) / 2
		c := cross3([3]float64{q[1][0] - q[0][0], q[1][1] - q[0][1], q[1][2] - q[0][2]},
			[3]float64{q[2][0] - q[0][0], q[2][1] - q[0][1], q[2][2] - q[0][2]})
		a3 := math.Sqrt(c[0]*c[0]+c[1]*c[1]+c[2]*c[2]) / 2
		if !(a2 > 0) || !(a3 > 0) {
			continue
		}
		var ss, st [3]float64
		for d := 0; d < 3; d++ {
			ss[d] = (q[0][d]*(t[1]-t[2]) + q[1][d]*(t[2]-t[0]) + q[2][d]*(t[0]-t[1])) / (2 * a2)
			st[d] = (q[0][d]*(s[2]-s[1]) + q[1][d]*(s[0]-s[2]) + q[2][d]*(s[1]-s[0])) / (2 * a2)
		}
		sum += a3 * (ss[0]*ss[0] + ss[1]*ss[1] + ss[2]*ss[2] + st[0]*st[0] + st[1]*st[1] + st[2]*st[2]) / 2
		area3 += a3
		area2 += a2
	}
	if area3 == 0 {
		return 1
	}
	return math.Sqrt(sum/area3) * math.Sqrt(area2/area3)
}

// overlapTexels counts texel centres strictly inside two faces.
func overlapTexels(a *Atlas, size int) uint64 {
	count := make([]uint8, size*size)
	var overlaps uint64
	for f := 0; f+2 < len(a.Indices); f += 3 {
		var x, y [3]float64
		for k := 0; k < 3; k++ {
			v := a.Indices[f+k]
			x[k], y[k] = float64(a.UV[2*v])*float64(size), float64(a.UV[2*v+1])*float64(size)
		}
		area := (x[1]-x[0])*(y[2]-y[0]) - (y[1]-y[0])*(x[2]-x[0])
		if area == 0 || math.IsNaN(area) {
			continue
		}
		y0 := max(0, int(math.Floor(min(y[0], y[1], y[2]))))
		y1 := min(size-1, int(math.Ceil(max(y[0], y[1], y[2]))))
		x0 := max(0, int(math.Floor(min(x[0], x[1], x[2]))))
		x1 := min(size-1, int(math.Ceil(max(x[0], x[1], x[2]))))
		for py := y0; py <= y1; py++ {
			for px := x0; px <= x1; px++ {
				sx, sy := float64(px)+0.5, float64(py)+0.5
				w0 := ((x[1]-sx)*(y[2]-sy) - (y[1]-sy)*(x[2]-sx)) / area
				w1 := ((x[2]-sx)*(y[0]-sy) - (y[2]-sy)*(x[0]-sx)) / area
				if w0 > 0 && w1 > 0 && 1-w0-w1 > 0 {
					if count[py*size+px]++; count[py*size+px] == 2 {
						overlaps++
					}
				}
			}
		}
	}
	return overlaps
}

// FieldPSNR is the PSNR, in dB over colours in [0, 1], of the texels of tex
// that keep selects (by texel index into tex) against a colour field of
// world position, sampled at each texel's position; n counts those texels
// (NaN dB when there are none). It scores a bake or a fill against a known
// field, as the oracle tests and bench/texture do.
func FieldPSNR(uv *UVRaster, tex Image, keep func(p int) bool, field func(p [3]float32) [3]float32) (db float64, n int) {
	var sum float64
	for i, p := range uv.TexelIndex {
		if !keep(int(p)) {
			continue
		}
		want := field([3]float32{uv.TexelPositions[3*i], uv.TexelPositions[3*i+1], uv.TexelPositions[3*i+2]})
		for k := 0; k < 3; k++ {
			d := float64(tex.Pix[3*int(p)+k] - want[k])
			sum += d * d
		}
		n++
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return 10 * math.Log10(1/(sum/float64(3*n))), n
}
