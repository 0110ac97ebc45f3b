package texture

// The native shim is built by CMake into build/libhy3d.a (make native).

/*
#cgo CFLAGS: -I${SRCDIR}/../native/include
#cgo LDFLAGS: -L${SRCDIR}/../build -lhy3d -lmeshoptimizer -ljpeg -lstdc++ -lm -lpthread
#include "hy3d.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"slices"
	"unsafe"

	"github.com/hy3d/hy3d/mesh"
)

// call runs one native entry point with the OS thread locked until the
// thread-local last error has been read, turning a failed status into an
// error (ErrInvalidInput for rejected arguments).
func call(op string, fn func() C.hy3d_status) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	status := fn()
	if status == C.HY3D_OK {
		return nil
	}
	msg := C.GoString(C.hy3d_last_error())
	switch status {
	case C.HY3D_ERR_INVALID_ARGUMENT:
		return fmt.Errorf("%s: %w: %s", op, ErrInvalidInput, msg)
	case C.HY3D_ERR_OUT_OF_MEMORY:
		return fmt.Errorf("%s: %w: %s", op, mesh.ErrNativeOutOfMemory, msg)
	default:
		return fmt.Errorf("%s: native status %d: %s", op, int(status), msg)
	}
}

// Pointers to the first element, or NULL for an empty slice. The slices
// stay referenced by the caller for the duration of the call, and cgo
// pins Go memory passed as an argument.
func f32(s []float32) *C.float {
	if len(s) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&s[0]))
}

func u32(s []uint32) *C.uint32_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.uint32_t)(unsafe.Pointer(&s[0]))
}

func i32(s []int32) *C.int32_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.int32_t)(unsafe.Pointer(&s[0]))
}

func u8(s []uint8) *C.uint8_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&s[0]))
}

func nativeRasterizeOrtho(vertices []float32, indices []uint32, worldToCamera *[12]float32, orthoScale float32,
	width, height, threads int, faceIDs []int32, bary, depth []float32) error {
	return call("rasterize view", func() C.hy3d_status {
		return C.hy3d_rasterize_ortho(f32(vertices), C.size_t(len(vertices)/3), u32(indices), C.size_t(len(indices)/3),
			(*C.float)(unsafe.Pointer(&worldToCamera[0])), C.float(orthoScale), C.int32_t(width), C.int32_t(height),
			C.int(threads), i32(faceIDs), f32(bary), f32(depth))
	})
}

func nativeRasterizeUV(uvs []float32, indices []uint32, width, height, threads int, faceIDs []int32, bary []float32) error {
	return call("rasterize uv", func() C.hy3d_status {
		return C.hy3d_rasterize_uv(f32(uvs), C.size_t(len(uvs)/2), u32(indices), C.size_t(len(indices)/3),
			C.int32_t(width), C.int32_t(height), C.int(threads), i32(faceIDs), f32(bary))
	})
}

// nativeUVTexels lists the covered texels of a UV raster with the vertex
// attributes interpolated there.
func nativeUVTexels(uvs []float32, indices []uint32, faceIDs []int32, width, height int, attributes []float32,
	channels, threads int) ([]uint32, []float32, error) {
	count := C.size_t(0)
	texels := func(index []uint32, values []float32) error {
		return call("uv texels", func() C.hy3d_status {
			return C.hy3d_uv_texels(f32(uvs), C.size_t(len(uvs)/2), u32(indices), C.size_t(len(indices)/3), i32(faceIDs),
				C.int32_t(width), C.int32_t(height), f32(attributes), C.int32_t(channels), C.int(threads), &count,
				u32(index), f32(values))
		})
	}
	if err := texels(nil, nil); err != nil {
		return nil, nil, err
	}
	index := make([]uint32, int(count))
	values := make([]float32, channels*int(count))
	if count == 0 {
		return index, values, nil
	}
	return index, values, texels(index, values)
}

// nativeInterpolate blends attributes over a raster: per face or per
// vertex, rescaled to unit length when unit is set.
func nativeInterpolate(attributes []float32, channels int, perFace, unit bool, indices []uint32, faceIDs []int32,
	bary []float32, background []float32, threads int, out []float32) error {
	flags := C.int32_t(0)
	if perFace {
		flags |= C.HY3D_INTERPOLATE_PER_FACE
	}
	if unit {
		flags |= C.HY3D_INTERPOLATE_UNIT
	}
	return call("interpolate", func() C.hy3d_status {
		return C.hy3d_interpolate(f32(attributes), C.int32_t(channels), flags, C.size_t(len(attributes)/channels),
			u32(indices), C.size_t(len(indices)/3), i32(faceIDs), f32(bary), C.size_t(len(faceIDs)), f32(background),
			C.int(threads), f32(out))
	})
}

func nativeViewWeights(faceIDs []int32, normals, depth []float32, width, height int, toCamera [3]float32,
	cosThreshold float32, radius, threads int, weights []float32) error {
	return call("bake view weights", func() C.hy3d_status {
		return C.hy3d_bake_view_weights(i32(faceIDs), f32(normals), f32(depth), C.int32_t(width), C.int32_t(height),
			(*C.float)(unsafe.Pointer(&toCamera[0])), C.float(cosThreshold), C.int32_t(radius), C.int(threads), f32(weights))
	})
}

// texelRun is how many consecutive texels of a texel list share one box
// for nativeBakeGather's culling.
const texelRun = 64

// nativeTexelBounds boxes runs of texelRun texels for nativeBakeGather.
func nativeTexelBounds(texelPositions []float32, threads int) ([]float32, error) {
	runs := (len(texelPositions)/3 + texelRun - 1) / texelRun
	bounds := make([]float32, 6*runs)
	return bounds, call("texel bounds", func() C.hy3d_status {
		return C.hy3d_texel_bounds(f32(texelPositions), C.size_t(len(texelPositions)/3), texelRun, C.int(threads),
			f32(bounds))
	})
}

func nativeBakeGather(texelPositions []float32, texelIndex []uint32, texelBounds, image, depth, weights []float32,
	width, height, channels int, worldToCamera *[12]float32, orthoScale, viewWeight, exponent, depthTolerance float32,
	texturePixels, threads int, accumColor, accumWeight []float32) (bool, error) {
	var used C.int32_t
	err := call("bake gather", func() C.hy3d_status {
		return C.hy3d_bake_gather(f32(texelPositions), u32(texelIndex), C.size_t(len(texelIndex)), f32(texelBounds),
			texelRun, f32(image), f32(depth),
			f32(weights), C.int32_t(width), C.int32_t(height), C.int32_t(channels),
			(*C.float)(unsafe.Pointer(&worldToCamera[0])), C.float(orthoScale), C.float(viewWeight), C.float(exponent),
			C.float(depthTolerance), C.size_t(texturePixels), C.int(threads), f32(accumColor), f32(accumWeight), &used)
	})
	return used != 0, err
}

func nativeBakeSplat(uvMap, image, weights []float32, width, height, channels, texWidth, texHeight int,
	viewWeight, exponent float32, threads int, accumColor, accumWeight []float32) (bool, error) {
	var used C.int32_t
	err := call("bake splat", func() C.hy3d_status {
		return C.hy3d_bake_splat(f32(uvMap), f32(image), f32(weights), C.int32_t(width), C.int32_t(height),
			C.int32_t(channels), C.int32_t(texWidth), C.int32_t(texHeight), C.float(viewWeight), C.float(exponent),
			C.int(threads), f32(accumColor), f32(accumWeight), &used)
	})
	return used != 0, err
}

func nativeBakeResolve(accumColor, accumWeight []float32, channels, threads int, painted []uint8) error {
	return call("bake resolve", func() C.hy3d_status {
		return C.hy3d_bake_resolve(f32(accumColor), f32(accumWeight), C.size_t(len(accumWeight)), C.int32_t(channels),
			C.int(threads), u8(painted))
	})
}

func nativeFillVertexColors(positions, uvs []float32, weld []uint32, indices []uint32, texture []float32,
	painted []uint8, width, height, channels int, colors []float32, known []uint8) error {
	return call("fill vertex colours", func() C.hy3d_status {
		return C.hy3d_fill_vertex_colors(f32(positions), f32(uvs), u32(weld), C.size_t(len(positions)/3), u32(indices),
			C.size_t(len(indices)/3), f32(texture), u8(painted), C.int32_t(width), C.int32_t(height), C.int32_t(channels),
			f32(colors), u8(known))
	})
}

func nativeFillTexels(texture []float32, painted []uint8, faceIDs []int32, uvs []float32, indices []uint32,
	colors []float32, known []uint8, width, height, channels, threads int) error {
	return call("fill texels", func() C.hy3d_status {
		return C.hy3d_fill_texels(f32(texture), u8(painted), i32(faceIDs), f32(uvs), u32(indices), C.size_t(len(indices)/3),
			f32(colors), u8(known), C.size_t(len(known)), C.int32_t(width), C.int32_t(height), C.int32_t(channels),
			C.int(threads))
	})
}

// nativeAtlas builds an atlas and copies it into Go memory.
func nativeAtlas(vertices []float32, indices []uint32, opt AtlasOptions) (*Atlas, error) {
	const op = "atlas"
	copts := C.hy3d_atlas_options{
		size: C.int32_t(opt.Size), padding: C.int32_t(opt.Padding),
		max_chart_angle: C.float(opt.MaxChartAngle), threads: C.int32_t(opt.Threads),
	}
	var handle *C.hy3d_atlas
	if err := call(op, func() C.hy3d_status {
		return C.hy3d_atlas_build(f32(vertices), C.size_t(len(vertices)/3), u32(indices), C.size_t(len(indices)/3),
			&copts, &handle)
	}); err != nil {
		return nil, err
	}
	defer C.hy3d_atlas_destroy(handle)
	var (
		xref, idx, charts *C.uint32_t
		uvs               *C.float
		nv, nt            C.size_t
		stats             C.hy3d_atlas_stats
	)
	if err := call(op, func() C.hy3d_status {
		return C.hy3d_atlas_view(handle, &xref, &uvs, &nv, &idx, &nt, &charts, &stats)
	}); err != nil {
		return nil, err
	}
	return &Atlas{
		Xref:      slices.Clone(unsafe.Slice((*uint32)(unsafe.Pointer(xref)), int(nv))),
		UV:        slices.Clone(unsafe.Slice((*float32)(unsafe.Pointer(uvs)), 2*int(nv))),
		Indices:   slices.Clone(unsafe.Slice((*uint32)(unsafe.Pointer(idx)), 3*int(nt))),
		FaceChart: slices.Clone(unsafe.Slice((*uint32)(unsafe.Pointer(charts)), int(nt))),
		Stats: AtlasStats{
			Charts: int(stats.charts), StretchL2: float64(stats.stretch_l2),
			Utilization: float64(stats.utilization), OverlapTexels: uint64(stats.overlap_texels),
		},
	}, nil
}

// nativeEncodeJPEG encodes the components of img picked by layout as JPEG.
func nativeEncodeJPEG(img Image, layout []int32, quality int) ([]byte, error) {
	var buffer *C.hy3d_buffer
	if err := call("encode jpeg", func() C.hy3d_status {
		return C.hy3d_encode_jpeg(f32(img.Pix), C.int32_t(img.Width), C.int32_t(img.Height), C.int32_t(img.Channels),
			(*C.int32_t)(unsafe.Pointer(&layout[0])), C.int32_t(len(layout)), C.int32_t(quality), 0, &buffer)
	}); err != nil {
		return nil, err
	}
	defer C.hy3d_buffer_destroy(buffer)
	var data *C.uint8_t
	var size C.size_t
	if err := call("encode jpeg", func() C.hy3d_status { return C.hy3d_buffer_view(buffer, &data, &size) }); err != nil {
		return nil, err
	}
	return C.GoBytes(unsafe.Pointer(data), C.int(size)), nil
}
