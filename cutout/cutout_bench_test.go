package cutout

import (
	"context"
	"testing"

	"github.com/hy3d/hy3d/internal/synthpic"
)

// BenchmarkAlpha1024 cuts out a 1024² photo of a shaded object (a box at
// 0.55 of the side) on each kind of backdrop; the target is under 100 ms.
func BenchmarkAlpha1024(b *testing.B) {
	for _, kind := range synthpic.Backdrops {
		b.Run(kind, func(b *testing.B) {
			sc := synthpic.Suite(kind, 1024, 1024)[22]
			img, _, err := sc.Render()
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := Alpha(context.Background(), img); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
