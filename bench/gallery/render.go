package main

import (
	"image"
	"image/color"
	"math"

	"github.com/hy3d/hy3d/mesh"
)

// view is an orthographic camera turned by yaw about the vertical axis and
// then tilted by pitch toward the viewer, looking down −Z.
type view struct {
	yaw, pitch float64 // radians
	extent     float64 // half the visible width, in mesh units
}

// render draws m, lit by one directional light plus ambient, with a z-buffer
// at ss× the output size and a box filter down to size² pixels.
func render(m *mesh.Mesh, v view, size, ss int) *image.NRGBA {
	n := size * ss
	cy, sy := math.Cos(v.yaw), math.Sin(v.yaw)
	cp, sp := math.Cos(v.pitch), math.Sin(v.pitch)
	turn := func(x, y, z float64) (float64, float64, float64) {
		x, z = cy*x+sy*z, -sy*x+cy*z
		y, z = cp*y-sp*z, sp*y+cp*z
		return x, y, z
	}
	nv := m.VertexCount()
	eye := make([][3]float64, nv) // view space: x right, y up, z toward the viewer
	pos := make([][3]float64, nv) // screen pixels, y down, and eye z
	for i := range nv {
		x, y, z := turn(float64(m.Vertices[3*i]), float64(m.Vertices[3*i+1]), float64(m.Vertices[3*i+2]))
		eye[i] = [3]float64{x, y, z}
		pos[i] = [3]float64{(x/v.extent*0.5 + 0.5) * float64(n), (0.5 - y/v.extent*0.5) * float64(n), z}
	}
	normals := vertexNormals(m, eye)

	depth := make([]float64, n*n)
	for i := range depth {
		depth[i] = math.Inf(-1)
	}
	shade := make([]float64, n*n)
	light := unit([3]float64{-0.45, 0.65, 0.62})
	for t := 0; t+2 < len(m.Indices); t += 3 {
		a, b, c := m.Indices[t], m.Indices[t+1], m.Indices[t+2]
		pa, pb, pc := pos[a], pos[b], pos[c]
		area := (pb[0]-pa[0])*(pc[1]-pa[1]) - (pb[1]-pa[1])*(pc[0]-pa[0])
		if area == 0 {
			continue
		}
		x0 := max(0, int(math.Floor(min(pa[0], pb[0], pc[0]))))
		x1 := min(n-1, int(math.Ceil(max(pa[0], pb[0], pc[0]))))
		y0 := max(0, int(math.Floor(min(pa[1], pb[1], pc[1]))))
		y1 := min(n-1, int(math.Ceil(max(pa[1], pb[1], pc[1]))))
		for y := y0; y <= y1; y++ {
			for x := x0; x <= x1; x++ {
				px, py := float64(x)+0.5, float64(y)+0.5
				w0 := ((pb[0]-px)*(pc[1]-py) - (pb[1]-py)*(pc[0]-px)) / area
				w1 := ((pc[0]-px)*(pa[1]-py) - (pc[1]-py)*(pa[0]-px)) / area
				w2 := 1 - w0 - w1
				if w0 < 0 || w1 < 0 || w2 < 0 {
					continue
				}
				z := w0*pa[2] + w1*pb[2] + w2*pc[2]
				if z <= depth[y*n+x] {
					continue
				}
				depth[y*n+x] = z
				var nn [3]float64
				for k := range 3 {
					nn[k] = w0*normals[a][k] + w1*normals[b][k] + w2*normals[c][k]
				}
				nn = unit(nn)
				if nn[2] < 0 { // the inside of an open edge: light it as the outside
					nn = [3]float64{-nn[0], -nn[1], -nn[2]}
				}
				diffuse := max(0, nn[0]*light[0]+nn[1]*light[1]+nn[2]*light[2])
				half := unit([3]float64{light[0], light[1], light[2] + 1})
				spec := math.Pow(max(0, nn[0]*half[0]+nn[1]*half[1]+nn[2]*half[2]), 40)
				shade[y*n+x] = 0.22 + 0.7*diffuse + 0.25*spec
			}
		}
	}

	out := image.NewNRGBA(image.Rect(0, 0, size, size))
	clay := [3]float64{0.86, 0.74, 0.62}
	for y := range size {
		for x := range size {
			var acc [3]float64
			for j := range ss {
				for i := range ss {
					k := (y*ss+j)*n + x*ss + i
					if math.IsInf(depth[k], -1) {
						g := 0.97 - 0.1*float64(y)/float64(size)
						acc[0], acc[1], acc[2] = acc[0]+g, acc[1]+g, acc[2]+g
						continue
					}
					for c := range 3 {
						acc[c] += min(1, clay[c]*shade[k]+0.12*max(0, shade[k]-0.9))
					}
				}
			}
			s := float64(ss * ss)
			out.SetNRGBA(x, y, color.NRGBA{uint8(255 * acc[0] / s), uint8(255 * acc[1] / s), uint8(255 * acc[2] / s), 255})
		}
	}
	return out
}

// vertexNormals are the area-weighted means of the faces' normals (the
// mesh's triangles wind counter-clockwise seen from outside).
func vertexNormals(m *mesh.Mesh, p [][3]float64) [][3]float64 {
	out := make([][3]float64, len(p))
	for t := 0; t+2 < len(m.Indices); t += 3 {
		a, b, c := m.Indices[t], m.Indices[t+1], m.Indices[t+2]
		u := [3]float64{p[b][0] - p[a][0], p[b][1] - p[a][1], p[b][2] - p[a][2]}
		w := [3]float64{p[c][0] - p[a][0], p[c][1] - p[a][1], p[c][2] - p[a][2]}
		fn := [3]float64{u[1]*w[2] - u[2]*w[1], u[2]*w[0] - u[0]*w[2], u[0]*w[1] - u[1]*w[0]}
		for _, v := range [3]uint32{a, b, c} {
			for k := range 3 {
				out[v][k] += fn[k]
			}
		}
	}
	for i := range out {
		out[i] = unit(out[i])
	}
	return out
}

func unit(v [3]float64) [3]float64 {
	l := math.Sqrt(v[0]*v[0] + v[1]*v[1] + v[2]*v[2])
	if l == 0 {
		return [3]float64{0, 0, 1}
	}
	return [3]float64{v[0] / l, v[1] / l, v[2] / l}
}
