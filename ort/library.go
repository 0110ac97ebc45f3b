package ort

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hy3d/hy3d/tensor"
)

// LibraryEnv names the environment variable that points at the ONNX Runtime
// shared library when Options.LibraryPath is empty.
const LibraryEnv = "HY3D_ORT_LIB"

// libraryRel is where `make deps` installs the library, relative to the
// module root.
var libraryRel = filepath.Join("build", "onnxruntime", "libonnxruntime.so.1.24.1")

// findLibrary resolves the library path: the explicit option, else the
// environment variable, else build/onnxruntime under each start directory or
// one of its parents up to the module root (the first directory holding
// go.mod). A configured path is never second-guessed by the search.
func findLibrary(explicit, env string, starts []string) (string, error) {
	var tried []string
	switch {
	case explicit != "":
		tried = []string{explicit}
	case env != "":
		tried = []string{env}
	default:
		seen := map[string]bool{}
		for _, start := range starts {
			for _, dir := range ancestors(start) {
				p := filepath.Join(dir, libraryRel)
				if !seen[p] {
					seen[p] = true
					tried = append(tried, p)
				}
			}
		}
	}
	for _, p := range tried {
		st, err := os.Stat(p)
		if err == nil && st.Mode().IsRegular() {
			return p, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("onnx runtime library %s: %w: %w", p, tensor.ErrUnavailable, err)
		}
	}
	source := "searched"
	switch {
	case explicit != "":
		source = "Options.LibraryPath"
	case env != "":
		source = LibraryEnv
	}
	return "", fmt.Errorf("onnx runtime library not found (%s: %s); run `make deps` to install it: %w",
		source, strings.Join(tried, ", "), tensor.ErrUnavailable)
}

// ancestors lists dir and its parents, stopping after the module root.
func ancestors(dir string) []string {
	if dir == "" {
		return nil
	}
	dir = filepath.Clean(dir)
	var out []string
	for {
		out = append(out, dir)
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return out
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return out
		}
		dir = parent
	}
}

// searchStarts are the working directory and the executable's directory.
func searchStarts() []string {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		starts = append(starts, filepath.Dir(exe))
	}
	return starts
}
