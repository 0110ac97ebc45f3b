package cutout

import (
	"context"
	"errors"
	"image"
	"image/color"
	"image/draw"
	"math/rand/v2"
	"testing"

	"github.com/hy3d/hy3d/internal/synthpic"
)

// The graph cut reaches the targets on a sample of bench/cutout's
// scenes (every sixth, at 192²): mean IoU ≥ 0.95 on solid and gradient
// backdrops, ≥ 0.85 on noisy and textured ones. bench/cutout measures the
// whole suite at 512².
func TestAlphaMeetsIoUTargets(t *testing.T) {
	for _, c := range []struct {
		backdrop string
		want     float64
	}{
		{synthpic.Solid, 0.95},
		{synthpic.Gradient, 0.95},
		{synthpic.Noisy, 0.85},
		{synthpic.Textured, 0.85},
	} {
		t.Run(c.backdrop, func(t *testing.T) {
			t.Parallel()
			sum, n := 0.0, 0
			for i, sc := range synthpic.Suite(c.backdrop, 192, 192) {
				if i%6 != 0 {
					continue
				}
				img, mask, err := sc.Render()
				if err != nil {
					t.Fatal(err)
				}
				a, err := Alpha(context.Background(), img)
				if err != nil {
					t.Fatal(err)
				}
				iou := synthpic.IoU(a, mask)
				t.Logf("%s: IoU %.3f", sc.Name(), iou)
				sum += iou
				n++
			}
			if mean := sum / float64(n); mean < c.want {
				t.Errorf("mean IoU %.3f over %d pictures, want ≥ %.2f", mean, n, c.want)
			}
		})
	}
}

// A picture larger than the working size is cut at a quarter of its size and
// refined at full size: the outline of a disc lands within a pixel or so.
func TestAlphaRefinesAtFullResolution(t *testing.T) {
	sc := synthpic.Scene{W: 900, H: 700, Backdrop: synthpic.Gradient, Base: [3]float64{150, 150, 152},
		Shape: "disc", Size: 0.5, Colour: [3]float64{190, 40, 35}}
	img, mask, err := sc.Render()
	if err != nil {
		t.Fatal(err)
	}
	a, err := Alpha(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	wrong := 0
	for i, m := range mask {
		if (a.Pix[i] >= 128) != m {
			wrong++
		}
	}
	// The disc's outline is about π·350 ≈ 1100 pixels long.
	if wrong > 1500 {
		t.Errorf("%d pixels wrong, want at most about one per outline pixel", wrong)
	}
}

func TestAlphaOnPicturesWithoutObject(t *testing.T) {
	plain := func(w, h int) *image.NRGBA {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		draw.Draw(img, img.Rect, image.NewUniform(color.NRGBA{120, 130, 140, 255}), image.Point{}, draw.Src)
		return img
	}
	for _, c := range []struct {
		name string
		img  *image.NRGBA
	}{
		{"1×1", plain(1, 1)},
		{"2×5", plain(2, 5)},
		{"3×3", plain(3, 3)},
		{"plain 64×48", plain(64, 48)},
		{"empty", image.NewNRGBA(image.Rect(0, 0, 0, 0))},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := Alpha(context.Background(), c.img)
			if err != nil {
				t.Fatal(err)
			}
			if a.Rect.Size() != c.img.Rect.Size() {
				t.Fatalf("matte %v for a %v picture", a.Rect.Size(), c.img.Rect.Size())
			}
			for i, v := range a.Pix {
				if v != 0 {
					t.Fatalf("alpha %d at %d on a plain picture", v, i)
				}
			}
		})
	}
}

// A picture whose origin is not (0, 0) is read from its own rectangle.
func TestAlphaOnSubImage(t *testing.T) {
	big := image.NewNRGBA(image.Rect(0, 0, 100, 100))
	draw.Draw(big, big.Rect, image.NewUniform(color.NRGBA{230, 230, 230, 255}), image.Point{}, draw.Src)
	draw.Draw(big, image.Rect(40, 40, 70, 60), image.NewUniform(color.NRGBA{20, 30, 150, 255}), image.Point{}, draw.Src)
	sub := big.SubImage(image.Rect(20, 20, 90, 80)).(*image.NRGBA)
	a, err := Alpha(context.Background(), sub)
	if err != nil {
		t.Fatal(err)
	}
	for y := range 60 {
		for x := range 70 {
			want := x >= 20 && x < 50 && y >= 20 && y < 40
			if got := a.Pix[y*a.Stride+x] == 255; got != want {
				t.Fatalf("alpha at (%d,%d) of the sub-picture: object %v, want %v", x, y, got, want)
			}
		}
	}
}

func TestAlphaStopsWhenCancelled(t *testing.T) {
	sc := synthpic.Suite(synthpic.Noisy, 300, 300)[5]
	img, _, err := sc.Render()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Alpha(ctx, img); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}

// The Boykov–Kolmogorov flow equals the Edmonds–Karp flow on random graphs,
// and its source side is a cut of that capacity.
func TestMaxflowMatchesEdmondsKarp(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		n := 2 + rng.IntN(30)
		trcap := make([]float32, n)
		for i := range trcap {
			trcap[i] = float32(rng.IntN(21) - 10)
		}
		var edges []flowEdge
		for range rng.IntN(4 * n) {
			u, v := rng.IntN(n), rng.IntN(n)
			if u == v {
				continue
			}
			edges = append(edges, flowEdge{int32(u), int32(v), float32(rng.IntN(8)), float32(rng.IntN(8))})
		}
		want := edmondsKarp(trcap, edges)
		g := newFlowGraph(append([]float32(nil), trcap...), edges)
		got := g.maxflow()
		if got != want {
			t.Fatalf("trial %d: flow %v, want %v", trial, got, want)
		}
		cut := 0.0
		for i, c := range trcap {
			switch {
			case g.sourceSide(i) && c < 0:
				cut -= float64(c)
			case !g.sourceSide(i) && c > 0:
				cut += float64(c)
			}
		}
		for _, e := range edges {
			if g.sourceSide(int(e.u)) && !g.sourceSide(int(e.v)) {
				cut += float64(e.cuv)
			}
			if g.sourceSide(int(e.v)) && !g.sourceSide(int(e.u)) {
				cut += float64(e.cvu)
			}
		}
		if cut != want {
			t.Fatalf("trial %d: cut %v, flow %v", trial, cut, want)
		}
		// The same graph after reset gives the same flow again.
		g.reset(trcap)
		if again := g.maxflow(); again != want {
			t.Fatalf("trial %d: flow after reset %v, want %v", trial, again, want)
		}
	}
}

// edmondsKarp is the textbook max-flow on an adjacency matrix with the
// source at n and the sink at n+1.
func edmondsKarp(trcap []float32, edges []flowEdge) float64 {
	n := len(trcap) + 2
	s, t := n-2, n-1
	c := make([][]float64, n)
	for i := range c {
		c[i] = make([]float64, n)
	}
	for i, v := range trcap {
		if v > 0 {
			c[s][i] += float64(v)
		} else {
			c[i][t] -= float64(v)
		}
	}
	for _, e := range edges {
		c[e.u][e.v] += float64(e.cuv)
		c[e.v][e.u] += float64(e.cvu)
	}
	flow := 0.0
	for {
		prev := make([]int, n)
		for i := range prev {
			prev[i] = -1
		}
		prev[s] = s
		queue := []int{s}
		for len(queue) > 0 && prev[t] < 0 {
			u := queue[0]
			queue = queue[1:]
			for v := range n {
				if prev[v] < 0 && c[u][v] > 0 {
					prev[v] = u
					queue = append(queue, v)
				}
			}
		}
		if prev[t] < 0 {
			return flow
		}
		b := 1e18
		for v := t; v != s; v = prev[v] {
			b = min(b, c[prev[v]][v])
		}
		for v := t; v != s; v = prev[v] {
			c[prev[v]][v] -= b
			c[v][prev[v]] += b
		}
		flow += b
	}
}

// FuzzAlpha cuts out arbitrary small pictures: it must not panic, and the
// matte has the picture's size and only the values 0 and 255.
func FuzzAlpha(f *testing.F) {
	f.Add(uint8(9), uint8(7), []byte{0, 0, 0, 255, 255, 255, 10, 200, 30})
	f.Add(uint8(3), uint8(3), []byte{1})
	f.Add(uint8(40), uint8(1), []byte{})
	f.Add(uint8(33), uint8(20), []byte{200, 10, 10, 200, 12, 10, 0, 0, 250})
	f.Fuzz(func(t *testing.T, w, h uint8, pix []byte) {
		img := image.NewNRGBA(image.Rect(0, 0, int(w%64), int(h%64)))
		for i := range img.Pix {
			if len(pix) > 0 {
				img.Pix[i] = pix[i%len(pix)] ^ uint8(i*7/len(pix)+i/251)
			}
		}
		a, err := Alpha(context.Background(), img)
		if err != nil {
			t.Fatal(err)
		}
		if a.Rect.Size() != img.Rect.Size() {
			t.Fatalf("matte %v for a %v picture", a.Rect.Size(), img.Rect.Size())
		}
		for _, v := range a.Pix {
			if v != 0 && v != 255 {
				t.Fatalf("alpha %d", v)
			}
		}
	})
}
