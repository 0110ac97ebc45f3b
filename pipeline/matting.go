package pipeline

import (
	"context"
	"fmt"
	"image"
	"math"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

// engineMatter is the Matter of a model set's optional matting graph
// (docs/engine-contract.md: image [B,3,H,W] → alpha [B,1,H,W]), the
// stand-in for the rembg (u2net) pass Hunyuan3D runs on pictures without
// alpha. The graph gets RGB in [0, 1] — any normalization lives inside it,
// as for every graph — at its own input size when that is static (u2net's is
// 320²), else at the picture's; its alpha is clamped to [0, 1] and resized
// back bilinearly.
type engineMatter struct{ e Engine }

// NewEngineMatter wraps a matting engine.
func NewEngineMatter(e Engine) Matter { return engineMatter{e} }

func (m engineMatter) Alpha(ctx context.Context, rgb *image.NRGBA) (*image.Alpha, error) {
	sw, sh := rgb.Rect.Dx(), rgb.Rect.Dy()
	w, h := sw, sh
	for _, in := range m.e.Inputs() {
		if in.Name == "image" && len(in.Dims) == 4 && in.Dims[2] > 0 && in.Dims[3] > 0 {
			h, w = int(in.Dims[2]), int(in.Dims[3])
		}
	}
	plane := w * h
	x := make([]float32, 3*plane)
	for y := 0; y < h; y++ {
		for xx := 0; xx < w; xx++ {
			for c := 0; c < 3; c++ {
				x[c*plane+y*w+xx] = bilinear(sw, sh, w, h, xx, y, func(i, j int) float32 {
					return float32(rgb.Pix[rgb.PixOffset(rgb.Rect.Min.X+i, rgb.Rect.Min.Y+j)+c]) / 255
				})
			}
		}
	}
	a, err := run(ctx, m.e, engines.Matting, "alpha", plane, tensor.Tensor{
		Name: "image", Shape: []int64{1, 3, int64(h), int64(w)}, Data: x,
	})
	if err != nil {
		return nil, err
	}
	out := image.NewAlpha(rgb.Rect)
	for j := 0; j < sh; j++ {
		for i := 0; i < sw; i++ {
			v := bilinear(w, h, sw, sh, i, j, func(i, j int) float32 { return a[j*w+i] })
			if math.IsNaN(float64(v)) {
				return nil, fmt.Errorf("matting: NaN alpha at (%d, %d)", i, j)
			}
			out.Pix[j*out.Stride+i] = uint8(math.Round(float64(min(max(v, 0), 1)) * 255))
		}
	}
	return out, nil
}

// bilinear samples a sw×sh image at the centre of pixel (x, y) of a dw×dh
// resize of it (half-pixel centres, edges clamped).
func bilinear(sw, sh, dw, dh, x, y int, at func(i, j int) float32) float32 {
	fx := (float64(x)+0.5)*float64(sw)/float64(dw) - 0.5
	fy := (float64(y)+0.5)*float64(sh)/float64(dh) - 0.5
	fx = min(max(fx, 0), float64(sw-1))
	fy = min(max(fy, 0), float64(sh-1))
	x0, y0 := int(fx), int(fy)
	x1, y1 := min(x0+1, sw-1), min(y0+1, sh-1)
	tx, ty := float32(fx-float64(x0)), float32(fy-float64(y0))
	top := at(x0, y0)*(1-tx) + at(x1, y0)*tx
	bot := at(x0, y1)*(1-tx) + at(x1, y1)*tx
	return top*(1-ty) + bot*ty
}
