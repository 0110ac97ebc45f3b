package pipeline

import (
	"context"
	"fmt"

	"github.com/hy3d/hy3d/mesh"
)

// Surface extracts the level-0 iso-surface of a volume: marching cubes over
// the whole grid, or over the volume's active blocks after coarse-to-fine
// decoding, then maps the vertices from grid indices into the box.
//
// Hunyuan3D's MCSurfaceExtractor (surface_extractors.py) runs scikit-image's
// Lewiner marching cubes at mc_level 0 and maps vertices with
// v / grid_size · bbox_size + bbox_min where grid_size = R+1: an off-by-one
// (the grid has R+1 points but R cells), which shrinks every mesh by
// R/(R+1) toward −B. Point i sits at i·(2B/R) − B, so we map with R and the
// surface lands where the decoder put it.
//
// Hunyuan3D then reverses every face (export_to_trimesh in pipelines.py) to
// turn scikit-image's winding outward; our marching cubes already emits
// counter-clockwise faces seen from outside (inside is logit > 0), so the
// faces are kept as they are and the normals point outward all the same.
func (p *Pipeline) Surface(ctx context.Context, v *Volume) (*mesh.Mesh, error) {
	n := v.Resolution + 1
	if len(v.Values) != n*n*n {
		return nil, fmt.Errorf("volume has %d values, want %d³", len(v.Values), n)
	}
	grid := mesh.Grid{Values: v.Values, NX: n, NY: n, NZ: n}
	var m *mesh.Mesh
	var err error
	if v.Blocks != nil {
		m, err = mesh.MarchingCubesBlocks(ctx, grid, 0, v.BlockSize, v.Blocks, p.threads)
	} else {
		m, err = mesh.MarchingCubes(ctx, grid, 0, p.threads)
	}
	if err != nil {
		return nil, err
	}
	toBox(m.Vertices, v.Resolution, v.Bounds)
	return m, nil
}

// toBox maps grid-index coordinates in place to x·(2B/R) − B.
func toBox(xyz []float32, r int, bounds float64) {
	scale := 2 * bounds / float64(r)
	for i, x := range xyz {
		xyz[i] = float32(float64(x)*scale - bounds)
	}
}
