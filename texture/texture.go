// Package texture owns the geometry half of texturing a mesh: the UV atlas
// (charts, parameterization, packing), orthographic views of the mesh with
// Hunyuan3D-Paint's cameras and pixel conventions (face ids, barycentrics,
// depth, normals, positions), the rasterization of the mesh in UV space,
// baking painted views into a texture (Hunyuan3D-2.0's forward splat and
// 2.1's per-texel gather, cos⁴ × view weights, visibility and edge masks),
// filling what no view saw, and export as PBR glTF or OBJ + MTL. The
// kernels run in the native shim (native/src/texture_*.cpp); this package
// is its only cgo caller for them (native.go) and hands out plain Go
// slices. docs/texture.md describes the stages and where they differ from
// Hunyuan3D's.
package texture

import (
	"errors"
	"fmt"
)

// ErrInvalidInput is wrapped by every error about an argument the kernels
// cannot work on: a mesh with an index out of range or a non-finite
// coordinate, an image of the wrong size, an option out of range.
var ErrInvalidInput = errors.New("invalid texture input")

// Image is a row-major float image with Channels floats per pixel.
type Image struct {
	Width, Height, Channels int
	Pix                     []float32
}

// NewImage allocates a zero image.
func NewImage(width, height, channels int) Image {
	return Image{Width: width, Height: height, Channels: channels, Pix: make([]float32, width*height*channels)}
}

// check reports an image whose buffer does not match its size.
func (im Image) check(op string) error {
	if im.Width <= 0 || im.Height <= 0 || im.Channels <= 0 || im.Channels > 16 ||
		len(im.Pix) != im.Width*im.Height*im.Channels {
		return fmt.Errorf("%s: %w: image %dx%dx%d with %d values", op, ErrInvalidInput, im.Width, im.Height,
			im.Channels, len(im.Pix))
	}
	return nil
}

// maxSide bounds view and texture sizes (the native kernels' limit).
const maxSide = 1 << 15

func checkSize(op string, size int) error {
	if size <= 0 || size > maxSide {
		return fmt.Errorf("%s: %w: size %d outside 1..%d", op, ErrInvalidInput, size, maxSide)
	}
	return nil
}
