package pipeline

import (
	"context"
	"fmt"
	"sync"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

// DecodeMode chooses how the occupancy grid is evaluated.
type DecodeMode int

// Decode modes. Coarse-to-fine is the zero value: it is the default.
const (
	// DecodeCoarseToFine evaluates a coarse grid and refines only near the
	// surface (Hunyuan3D's HierarchicalVolumeDecoding / FlashVDM).
	DecodeCoarseToFine DecodeMode = iota
	// DecodeDense evaluates all (R+1)³ points in chunks, in order
	// (Hunyuan3D's VanillaVolumeDecoder).
	DecodeDense
)

func (m DecodeMode) String() string {
	switch m {
	case DecodeDense:
		return "dense"
	case DecodeCoarseToFine:
		return "c2f"
	default:
		return fmt.Sprintf("DecodeMode(%d)", int(m))
	}
}

// ParseDecodeMode reads "dense" or "c2f" (also "coarse-to-fine").
func ParseDecodeMode(s string) (DecodeMode, error) {
	switch s {
	case "dense":
		return DecodeDense, nil
	case "c2f", "coarse-to-fine":
		return DecodeCoarseToFine, nil
	default:
		return 0, fmt.Errorf("decode mode %q: want dense or c2f", s)
	}
}

// Volume is a decoded occupancy grid: (R+1)³ logits over [−B, B]³, positive
// inside, stored x-major: Values[(i·(R+1)+j)·(R+1)+k] is the point
// (x_i, y_j, z_k), the "ij" meshgrid order of Hunyuan3D's
// generate_dense_grid_points.
type Volume struct {
	Resolution int
	Bounds     float64
	Values     []float32
	// BlockSize and Blocks list the blocks of BlockSize³ cells that contain
	// the surface (block b covers cells [b·BlockSize, (b+1)·BlockSize) per
	// axis). Blocks is nil when every cell must be visited (dense decoding).
	BlockSize int
	Blocks    [][3]int32
	// Points is how many points the geometry engine evaluated (padding
	// excluded); dense decoding evaluates (R+1)³.
	Points int
	// Levels are the resolutions decoded, coarsest first.
	Levels []int

	evaluated bitset // nil: every point holds a decoded logit
}

// Evaluated reports whether point i holds a logit the geometry engine
// computed at the final resolution. In coarse-to-fine volumes the other
// points hold the logit of the nearest point of a coarser level (see
// refine), which is far from the surface and has the right sign.
func (v *Volume) Evaluated(i int) bool { return v.evaluated == nil || v.evaluated.has(i) }

// gridCoords are the R+1 sample coordinates along one axis, as
// np.linspace(−B, B, R+1, dtype=float32) computes them: i·(2B/R) − B in
// float64, the last pinned to B, rounded to float32. Because 2B/(2R) is
// exactly half of 2B/R, point 2i of a level coincides bit for bit with
// point i of the level below, which lets refinement reuse coarse logits.
func gridCoords(r int, bounds float64) []float32 {
	c := make([]float32, r+1)
	step := 2 * bounds / float64(r)
	for i := 0; i < r; i++ {
		c[i] = float32(float64(i)*step - bounds)
	}
	c[r] = float32(bounds)
	return c
}

// decodeLevels are the resolutions coarse-to-fine decoding visits for a
// final resolution r. Like HierarchicalVolumeDecoding (volume_decoders.py)
// it halves r while the half is at least the coarse resolution
// (min_resolution 63 there, so 384 → 96, 192, 384 and 256 → 64, 128, 256);
// unlike it, it stops at an odd resolution, where Hunyuan3D floors and the
// fine points no longer sit on the coarse ones.
func decodeLevels(r, coarse int) []int {
	ls := []int{r}
	for coarse > 0 && r%2 == 0 && r/2 >= coarse {
		r /= 2
		ls = append(ls, r)
	}
	for i, j := 0, len(ls)-1; i < j; i, j = i+1, j-1 {
		ls[i], ls[j] = ls[j], ls[i]
	}
	return ls
}

// DecodeParams are the per-job decoding parameters.
type DecodeParams struct {
	Resolution int
	Mode       DecodeMode
	// CoarseResolution overrides the manifest's volume.coarse_resolution
	// when positive.
	CoarseResolution int
}

// decoder runs the VAE's two graphs: vae_latents once per job, then
// vae_geometry over query points.
type decoder struct {
	latents, geometry Engine
	latMax, geoMax    int
	l, c, w           int
	invScale          float32
	spec              engines.VolumeSpec
	blockSize         int
	threads           int
}

func newDecoder(g *graphs, m *engines.Manifest, blockSize, threads int) (*decoder, error) {
	d := &decoder{
		latents: g.vaeLatents, geometry: g.vaeGeometry,
		latMax: maxBatch(g.vaeLatents, m.Graphs[engines.VAELatents]),
		geoMax: maxBatch(g.vaeGeometry, m.Graphs[engines.VAEGeometry]),
		l:      m.Tokens.LatentTokens, c: m.Tokens.LatentChannels, w: m.Tokens.FeatureWidth,
		// Hunyuan3D's _export multiplies by 1/scale_factor (pipelines.py),
		// so do we, rather than divide.
		invScale:  float32(1 / m.ScaleFactor),
		spec:      m.Volume,
		blockSize: blockSize,
		threads:   threads,
	}
	if d.spec.Bounds <= 0 {
		return nil, fmt.Errorf("volume.bounds %v must be positive", d.spec.Bounds)
	}
	if d.spec.ChunkPoints < 1 {
		return nil, fmt.Errorf("volume.chunk_points %d < 1", d.spec.ChunkPoints)
	}
	if d.w < 1 {
		return nil, fmt.Errorf("tokens.feature_width %d < 1", d.w)
	}
	return d, nil
}

// features runs vae_latents over every job's latents ÷ scale_factor.
func (d *decoder) features(ctx context.Context, latents [][]float32) ([][]float32, error) {
	lc, lw := d.l*d.c, d.l*d.w
	out := make([][]float32, len(latents))
	for lo := 0; lo < len(latents); lo += d.latMax {
		hi := min(lo+d.latMax, len(latents))
		n := hi - lo
		in := make([]float32, n*lc)
		for i, x := range latents[lo:hi] {
			if len(x) != lc {
				return nil, fmt.Errorf("latents have %d values, want %d: %w", len(x), lc, tensor.ErrShape)
			}
			row := in[i*lc : (i+1)*lc]
			for j, v := range x {
				row[j] = v * d.invScale
			}
		}
		f, err := run(ctx, d.latents, engines.VAELatents, "features", n*lw, tensor.Tensor{
			Name: "latents", Shape: []int64{int64(n), int64(d.l), int64(d.c)}, Data: in,
		})
		if err != nil {
			return nil, err
		}
		for i := 0; i < n; i++ {
			out[lo+i] = f[i*lw : (i+1)*lw : (i+1)*lw]
		}
	}
	return out, nil
}

// querySet is one job's points of one level: the level's grid, its axis
// coordinates and the linear indices to evaluate (nil: all of them).
type querySet struct {
	features []float32
	coords   []float32
	idx      []uint32
	dst      []float32
}

func (q *querySet) size() int {
	if q.idx != nil {
		return len(q.idx)
	}
	return len(q.dst)
}

func (q *querySet) point(p int, xyz []float32) int {
	lin := p
	if q.idx != nil {
		lin = int(q.idx[p])
	}
	n := len(q.coords)
	xyz[0] = q.coords[lin/(n*n)]
	xyz[1] = q.coords[lin/n%n]
	xyz[2] = q.coords[lin%n]
	return lin
}

// evaluate runs vae_geometry over every point of sets and writes the logits
// into each set's grid. Points go in chunks of volume.chunk_points in index
// order; chunks of any sets share a call up to the engine's batch, each row
// with its own job's features. A call's rows are as long as its longest
// chunk; shorter rows are padded by repeating their last point and the
// padding is dropped.
func (d *decoder) evaluate(ctx context.Context, sets []*querySet) error {
	type chunk struct {
		set    *querySet
		lo, hi int
	}
	var chunks []chunk
	for _, s := range sets {
		n := s.size()
		for lo := 0; lo < n; lo += d.spec.ChunkPoints {
			chunks = append(chunks, chunk{s, lo, min(lo+d.spec.ChunkPoints, n)})
		}
	}
	lw := d.l * d.w
	var queries, feats []float32
	lin := make([]int, d.spec.ChunkPoints)
	for lo := 0; lo < len(chunks); lo += d.geoMax {
		if err := ctx.Err(); err != nil {
			return err
		}
		call := chunks[lo:min(lo+d.geoMax, len(chunks))]
		rows, q := len(call), 0
		for _, c := range call {
			q = max(q, c.hi-c.lo)
		}
		queries = grow(queries, rows*q*3)
		feats = grow(feats, rows*lw)
		for r, c := range call {
			copy(feats[r*lw:], c.set.features)
			row := queries[r*q*3 : (r+1)*q*3]
			for p := c.lo; p < c.hi; p++ {
				c.set.point(p, row[(p-c.lo)*3:])
			}
			for p := c.hi - c.lo; p < q; p++ {
				copy(row[p*3:p*3+3], row[(c.hi-c.lo-1)*3:])
			}
		}
		logits, err := run(ctx, d.geometry, engines.VAEGeometry, "logits", rows*q,
			tensor.Tensor{Name: "queries", Shape: []int64{int64(rows), int64(q), 3}, Data: queries},
			tensor.Tensor{Name: "features", Shape: []int64{int64(rows), int64(d.l), int64(d.w)}, Data: feats},
		)
		if err != nil {
			return err
		}
		var xyz [3]float32
		for r, c := range call {
			for p := c.lo; p < c.hi; p++ {
				lin[p-c.lo] = c.set.point(p, xyz[:])
			}
			for p := c.lo; p < c.hi; p++ {
				c.set.dst[lin[p-c.lo]] = logits[r*q+p-c.lo]
			}
		}
	}
	return nil
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// decode turns each job's final latents into a volume. Jobs advance level by
// level together so that their points share geometry calls.
func (d *decoder) decode(ctx context.Context, latents [][]float32, params []DecodeParams) ([]*Volume, error) {
	if len(params) != len(latents) {
		return nil, fmt.Errorf("decode: %d jobs, %d parameter sets", len(latents), len(params))
	}
	feats, err := d.features(ctx, latents)
	if err != nil {
		return nil, err
	}
	type job struct {
		vol    *Volume
		levels []int
		grid   []float32 // current level's logits
		eval   bitset    // current level's evaluated points; nil = all
	}
	jobs := make([]*job, len(latents))
	rounds := 0
	for i, p := range params {
		if p.Resolution < 2 {
			return nil, fmt.Errorf("resolution %d < 2", p.Resolution)
		}
		levels := []int{p.Resolution}
		if p.Mode == DecodeCoarseToFine {
			coarse := d.spec.CoarseResolution
			if p.CoarseResolution > 0 {
				coarse = p.CoarseResolution
			}
			levels = decodeLevels(p.Resolution, coarse)
		}
		jobs[i] = &job{
			vol:    &Volume{Resolution: p.Resolution, Bounds: d.spec.Bounds, Levels: levels},
			levels: levels,
		}
		rounds = max(rounds, len(levels))
	}
	for round := 0; round < rounds; round++ {
		var sets []*querySet
		for i, j := range jobs {
			if round >= len(j.levels) {
				continue
			}
			r := j.levels[round]
			n := r + 1
			s := &querySet{features: feats[i], coords: gridCoords(r, d.spec.Bounds)}
			if round == 0 {
				s.dst = make([]float32, n*n*n)
				j.eval = nil
			} else {
				s.dst, j.eval, s.idx = d.refine(j.grid, j.eval, j.levels[round-1], round == len(j.levels)-1)
			}
			j.grid = s.dst
			sets = append(sets, s)
		}
		if err := d.evaluate(ctx, sets); err != nil {
			return nil, err
		}
		k := 0
		for _, j := range jobs {
			if round < len(j.levels) {
				j.vol.Points += sets[k].size()
				k++
			}
		}
	}
	vols := make([]*Volume, len(jobs))
	for i, j := range jobs {
		j.vol.Values = j.grid
		j.vol.evaluated = j.eval
		if len(j.levels) > 1 {
			j.vol.BlockSize = d.blockSize
			j.vol.Blocks = activeBlocks(j.grid, j.vol.Resolution, d.blockSize, d.threads)
		}
		vols[i] = j.vol
	}
	return vols, nil
}

// refine builds the next level (resolution 2r) from the current one, as
// HierarchicalVolumeDecoding does (volume_decoders.py, shared by FlashVDM):
// a point of the current level is flagged when it was evaluated and its
// |logit| is below volume.refine_band (0.95) or one of its six neighbours
// (replicated at the border, unevaluated ones ignored) has another sign
// (torch.sign: −1, 0, +1), as in extract_near_surface_volume_fn. Below the
// final level the flags are dilated by one point and each lands on its
// fine point 2i, dilated by one more; at the final level the flags are not
// dilated but their fine points are dilated twice. Both come to a box
// around 2i, of radius 3 fine points below the final level and 2 at it.
//
// Hunyuan3D evaluates every marked fine point and sets the others to NaN.
// We reuse the coarse logit where a marked fine point coincides with an
// evaluated coarse one (same coordinates, see gridCoords), and give every
// unmarked point the logit of its nearest coarse point (index ⌊f/2⌋ per
// axis) instead of NaN: unmarked points lie at least a coarse cell from
// any flagged point, so that logit has their sign, and marching cubes then
// sees no false crossing where the refined band meets the unrefined volume
// (with NaN read as outside, the inner edge of the band would become a
// second surface). It returns the fine grid, its evaluated points and the
// indices still to evaluate.
func (d *decoder) refine(grid []float32, eval bitset, r int, final bool) ([]float32, bitset, []uint32) {
	n := r + 1
	m := 2*r + 1
	radius := 3
	if final {
		radius = 2
	}
	band := float32(d.spec.RefineBand)
	has := func(i int) bool { return eval == nil || eval.has(i) }
	sign := func(v float32) int {
		switch {
		case v > 0:
			return 1
		case v < 0:
			return -1
		}
		return 0
	}
	marked := newBitset(m * m * m)
	strides := [3]int{n * n, n, 1}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			for k := 0; k < n; k++ {
				p := (i*n+j)*n + k
				if !has(p) {
					continue
				}
				v := grid[p]
				flag := v > -band && v < band
				if !flag {
					s := sign(v)
					ijk := [3]int{i, j, k}
					for a := 0; a < 3 && !flag; a++ {
						for _, dlt := range [2]int{-1, 1} {
							c := ijk[a] + dlt
							if c < 0 || c >= n {
								continue
							}
							q := p + dlt*strides[a]
							if has(q) && sign(grid[q]) != s {
								flag = true
								break
							}
						}
					}
				}
				if !flag {
					continue
				}
				x0, x1 := max(2*i-radius, 0), min(2*i+radius, m-1)
				y0, y1 := max(2*j-radius, 0), min(2*j+radius, m-1)
				z0, z1 := max(2*k-radius, 0), min(2*k+radius, m-1)
				for x := x0; x <= x1; x++ {
					for y := y0; y <= y1; y++ {
						row := (x*m + y) * m
						marked.setRange(row+z0, row+z1+1)
					}
				}
			}
		}
	}
	fine := make([]float32, m*m*m)
	parallel(m, d.threads, func(x0, x1 int) {
		for x := x0; x < x1; x++ {
			for y := 0; y < m; y++ {
				src := grid[((x/2)*n+y/2)*n:]
				dst := fine[(x*m+y)*m : (x*m+y+1)*m]
				for z := range dst {
					dst[z] = src[z/2]
				}
			}
		}
	})
	var idx []uint32
	marked.each(func(f int) {
		x, y, z := f/(m*m), f/m%m, f%m
		if x%2 == 0 && y%2 == 0 && z%2 == 0 && has(((x/2)*n+y/2)*n+z/2) {
			return // coincides with an evaluated coarse point: already filled
		}
		idx = append(idx, uint32(f))
	})
	if idx == nil {
		idx = []uint32{}
	}
	return fine, marked, idx
}

// activeBlocks lists the blocks whose points are not all on one side of
// level 0 (inside is > 0), i.e. the blocks holding every cell that marching
// cubes would turn into triangles.
func activeBlocks(grid []float32, r, bs, threads int) [][3]int32 {
	n := r + 1
	nb := (r + bs - 1) / bs
	active := make([]bool, nb*nb*nb)
	parallel(nb, threads, func(b0, b1 int) {
		for bi := b0; bi < b1; bi++ {
			for bj := 0; bj < nb; bj++ {
				for bk := 0; bk < nb; bk++ {
					active[(bi*nb+bj)*nb+bk] = mixedSigns(grid, n, bi*bs, bj*bs, bk*bs, bs)
				}
			}
		}
	})
	var blocks [][3]int32
	for i, a := range active {
		if a {
			blocks = append(blocks, [3]int32{int32(i / (nb * nb)), int32(i / nb % nb), int32(i % nb)})
		}
	}
	return blocks
}

func mixedSigns(grid []float32, n, i0, j0, k0, bs int) bool {
	i1, j1, k1 := min(i0+bs, n-1), min(j0+bs, n-1), min(k0+bs, n-1)
	first := grid[(i0*n+j0)*n+k0] > 0
	for i := i0; i <= i1; i++ {
		for j := j0; j <= j1; j++ {
			row := grid[(i*n+j)*n+k0 : (i*n+j)*n+k1+1]
			for _, v := range row {
				if (v > 0) != first {
					return true
				}
			}
		}
	}
	return false
}

// parallel splits [0, n) into contiguous ranges over up to threads goroutines.
func parallel(n, threads int, f func(lo, hi int)) {
	if threads < 1 {
		threads = 1
	}
	threads = min(threads, n)
	if threads <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	per := (n + threads - 1) / threads
	for lo := 0; lo < n; lo += per {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			f(lo, hi)
		}(lo, min(lo+per, n))
	}
	wg.Wait()
}
