package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"slices"
	"testing"
)

// ppSeededBytes is the generator testdata/reference.py uses for its inputs
// (64-bit LCG, top byte), so both sides resize the same pixels.
func ppSeededBytes(seed uint64, n int) []byte {
	out := make([]byte, n)
	x := seed
	for i := range out {
		x = x*6364136223846793005 + 1442695040888963407
		out[i] = byte(x >> 56)
	}
	return out
}

const (
	ppInterArea = iota
	ppInterCubic
)

func ppResize(interp, cn, sw, sh, dw, dh int, pix []byte) []byte {
	src := cvImage{pix: pix, w: sw, h: sh, cn: cn, stride: sw * cn}
	dst := cvImage{pix: make([]byte, dw*dh*cn), w: dw, h: dh, cn: cn, stride: dw * cn}
	if interp == ppInterArea {
		cvResizeArea(src, dst)
	} else {
		cvResizeCubic(sw, sh, cn, func(y int, d []uint8) { copy(d, src.row(y)) }, dst)
	}
	return dst.pix
}

// The hashes are cv2.resize's outputs on the same seeded inputs, printed by
// `testdata/reference.py kernels` with Debian's python3-opencv 4.6 (C++ path,
// no IPP). Together they cover every branch of cv::resize that Hunyuan3D's
// INTER_AREA and INTER_CUBIC calls can take.
func TestCVResizeMatchesOpenCV(t *testing.T) {
	cases := []struct {
		name                       string
		interp, cn, sw, sh, dw, dh int
		seed                       uint64
		sha256                     string
	}{
		{"area_fast_2x2_rgba", ppInterArea, 4, 8, 6, 4, 3, 1, "0f3ad10b725146e44e5ace66f712e465173f6092b55b72c34c58b1c06038d460"},
		{"area_fast_3x2_rgba", ppInterArea, 4, 9, 6, 3, 3, 2, "60448479ad32895f5e24a1bb898f651228916c0ee525246adcafdec4cbb4a14d"},
		{"area_fast_1x2_gray", ppInterArea, 1, 5, 8, 5, 4, 3, "129b6d8605bf78ba798cc084fca514d91b1086c1b3da435ad91d9038a42ecf7c"},
		{"area_generic_rgba", ppInterArea, 4, 10, 7, 4, 3, 4, "e89b66c8ba14daa9a86bf4e860f76a2d6dbbd67926ad32b9f3ba321b90720aea"},
		{"area_generic_rgb", ppInterArea, 3, 13, 11, 5, 7, 5, "7a6d1c33df5b41986a0507f655127c3eca2e6de6eec17d885d9cd06bebe7e21a"},
		{"area_generic_large_rgba", ppInterArea, 4, 100, 37, 31, 12, 6, "bc650fb026868986ad4f7103530cf96b34ee93a920947ff8a01325bfaebe557e"},
		{"area_up_rgba", ppInterArea, 4, 5, 4, 12, 9, 7, "4bba09f85edc3680c9b2f0f124ea07cc569f6f2cc71f3f36caafcbc96fd3d559"},
		{"area_up_gray", ppInterArea, 1, 7, 3, 20, 9, 8, "5353e53e47547b066f365a0589f4291ef5fc3dad11f28d15a042e589d581a157"},
		{"area_up_y_only_rgba", ppInterArea, 4, 6, 6, 6, 10, 9, "34144ecb252b806e851668033059e60f7cfc08eab3e146c3a7b8a9197038df07"},
		{"area_mixed_rgba", ppInterArea, 4, 10, 6, 7, 9, 10, "6edcbd8179f30ce54186b9f52c0271fcd2b1f13c5b8dda42b0db3ea9abb34eeb"},
		{"area_up_large_rgba", ppInterArea, 4, 40, 30, 170, 127, 11, "581b4a6709db99c682f02cee7e270b428782b99b04500ba5bb3f36c2e175edf9"},
		{"cubic_tiny_gray", ppInterCubic, 1, 3, 2, 4, 3, 12, "906171536fd0d3056d0aa9c8f337f1b7d58e84f4b852a72f72ecadaaf2612372"},
		{"cubic_down_tail_rgb", ppInterCubic, 3, 5, 5, 3, 3, 13, "b20a11e72f69fa535aa65ba1366df065d156426ce0016ed705516e507da40fcf"},
		{"cubic_odd_rgb", ppInterCubic, 3, 17, 9, 11, 23, 14, "c0e4d57036e2e4349eea7504484215bd18f897dba3870e3b6477fd8023399541"},
		{"cubic_1px_rgb", ppInterCubic, 3, 1, 1, 4, 4, 15, "daecb0cd26625b61605c1906907091b52dec7d7e03faf824e0277f00ad32b2dd"},
		{"cubic_up_512_rgb", ppInterCubic, 3, 300, 300, 512, 512, 16, "717c61cdea1ac35bc3bf75431d0b54455f9eec0e36e64e5f308fbf09589faa3f"},
		{"cubic_down_512_rgb", ppInterCubic, 3, 700, 700, 512, 512, 17, "aefdca33f33bf76d4723c63ce7b70cb6335731ba2def9d5ccec9469c23e5c143"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := ppResize(c.interp, c.cn, c.sw, c.sh, c.dw, c.dh, ppSeededBytes(c.seed, c.sw*c.sh*c.cn))
			sum := sha256.Sum256(out)
			if got := hex.EncodeToString(sum[:]); got != c.sha256 {
				t.Errorf("sha256 %s, OpenCV's is %s", got, c.sha256)
			}
		})
	}
}

// Values printed by `testdata/reference.py torch` (torch 1.13,
// F.interpolate bilinear, antialias=True).
func TestTorchBilinearMatchesTorch(t *testing.T) {
	cases := []struct {
		sw, sh, dw, dh int
		seed           uint64
		want           []float32
	}{
		{4, 3, 6, 5, 21, []float32{0.321568638, 0.492156863, 0.637254894, 0.535294116, 0.262745112, 0.0156862754, 0.205490202, 0.360392153, 0.483529389, 0.356470555, 0.21803923, 0.11137256, 0.0313725509, 0.162745103, 0.252941161, 0.0882352591, 0.150980398, 0.254901975, 0.600784421, 0.429803997, 0.318431407, 0.556862891, 0.643921673, 0.671372652, 0.980392158, 0.607843161, 0.362091571, 0.869281173, 0.972549021, 0.949019611}},
		{6, 5, 4, 3, 22, []float32{0.550420225, 0.516713381, 0.703267932, 0.226120472, 0.526906371, 0.55778265, 0.539239883, 0.348965168, 0.495238125, 0.573856294, 0.508870244, 0.777240872}},
	}
	for _, c := range cases {
		src := make([]float32, c.sw*c.sh)
		for i, b := range ppSeededBytes(c.seed, len(src)) {
			src[i] = float32(b) / 255
		}
		dst := make([]float32, c.dw*c.dh)
		torchResizeBilinear(src, c.sw, c.sh, dst, c.dw, c.dh)
		for i := range dst {
			if d := math.Abs(float64(dst[i] - c.want[i])); d > 2e-7 {
				t.Errorf("%dx%d→%dx%d [%d] = %.9g, torch %.9g", c.sw, c.sh, c.dw, c.dh, i, dst[i], c.want[i])
			}
		}
	}
}

// Keys' cubic with a = −0.75 at t = 0.5: w(1.5) = a·1.5³ − 5a·1.5² + 8a·1.5 − 4a
// = −0.09375 and w(0.5) = (a+2)·0.125 − (a+3)·0.25 + 1 = 0.59375; at t = 0 it
// is the identity. In 11-bit fixed point: −192, 1216, 1216, −192.
func TestCVCubicCoefficientsHandComputed(t *testing.T) {
	if got := cvCubicCoeffs(0); got != [4]float32{0, 1, 0, 0} {
		t.Errorf("t=0: %v", got)
	}
	if got := cvCubicCoeffs(0.5); got != [4]float32{-0.09375, 0.59375, 0.59375, -0.09375} {
		t.Errorf("t=0.5: %v", got)
	}
	// 2 → 4 samples: output 1 sits at source 0.25 (taps −1…2 at t = 0.25).
	ofs, coef := cvCubicTaps(2, 4)
	if ofs[1] != -1 || coef[1] != [4]int32{-216, 1800, 536, -72} {
		t.Errorf("2→4 output 1: offset %d coefficients %v", ofs[1], coef[1])
	}
}

// Hand-computed resizes of tiny 8-bit rows (gray, one row, so only the
// horizontal kernel acts):
//   - cubic [0 255] → 4: taps clamp to the edge; output 1 is 255·(536−72)/2048
//     = 57.8 → 58, output 2 is 255·(1800−216)/2048 = 197.2 → 197, and the ends
//     overshoot and saturate to 0 and 255;
//   - area [0 90 180] → 2: cells of 1.5 pixels, (0 + 90/2)/1.5 = 30 and
//     (90/2 + 180)/1.5 = 150;
//   - area enlarging [0 200] → 4 is pixel replication, → 3 blends the middle
//     output half and half (OpenCV's "area mode" bilinear);
//   - area 2×2 blocks round half up: (1+2+3+4)/4 = 2.5 → 3, (0+1+0+1)/4 → 1.
func TestCVResizeTinyHandComputed(t *testing.T) {
	cases := []struct {
		name               string
		interp, sw, sh, dw int
		dh                 int
		src, want          []byte
	}{
		{"cubic up", ppInterCubic, 2, 1, 4, 1, []byte{0, 255}, []byte{0, 58, 197, 255}},
		{"area down", ppInterArea, 3, 1, 2, 1, []byte{0, 90, 180}, []byte{30, 150}},
		{"area up integer", ppInterArea, 2, 1, 4, 1, []byte{0, 200}, []byte{0, 0, 200, 200}},
		{"area up fraction", ppInterArea, 2, 1, 3, 1, []byte{0, 200}, []byte{0, 100, 200}},
		{"area 2x2 half up", ppInterArea, 4, 2, 2, 1, []byte{1, 2, 0, 1, 3, 4, 0, 1}, []byte{3, 1}},
	}
	for _, c := range cases {
		if got := ppResize(c.interp, 1, c.sw, c.sh, c.dw, c.dh, c.src); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v → %v, want %v", c.name, c.src, got, c.want)
		}
	}
}

// Enlarging 2 → 4 with torch's antialiased bilinear is plain half-pixel
// bilinear: outputs sit at 0.25, 0.75, 1.25, 1.75 source pixels, the first
// and last clamp to the edge pixels.
func TestTorchBilinearHandComputed(t *testing.T) {
	dst := make([]float32, 4)
	torchResizeBilinear([]float32{0, 1}, 2, 1, dst, 4, 1)
	if want := []float32{0, 0.25, 0.75, 1}; !slices.Equal(dst, want) {
		t.Errorf("[0 1] → %v, want %v", dst, want)
	}
	// Shrinking 4 → 2 (antialias): the triangle widens to two source pixels
	// each side, is cut at the edges and renormalized:
	// (0·¾ + 1·¾ + 2·¼)/1.75 = 5/7 and (1·¼ + 2·¾ + 3·¾)/1.75 = 16/7.
	dst = dst[:2]
	torchResizeBilinear([]float32{0, 1, 2, 3}, 4, 1, dst, 2, 1)
	if want := []float32{5.0 / 7, 16.0 / 7}; math.Abs(float64(dst[0]-want[0])) > 1e-6 || math.Abs(float64(dst[1]-want[1])) > 1e-6 {
		t.Errorf("[0 1 2 3] → %v, want %v", dst, want)
	}
}
