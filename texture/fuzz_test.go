package texture

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/hy3d/hy3d/mesh"
)

// meshFromBytes reads a mesh from fuzz input: a vertex count byte, float32
// coordinates, then uint16 indices taken as they come (so out of range,
// repeated and degenerate ones all occur).
func meshFromBytes(data []byte) *mesh.Mesh {
	if len(data) == 0 {
		return &mesh.Mesh{}
	}
	nv := int(data[0]) % 64
	data = data[1:]
	m := &mesh.Mesh{}
	for i := 0; i < 3*nv && len(data) >= 4; i++ {
		m.Vertices = append(m.Vertices, math.Float32frombits(binary.LittleEndian.Uint32(data)))
		data = data[4:]
	}
	m.Vertices = m.Vertices[:len(m.Vertices)/3*3]
	for len(data) >= 6 && len(m.Indices) < 3*256 {
		for k := 0; k < 3; k++ {
			m.Indices = append(m.Indices, uint32(binary.LittleEndian.Uint16(data[2*k:])))
		}
		data = data[6:]
	}
	return m
}

func fuzzSeed(vertices []float32, indices []uint16) []byte {
	out := []byte{byte(len(vertices) / 3)}
	for _, v := range vertices {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	for _, i := range indices {
		out = binary.LittleEndian.AppendUint16(out, i)
	}
	return out
}

// FuzzTexturePipeline runs every stage on arbitrary meshes: it must either
// reject the mesh with ErrInvalidInput or produce an atlas inside [0, 1]²
// without overlaps, views and a filled texture, never crash.
func FuzzTexturePipeline(f *testing.F) {
	f.Add(fuzzSeed([]float32{0, 0, 0, 1, 0, 0, 0, 1, 0}, []uint16{0, 1, 2}))
	f.Add(fuzzSeed([]float32{0, 0, 0, 1, 0, 0, 0, 1, 0}, []uint16{0, 1, 5}))                                      // out of range
	f.Add(fuzzSeed([]float32{0, 0, 0, 0, 0, 0, 0, 0, 0}, []uint16{0, 1, 2, 0, 0, 0}))                             // degenerate
	f.Add(fuzzSeed([]float32{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, -1, 0, 0, 0, 1}, []uint16{0, 1, 2, 1, 0, 3, 0, 1, 4})) // non-manifold
	f.Add(fuzzSeed([]float32{-3e38, 0, 0, 3e38, 0, 0, 0, 3e38, 1e-38}, []uint16{0, 1, 2}))                        // huge
	f.Add(fuzzSeed([]float32{0, 0, float32(math.Inf(1)), 1, 0, 0, 0, 1, 0}, []uint16{0, 1, 2}))                   // not finite
	f.Add(fuzzSeed([]float32{0, 0, 0, 1, 0, 0}, nil))                                                             // no faces
	f.Fuzz(func(t *testing.T, data []byte) {
		m := meshFromBytes(data)
		ctx := context.Background()
		a, err := BuildAtlas(ctx, m, AtlasOptions{Size: 64, Padding: 1, MaxChartAngle: 40, Threads: 2})
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("error does not wrap ErrInvalidInput: %v", err)
			}
			return
		}
		if a.Stats.OverlapTexels != 0 {
			t.Errorf("%d overlapping texels", a.Stats.OverlapTexels)
		}
		for _, x := range a.UV {
			if !(x >= 0 && x <= 1) {
				t.Fatalf("uv %v outside [0, 1]", x)
			}
		}
		s, err := NewScene(m, a, 2)
		if err != nil {
			t.Fatal(err)
		}
		uv, err := s.RasterizeUV(ctx, 64)
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range []BakeMode{BakeGather, BakeSplat} {
			b, err := s.NewBaker(uv, 3, mode)
			if err != nil {
				t.Fatal(err)
			}
			v, err := s.Render(ctx, Camera{0, 0, 1}, 32, FaceNormals)
			if err != nil {
				t.Fatal(err)
			}
			img := NewImage(32, 32, 3)
			for i := range img.Pix {
				img.Pix[i] = 0.5
			}
			if _, err := b.Add(ctx, v, img, 1); err != nil {
				t.Fatal(err)
			}
			tex, painted, err := b.Resolve()
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Fill(ctx, uv, tex, painted); err != nil {
				t.Fatal(err)
			}
			for _, x := range tex.Pix {
				if math.IsNaN(float64(x)) {
					t.Fatal("NaN texel after fill")
				}
			}
		}
	})
}
