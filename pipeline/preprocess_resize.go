package pipeline

import (
	"math"
)

// Resampling kernels of the preprocess stage. Hunyuan3D resizes with OpenCV
// (cv2.resize on uint8 images: INTER_AREA when recentering, INTER_CUBIC to the
// 512² canvas) and then with torchvision (bilinear, antialias=True, float32)
// to the conditioner's input. The functions below reproduce OpenCV 4.x's own
// C++ path of cv::resize (modules/imgproc/src/resize.cpp: hal::resize,
// computeResizeAreaTab, ResizeArea_Invoker, resizeAreaFast_Invoker,
// HResizeLinear/VResizeLinear, HResizeCubic/VResizeCubic and the 128-bit SIMD
// vertical passes) bit for bit, and torch's _upsample_bilinear2d_aa
// (aten/src/ATen/native/cpu/UpSampleKernel.cpp) to float32 rounding.
//
// OpenCV builds that route 8-bit INTER_CUBIC through Intel IPP (the x86-64
// opencv-python wheels) differ from the C++ path by ±1 on some pixels
// (opencv/opencv#22477); we follow the C++ path, which is what ARM builds and
// Debian's python3-opencv run, because it is specified by source.

// cvCoefScale is OpenCV's INTER_RESIZE_COEF_SCALE: 8-bit resizes use 11-bit
// fixed-point coefficients.
const (
	cvCoefBits  = 11
	cvCoefScale = 1 << cvCoefBits
)

// cvSIMDLanes is the number of int16 lanes of OpenCV's baseline 128-bit
// universal intrinsics; the cubic vertical pass rounds differently in its
// vector body and in its scalar tail, so the split point matters.
const cvSIMDLanes = 8

// cvImage is an interleaved 8-bit image view: cn channels, stride bytes per row.
type cvImage struct {
	pix    []uint8
	w, h   int
	cn     int
	stride int
}

func (m cvImage) row(y int) []uint8 {
	o := y * m.stride
	return m.pix[o : o+m.w*m.cn]
}

// cvRowSource fills dst (width·cn bytes) with source row y. It lets the cubic
// resize read a virtual canvas without materializing it.
type cvRowSource func(y int, dst []uint8)

// cvRound is OpenCV's cvRound/saturate_cast rounding: to nearest, ties to even.
func cvRound(v float64) int { return int(math.RoundToEven(v)) }

// cvRoundF32 is cvRound for float32 values below 2²² in magnitude (every
// 8-bit resize sum): adding 1.5·2²³ leaves float32 no fraction bits, so the
// addition itself rounds to nearest even.
func cvRoundF32(v float32) int {
	const magic = 0x1.8p23
	return int(float32(v+magic) - magic)
}

func cvSatU8(v int) uint8 { return uint8(min(max(v, 0), 255)) }

func cvSatI16(v int) int32 {
	if v < math.MinInt16 {
		return math.MinInt16
	}
	if v > math.MaxInt16 {
		return math.MaxInt16
	}
	return int32(v)
}

func cvClip(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v >= hi {
		return hi - 1
	}
	return v
}

// cvResizeArea is cv::resize(src, dsize, interpolation=INTER_AREA) for 8-bit
// images of any channel count: a copy at equal size, true area averaging when
// shrinking on both axes (integer factors take the "fast" path with its own
// rounding), and OpenCV's area-flavoured bilinear when enlarging on any axis.
func cvResizeArea(src, dst cvImage) {
	if src.w == dst.w && src.h == dst.h {
		for y := 0; y < src.h; y++ {
			copy(dst.row(y), src.row(y))
		}
		return
	}
	invX := float64(dst.w) / float64(src.w)
	invY := float64(dst.h) / float64(src.h)
	scaleX, scaleY := 1/invX, 1/invY
	iX, iY := cvRound(scaleX), cvRound(scaleY)
	fast := math.Abs(scaleX-float64(iX)) < 0x1p-52 && math.Abs(scaleY-float64(iY)) < 0x1p-52
	switch {
	case scaleX >= 1 && scaleY >= 1 && fast:
		cvAreaFast(src, dst, iX, iY)
	case scaleX >= 1 && scaleY >= 1:
		cvAreaGeneric(src, dst, scaleX, scaleY)
	default:
		cvAreaBilinear(src, dst, scaleX, scaleY, invX, invY)
	}
}

// cvAreaFast averages iX×iY blocks (resizeAreaFast_Invoker). 2×2 blocks are
// rounded half up by the vector path ((sum+2)>>2); other factors multiply by
// the float reciprocal of the area and round half to even.
func cvAreaFast(src, dst cvImage, iX, iY int) {
	cn := src.cn
	width := dst.w * cn
	if iX == 2 && iY == 2 && (cn == 1 || cn == 3 || cn == 4) {
		for dy := 0; dy < dst.h; dy++ {
			s0, s1, d := src.row(2*dy), src.row(2*dy+1), dst.row(dy)
			for dx := 0; dx < dst.w; dx++ {
				for c := 0; c < cn; c++ {
					i := 2*dx*cn + c
					d[dx*cn+c] = uint8((int(s0[i]) + int(s0[i+cn]) + int(s1[i]) + int(s1[i+cn]) + 2) >> 2)
				}
			}
		}
		return
	}
	scale := float32(1) / float32(iX*iY)
	for dy := 0; dy < dst.h; dy++ {
		d := dst.row(dy)
		for x := 0; x < width; x++ {
			dx, c := x/cn, x%cn
			sum := 0
			for sy := 0; sy < iY; sy++ {
				s := src.row(dy*iY + sy)
				for sx := 0; sx < iX; sx++ {
					sum += int(s[(dx*iX+sx)*cn+c])
				}
			}
			d[x] = cvSatU8(cvRound(float64(float32(float32(sum) * scale))))
		}
	}
}

// cvDecimate is one weighted source sample of an area-resize output pixel.
type cvDecimate struct {
	si, di int
	alpha  float32
}

// cvAreaTab is computeResizeAreaTab: the source cells that overlap each
// output cell and their coverage, in double precision, stored as float.
func cvAreaTab(ssize, dsize, cn int, scale float64) []cvDecimate {
	tab := make([]cvDecimate, 0, 2*ssize)
	for dx := 0; dx < dsize; dx++ {
		fsx1 := float64(dx) * scale
		fsx2 := fsx1 + scale
		cellWidth := math.Min(scale, float64(ssize)-fsx1)
		sx1, sx2 := int(math.Ceil(fsx1)), int(math.Floor(fsx2))
		sx2 = min(sx2, ssize-1)
		sx1 = min(sx1, sx2)
		if float64(sx1)-fsx1 > 1e-3 {
			tab = append(tab, cvDecimate{(sx1 - 1) * cn, dx * cn, float32((float64(sx1) - fsx1) / cellWidth)})
		}
		for sx := sx1; sx < sx2; sx++ {
			tab = append(tab, cvDecimate{sx * cn, dx * cn, float32(1 / cellWidth)})
		}
		if fsx2-float64(sx2) > 1e-3 {
			tab = append(tab, cvDecimate{sx2 * cn, dx * cn, float32(math.Min(math.Min(fsx2-float64(sx2), 1), cellWidth) / cellWidth)})
		}
	}
	return tab
}

// cvAreaGeneric is ResizeArea_Invoker<uchar, float>: each source row is
// reduced horizontally into buf, and rows are accumulated into sum with their
// vertical coverage; float32 throughout, rounded half to even at the end.
func cvAreaGeneric(src, dst cvImage, scaleX, scaleY float64) {
	cn := src.cn
	xtab := cvAreaTab(src.w, dst.w, cn, scaleX)
	ytab := cvAreaTab(src.h, dst.h, 1, scaleY)
	width := dst.w * cn
	buf := make([]float32, width)
	sum := make([]float32, width)
	store := func(dy int) {
		d := dst.row(dy)
		for i, v := range sum {
			d[i] = cvSatU8(cvRoundF32(v))
		}
	}
	prevDy, lastSi := ytab[0].di, -1
	for _, yt := range ytab {
		// Consecutive entries often share a source row (one cell's last partial
		// row is the next cell's first); its horizontal pass is the same.
		if yt.si != lastSi {
			lastSi = yt.si
			s := src.row(yt.si)
			clear(buf)
			if cn == 4 {
				for _, t := range xtab {
					p, b := s[t.si:t.si+4:t.si+4], buf[t.di:t.di+4:t.di+4]
					b[0] += float32(float32(p[0]) * t.alpha)
					b[1] += float32(float32(p[1]) * t.alpha)
					b[2] += float32(float32(p[2]) * t.alpha)
					b[3] += float32(float32(p[3]) * t.alpha)
				}
			} else {
				for _, t := range xtab {
					for c := 0; c < cn; c++ {
						buf[t.di+c] += float32(float32(s[t.si+c]) * t.alpha)
					}
				}
			}
		}
		beta := yt.alpha
		if yt.di != prevDy {
			store(prevDy)
			for i, v := range buf {
				sum[i] = beta * v
			}
			prevDy = yt.di
		} else {
			for i, v := range buf {
				sum[i] += float32(beta * v)
			}
		}
	}
	store(prevDy)
}

// cvAreaBilinear is INTER_AREA when enlarging: OpenCV's linear resize with
// the "area mode" coefficients (each output pixel takes the source pixel it
// falls in, blended with the next one only over the fraction of the output
// cell that crosses the source boundary), in 11-bit fixed point.
func cvAreaBilinear(src, dst cvImage, scaleX, scaleY, invX, invY float64) {
	cn := src.cn
	coef := func(d int, scale, inv float64) (int, float32) {
		s := int(math.Floor(float64(d) * scale))
		f := float32(float64(d+1) - float64(s+1)*inv)
		if f <= 0 {
			f = 0
		} else {
			f -= float32(math.Floor(float64(f)))
		}
		return s, f
	}
	fixed := func(f float32) (int32, int32) {
		return cvSatI16(cvRound(float64((1 - f) * cvCoefScale))), cvSatI16(cvRound(float64(f * cvCoefScale)))
	}

	xofs := make([]int, dst.w)
	xa := make([][2]int32, dst.w)
	xmax := dst.w
	for dx := range dst.w {
		sx, fx := coef(dx, scaleX, invX)
		if sx+1 >= src.w {
			xmax = min(xmax, dx)
			if sx >= src.w-1 {
				fx, sx = 0, src.w-1
			}
		}
		xofs[dx] = sx
		xa[dx][0], xa[dx][1] = fixed(fx)
	}

	width := dst.w * cn
	cache := newCVRowCache(2, width)
	hresize := func(y int, d []int32) {
		s := src.row(y)
		for dx := range dst.w {
			o := xofs[dx] * cn
			for c := 0; c < cn; c++ {
				if dx < xmax {
					d[dx*cn+c] = int32(s[o+c])*xa[dx][0] + int32(s[o+cn+c])*xa[dx][1]
				} else {
					d[dx*cn+c] = int32(s[o+c]) * cvCoefScale
				}
			}
		}
	}
	for dy := range dst.h {
		sy, fy := coef(dy, scaleY, invY)
		b0, b1 := fixed(fy)
		y0, y1 := cvClip(sy, 0, src.h), cvClip(sy+1, 0, src.h)
		r0 := cache.get(y0, hresize)
		r1 := cache.get(y1, hresize)
		d := dst.row(dy)
		for x := range width {
			d[x] = uint8((((b0 * (r0[x] >> 4)) >> 16) + ((b1 * (r1[x] >> 4)) >> 16) + 2) >> 2)
		}
	}
}

// cvRowCache holds the horizontal passes of the last few source rows.
// Output rows visit source rows in increasing order, so a miss evicts the
// lowest row.
type cvRowCache struct {
	rows [][]int32
	tags []int
}

func newCVRowCache(n, width int) *cvRowCache {
	c := &cvRowCache{rows: make([][]int32, n), tags: make([]int, n)}
	for i := range c.rows {
		c.rows[i] = make([]int32, width)
		c.tags[i] = -1
	}
	return c
}

// get returns the horizontal pass of row y, computing it with h on a miss.
func (c *cvRowCache) get(y int, h func(y int, dst []int32)) []int32 {
	victim := 0
	for i, t := range c.tags {
		if t == y {
			return c.rows[i]
		}
		if t < c.tags[victim] {
			victim = i
		}
	}
	c.tags[victim] = y
	h(y, c.rows[victim])
	return c.rows[victim]
}

// cvCubicCoeffs is OpenCV's interpolateCubic (Keys, a = −0.75) evaluated in
// float32 exactly as the C++ expression is; the conversions keep Go from
// fusing multiply-adds.
func cvCubicCoeffs(x float32) [4]float32 {
	const a = float32(-0.75)
	x1 := x + 1
	c0 := float32(float32(float32(float32(float32(a*x1)-5*a)*x1)+8*a)*x1) - 4*a
	c1 := float32(float32(float32(float32((a+2)*x)-(a+3))*x)*x) + 1
	y := 1 - x
	c2 := float32(float32(float32(float32((a+2)*y)-(a+3))*y)*y) + 1
	c3 := 1 - c0 - c1 - c2
	return [4]float32{c0, c1, c2, c3}
}

// cvCubicTaps maps each output index to its first source index (sx−1) and
// four 11-bit coefficients, as hal::resize does for INTER_CUBIC.
func cvCubicTaps(ssize, dsize int) ([]int, [][4]int32) {
	scale := 1 / (float64(dsize) / float64(ssize))
	ofs := make([]int, dsize)
	coef := make([][4]int32, dsize)
	for d := range dsize {
		f := float32((float64(d)+0.5)*scale - 0.5)
		s := int(math.Floor(float64(f)))
		f -= float32(s)
		ofs[d] = s - 1
		for k, c := range cvCubicCoeffs(f) {
			coef[d][k] = cvSatI16(cvRound(float64(c * cvCoefScale)))
		}
	}
	return ofs, coef
}

// cvResizeCubic is cv::resize(interpolation=INTER_CUBIC) for 8-bit images
// read row by row from src (sw×sh, cn channels): integer horizontal pass with
// replicated borders, then the vertical pass, which OpenCV computes in
// float32 (rounded half to even) in its SIMD body and in 22-bit fixed point
// (rounded half up) in its scalar tail.
func cvResizeCubic(sw, sh, cn int, src cvRowSource, dst cvImage) {
	if sw == dst.w && sh == dst.h {
		for y := range sh {
			src(y, dst.row(y))
		}
		return
	}
	xofs, xa := cvCubicTaps(sw, dst.w)
	yofs, yb := cvCubicTaps(sh, dst.h)
	// Clamped source offsets per tap, so the inner loop needs no branches.
	xidx := make([][4]int, dst.w)
	for dx, s := range xofs {
		for k := range 4 {
			xidx[dx][k] = cvClip(s+k, 0, sw) * cn
		}
	}
	width := dst.w * cn
	line := make([]uint8, sw*cn)
	hresize := func(y int, d []int32) {
		src(y, line)
		if cn == 3 {
			for dx, ix := range xidx {
				a := &xa[dx]
				p0, p1, p2, p3 := line[ix[0]:ix[0]+3:ix[0]+3], line[ix[1]:ix[1]+3:ix[1]+3], line[ix[2]:ix[2]+3:ix[2]+3], line[ix[3]:ix[3]+3:ix[3]+3]
				o := d[3*dx : 3*dx+3 : 3*dx+3]
				o[0] = int32(p0[0])*a[0] + int32(p1[0])*a[1] + int32(p2[0])*a[2] + int32(p3[0])*a[3]
				o[1] = int32(p0[1])*a[0] + int32(p1[1])*a[1] + int32(p2[1])*a[2] + int32(p3[1])*a[3]
				o[2] = int32(p0[2])*a[0] + int32(p1[2])*a[1] + int32(p2[2])*a[2] + int32(p3[2])*a[3]
			}
			return
		}
		for dx, ix := range xidx {
			a := &xa[dx]
			for c := range cn {
				d[dx*cn+c] = int32(line[ix[0]+c])*a[0] + int32(line[ix[1]+c])*a[1] +
					int32(line[ix[2]+c])*a[2] + int32(line[ix[3]+c])*a[3]
			}
		}
	}
	cache := newCVRowCache(4, width)
	vec := width - width%cvSIMDLanes
	const unit = float32(1.0 / (cvCoefScale * cvCoefScale))
	for dy := range dst.h {
		var r [4][]int32
		for k := range 4 {
			r[k] = cache.get(cvClip(yofs[dy]+k, 0, sh), hresize)
		}
		b := yb[dy]
		f0, f1, f2, f3 := float32(b[0])*unit, float32(b[1])*unit, float32(b[2])*unit, float32(b[3])*unit
		d := dst.row(dy)
		r0, r1, r2, r3 := r[0][:vec], r[1][:vec], r[2][:vec], r[3][:vec]
		for x := range d[:vec] {
			t := float32(float32(r3[x]) * f3)
			t = float32(float32(r2[x])*f2) + t
			t = float32(float32(r1[x])*f1) + t
			t = float32(float32(r0[x])*f0) + t
			d[x] = cvSatU8(cvRoundF32(t))
		}
		for x := vec; x < width; x++ {
			v := int64(r[0][x])*int64(b[0]) + int64(r[1][x])*int64(b[1]) +
				int64(r[2][x])*int64(b[2]) + int64(r[3][x])*int64(b[3])
			d[x] = cvSatU8(int((v + 1<<(2*cvCoefBits-1)) >> (2 * cvCoefBits)))
		}
	}
}

// torchAxis holds torch's antialiased-bilinear taps for one axis: output i
// reads xsize[i] source samples from xmin[i] with weights w[i*maxInterp:].
type torchAxis struct {
	xmin, xsize []int
	w           []float32
	maxInterp   int
}

// torchBilinearAxis reproduces _compute_indices_min_size_weights_aa for the
// triangle filter with scalar_t = float, including where torch computes in
// double and stores in float. When enlarging (Hunyuan3D: 512 → 518) it
// reduces to half-pixel bilinear with clamped edges.
func torchBilinearAxis(in, out int) torchAxis {
	scale := float32(in) / float32(out)
	support := float32(1)
	invscale := float32(1)
	if scale >= 1 {
		support = float32(1 * float64(scale))
		invscale = float32(1 / float64(scale))
	}
	maxInterp := int(math.Ceil(float64(support)))*2 + 1
	ax := torchAxis{xmin: make([]int, out), xsize: make([]int, out), w: make([]float32, out*maxInterp), maxInterp: maxInterp}
	for i := range out {
		center := float32(float64(scale) * (float64(i) + 0.5))
		xmin := max(int(float64(center-support)+0.5), 0)
		xsize := min(int(float64(center+support)+0.5), in) - xmin
		xsize = max(0, min(xsize, maxInterp))
		w := ax.w[i*maxInterp : i*maxInterp+xsize]
		var total float32
		for j := range w {
			x := float32((float64(float32(j+xmin)-center) + 0.5) * float64(invscale))
			if x < 0 {
				x = -x
			}
			if x < 1 {
				w[j] = 1 - x
			}
			total += w[j]
		}
		if total != 0 {
			for j := range w {
				w[j] /= total
			}
		}
		ax.xmin[i], ax.xsize[i] = xmin, xsize
	}
	return ax
}

// torchResizeBilinear resizes one float32 plane (sw×sh → dw×dh) as
// F.interpolate(mode="bilinear", antialias=True, align_corners=False) does on
// the CPU: the contiguous (horizontal) axis first, then the vertical one; an
// axis whose size does not change is skipped.
func torchResizeBilinear(src []float32, sw, sh int, dst []float32, dw, dh int) {
	tmp := src
	if sw != dw {
		ax := torchBilinearAxis(sw, dw)
		tmp = make([]float32, dw*sh)
		for y := range sh {
			s, d := src[y*sw:(y+1)*sw], tmp[y*dw:(y+1)*dw]
			for x := range dw {
				w := ax.w[x*ax.maxInterp : x*ax.maxInterp+ax.xsize[x]]
				in := s[ax.xmin[x]:]
				v := float32(in[0] * w[0])
				for j := 1; j < len(w); j++ {
					v += float32(in[j] * w[j])
				}
				d[x] = v
			}
		}
	}
	if sh == dh {
		copy(dst, tmp[:dw*dh])
		return
	}
	ax := torchBilinearAxis(sh, dh)
	for y := range dh {
		w := ax.w[y*ax.maxInterp : y*ax.maxInterp+ax.xsize[y]]
		d := dst[y*dw : (y+1)*dw]
		r0 := tmp[ax.xmin[y]*dw:]
		for x := range dw {
			d[x] = float32(r0[x] * w[0])
		}
		for j := 1; j < len(w); j++ {
			r := tmp[(ax.xmin[y]+j)*dw:]
			for x := range dw {
				d[x] += float32(r[x] * w[j])
			}
		}
	}
}
