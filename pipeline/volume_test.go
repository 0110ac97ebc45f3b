package pipeline

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/hy3d/hy3d/engines"
)

func TestGridCoordsMatchNumpyLinspace(t *testing.T) {
	// np.linspace(-1.01, 1.01, 385, dtype=np.float32) at these indices.
	want := map[int]string{0: "-0x1.028f5cp+0", 1: "-0x1.01369ep+0", 100: "-0x1.ef92c6p-2", 192: "0",
		383: "0x1.01369ep+0", 384: "0x1.028f5cp+0"}
	c := gridCoords(384, 1.01)
	if len(c) != 385 {
		t.Fatalf("%d coordinates, want 385", len(c))
	}
	for i, w := range want {
		if c[i] != hexf(t, w) {
			t.Errorf("x[%d] = %v, want %s", i, c[i], w)
		}
	}
	if got := gridCoords(2, 1.01); !slices.Equal(got, []float32{-1.01, 0, 1.01}) {
		t.Errorf("R=2: %v", got)
	}
}

func TestGridPointsOfALevelCoincideWithTheNextLevel(t *testing.T) {
	for _, r := range []int{8, 48, 64, 96, 128, 192} {
		c, f := gridCoords(r, 1.01), gridCoords(2*r, 1.01)
		for i := range c {
			if f[2*i] != c[i] {
				t.Fatalf("R=%d: fine point %d = %v, coarse point %d = %v", r, 2*i, f[2*i], i, c[i])
			}
		}
	}
}

func TestDecodeLevelsHalveLikeHierarchicalVolumeDecoding(t *testing.T) {
	tests := []struct {
		r, coarse int
		want      []int
	}{
		{384, 63, []int{96, 192, 384}},
		{256, 63, []int{64, 128, 256}},
		{128, 63, []int{64, 128}},
		{64, 63, []int{64}},
		{100, 63, []int{100}},
		{32, 8, []int{8, 16, 32}},
		{40, 8, []int{10, 20, 40}}, // stops at the odd 10
		{32, 0, []int{32}},
	}
	for _, tt := range tests {
		if got := decodeLevels(tt.r, tt.coarse); !slices.Equal(got, tt.want) {
			t.Errorf("decodeLevels(%d, %d) = %v, want %v", tt.r, tt.coarse, got, tt.want)
		}
	}
}

func TestToBoxMapsGridIndicesWithRNotRPlusOne(t *testing.T) {
	v := []float32{0, 16, 32, 8, 24, 4}
	toBox(v, 32, 1.01)
	want := []float32{-1.01, 0, 1.01, -0.505, 0.505, float32(4*(2.02/32) - 1.01)}
	for i := range v {
		if math.Abs(float64(v[i]-want[i])) > 1e-6 {
			t.Errorf("v[%d] = %v, want %v", i, v[i], want[i])
		}
	}
}

func TestActiveBlocksAreTheBlocksWithMixedSigns(t *testing.T) {
	const r, bs = 16, 8
	n := r + 1
	grid := make([]float32, n*n*n)
	for i := range grid {
		grid[i] = -1
	}
	// One inside point on the boundary between blocks 0 and 1 along x.
	grid[(8*n+3)*n+3] = 1
	got := activeBlocks(grid, r, bs, 2)
	want := [][3]int32{{0, 0, 0}, {1, 0, 0}}
	if !slices.Equal(got, want) {
		t.Fatalf("blocks %v, want %v", got, want)
	}
	for i := range grid {
		grid[i] = 2
	}
	if got := activeBlocks(grid, r, bs, 1); len(got) != 0 {
		t.Fatalf("uniform grid has blocks %v", got)
	}
}

func newFakeDecoder(t *testing.T, f fakeSet) (*decoder, map[string]*fakeEngine) {
	t.Helper()
	fakes := f.fakes()
	g := &graphs{conditioner: fakes[engines.Conditioner], dit: fakes[engines.DiT],
		vaeLatents: fakes[engines.VAELatents], vaeGeometry: fakes[engines.VAEGeometry]}
	d, err := newDecoder(g, f.manifest(), 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	return d, fakes
}

func fakeLatents(f fakeSet, k int) []float32 {
	x := make([]float32, f.L*f.C)
	Noise(x, uint64(k))
	return x
}

func TestVAELatentsGetLatentsTimesInverseScaleFactor(t *testing.T) {
	f := newFakeSet()
	d, fakes := newFakeDecoder(t, f)
	x := fakeLatents(f, 1)
	if _, err := d.features(context.Background(), [][]float32{x}); err != nil {
		t.Fatal(err)
	}
	got := fakes[engines.VAELatents].seen[0]["latents"].Data
	inv := float32(1 / 1.25)
	for i := range x {
		if got[i] != x[i]*inv {
			t.Fatalf("latent %d: %v, want %v·%v", i, got[i], x[i], inv)
		}
	}
}

func TestDenseDecodeEvaluatesEveryGridPoint(t *testing.T) {
	f := newFakeSet() // chunks of 500 points, geometry batch 3
	d, fakes := newFakeDecoder(t, f)
	x := fakeLatents(f, 1)
	vols, err := d.decode(context.Background(), [][]float32{x}, []DecodeParams{{Resolution: 8, Mode: DecodeDense}})
	if err != nil {
		t.Fatal(err)
	}
	v := vols[0]
	geo := fakes[engines.VAEGeometry]
	if v.Points != 729 || len(v.Values) != 729 || v.Blocks != nil || !slices.Equal(v.Levels, []int{8}) {
		t.Fatalf("points %d, values %d, blocks %v, levels %v", v.Points, len(v.Values), v.Blocks, v.Levels)
	}
	if !slices.Equal(geo.batch, []int{2}) {
		t.Fatalf("geometry batches %v, want one call of two chunks", geo.batch)
	}
	feats, _ := d.features(context.Background(), [][]float32{x})
	c := gridCoords(8, 1.01)
	for i := 0; i < 9; i++ {
		for j := 0; j < 9; j++ {
			for k := 0; k < 9; k++ {
				want := geo.row(map[string][]float32{"queries": {c[i], c[j], c[k]}, "features": feats[0]})[0]
				if got := v.Values[(i*9+j)*9+k]; got != want {
					t.Fatalf("logit at (%d,%d,%d) = %v, want %v", i, j, k, got, want)
				}
			}
		}
	}
}

// crossing reports whether the cell with corner (i,j,k) has corners on both
// sides of level 0 — the cells marching cubes turns into triangles.
func crossing(g []float32, n, i, j, k int) bool {
	in := 0
	for c := 0; c < 8; c++ {
		if g[((i+c>>2&1)*n+j+c>>1&1)*n+k+c&1] > 0 {
			in++
		}
	}
	return in > 0 && in < 8
}

func TestCoarseToFineMatchesDenseAtEverySurfaceCell(t *testing.T) {
	f := newFakeSet() // coarse resolution 8
	d, _ := newFakeDecoder(t, f)
	x := fakeLatents(f, 3)
	const r = 32
	vols, err := d.decode(context.Background(), [][]float32{x, x},
		[]DecodeParams{{Resolution: r, Mode: DecodeDense}, {Resolution: r, Mode: DecodeCoarseToFine}})
	if err != nil {
		t.Fatal(err)
	}
	dense, c2f := vols[0], vols[1]
	if !slices.Equal(c2f.Levels, []int{8, 16, 32}) {
		t.Fatalf("levels %v", c2f.Levels)
	}
	n := r + 1
	for p := range dense.Values {
		if (dense.Values[p] > 0) != (c2f.Values[p] > 0) {
			t.Fatalf("point %d: dense %v and coarse-to-fine %v disagree on the side", p, dense.Values[p], c2f.Values[p])
		}
		if c2f.Evaluated(p) && dense.Values[p] != c2f.Values[p] {
			t.Fatalf("point %d: dense %v, coarse-to-fine %v", p, dense.Values[p], c2f.Values[p])
		}
	}
	inBlock := map[[3]int32]bool{}
	for _, b := range c2f.Blocks {
		inBlock[b] = true
	}
	cells := 0
	for i := 0; i < r; i++ {
		for j := 0; j < r; j++ {
			for k := 0; k < r; k++ {
				if !crossing(dense.Values, n, i, j, k) {
					continue
				}
				cells++
				for c := 0; c < 8; c++ {
					if p := ((i+c>>2&1)*n+j+c>>1&1)*n + k + c&1; !c2f.Evaluated(p) {
						t.Fatalf("surface cell (%d,%d,%d) has an unevaluated corner", i, j, k)
					}
				}
				bs := int32(c2f.BlockSize)
				if !inBlock[[3]int32{int32(i) / bs, int32(j) / bs, int32(k) / bs}] {
					t.Fatalf("surface cell (%d,%d,%d) outside the active blocks", i, j, k)
				}
			}
		}
	}
	if cells == 0 {
		t.Fatal("the fake field has no surface")
	}
	t.Logf("R=%d: coarse-to-fine evaluated %d of %d points (%.1f%%), %d active blocks of %d cells",
		r, c2f.Points, dense.Points, 100*float64(c2f.Points)/float64(dense.Points), len(c2f.Blocks), c2f.BlockSize)
	if c2f.Points >= dense.Points {
		t.Errorf("coarse-to-fine evaluated %d points, dense %d", c2f.Points, dense.Points)
	}
}

func TestDecodeBatchMatchesSingleJobs(t *testing.T) {
	f := newFakeSet()
	params := []DecodeParams{
		{Resolution: 16, Mode: DecodeCoarseToFine},
		{Resolution: 12, Mode: DecodeDense},
		{Resolution: 32, Mode: DecodeCoarseToFine},
		{Resolution: 20, Mode: DecodeCoarseToFine, CoarseResolution: 5},
	}
	var lat [][]float32
	for k := range params {
		lat = append(lat, fakeLatents(f, k))
	}
	d, _ := newFakeDecoder(t, f)
	batch, err := d.decode(context.Background(), lat, params)
	if err != nil {
		t.Fatal(err)
	}
	for k := range params {
		d, _ := newFakeDecoder(t, f)
		one, err := d.decode(context.Background(), lat[k:k+1], params[k:k+1])
		if err != nil {
			t.Fatal(err)
		}
		b, o := batch[k], one[0]
		if !slices.Equal(b.Values, o.Values) || b.Points != o.Points || !slices.Equal(b.Blocks, o.Blocks) {
			t.Errorf("job %d: batched volume differs from the single run", k)
		}
	}
}
