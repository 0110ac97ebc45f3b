package paint

import (
	"context"
	"testing"
)

// BenchmarkPaint paints a 2,208-face sphere into a 512² texture with each
// random tiny set at its default steps: the host-side cost of the stages
// around the (tiny) models.
func BenchmarkPaint(b *testing.B) {
	for _, name := range []string{"tiny-paint-2.0", "tiny-paint-2.0-turbo", "tiny-paint-2.1"} {
		b.Run(name, func(b *testing.B) {
			p := newPainter(b, name)
			m, pic := sphere(24, 48), quadrants(256)
			b.ResetTimer()
			for range b.N {
				if _, err := p.Paint(context.Background(), m, pic, Options{TextureSize: 512, Seed: 1}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
