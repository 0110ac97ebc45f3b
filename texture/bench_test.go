package texture

import (
	"context"
	"testing"
)

func benchmarkScene(b *testing.B, texSize int) (*Scene, *UVRaster) {
	b.Helper()
	m := torus(200, 100, 1, 0.4) // 40k faces
	a, err := BuildAtlas(context.Background(), m, DefaultAtlasOptions(texSize))
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewScene(m, a, 0)
	if err != nil {
		b.Fatal(err)
	}
	uv, err := s.RasterizeUV(context.Background(), texSize)
	if err != nil {
		b.Fatal(err)
	}
	return s, uv
}

func BenchmarkRender2048(b *testing.B) {
	s, _ := benchmarkScene(b, 1024)
	for b.Loop() {
		if _, err := s.Render(context.Background(), Camera{0, 0, 1}, 2048, FaceNormals); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBakeGather2048(b *testing.B) {
	s, uv := benchmarkScene(b, 2048)
	v, err := s.Render(context.Background(), Camera{0, 0, 1}, 2048, FaceNormals)
	if err != nil {
		b.Fatal(err)
	}
	img := NewImage(2048, 2048, 3)
	for b.Loop() {
		baker, err := s.NewBaker(uv, 3, BakeGather)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := baker.Add(context.Background(), v, img, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkViewWeights2048(b *testing.B) {
	s, _ := benchmarkScene(b, 256)
	v, err := s.Render(context.Background(), Camera{0, 0, 1}, 2048, FaceNormals)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.ViewWeights(v); err != nil {
			b.Fatal(err)
		}
	}
}
