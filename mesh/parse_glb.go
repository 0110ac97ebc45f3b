package mesh

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
)

// GLB container constants (glTF 2.0, section 4.4).
const (
	glbMagic     = 0x46546C67 // "glTF"
	glbChunkJSON = 0x4E4F534A
	glbChunkBIN  = 0x004E4942
)

// The parts of a glTF document ParseGLB reads.
type glbDoc struct {
	Meshes []struct {
		Primitives []struct {
			Attributes map[string]int `json:"attributes"`
			Indices    *int           `json:"indices"`
			Mode       *int           `json:"mode"`
		} `json:"primitives"`
	} `json:"meshes"`
	Accessors []struct {
		BufferView    *int   `json:"bufferView"`
		ByteOffset    int64  `json:"byteOffset"`
		ComponentType int    `json:"componentType"`
		Count         int64  `json:"count"`
		Type          string `json:"type"`
	} `json:"accessors"`
	BufferViews []struct {
		Buffer     int   `json:"buffer"`
		ByteOffset int64 `json:"byteOffset"`
		ByteLength int64 `json:"byteLength"`
		ByteStride int64 `json:"byteStride"`
	} `json:"bufferViews"`
	Buffers []struct {
		URI string `json:"uri"`
	} `json:"buffers"`
}

// ParseGLB reads the triangles of binary glTF 2.0: every triangle
// primitive of every mesh, concatenated, with float32 VEC3 positions and
// unsigned 8-, 16- or 32-bit indices (or none) in the GLB's own BIN chunk;
// normals are not read. Node transforms are not applied, which is right for
// the GLBs hy3d writes (one node without a transform) and for any file whose
// meshes sit at the identity. External or data-URI buffers, sparse accessors
// and other primitive modes are refused.
func ParseGLB(r io.Reader) (*Mesh, error) {
	const op = "parse glb"
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %w: %s", op, ErrMalformed, fmt.Sprintf(format, args...))
	}
	if len(data) < 20 || binary.LittleEndian.Uint32(data) != glbMagic {
		return nil, bad("not a GLB file")
	}
	if v := binary.LittleEndian.Uint32(data[4:]); v != 2 {
		return nil, bad("glTF version %d, want 2", v)
	}
	if total := binary.LittleEndian.Uint32(data[8:]); uint64(total) > uint64(len(data)) {
		return nil, bad("header length %d beyond the %d bytes read", total, len(data))
	}
	jsonLen := uint64(binary.LittleEndian.Uint32(data[12:]))
	if binary.LittleEndian.Uint32(data[16:]) != glbChunkJSON || 20+jsonLen > uint64(len(data)) {
		return nil, bad("no JSON chunk")
	}
	var doc glbDoc
	if err := json.Unmarshal(data[20:20+jsonLen], &doc); err != nil {
		return nil, bad("JSON chunk: %v", err)
	}
	var bin []byte
	if rest := data[20+jsonLen:]; len(rest) >= 8 && binary.LittleEndian.Uint32(rest[4:]) == glbChunkBIN {
		n := uint64(binary.LittleEndian.Uint32(rest))
		if n > uint64(len(rest)-8) {
			return nil, bad("BIN chunk of %d bytes beyond the file", n)
		}
		bin = rest[8 : 8+n]
	}
	rd := glbReader{doc: &doc, bin: bin}
	m := &Mesh{}
	for mi, me := range doc.Meshes {
		for pi, p := range me.Primitives {
			if p.Mode != nil && *p.Mode != 4 {
				return nil, bad("mesh %d primitive %d: mode %d, want triangles (4)", mi, pi, *p.Mode)
			}
			pos, ok := p.Attributes["POSITION"]
			if !ok {
				return nil, bad("mesh %d primitive %d has no POSITION", mi, pi)
			}
			base := uint64(m.VertexCount())
			if err := rd.floats(pos, &m.Vertices); err != nil {
				return nil, bad("mesh %d primitive %d positions: %v", mi, pi, err)
			}
			count := uint64(m.VertexCount()) - base
			if p.Indices == nil {
				if count%3 != 0 {
					return nil, bad("mesh %d primitive %d: %d vertices without indices", mi, pi, count)
				}
				for i := uint64(0); i < count; i++ {
					m.Indices = append(m.Indices, uint32(base+i))
				}
				continue
			}
			first := len(m.Indices)
			if err := rd.indices(*p.Indices, &m.Indices); err != nil {
				return nil, bad("mesh %d primitive %d indices: %v", mi, pi, err)
			}
			if (len(m.Indices)-first)%3 != 0 {
				return nil, bad("mesh %d primitive %d: %d indices", mi, pi, len(m.Indices)-first)
			}
			for i := first; i < len(m.Indices); i++ {
				if uint64(m.Indices[i]) >= count {
					return nil, bad("mesh %d primitive %d: index %d of %d vertices", mi, pi, m.Indices[i], count)
				}
				m.Indices[i] += uint32(base)
			}
		}
	}
	if base := uint64(m.VertexCount()); base > math.MaxUint32 {
		return nil, bad("%d vertices", base)
	}
	return checked(op, m)
}

// glbReader reads accessors out of a GLB's BIN chunk, checking every
// offset against the bytes that are there before reading or allocating.
type glbReader struct {
	doc *glbDoc
	bin []byte
}

// element locates accessor a's elements: each of size bytes, count of them,
// stride apart, from start in the BIN chunk.
func (r glbReader) element(a, size int) (start, stride, count int64, err error) {
	if a < 0 || a >= len(r.doc.Accessors) {
		return 0, 0, 0, fmt.Errorf("accessor %d of %d", a, len(r.doc.Accessors))
	}
	acc := r.doc.Accessors[a]
	if acc.BufferView == nil || *acc.BufferView < 0 || *acc.BufferView >= len(r.doc.BufferViews) {
		return 0, 0, 0, fmt.Errorf("accessor %d: no usable bufferView", a)
	}
	v := r.doc.BufferViews[*acc.BufferView]
	if v.Buffer != 0 || len(r.doc.Buffers) == 0 || r.doc.Buffers[0].URI != "" {
		return 0, 0, 0, fmt.Errorf("accessor %d: only the GLB's BIN chunk is read", a)
	}
	n := int64(len(r.bin))
	if v.ByteOffset < 0 || v.ByteLength < 0 || v.ByteOffset > n || v.ByteLength > n-v.ByteOffset {
		return 0, 0, 0, fmt.Errorf("bufferView %d outside the BIN chunk", *acc.BufferView)
	}
	stride = int64(size)
	if v.ByteStride != 0 {
		if v.ByteStride < int64(size) || v.ByteStride > 252 {
			return 0, 0, 0, fmt.Errorf("bufferView %d: stride %d", *acc.BufferView, v.ByteStride)
		}
		stride = v.ByteStride
	}
	if acc.Count < 0 || acc.ByteOffset < 0 || acc.ByteOffset > v.ByteLength {
		return 0, 0, 0, fmt.Errorf("accessor %d: count %d, offset %d", a, acc.Count, acc.ByteOffset)
	}
	if acc.Count > 0 && (acc.Count-1) > (v.ByteLength-acc.ByteOffset-int64(size))/stride ||
		acc.Count > 0 && v.ByteLength-acc.ByteOffset < int64(size) {
		return 0, 0, 0, fmt.Errorf("accessor %d: %d elements do not fit bufferView %d", a, acc.Count, *acc.BufferView)
	}
	return v.ByteOffset + acc.ByteOffset, stride, acc.Count, nil
}

// floats appends accessor a's float32 VEC3 values to dst.
func (r glbReader) floats(a int, dst *[]float32) error {
	if a >= 0 && a < len(r.doc.Accessors) {
		if acc := r.doc.Accessors[a]; acc.ComponentType != 5126 || acc.Type != "VEC3" {
			return fmt.Errorf("accessor %d: component type %d %s, want 5126 VEC3", a, acc.ComponentType, acc.Type)
		}
	}
	start, stride, count, err := r.element(a, 12)
	if err != nil {
		return err
	}
	for i := int64(0); i < count; i++ {
		p := start + i*stride
		for k := int64(0); k < 3; k++ {
			*dst = append(*dst, math.Float32frombits(binary.LittleEndian.Uint32(r.bin[p+4*k:])))
		}
	}
	return nil
}

// indices appends accessor a's unsigned SCALAR values to dst.
func (r glbReader) indices(a int, dst *[]uint32) error {
	size := 0
	if a >= 0 && a < len(r.doc.Accessors) {
		acc := r.doc.Accessors[a]
		size = map[int]int{5121: 1, 5123: 2, 5125: 4}[acc.ComponentType]
		if size == 0 || acc.Type != "SCALAR" {
			return fmt.Errorf("accessor %d: component type %d %s, want unsigned SCALAR", a, acc.ComponentType, acc.Type)
		}
	}
	start, stride, count, err := r.element(a, max(size, 1))
	if err != nil {
		return err
	}
	for i := int64(0); i < count; i++ {
		p := start + i*stride
		switch size {
		case 1:
			*dst = append(*dst, uint32(r.bin[p]))
		case 2:
			*dst = append(*dst, uint32(binary.LittleEndian.Uint16(r.bin[p:])))
		default:
			*dst = append(*dst, binary.LittleEndian.Uint32(r.bin[p:]))
		}
	}
	return nil
}
