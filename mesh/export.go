package mesh

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Format names a mesh file format; its value is the usual file extension.
type Format string

// The formats Export writes.
const (
	FormatGLB Format = "glb" // binary glTF 2.0, the default
	FormatOBJ Format = "obj" // Wavefront OBJ with normals
	FormatPLY Format = "ply" // binary little-endian PLY with normals
	FormatSTL Format = "stl" // binary STL with facet normals
)

// Formats lists every format Export writes, the default first.
var Formats = []Format{FormatGLB, FormatOBJ, FormatPLY, FormatSTL}

// ErrUnknownFormat is wrapped when a format name is not one of Formats.
var ErrUnknownFormat = errors.New("unknown mesh format")

// ParseFormat accepts a format name or file extension in any case, with or
// without the leading dot ("GLB", ".obj").
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimPrefix(s, ".")))
	for _, known := range Formats {
		if f == known {
			return f, nil
		}
	}
	return "", fmt.Errorf("%w %q (want one of glb, obj, ply, stl)", ErrUnknownFormat, s)
}

// Extension is the file extension with its dot, e.g. ".glb".
func (f Format) Extension() string { return "." + string(f) }

// ContentType is the media type to serve the format with.
func (f Format) ContentType() string {
	switch f {
	case FormatGLB:
		return "model/gltf-binary"
	case FormatOBJ:
		return "model/obj"
	case FormatSTL:
		return "model/stl"
	default: // PLY has no registered media type
		return "application/octet-stream"
	}
}

// Export writes m to w in format f. Meshes without normals get smooth
// area-weighted ones (VertexNormals); STL always carries facet normals.
func Export(w io.Writer, m *Mesh, f Format) error {
	switch f {
	case FormatGLB:
		return WriteGLB(w, m)
	case FormatOBJ:
		return WriteOBJ(w, m)
	case FormatPLY:
		return WritePLY(w, m)
	case FormatSTL:
		return WriteSTL(w, m)
	default:
		return fmt.Errorf("export: %w %q", ErrUnknownFormat, string(f))
	}
}

// bufferedWriter batches small writes and remembers the first error, so the
// exporters can write field by field and check once at the end.
type bufferedWriter struct {
	*bufio.Writer
}

func newBufferedWriter(w io.Writer) bufferedWriter {
	return bufferedWriter{bufio.NewWriterSize(w, 1<<16)}
}

// finish flushes and reports the first write error, wrapped with op.
func (b bufferedWriter) finish(op string) error {
	if err := b.Flush(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}
