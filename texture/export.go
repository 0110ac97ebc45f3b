package texture

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"unsafe"

	"github.com/klauspost/compress/zip"
	"github.com/qmuntal/gltf"
	"github.com/qmuntal/gltf/modeler"

	"github.com/hy3d/hy3d/mesh"
)

// ImageFormat is how textures are encoded in exports.
type ImageFormat string

// The texture encodings: PNG (lossless) and JPEG (what Hunyuan3D-2.1
// writes, a quarter of the bytes or less).
const (
	PNG  ImageFormat = "png"
	JPEG ImageFormat = "jpeg"
)

// MimeType is the image's media type, as glTF requires it.
func (f ImageFormat) MimeType() string {
	if f == JPEG {
		return "image/jpeg"
	}
	return "image/png"
}

// Extension is the file extension with its dot.
func (f ImageFormat) Extension() string {
	if f == JPEG {
		return ".jpg"
	}
	return ".png"
}

// Material is a textured PBR material. BaseColor holds 3 channels in [0, 1]
// as painted (sRGB). MetallicRoughness, when set, holds 2 channels in
// [0, 1], metallic then roughness, as Hunyuan3D-2.1's MR views do; glTF
// gets them packed as its metallicRoughnessTexture wants, G roughness and B
// metallic (R is 1, as an unused occlusion channel). Values outside [0, 1]
// are clamped when encoding.
type Material struct {
	BaseColor         Image
	MetallicRoughness *Image
	Format            ImageFormat
	JPEGQuality       int // 1..100; 0 means 90
}

func (mat Material) check(op string) error {
	if err := mat.BaseColor.check(op); err != nil {
		return err
	}
	if mat.BaseColor.Channels != 3 {
		return fmt.Errorf("%s: %w: base colour has %d channels, want 3", op, ErrInvalidInput, mat.BaseColor.Channels)
	}
	if mr := mat.MetallicRoughness; mr != nil {
		if err := mr.check(op); err != nil {
			return err
		}
		if mr.Channels != 2 {
			return fmt.Errorf("%s: %w: metallic-roughness has %d channels, want 2", op, ErrInvalidInput, mr.Channels)
		}
	}
	if mat.Format != PNG && mat.Format != JPEG {
		return fmt.Errorf("%s: %w: image format %q", op, ErrInvalidInput, mat.Format)
	}
	return nil
}

func quantize(v float32) uint8 {
	return uint8(math.Round(float64(min(max(v, 0), 1)) * 255))
}

// Output layouts of the texture images: each entry names the source
// channel of one output component, or -1 for a constant 255.
var (
	layoutRGB = []int32{0, 1, 2}
	// glTF's metallicRoughnessTexture from (metallic, roughness): R unused (1), G roughness, B metallic.
	layoutMetallicRoughness = []int32{-1, 1, 0}
)

// encode writes the components of src picked by layout (1: grey, 3: RGB)
// in the material's format: JPEG by libjpeg-turbo in the native shim, PNG
// by image/png.
func (mat Material) encode(w io.Writer, src Image, layout []int32) error {
	if mat.Format == JPEG {
		q := mat.JPEGQuality
		if q <= 0 {
			q = 90
		}
		data, err := nativeEncodeJPEG(src, layout, min(q, 100))
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	n := src.Width * src.Height
	var img image.Image
	if len(layout) == 1 {
		grey := image.NewGray(image.Rect(0, 0, src.Width, src.Height))
		for p := 0; p < n; p++ {
			grey.Pix[p] = quantize(src.Pix[src.Channels*p+int(layout[0])])
		}
		img = grey
	} else {
		rgba := image.NewRGBA(image.Rect(0, 0, src.Width, src.Height))
		for p := 0; p < n; p++ {
			for k, from := range layout {
				v := uint8(0xff)
				if from >= 0 {
					v = quantize(src.Pix[src.Channels*p+int(from)])
				}
				rgba.Pix[4*p+k] = v
			}
			rgba.Pix[4*p+3] = 0xff
		}
		img = rgba
	}
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	return enc.Encode(w, img)
}

func (mat Material) encodeBaseColor(w io.Writer) error {
	return mat.encode(w, mat.BaseColor, layoutRGB)
}

func (mat Material) encodeMetallicRoughness(w io.Writer) error {
	return mat.encode(w, *mat.MetallicRoughness, layoutMetallicRoughness)
}

// encodeGrey encodes one channel of the metallic-roughness image as grey.
func (mat Material) encodeGrey(w io.Writer, channel int) error {
	return mat.encode(w, *mat.MetallicRoughness, []int32{int32(channel)})
}

// vertexData gathers the atlas vertices' positions and unit normals in the
// input frame (smooth normals of the unsplit mesh, so seams do not crease).
func vertexData(m *mesh.Mesh, a *Atlas) (positions, normals [][3]float32) {
	smooth := mesh.VertexNormals(m)
	positions = make([][3]float32, len(a.Xref))
	normals = make([][3]float32, len(a.Xref))
	for v, x := range a.Xref {
		copy(positions[v][:], m.Vertices[3*x:3*x+3])
		copy(normals[v][:], smooth[3*x:3*x+3])
	}
	return positions, normals
}

func checkExport(op string, m *mesh.Mesh, a *Atlas, mat Material) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("%s: %w: %w", op, ErrInvalidInput, err)
	}
	if len(a.Indices) != len(m.Indices) || len(a.UV) != 2*len(a.Xref) {
		return fmt.Errorf("%s: %w: atlas does not belong to this mesh", op, ErrInvalidInput)
	}
	for _, x := range a.Xref {
		if int(x) >= m.VertexCount() {
			return fmt.Errorf("%s: %w: atlas vertex refers past the mesh", op, ErrInvalidInput)
		}
	}
	for _, v := range a.Indices {
		if int(v) >= len(a.Xref) {
			return fmt.Errorf("%s: %w: atlas index out of range", op, ErrInvalidInput)
		}
	}
	return mat.check(op)
}

// WriteGLB writes the atlased mesh m with its material as binary glTF 2.0:
// positions, unit normals, TEXCOORD_0 and uint32 indices; one material
// with the base colour texture and, when given, the metallic-roughness
// texture (metallic and roughness factors 1 so the texture rules); images
// embedded in the binary chunk with their true MIME type.
func WriteGLB(w io.Writer, m *mesh.Mesh, a *Atlas, mat Material) error {
	const op = "export textured glb"
	if err := checkExport(op, m, a, mat); err != nil {
		return err
	}
	doc := gltf.NewDocument()
	doc.Asset.Generator = "hy3d"
	node := &gltf.Node{Name: "hy3d"}
	if len(a.Indices) > 0 {
		positions, normals := vertexData(m, a)
		uvs := unsafe.Slice((*[2]float32)(unsafe.Pointer(&a.UV[0])), len(a.Xref))
		material := &gltf.Material{Name: "hy3d", PBRMetallicRoughness: &gltf.PBRMetallicRoughness{}}
		texture := func(name string, enc func(io.Writer) error) (int, error) {
			var buf bytes.Buffer
			if err := enc(&buf); err != nil {
				return 0, err
			}
			img, err := modeler.WriteImage(doc, name, mat.Format.MimeType(), &buf)
			if err != nil {
				return 0, err
			}
			doc.Textures = append(doc.Textures, &gltf.Texture{Source: gltf.Index(img), Sampler: gltf.Index(0)})
			return len(doc.Textures) - 1, nil
		}
		doc.Samplers = []*gltf.Sampler{{MagFilter: gltf.MagLinear, MinFilter: gltf.MinLinearMipMapLinear,
			WrapS: gltf.WrapClampToEdge, WrapT: gltf.WrapClampToEdge}}
		base, err := texture("base_color", mat.encodeBaseColor)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		material.PBRMetallicRoughness.BaseColorTexture = &gltf.TextureInfo{Index: base}
		if mat.MetallicRoughness != nil {
			mr, err := texture("metallic_roughness", mat.encodeMetallicRoughness)
			if err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			one := 1.0
			material.PBRMetallicRoughness.MetallicRoughnessTexture = &gltf.TextureInfo{Index: mr}
			material.PBRMetallicRoughness.MetallicFactor = &one
			material.PBRMetallicRoughness.RoughnessFactor = &one
		} else {
			// Painted albedo without MR: a dielectric, as trimesh's SimpleMaterial exports.
			zero, rough := 0.0, 1.0
			material.PBRMetallicRoughness.MetallicFactor = &zero
			material.PBRMetallicRoughness.RoughnessFactor = &rough
		}
		doc.Materials = []*gltf.Material{material}
		primitive := &gltf.Primitive{
			Mode:     gltf.PrimitiveTriangles,
			Indices:  gltf.Index(modeler.WriteIndices(doc, a.Indices)),
			Material: gltf.Index(0),
			Attributes: gltf.PrimitiveAttributes{
				gltf.POSITION:   modeler.WritePosition(doc, positions),
				gltf.NORMAL:     modeler.WriteNormal(doc, normals),
				gltf.TEXCOORD_0: modeler.WriteTextureCoord(doc, uvs),
			},
		}
		doc.Meshes = []*gltf.Mesh{{Name: "hy3d", Primitives: []*gltf.Primitive{primitive}}}
		node.Mesh = gltf.Index(0)
	}
	doc.Nodes = []*gltf.Node{node}
	doc.Scenes[0].Nodes = []int{0}
	enc := gltf.NewEncoder(w)
	enc.AsBinary = true
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// WriteOBJ writes name.obj, name.mtl and the textures into dir, the layout
// Hunyuan3D-2.1 saves: map_Kd name.png|jpg and, with metallic-roughness,
// map_Pm name_metallic.* and map_Pr name_roughness.* as grey images. It
// returns the paths written. OBJ texture coordinates have v up, so they are
// written as (u, 1 - v).
func WriteOBJ(dir, name string, m *mesh.Mesh, a *Atlas, mat Material) ([]string, error) {
	const op = "export textured obj"
	files, err := objFiles(op, name, m, a, mat)
	if err != nil {
		return nil, err
	}
	var written []string
	for _, file := range files {
		path := filepath.Join(dir, file.name)
		f, err := os.Create(path)
		if err != nil {
			return written, fmt.Errorf("%s: %w", op, err)
		}
		if err := errors.Join(file.body(f), f.Close()); err != nil {
			return written, fmt.Errorf("%s: %s: %w", op, file.name, err)
		}
		written = append(written, path)
	}
	return written, nil
}

// WriteOBJZip writes the files WriteOBJ writes (name.obj, name.mtl and the
// textures, which refer to each other by their bare names) as one zip
// archive with every file at its root: the OBJ and MTL deflated, the
// already compressed textures stored.
func WriteOBJZip(w io.Writer, name string, m *mesh.Mesh, a *Atlas, mat Material) error {
	const op = "export textured obj zip"
	files, err := objFiles(op, name, m, a, mat)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(w)
	for i, file := range files {
		method := zip.Store
		if i < 2 { // the OBJ and the MTL are text
			method = zip.Deflate
		}
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: file.name, Method: method})
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if err := file.body(fw); err != nil {
			return fmt.Errorf("%s: %s: %w", op, file.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// objFile is one file of a textured OBJ export.
type objFile struct {
	name string
	body func(io.Writer) error
}

// objFiles are the files of the textured OBJ export called name: the OBJ,
// the MTL, then the textures.
func objFiles(op, name string, m *mesh.Mesh, a *Atlas, mat Material) ([]objFile, error) {
	if err := checkExport(op, m, a, mat); err != nil {
		return nil, err
	}
	if name == "" || filepath.Base(name) != name {
		return nil, fmt.Errorf("%s: %w: file name %q", op, ErrInvalidInput, name)
	}
	ext := mat.Format.Extension()
	mtl := "newmtl hy3d\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 2\nmap_Kd " + name + ext + "\n"
	if mat.MetallicRoughness != nil {
		mtl += "map_Pm " + name + "_metallic" + ext + "\nmap_Pr " + name + "_roughness" + ext + "\n"
	}
	files := []objFile{
		{name + ".obj", func(w io.Writer) error { return writeOBJBody(w, name+".mtl", m, a) }},
		{name + ".mtl", func(w io.Writer) error { _, err := io.WriteString(w, mtl); return err }},
		{name + ext, mat.encodeBaseColor},
	}
	if mat.MetallicRoughness != nil {
		files = append(files,
			objFile{name + "_metallic" + ext, func(w io.Writer) error { return mat.encodeGrey(w, 0) }},
			objFile{name + "_roughness" + ext, func(w io.Writer) error { return mat.encodeGrey(w, 1) }})
	}
	return files, nil
}

func writeOBJBody(w io.Writer, mtl string, m *mesh.Mesh, a *Atlas) error {
	positions, normals := vertexData(m, a)
	var buf bytes.Buffer
	buf.WriteString("# hy3d\nmtllib " + mtl + "\nusemtl hy3d\n")
	line := make([]byte, 0, 128)
	floats := func(tag string, xs ...float32) {
		line = append(line[:0], tag...)
		for _, x := range xs {
			line = append(line, ' ')
			line = strconv.AppendFloat(line, float64(x), 'g', -1, 32)
		}
		buf.Write(append(line, '\n'))
	}
	for _, p := range positions {
		floats("v", p[:]...)
	}
	for v := range a.Xref {
		floats("vt", a.UV[2*v], 1-a.UV[2*v+1])
	}
	for _, n := range normals {
		floats("vn", n[:]...)
	}
	for f := 0; f < len(a.Indices); f += 3 {
		line = append(line[:0], 'f')
		for _, v := range a.Indices[f : f+3] {
			i := strconv.AppendUint(nil, uint64(v)+1, 10)
			line = append(line, ' ')
			line = append(line, i...)
			line = append(line, '/')
			line = append(line, i...)
			line = append(line, '/')
			line = append(line, i...)
		}
		buf.Write(append(line, '\n'))
		if buf.Len() > 1<<20 {
			if _, err := w.Write(buf.Bytes()); err != nil {
				return err
			}
			buf.Reset()
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}
