// Package field reads the benchmark fields that bench/marching_cubes/fields.py
// writes (raw little-endian float32 cubes), so every benchmark measures the
// same input.
package field

import (
	"fmt"
	"os"

	"github.com/hy3d/hy3d/mesh"
	"github.com/hy3d/hy3d/tensor"
)

// Read loads an n³ raw float32 field.
func Read(path string, n int) (mesh.Grid, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return mesh.Grid{}, fmt.Errorf("read field: %w", err)
	}
	if len(raw) != 4*n*n*n {
		return mesh.Grid{}, fmt.Errorf("%s: %d bytes, want %d for %d^3 float32", path, len(raw), 4*n*n*n, n)
	}
	values, err := tensor.DecodeRaw(raw)
	if err != nil {
		return mesh.Grid{}, fmt.Errorf("%s: %w", path, err)
	}
	return mesh.Grid{Values: values, NX: n, NY: n, NZ: n}, nil
}
