package mesh

/*
#include "hy3d.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// ErrInvalidGrid is wrapped by every error about a grid, level or block list
// that marching cubes cannot work on.
var ErrInvalidGrid = errors.New("invalid grid")

// Grid is a dense scalar field: the value at integer point (i, j, k) is
// Values[(i*NY+j)*NZ+k], so k varies fastest.
type Grid struct {
	Values     []float32
	NX, NY, NZ int
}

// The native kernel refuses more than 2^31 samples per axis and 2^40 in
// total; checking here first gives the caller a Go error without cgo.
const (
	maxGridAxis    = 1 << 31
	maxGridSamples = 1 << 40
)

func (g Grid) validate() error {
	if g.NX < 1 || g.NY < 1 || g.NZ < 1 {
		return fmt.Errorf("%w: dimensions %dx%dx%d must be positive", ErrInvalidGrid, g.NX, g.NY, g.NZ)
	}
	if g.NX > maxGridAxis || g.NY > maxGridAxis || g.NZ > maxGridAxis ||
		g.NX*g.NY > maxGridSamples || g.NZ > maxGridSamples/(g.NX*g.NY) {
		return fmt.Errorf("%w: dimensions %dx%dx%d are too large", ErrInvalidGrid, g.NX, g.NY, g.NZ)
	}
	if n := g.NX * g.NY * g.NZ; len(g.Values) != n {
		return fmt.Errorf("%w: %d values for a %dx%dx%d grid (want %d)", ErrInvalidGrid, len(g.Values), g.NX, g.NY, g.NZ, n)
	}
	return nil
}

// checkInputs is what both marching cubes entry points refuse before the
// native call: a cancelled context, a malformed grid, a level that is not finite.
func checkInputs(ctx context.Context, op string, g Grid, level float32) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := g.validate(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if math.IsNaN(float64(level)) || math.IsInf(float64(level), 0) {
		return fmt.Errorf("%s: %w: level %v is not finite", op, ErrInvalidGrid, level)
	}
	return nil
}

// MarchingCubes extracts the iso-surface {value == level} of g. Inside is
// value > level; NaN samples are outside and never produce a vertex.
// Vertices are in grid index coordinates, shared between triangles, and
// triangles are counter-clockwise seen from outside (normals point toward
// decreasing values). threads <= 0 uses every hardware thread. A field whose
// inside stays clear of the grid border yields a watertight mesh.
func MarchingCubes(ctx context.Context, g Grid, level float32, threads int) (*Mesh, error) {
	const op = "marching cubes"
	if err := checkInputs(ctx, op, g, level); err != nil {
		return nil, err
	}
	return runNative(op, ErrInvalidGrid, func(out **C.hy3d_mesh) C.hy3d_status {
		return C.hy3d_marching_cubes((*C.float)(unsafe.Pointer(&g.Values[0])),
			C.int64_t(g.NX), C.int64_t(g.NY), C.int64_t(g.NZ), C.float(level), cThreads(threads), out)
	})
}

// MarchingCubesBlocks is MarchingCubes restricted to the cells of the listed
// blocks. The grid's cells are cut into cubes of blockSize cells per side;
// block {bi, bj, bk} covers cells [bi*blockSize, (bi+1)*blockSize) along i,
// and likewise along j and k (clipped to the grid). Samples that are not a
// corner of a listed block's cell are never read, so they may hold anything,
// NaN included. When the blocks cover every cell the surface passes through,
// the result equals MarchingCubes' exactly, vertex order included.
func MarchingCubesBlocks(ctx context.Context, g Grid, level float32, blockSize int, blocks [][3]int32, threads int) (*Mesh, error) {
	const op = "marching cubes (blocks)"
	if err := checkInputs(ctx, op, g, level); err != nil {
		return nil, err
	}
	if blockSize < 1 || blockSize > math.MaxInt32 {
		return nil, fmt.Errorf("%s: %w: block size %d", op, ErrInvalidGrid, blockSize)
	}
	dims := [3]int{g.NX, g.NY, g.NZ}
	for b, block := range blocks {
		for axis, c := range block {
			cells := dims[axis] - 1
			if c < 0 || int(c)*blockSize >= cells {
				return nil, fmt.Errorf("%s: %w: block %d %v lies outside the grid's %dx%dx%d cells in blocks of %d",
					op, ErrInvalidGrid, b, block, g.NX-1, g.NY-1, g.NZ-1, blockSize)
			}
		}
	}
	var list *C.int32_t
	if len(blocks) > 0 {
		list = (*C.int32_t)(unsafe.Pointer(&blocks[0][0]))
	}
	return runNative(op, ErrInvalidGrid, func(out **C.hy3d_mesh) C.hy3d_status {
		return C.hy3d_marching_cubes_blocks((*C.float)(unsafe.Pointer(&g.Values[0])),
			C.int64_t(g.NX), C.int64_t(g.NY), C.int64_t(g.NZ), C.float(level), C.int32_t(blockSize),
			list, C.size_t(len(blocks)), cThreads(threads), out)
	})
}

func cThreads(threads int) C.int {
	return C.int(min(threads, math.MaxInt32))
}
