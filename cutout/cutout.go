// Package cutout separates the object of an opaque picture from its backdrop
// when there is neither an alpha channel nor a matting model: a GrabCut-style
// segmentation (C. Rother, V. Kolmogorov and A. Blake, "GrabCut: Interactive
// Foreground Extraction using Iterated Graph Cuts", SIGGRAPH 2004) seeded by
// the picture's border instead of a user's rectangle, with the minimum cut
// found by the Boykov–Kolmogorov max-flow algorithm (IEEE PAMI 2004). It owns
// the colour models, the backdrop model and the graph; the pipeline only
// asks it for a matte. A trained matting model (tools/add-matting) does
// better on real photos; this is the fallback that needs nothing.
package cutout

import (
	"context"
	"image"
	"math"
	"runtime"
	"slices"
	"sync"
)

// Tuning of the segmentation. The values are GrabCut's where it gives one
// (γ = 50, five Gaussians per model, 8-connected grid); the rest were set on
// the synthetic pictures of the package tests and bench/cutout.
const (
	// workSide bounds the longer side of the picture the iterations run on;
	// a larger picture is averaged down by an integer factor and only the
	// band around the object's outline is cut again at full resolution.
	workSide = 256
	// iterations of colour-model fitting and cutting (GrabCut converges in
	// a handful).
	iterations = 3
	// smoothness is GrabCut's γ: the weight of a label change between two
	// neighbours of equal colour.
	smoothness = 50
	// minVar floors each Gaussian's variance (RGB levels²): a flat backdrop
	// still tolerates JPEG noise of a few levels.
	minVar = 9
	// seedMargin is how much less likely than the frame's typical pixel
	// (nats above the frame's 95th percentile of negative log-likelihood)
	// a pixel must be under the backdrop model to seed the object model.
	seedMargin = 4
	// frameShare is the width of the frame that seeds the backdrop model,
	// in thousandths of the longer side.
	frameShare = 30
	// seedShare keeps the seed regions whose summed excess likelihood
	// ratio is at least this share of the strongest one's.
	seedShare = 0.2
	// keepShare drops foreground specks: components smaller than this share
	// of the largest one (they would stretch the recentering box).
	keepShare = 0.02
	// hardBackdrop is the terminal capacity that pins a frame pixel to the
	// backdrop.
	hardBackdrop = 1e6
)

// Alpha returns the matte of img (255 object, 0 backdrop; img's colours
// are read, its alpha ignored). A picture where nothing stands out from the
// backdrop, or one narrower than 3 pixels (no backdrop frame and interior
// to tell apart), gives an all-zero matte. The only error is ctx's.
func Alpha(ctx context.Context, img *image.NRGBA) (*image.Alpha, error) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	out := image.NewAlpha(image.Rect(0, 0, w, h))
	if w < 3 || h < 3 {
		return out, nil
	}
	f := (max(w, h) + workSide - 1) / workSide
	work := downsample(img, f)
	lw, lh := (w+f-1)/f, (h+f-1)/f
	labels, ok, err := segment(ctx, work, lw, lh)
	if err != nil || !ok {
		return out, err
	}
	if f > 1 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		refine(img, labels, lw, lh, f, out)
		return out, nil
	}
	for i, v := range labels {
		if v {
			out.Pix[i] = 255
		}
	}
	return out, nil
}

// picture is an RGB picture as float32 triples, row-major.
type picture [][3]float32

// rgb is the colour of pixel (x, y) of img.
func rgb(img *image.NRGBA, x, y int) [3]float32 {
	p := img.Pix[y*img.Stride+4*x:]
	return [3]float32{float32(p[0]), float32(p[1]), float32(p[2])}
}

// downsample averages f×f blocks (clipped at the right and bottom edges).
func downsample(img *image.NRGBA, f int) picture {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	lw, lh := (w+f-1)/f, (h+f-1)/f
	sum := make(picture, lw*lh)
	n := make([]float32, lw*lh)
	split(lh, func(lo, hi int) {
		for y := lo * f; y < min(hi*f, h); y++ {
			row := img.Pix[y*img.Stride : y*img.Stride+4*w]
			dst := sum[(y/f)*lw : (y/f+1)*lw]
			cnt := n[(y/f)*lw : (y/f+1)*lw]
			for x := range w {
				d := &dst[x/f]
				d[0] += float32(row[4*x])
				d[1] += float32(row[4*x+1])
				d[2] += float32(row[4*x+2])
				cnt[x/f]++
			}
		}
		if f > 1 {
			for i := lo * lw; i < hi*lw; i++ {
				for c := range 3 {
					sum[i][c] /= n[i]
				}
			}
		}
	})
	return sum
}

// segment runs the iterated graph cut on a w×h picture and returns the
// foreground labels; ok is false when no pixel stands out from the backdrop.
func segment(ctx context.Context, p picture, w, h int) ([]bool, bool, error) {
	frameWidth := max(1, max(w, h)*frameShare/1000)
	frame := make([]bool, w*h)
	for y := range h {
		for x := range w {
			frame[y*w+x] = x < frameWidth || y < frameWidth || x >= w-frameWidth || y >= h-frameWidth
		}
	}
	bg := fitBackdrop(samplesOf(p, w, frame), w, h)
	nllBG := make([]float32, w*h)
	split(h, func(lo, hi int) {
		for y := lo; y < hi; y++ {
			for x := range w {
				nllBG[y*w+x] = bg.model.cost(bg.residual(p[y*w+x], x, y, w, h))
			}
		}
	})
	var frameNLL []float32
	for i, in := range frame {
		if in {
			frameNLL = append(frameNLL, nllBG[i])
		}
	}
	slices.Sort(frameNLL)
	seed := frameNLL[len(frameNLL)*95/100] + seedMargin
	fg := make([]bool, w*h)
	pinned := make([]bool, w*h) // frame pixels that look like backdrop
	for i, v := range nllBG {
		if frame[i] {
			pinned[i] = v <= seed
			continue
		}
		fg[i] = v > seed
	}
	// The object model starts from the regions that stand out most from
	// the backdrop, all told: patches of a texture the frame did not show
	// stand out less than the object.
	excess := func(i int) float64 { return float64(nllBG[i] - seed) }
	if !keepStrong(fg, w, h, excess, seedShare) {
		return nil, false, nil
	}
	trcap := make([]float32, w*h)
	g := newFlowGraph(make([]float32, w*h), gridEdges(p, w, h))
	for range iterations {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		var fgSamples [][3]float32
		for i, v := range fg {
			if v {
				fgSamples = append(fgSamples, p[i])
			}
		}
		fgModel, ok := fitGMM(fgSamples, minVar)
		if !ok {
			return nil, false, nil
		}
		notFG := make([]bool, w*h)
		for i, v := range fg {
			notFG[i] = !v
		}
		bg = fitBackdrop(samplesOf(p, w, notFG), w, h)
		split(h, func(lo, hi int) {
			for y := lo; y < hi; y++ {
				for x := range w {
					i := y*w + x
					trcap[i] = bg.model.cost(bg.residual(p[i], x, y, w, h)) - fgModel.cost(p[i])
					if pinned[i] {
						trcap[i] = -hardBackdrop
					}
				}
			}
		})
		g.reset(trcap)
		g.maxflow()
		changed := 0
		for i := range fg {
			if v := g.sourceSide(i); v != fg[i] {
				fg[i] = v
				changed++
			}
		}
		if changed*1000 < w*h {
			break
		}
	}
	ok := keepStrong(fg, w, h, func(int) float64 { return 1 }, keepShare)
	return fg, ok, nil
}

// backdrop models the backdrop as a smooth colour field (a quadratic in x
// and y per channel, which follows the gradients and vignettes of studio
// backdrops) plus a Gaussian mixture over the residual (noise, texture).
type backdrop struct {
	field [3][6]float64
	model gmm
}

// quadBasis is 1, u, v, u², uv, v² at pixel (x, y) of a w×h picture, with
// u, v ∈ [−1, 1].
func quadBasis(x, y, w, h int) [6]float64 {
	u := (float64(x)+0.5)/float64(w)*2 - 1
	v := (float64(y)+0.5)/float64(h)*2 - 1
	return [6]float64{1, u, v, u * u, u * v, v * v}
}

func (b *backdrop) at(x, y, w, h int) [3]float32 {
	u := (float64(x)+0.5)/float64(w)*2 - 1
	v := (float64(y)+0.5)/float64(h)*2 - 1
	var c [3]float32
	for ch, f := range &b.field {
		c[ch] = float32(f[0] + f[1]*u + f[2]*v + f[3]*u*u + f[4]*u*v + f[5]*v*v)
	}
	return c
}

func (b *backdrop) residual(c [3]float32, x, y, w, h int) [3]float32 {
	f := b.at(x, y, w, h)
	return [3]float32{c[0] - f[0], c[1] - f[1], c[2] - f[2]}
}

// sample is a pixel's place and colour.
type sample struct {
	x, y int
	c    [3]float32
}

// samplesOf lists the pixels of p where use is set, at most ~4k of them,
// evenly spaced.
func samplesOf(p picture, w int, use []bool) []sample {
	n := 0
	for _, u := range use {
		if u {
			n++
		}
	}
	stride := max(1, n/4096)
	out := make([]sample, 0, n/stride+1)
	k := 0
	for i, u := range use {
		if !u {
			continue
		}
		if k%stride == 0 {
			out = append(out, sample{i % w, i / w, p[i]})
		}
		k++
	}
	return out
}

// fitBackdrop fits the field by least squares to the samples of a w×h
// picture, refits it without the samples far off the first fit (so grout
// lines or an object touching the frame do not bend it), and fits the
// residual mixture to all of them: a texture's rarer colours belong to the
// backdrop too.
func fitBackdrop(pts []sample, w, h int) backdrop {
	var b backdrop
	if len(pts) == 0 {
		b.model, _ = fitGMM([][3]float32{{0, 0, 0}}, minVar)
		return b
	}
	keep := make([]bool, len(pts))
	for i := range keep {
		keep[i] = true
	}
	b.field = solveField(pts, keep, w, h)
	norms := make([]float64, len(pts))
	for k, s := range pts {
		r := b.residual(s.c, s.x, s.y, w, h)
		norms[k] = math.Sqrt(float64(dist2(r, [3]float32{})))
	}
	var sorted []float64 // the median of at most ~1k of them is plenty
	for k := 0; k < len(norms); k += max(1, len(norms)/1024) {
		sorted = append(sorted, norms[k])
	}
	slices.Sort(sorted)
	limit := 3*sorted[len(sorted)/2] + 3*math.Sqrt(minVar)
	for k, n := range norms {
		keep[k] = n <= limit
	}
	b.field = solveField(pts, keep, w, h)
	res := make([][3]float32, len(pts))
	for k, s := range pts {
		res[k] = b.residual(s.c, s.x, s.y, w, h)
	}
	b.model, _ = fitGMM(res, minVar)
	return b
}

// solveField is the least-squares quadratic through the kept samples, with a
// little ridge toward the constant fit so a frame-only fit stays tame.
func solveField(pts []sample, keep []bool, w, h int) [3][6]float64 {
	var ata [6][6]float64
	var atb [3][6]float64
	for k, s := range pts {
		if !keep[k] {
			continue
		}
		q := quadBasis(s.x, s.y, w, h)
		for r := range 6 {
			for c := range 6 {
				ata[r][c] += q[r] * q[c]
			}
			for ch := range 3 {
				atb[ch][r] += q[r] * float64(s.c[ch])
			}
		}
	}
	n := max(ata[0][0], 1)
	for r := 1; r < 6; r++ {
		ata[r][r] += 1e-3 * n
	}
	if ata[0][0] == 0 {
		ata[0][0] = 1
	}
	var out [3][6]float64
	for ch := range 3 {
		out[ch] = solve6(ata, atb[ch])
	}
	return out
}

// solve6 solves a·x = b by Gaussian elimination with partial pivoting.
func solve6(a [6][6]float64, b [6]float64) [6]float64 {
	for col := range 6 {
		piv := col
		for r := col + 1; r < 6; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[piv][col]) {
				piv = r
			}
		}
		a[col], a[piv] = a[piv], a[col]
		b[col], b[piv] = b[piv], b[col]
		if a[col][col] == 0 {
			continue
		}
		for r := col + 1; r < 6; r++ {
			f := a[r][col] / a[col][col]
			for c := col; c < 6; c++ {
				a[r][c] -= f * a[col][c]
			}
			b[r] -= f * b[col]
		}
	}
	var x [6]float64
	for r := 5; r >= 0; r-- {
		s := b[r]
		for c := r + 1; c < 6; c++ {
			s -= a[r][c] * x[c]
		}
		if a[r][r] != 0 {
			x[r] = s / a[r][r]
		}
	}
	return x
}

// neighbourOffsets are the forward half of the 8-neighbourhood.
var neighbourOffsets = [4][2]int{{1, 0}, {-1, 1}, {0, 1}, {1, 1}}

// contrast is GrabCut's β = 1 / (2·⟨‖c_p − c_q‖²⟩) over neighbour pairs.
func contrast(p picture, w, h int) float64 {
	sum, n := 0.0, 0
	for y := range h {
		for x := range w {
			for _, o := range neighbourOffsets {
				xx, yy := x+o[0], y+o[1]
				if xx < 0 || xx >= w || yy >= h {
					continue
				}
				sum += float64(dist2(p[y*w+x], p[yy*w+xx]))
				n++
			}
		}
	}
	if sum == 0 {
		return 0
	}
	return float64(n) / (2 * sum)
}

// pairWeight is GrabCut's smoothness term γ·exp(−β‖c_p − c_q‖²)/distance.
func pairWeight(a, b [3]float32, beta float64, diagonal bool) float32 {
	v := smoothness * math.Exp(-beta*float64(dist2(a, b)))
	if diagonal {
		v /= math.Sqrt2
	}
	return float32(v)
}

// gridEdges is the 8-connected grid with contrast-sensitive weights.
func gridEdges(p picture, w, h int) []flowEdge {
	beta := contrast(p, w, h)
	return splitAppend(h, func(lo, hi int, edges []flowEdge) []flowEdge {
		for y := lo; y < hi; y++ {
			for x := range w {
				for _, o := range neighbourOffsets {
					xx, yy := x+o[0], y+o[1]
					if xx < 0 || xx >= w || yy >= h {
						continue
					}
					i, j := y*w+x, yy*w+xx
					c := pairWeight(p[i], p[j], beta, o[0] != 0 && o[1] != 0)
					edges = append(edges, flowEdge{u: int32(i), v: int32(j), cuv: c, cvu: c})
				}
			}
		}
		return edges
	})
}

// split runs f over contiguous parts of [0, n), one per available CPU, at
// once. The per-pixel terms are independent; only the max-flow is serial.
func split(n int, f func(lo, hi int)) {
	parts := min(runtime.GOMAXPROCS(0), max(1, n/16))
	if parts <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for k := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(n*k/parts, n*(k+1)/parts)
		}()
	}
	wg.Wait()
}

// splitAppend is split for a loop that appends to a slice: each part
// appends to its own, and the parts are joined in order, so the result is
// the serial loop's.
func splitAppend[T any](n int, f func(lo, hi int, out []T) []T) []T {
	parts := min(runtime.GOMAXPROCS(0), max(1, n/16))
	outs := make([][]T, parts)
	split(parts, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			outs[k] = f(n*k/parts, n*(k+1)/parts, nil)
		}
	})
	return slices.Concat(outs...)
}

// components labels the 8-connected components of the set pixels; it
// returns each pixel's component (−1 outside the set) and the number of
// components.
func components(set []bool, w, h int) ([]int32, int) {
	comp := make([]int32, w*h)
	for i := range comp {
		comp[i] = -1
	}
	n := int32(0)
	var stack []int
	for i, v := range set {
		if !v || comp[i] >= 0 {
			continue
		}
		comp[i] = n
		stack = append(stack[:0], i)
		for len(stack) > 0 {
			j := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			x, y := j%w, j/w
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					xx, yy := x+dx, y+dy
					if xx < 0 || yy < 0 || xx >= w || yy >= h {
						continue
					}
					if k := yy*w + xx; set[k] && comp[k] < 0 {
						comp[k] = n
						stack = append(stack, k)
					}
				}
			}
		}
		n++
	}
	return comp, int(n)
}

// keepStrong keeps the components of set whose score (the sum of weight
// over their pixels) is at least share of the best one's, and reports
// whether any is left.
func keepStrong(set []bool, w, h int, weight func(i int) float64, share float64) bool {
	comp, n := components(set, w, h)
	if n == 0 {
		return false
	}
	score := make([]float64, n)
	for i, c := range comp {
		if c >= 0 {
			score[c] += weight(i)
		}
	}
	best := slices.Max(score)
	for i, c := range comp {
		if c >= 0 && score[c] < share*best {
			set[i] = false
		}
	}
	return true
}

// refine cuts the full-resolution picture again in the band of work cells
// that touch the other label, with colour models refitted to full-resolution
// pixels (whose noise the averaged work picture hides); every other pixel
// takes its cell's label. It writes the matte into out.
func refine(img *image.NRGBA, cells []bool, lw, lh, f int, out *image.Alpha) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	band := make([]bool, lw*lh)
	for cy := range lh {
		for cx := range lw {
			v := cells[cy*lw+cx]
			for dy := -1; dy <= 1 && !band[cy*lw+cx]; dy++ {
				for dx := -1; dx <= 1; dx++ {
					x, y := cx+dx, cy+dy
					if x >= 0 && y >= 0 && x < lw && y < lh && cells[y*lw+x] != v {
						band[cy*lw+cx] = true
						break
					}
				}
			}
		}
	}
	// Settled object cells go straight into the matte; band cells get
	// consecutive node numbers, row by row within the cell.
	base := make([]int32, lw*lh)
	var nodes []int
	for cy := range lh {
		y0, y1 := cy*f, min(cy*f+f, h)
		for cx := range lw {
			c := cy*lw + cx
			x0, x1 := cx*f, min(cx*f+f, w)
			base[c] = -1
			switch {
			case band[c]:
				base[c] = int32(len(nodes))
				for y := y0; y < y1; y++ {
					for x := x0; x < x1; x++ {
						nodes = append(nodes, y*w+x)
					}
				}
			case cells[c]:
				for y := y0; y < y1; y++ {
					fill(out.Pix[y*out.Stride+x0:y*out.Stride+x1], 255)
				}
			}
		}
	}
	// node is pixel (x, y)'s node, or −1 when its label is settled.
	node := func(x, y int) int32 {
		cx, cy := x/f, y/f
		b := base[cy*lw+cx]
		if b < 0 {
			return -1
		}
		cw := min(f, w-cx*f)
		return b + int32((y-cy*f)*cw+x-cx*f)
	}
	if len(nodes) == 0 {
		return
	}
	// Colour models from one full-resolution pixel per settled cell.
	var fgSamples [][3]float32
	var bgSamples []sample
	for cy := range lh {
		for cx := range lw {
			c := cy*lw + cx
			if band[c] {
				continue
			}
			x, y := min(cx*f+f/2, w-1), min(cy*f+f/2, h-1)
			if cells[c] {
				fgSamples = append(fgSamples, rgb(img, x, y))
			} else {
				bgSamples = append(bgSamples, sample{x, y, rgb(img, x, y)})
			}
		}
	}
	fgModel, ok := fitGMM(fgSamples, minVar)
	if !ok {
		return
	}
	bg := fitBackdrop(bgSamples, w, h)

	beta := 0.0
	{
		sum, n := 0.0, 0
		for _, i := range nodes {
			x, y := i%w, i/w
			c := rgb(img, x, y)
			if x+1 < w {
				sum += float64(dist2(c, rgb(img, x+1, y)))
				n++
			}
			if y+1 < h {
				sum += float64(dist2(c, rgb(img, x, y+1)))
				n++
			}
		}
		if sum > 0 {
			beta = float64(n) / (2 * sum)
		}
	}
	// The band is a few pixels wide and cut 4-connected: at full resolution
	// the diagonal links add little but time.
	trcap := make([]float32, len(nodes))
	// bandNode sets node k's data term, adds the links to its settled
	// neighbours to it, and appends its links to the band's other nodes.
	bandNode := func(k int, edges []flowEdge) []flowEdge {
		i := nodes[k]
		x, y := i%w, i/w
		c := rgb(img, x, y)
		t := bg.model.cost(bg.residual(c, x, y, w, h)) - fgModel.cost(c)
		for _, d := range [4][2]int{{1, 0}, {0, 1}, {-1, 0}, {0, -1}} {
			xx, yy := x+d[0], y+d[1]
			if xx < 0 || yy < 0 || xx >= w || yy >= h {
				continue
			}
			j := node(xx, yy)
			if j >= 0 && yy*w+xx < i {
				continue // this pair's edge was added from the other side
			}
			wt := pairWeight(c, rgb(img, xx, yy), beta, false)
			switch {
			case j >= 0:
				edges = append(edges, flowEdge{u: int32(k), v: j, cuv: wt, cvu: wt})
			case cells[(yy/f)*lw+xx/f]:
				t += wt
			default:
				t -= wt
			}
		}
		trcap[k] = t
		return edges
	}
	edges := splitAppend(len(nodes), func(lo, hi int, edges []flowEdge) []flowEdge {
		for k := lo; k < hi; k++ {
			edges = bandNode(k, edges)
		}
		return edges
	})
	g := newFlowGraph(trcap, edges)
	g.maxflow()
	for k, i := range nodes {
		if g.sourceSide(k) {
			out.Pix[(i/w)*out.Stride+i%w] = 255
		}
	}
}

func fill(b []uint8, v uint8) {
	for i := range b {
		b[i] = v
	}
}
