package main

import (
	"testing"

	"github.com/hy3d/hy3d/mesh"
)

// cube is the closed [−0.5, 0.5]³ cube, triangles wound counter-clockwise
// seen from outside.
func cube() *mesh.Mesh {
	m := &mesh.Mesh{}
	for i := range 8 {
		m.Vertices = append(m.Vertices, float32(i&1)-0.5, float32(i>>1&1)-0.5, float32(i>>2&1)-0.5)
	}
	quads := [][4]uint32{{0, 2, 3, 1}, {4, 5, 7, 6}, {0, 1, 5, 4}, {2, 6, 7, 3}, {0, 4, 6, 2}, {1, 3, 7, 5}}
	for _, q := range quads {
		m.Indices = append(m.Indices, q[0], q[1], q[2], q[0], q[2], q[3])
	}
	return m
}

// Seen head-on, the cube covers the middle of the picture and nothing else;
// its front face, facing the light, is lit, and it is clay-coloured (red
// above blue), unlike the grey background.
func TestRenderDrawsTheCubeFrontFaceLit(t *testing.T) {
	img := render(cube(), view{extent: 1}, 64, 2)
	at := func(x, y int) (r, g, b uint8) {
		c := img.NRGBAAt(x, y)
		return c.R, c.G, c.B
	}
	for _, p := range [][2]int{{2, 2}, {61, 2}, {2, 61}, {61, 61}, {10, 32}, {32, 10}} {
		if r, g, b := at(p[0], p[1]); r != g || g != b {
			t.Errorf("(%d,%d) = %d,%d,%d: want grey background", p[0], p[1], r, g, b)
		}
	}
	r, _, b := at(32, 32)
	if r <= b+20 || r < 120 {
		t.Errorf("centre %d,_,%d: want the lit clay front face", r, b)
	}
	// Turned and tilted, the top face shows above the front face.
	turned := render(cube(), view{yaw: -0.55, pitch: 0.35, extent: 1}, 64, 2)
	if c := turned.NRGBAAt(32, 32); c.R == c.B {
		t.Error("the turned cube is missing from the centre")
	}
}
