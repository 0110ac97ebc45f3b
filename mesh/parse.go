package mesh

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// ErrMalformed is wrapped by every parse error: the input is not a valid
// file of the format, or uses a part of it these readers do not support.
var ErrMalformed = errors.New("malformed mesh file")

// The readers accept untrusted input: counts in headers are checked against
// the bytes that are actually there before anything is allocated for them,
// and every index is checked. The whole input is read into memory, so the
// caller bounds its size.

// ParseSTL reads binary or ASCII STL. Triangles do not share vertices (STL
// stores none): vertex 3t+k is corner k of triangle t, and Normals holds
// each triangle's stored facet normal at its three corners.
func ParseSTL(r io.Reader) (*Mesh, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("parse stl: %w", err)
	}
	if len(data) >= 84 {
		if n := binary.LittleEndian.Uint32(data[80:84]); uint64(len(data)) == 84+50*uint64(n) {
			return checked("parse stl", parseBinarySTL(data[84:], int(n)))
		}
	}
	if bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("solid")) {
		m, err := parseASCIISTL(string(data))
		if err != nil {
			return nil, fmt.Errorf("parse stl: %w", err)
		}
		return checked("parse stl", m)
	}
	return nil, fmt.Errorf("parse stl: %w: neither a binary STL of the size its count implies nor ASCII", ErrMalformed)
}

func parseBinarySTL(data []byte, n int) *Mesh {
	m := &Mesh{Vertices: make([]float32, 9*n), Indices: make([]uint32, 3*n), Normals: make([]float32, 9*n)}
	f32 := func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }
	for t := 0; t < n; t++ {
		rec := data[50*t:]
		for k := 0; k < 3; k++ {
			v := 3*t + k
			m.Indices[v] = uint32(v)
			for i := 0; i < 3; i++ {
				m.Normals[3*v+i] = f32(rec[4*i:])
				m.Vertices[3*v+i] = f32(rec[12+12*k+4*i:])
			}
		}
	}
	return m
}

func parseASCIISTL(text string) (*Mesh, error) {
	m := &Mesh{Normals: []float32{}}
	var normal [3]float32
	inFacet, corners := false, 0
	for lineNo, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		bad := func(why string) error {
			return fmt.Errorf("%w: line %d: %s", ErrMalformed, lineNo+1, why)
		}
		switch fields[0] {
		case "facet":
			if inFacet {
				return nil, bad("facet inside a facet")
			}
			inFacet = true
			if len(fields) != 5 || fields[1] != "normal" {
				return nil, bad("want facet normal nx ny nz")
			}
			if err := parseFloats(fields[2:], normal[:]); err != nil {
				return nil, bad(err.Error())
			}
		case "vertex":
			if !inFacet || corners == 3 || len(fields) != 4 {
				return nil, bad("want three vertex x y z lines per facet")
			}
			var p [3]float32
			if err := parseFloats(fields[1:], p[:]); err != nil {
				return nil, bad(err.Error())
			}
			m.Indices = append(m.Indices, uint32(len(m.Vertices)/3))
			m.Vertices = append(m.Vertices, p[:]...)
			m.Normals = append(m.Normals, normal[:]...)
			corners++
		case "endfacet":
			if !inFacet || corners != 3 {
				return nil, bad("facet without three vertices")
			}
			inFacet, corners = false, 0
		case "solid", "outer", "endloop", "endsolid":
		default:
			return nil, bad("unexpected " + strconv.Quote(fields[0]))
		}
	}
	if inFacet {
		return nil, fmt.Errorf("%w: unterminated facet", ErrMalformed)
	}
	return m, nil
}

// ParseOBJ reads the geometry of a Wavefront OBJ: "v" positions (anything
// after x y z, a weight or a colour, is ignored), "vn" normals and "f" faces in any of the index forms
// (v, v/t, v//n, v/t/n; negative indices count back), polygons split into
// fans. Normals are kept when they pair one to one with the positions (as
// WriteOBJ writes them). Every other statement is ignored.
func ParseOBJ(r io.Reader) (*Mesh, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("parse obj: %w", err)
	}
	m := &Mesh{}
	var normals []float32
	normalsPaired := true
	corner := func(field string, lineNo int) (uint32, error) {
		parts := strings.Split(field, "/")
		if len(parts) > 3 {
			return 0, fmt.Errorf("%w: line %d: face corner %q", ErrMalformed, lineNo, field)
		}
		resolve := func(s string, count int) (uint32, error) {
			i, err := strconv.ParseInt(s, 10, 64)
			if err == nil && i < 0 {
				i += int64(count) + 1
			}
			if err != nil || i < 1 || i > int64(count) {
				return 0, fmt.Errorf("%w: line %d: index %q out of range for %d", ErrMalformed, lineNo, s, count)
			}
			return uint32(i - 1), nil
		}
		v, err := resolve(parts[0], len(m.Vertices)/3)
		if err != nil {
			return 0, err
		}
		if len(parts) == 3 && parts[2] != "" {
			n, err := resolve(parts[2], len(normals)/3)
			if err != nil {
				return 0, err
			}
			normalsPaired = normalsPaired && n == v
		} else {
			normalsPaired = false
		}
		return v, nil
	}
	for lineNo, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "v", "vn":
			if len(fields) < 4 || (fields[0] == "vn" && len(fields) > 4) {
				return nil, fmt.Errorf("parse obj: %w: line %d: want %s x y z", ErrMalformed, lineNo+1, fields[0])
			}
			var p [3]float32
			if err := parseFloats(fields[1:4], p[:]); err != nil {
				return nil, fmt.Errorf("parse obj: %w: line %d: %v", ErrMalformed, lineNo+1, err)
			}
			if fields[0] == "v" {
				m.Vertices = append(m.Vertices, p[:]...)
			} else {
				normals = append(normals, p[:]...)
			}
		case "f":
			if len(fields) < 4 {
				return nil, fmt.Errorf("parse obj: %w: line %d: a face needs three corners", ErrMalformed, lineNo+1)
			}
			var first, prev uint32
			for k, field := range fields[1:] {
				v, err := corner(field, lineNo+1)
				if err != nil {
					return nil, fmt.Errorf("parse obj: %w", err)
				}
				switch {
				case k == 0:
					first = v
				case k >= 2:
					m.Indices = append(m.Indices, first, prev, v)
				}
				prev = v
			}
		}
	}
	if normalsPaired && len(normals) == len(m.Vertices) && len(m.Indices) > 0 {
		m.Normals = normals
	}
	return checked("parse obj", m)
}

// ParsePLY reads ASCII, binary little-endian and binary big-endian PLY. It
// takes x, y, z (and nx, ny, nz when all three are there) from the
// "vertex" element and the "vertex_indices" (or "vertex_index") list of
// the "face" element, splitting polygons into fans; other properties and
// elements are skipped.
func ParsePLY(r io.Reader) (*Mesh, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("parse ply: %w", err)
	}
	m, err := parsePLY(data)
	if err != nil {
		return nil, fmt.Errorf("parse ply: %w", err)
	}
	return checked("parse ply", m)
}

// checked lets through only meshes every consumer can use: indices in
// range, finite coordinates and normals.
func checked(op string, m *Mesh) (*Mesh, error) {
	err := m.validate()
	for i := 0; err == nil && i < len(m.Normals); i++ {
		if x := float64(m.Normals[i]); math.IsNaN(x) || math.IsInf(x, 0) {
			err = fmt.Errorf("normal %d is not finite", i/3)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", op, ErrMalformed, err)
	}
	return m, nil
}

// maxPrealloc caps what a header's count alone may reserve; beyond it the
// arrays grow with the records actually read.
const maxPrealloc = 1 << 20

type plyProperty struct {
	name      string
	typ       string // scalar type, or the item type of a list
	countType string // "" for a scalar
}

type plyElement struct {
	name  string
	count int
	props []plyProperty
}

// plyTypeSize is the byte size of every PLY scalar type (0: unknown).
func plyTypeSize(t string) int {
	switch t {
	case "char", "uchar", "int8", "uint8":
		return 1
	case "short", "ushort", "int16", "uint16":
		return 2
	case "int", "uint", "float", "int32", "uint32", "float32":
		return 4
	case "double", "float64":
		return 8
	}
	return 0
}

func parsePLY(data []byte) (*Mesh, error) {
	end := bytes.Index(data, []byte("end_header"))
	if !bytes.HasPrefix(data, []byte("ply")) || end < 0 {
		return nil, fmt.Errorf("%w: no ply header", ErrMalformed)
	}
	body := data[end+len("end_header"):]
	switch {
	case bytes.HasPrefix(body, []byte("\r\n")):
		body = body[2:]
	case bytes.HasPrefix(body, []byte("\n")):
		body = body[1:]
	default:
		return nil, fmt.Errorf("%w: end_header not followed by a newline", ErrMalformed)
	}
	var format string
	var elements []*plyElement
	for _, line := range strings.Split(string(data[:end]), "\n")[1:] {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "format":
			if len(fields) != 3 || fields[2] != "1.0" {
				return nil, fmt.Errorf("%w: format line %q", ErrMalformed, line)
			}
			format = fields[1]
		case "element":
			if len(fields) != 3 {
				return nil, fmt.Errorf("%w: element line %q", ErrMalformed, line)
			}
			n, err := strconv.Atoi(fields[2])
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%w: element count %q", ErrMalformed, fields[2])
			}
			elements = append(elements, &plyElement{name: fields[1], count: n})
		case "property":
			if len(elements) == 0 {
				return nil, fmt.Errorf("%w: property before any element", ErrMalformed)
			}
			el := elements[len(elements)-1]
			var p plyProperty
			switch {
			case len(fields) == 3 && plyTypeSize(fields[1]) > 0:
				p = plyProperty{name: fields[2], typ: fields[1]}
			case len(fields) == 5 && fields[1] == "list" && plyTypeSize(fields[2]) > 0 && plyTypeSize(fields[3]) > 0 &&
				!strings.Contains(fields[2], "float") && fields[2] != "double":
				p = plyProperty{name: fields[4], typ: fields[3], countType: fields[2]}
			default:
				return nil, fmt.Errorf("%w: property line %q", ErrMalformed, line)
			}
			el.props = append(el.props, p)
		case "comment", "obj_info":
		default:
			return nil, fmt.Errorf("%w: header line %q", ErrMalformed, line)
		}
	}
	var rd plyReader
	switch format {
	case "ascii":
		rd = &plyASCII{fields: strings.Fields(string(body))}
	case "binary_little_endian":
		rd = &plyBinary{data: body, order: binary.LittleEndian}
	case "binary_big_endian":
		rd = &plyBinary{data: body, order: binary.BigEndian}
	default:
		return nil, fmt.Errorf("%w: format %q", ErrMalformed, format)
	}

	m := &Mesh{}
	for _, el := range elements {
		// Every record takes at least one byte or one field, whatever its
		// properties: a count beyond that cannot be real.
		if el.count > rd.remaining() || (len(el.props) == 0 && el.count > 0) {
			return nil, fmt.Errorf("%w: element %s claims %d records", ErrMalformed, el.name, el.count)
		}
		var err error
		switch el.name {
		case "vertex":
			err = readPLYVertices(rd, el, m)
		case "face":
			err = readPLYFaces(rd, el, m)
		default:
			for i := 0; i < el.count && err == nil; i++ {
				for _, p := range el.props {
					if _, err = rd.property(p); err != nil {
						break
					}
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("element %s: %w", el.name, err)
		}
	}
	n := uint32(len(m.Vertices) / 3)
	for _, v := range m.Indices {
		if v >= n {
			return nil, fmt.Errorf("%w: face index %d out of range for %d vertices", ErrMalformed, v, n)
		}
	}
	return m, nil
}

func readPLYVertices(rd plyReader, el *plyElement, m *Mesh) error {
	slot := map[string]int{"x": 0, "y": 1, "z": 2, "nx": 3, "ny": 4, "nz": 5}
	var have [6]bool
	for _, p := range el.props {
		if s, ok := slot[p.name]; ok && p.countType == "" {
			have[s] = true
		}
	}
	if !have[0] || !have[1] || !have[2] {
		return fmt.Errorf("%w: vertex without x, y and z", ErrMalformed)
	}
	withNormals := have[3] && have[4] && have[5]
	m.Vertices = make([]float32, 0, 3*min(el.count, maxPrealloc))
	if withNormals {
		m.Normals = make([]float32, 0, 3*min(el.count, maxPrealloc))
	}
	for i := 0; i < el.count; i++ {
		var rec [6]float32
		for _, p := range el.props {
			vals, err := rd.property(p)
			if err != nil {
				return err
			}
			if s, ok := slot[p.name]; ok && p.countType == "" {
				rec[s] = float32(vals[0])
			}
		}
		m.Vertices = append(m.Vertices, rec[:3]...)
		if withNormals {
			m.Normals = append(m.Normals, rec[3:]...)
		}
	}
	return nil
}

func readPLYFaces(rd plyReader, el *plyElement, m *Mesh) error {
	found := false
	for _, p := range el.props {
		found = found || (p.countType != "" && (p.name == "vertex_indices" || p.name == "vertex_index"))
	}
	if !found {
		return fmt.Errorf("%w: face without a vertex_indices list", ErrMalformed)
	}
	m.Indices = make([]uint32, 0, 3*min(el.count, maxPrealloc))
	for i := 0; i < el.count; i++ {
		for _, p := range el.props {
			vals, err := rd.property(p)
			if err != nil {
				return err
			}
			if p.countType == "" || (p.name != "vertex_indices" && p.name != "vertex_index") {
				continue
			}
			if len(vals) < 3 {
				return fmt.Errorf("%w: face %d has %d corners", ErrMalformed, i, len(vals))
			}
			for k, v := range vals {
				if v < 0 || v > math.MaxUint32 || v != math.Trunc(v) {
					return fmt.Errorf("%w: face %d: index %v", ErrMalformed, i, v)
				}
				if k >= 2 {
					m.Indices = append(m.Indices, uint32(vals[0]), uint32(vals[k-1]), uint32(v))
				}
			}
		}
	}
	return nil
}

// plyReader yields the values of one property at a time: one for a scalar,
// the items for a list.
type plyReader interface {
	property(p plyProperty) ([]float64, error)
	remaining() int // an upper bound on how many records can still follow
}

type plyBinary struct {
	data  []byte
	order binary.ByteOrder
	buf   []float64
}

func (b *plyBinary) remaining() int { return len(b.data) }

func (b *plyBinary) scalar(t string) (float64, error) {
	size := plyTypeSize(t)
	if len(b.data) < size {
		return 0, fmt.Errorf("%w: data ends early", ErrMalformed)
	}
	raw := b.data[:size]
	b.data = b.data[size:]
	switch t {
	case "char", "int8":
		return float64(int8(raw[0])), nil
	case "uchar", "uint8":
		return float64(raw[0]), nil
	case "short", "int16":
		return float64(int16(b.order.Uint16(raw))), nil
	case "ushort", "uint16":
		return float64(b.order.Uint16(raw)), nil
	case "int", "int32":
		return float64(int32(b.order.Uint32(raw))), nil
	case "uint", "uint32":
		return float64(b.order.Uint32(raw)), nil
	case "float", "float32":
		return float64(math.Float32frombits(b.order.Uint32(raw))), nil
	default: // double
		return math.Float64frombits(b.order.Uint64(raw)), nil
	}
}

func (b *plyBinary) property(p plyProperty) ([]float64, error) {
	b.buf = b.buf[:0]
	n := 1
	if p.countType != "" {
		c, err := b.scalar(p.countType)
		if err != nil {
			return nil, err
		}
		if c < 0 || c*float64(plyTypeSize(p.typ)) > float64(len(b.data)) {
			return nil, fmt.Errorf("%w: list of %v items", ErrMalformed, c)
		}
		n = int(c)
	}
	for i := 0; i < n; i++ {
		v, err := b.scalar(p.typ)
		if err != nil {
			return nil, err
		}
		b.buf = append(b.buf, v)
	}
	return b.buf, nil
}

type plyASCII struct {
	fields []string
	buf    []float64
}

func (a *plyASCII) remaining() int { return len(a.fields) }

func (a *plyASCII) next() (float64, error) {
	if len(a.fields) == 0 {
		return 0, fmt.Errorf("%w: data ends early", ErrMalformed)
	}
	v, err := strconv.ParseFloat(a.fields[0], 64)
	if err != nil {
		return 0, fmt.Errorf("%w: value %q", ErrMalformed, a.fields[0])
	}
	a.fields = a.fields[1:]
	return v, nil
}

func (a *plyASCII) property(p plyProperty) ([]float64, error) {
	a.buf = a.buf[:0]
	n := 1
	if p.countType != "" {
		c, err := a.next()
		if err != nil {
			return nil, err
		}
		if c < 0 || c != math.Trunc(c) || c > float64(len(a.fields)) {
			return nil, fmt.Errorf("%w: list of %v items", ErrMalformed, c)
		}
		n = int(c)
	}
	for i := 0; i < n; i++ {
		v, err := a.next()
		if err != nil {
			return nil, err
		}
		a.buf = append(a.buf, v)
	}
	return a.buf, nil
}

func parseFloats(fields []string, out []float32) error {
	for i, f := range fields {
		v, err := strconv.ParseFloat(f, 32)
		if err != nil {
			return fmt.Errorf("number %q", f)
		}
		out[i] = float32(v)
	}
	return nil
}
