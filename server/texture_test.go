package server

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/mesh"
	"github.com/hy3d/hy3d/mesh/meshtest"
)

// textured are the parameters of a small textured generation.
const textured = "texture=true&resolution=24&steps=2&texture_size=128"

func TestTexturedGenerationEndToEnd(t *testing.T) {
	s := paintingServer(t)
	var models struct{ Models []ModelView }
	decodeJSON(t, s.do(t, "GET", "/v1/models", nil), &models)
	if len(models.Models) != 2 || models.Models[1].Kind != jobs.KindPaint || !models.Models[1].Default || models.Models[1].MaxBatch < 1 {
		t.Fatalf("models %+v", models.Models)
	}

	resp := s.do(t, "POST", "/v1/generate?"+textured, bytes.NewReader(disc(t, 96, 200)), "Content-Type", "image/png")
	glb := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "model/gltf-binary" {
		t.Fatalf("%d %s", resp.StatusCode, glb)
	}
	meshtest.RequireTexturedGLB(t, glb, false)
	id := resp.Header.Get("X-Generation-Id")

	// The status shows the shape stages, then the paint stages.
	var st Status
	decodeJSON(t, s.do(t, "GET", "/v1/generations/"+id, nil), &st)
	var stages []string
	for _, x := range st.Stages {
		stages = append(stages, x.Stage)
	}
	shape := slices.Index(stages, "surface")
	diffuse := slices.Index(stages, "paint_diffuse")
	if shape < 0 || diffuse < shape || !slices.Contains(stages, "paint_bake") {
		t.Errorf("stages %v", stages)
	}
	if st.Result == nil || len(st.Result.Formats) != 2 || st.Result.Formats["zip"].MediaType != "application/zip" {
		t.Fatalf("result %+v", st.Result)
	}

	// The zip holds an OBJ that names its MTL, which names a texture that is
	// in the zip; the OBJ has the GLB's faces.
	zipped := s.do(t, "GET", "/v1/generations/"+id+"/result?format=zip", nil)
	if ct := zipped.Header.Get("Content-Type"); ct != "application/zip" {
		t.Fatalf("zip served as %q", ct)
	}
	checkOBJZip(t, readAll(t, zipped), st.Result.Faces)

	// A textured result has no untextured formats.
	readProblem(t, s.do(t, "GET", "/v1/generations/"+id+"/result?format=obj", nil), http.StatusUnprocessableEntity)
	if resp := s.do(t, "GET", "/v1/generations/"+id+"/result", nil, "Accept", "model/stl"); resp.StatusCode != http.StatusNotAcceptable {
		t.Errorf("Accept model/stl for a textured result: %d", resp.StatusCode)
	}

	// The same request again is answered from the store.
	again := s.do(t, "POST", "/v1/generate?"+textured, bytes.NewReader(disc(t, 96, 200)), "Content-Type", "image/png")
	if b := readAll(t, again); !bytes.Equal(b, glb) || again.Header.Get("Server-Timing") != `cache;desc="hit"` {
		t.Errorf("repeat: %d bytes, Server-Timing %q", len(b), again.Header.Get("Server-Timing"))
	}
	// The untextured generation of the same picture is another result.
	plain := s.do(t, "POST", "/v1/generate?resolution=24&steps=2", bytes.NewReader(disc(t, 96, 200)), "Content-Type", "image/png")
	if b := readAll(t, plain); plain.StatusCode != http.StatusOK || bytes.Equal(b, glb) {
		t.Errorf("untextured: %d, same bytes as textured: %v", plain.StatusCode, bytes.Equal(b, glb))
	}
}

// checkOBJZip asserts a textured zip is an OBJ, its MTL and its texture.
func checkOBJZip(t *testing.T, b []byte, faces int) {
	t.Helper()
	files := unzipAll(t, b)
	var objName string
	for name := range files {
		if strings.HasSuffix(name, ".obj") {
			objName = name
		}
	}
	m, err := mesh.ParseOBJ(bytes.NewReader(files[objName]))
	if err != nil {
		t.Fatalf("%s: %v (zip holds %d files)", objName, err, len(files))
	}
	if m.TriangleCount() != faces {
		t.Errorf("OBJ has %d faces, the result %d", m.TriangleCount(), faces)
	}
	mtl := referenced(t, files[objName], "mtllib", files)
	referenced(t, files[mtl], "map_Kd", files)
}

// unzipAll reads every file of a zip archive.
func unzipAll(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name], err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// referenced finds the file that the first line starting with keyword
// names, and fails unless the zip holds it.
func referenced(t *testing.T, text []byte, keyword string, files map[string][]byte) string {
	t.Helper()
	for _, line := range strings.Split(string(text), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), keyword+" "); ok {
			name := strings.TrimSpace(rest)
			if files[name] == nil {
				t.Fatalf("%s names %q, which the zip lacks", keyword, name)
			}
			return name
		}
	}
	t.Fatalf("no %s line", keyword)
	return ""
}

// tinyMeshGLB generates an untextured GLB through the tiny shape models.
func tinyMeshGLB(t *testing.T, s *testServer) []byte {
	t.Helper()
	resp := s.do(t, "POST", "/v1/generate?resolution=24&steps=2&seed=9", bytes.NewReader(disc(t, 96, 120)), "Content-Type", "image/png")
	glb := readAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, glb)
	}
	return glb
}

func TestTexturingAnUploadedMesh(t *testing.T) {
	s := paintingServer(t)
	glb := tinyMeshGLB(t, s)
	m, err := mesh.ParseGLB(bytes.NewReader(glb))
	if err != nil {
		t.Fatal(err)
	}
	var obj bytes.Buffer
	if err := mesh.WriteOBJ(&obj, m); err != nil {
		t.Fatal(err)
	}
	for name, upload := range map[string][]byte{"glb": glb, "obj": obj.Bytes()} {
		t.Run(name, func(t *testing.T) {
			body, ct := multipartFiles(t, map[string][]byte{"image": disc(t, 96, 200), "mesh": upload}, map[string]string{"texture_size": "128"})
			resp := s.do(t, "POST", "/v1/textures", body, "Content-Type", ct)
			var st Status
			decodeJSON(t, resp, &st)
			if resp.StatusCode != http.StatusAccepted || !st.Params.Texture {
				t.Fatalf("%d %+v", resp.StatusCode, st)
			}
			final := s.final(t, st.ID)
			if final.Status != jobs.StateSucceeded || final.Result.Faces != m.TriangleCount() {
				t.Fatalf("%+v (mesh has %d faces)", final, m.TriangleCount())
			}
			meshtest.RequireTexturedGLB(t, readAll(t, s.do(t, "GET", "/v1/generations/"+st.ID+"/result", nil)), false)

			// The same upload again: answered from the store at once, here in
			// one round trip as the zip the Accept header asks for.
			body, ct = multipartFiles(t, map[string][]byte{"image": disc(t, 96, 200), "mesh": upload}, map[string]string{"texture_size": "128"})
			again := s.do(t, "POST", "/v1/textures?wait=true", body, "Content-Type", ct, "Accept", "application/zip")
			b := readAll(t, again)
			if again.StatusCode != http.StatusOK || again.Header.Get("Server-Timing") != `cache;desc="hit"` {
				t.Fatalf("repeat: %d %q", again.StatusCode, again.Header.Get("Server-Timing"))
			}
			checkOBJZip(t, b, m.TriangleCount())
		})
	}
}

// A 2.1 paint set paints PBR: base colour and metallic-roughness in the
// GLB; in the zip, as Hunyuan3D-2.1 saves an OBJ, base colour, metallic and
// roughness images named by the MTL.
func TestTexturingWithAPBRSet(t *testing.T) {
	set, err := engines.Open("../engines/tiny-paint-2.1")
	if err != nil {
		t.Fatal(err)
	}
	s := serveTiny(t, set, nil)
	glb := tinyMeshGLB(t, s)
	body, ct := multipartFiles(t, map[string][]byte{"image": disc(t, 96, 200), "mesh": glb}, map[string]string{"texture_size": "128"})
	resp := s.do(t, "POST", "/v1/textures?wait=true", body, "Content-Type", ct)
	b := readAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	meshtest.RequireTexturedGLB(t, b, true)
	id := resp.Header.Get("X-Generation-Id")
	files := unzipAll(t, readAll(t, s.do(t, "GET", "/v1/generations/"+id+"/result?format=zip", nil)))
	for _, keyword := range []string{"map_Kd", "map_Pm", "map_Pr"} {
		referenced(t, files["model.mtl"], keyword, files)
	}
}

func TestTexturingRefusesWhatItCannotPaint(t *testing.T) {
	s := paintingServer(t)
	picture := disc(t, 96, 200)
	glb := tinyMeshGLB(t, s)
	form := func(files map[string][]byte, fields map[string]string) (io.Reader, string) {
		return multipartFiles(t, files, fields)
	}
	cases := []struct {
		name   string
		path   string
		files  map[string][]byte
		fields map[string]string
		status int
		field  string
	}{
		{"no mesh", "/v1/textures", map[string][]byte{"image": picture}, nil, 422, "mesh"},
		{"no picture", "/v1/textures", map[string][]byte{"mesh": glb}, nil, 422, "image"},
		{"a picture for a mesh", "/v1/textures", map[string][]byte{"image": picture, "mesh": picture}, nil, 422, "mesh"},
		{"a broken GLB", "/v1/textures", map[string][]byte{"image": picture, "mesh": glb[:len(glb)/2]}, nil, 422, "mesh"},
		{"a mesh for a picture", "/v1/textures", map[string][]byte{"image": glb, "mesh": glb}, nil, 415, "image"},
		{"a shape parameter", "/v1/textures", map[string][]byte{"image": picture, "mesh": glb}, map[string]string{"steps": "3"}, 422, "steps"},
		{"an untextured format", "/v1/textures", map[string][]byte{"image": picture, "mesh": glb}, map[string]string{"format": "stl"}, 422, "format"},
		{"a texture too large", "/v1/textures", map[string][]byte{"image": picture, "mesh": glb}, map[string]string{"texture_size": "100000"}, 422, "texture_size"},
		{"an unknown paint model", "/v1/textures", map[string][]byte{"image": picture, "mesh": glb}, map[string]string{"model": "nope"}, 422, "model"},
		{"a shape model", "/v1/textures", map[string][]byte{"image": picture, "mesh": glb}, map[string]string{"model": "tiny"}, 422, "model"},
		{"a paint model for a shape", "/v1/generate", map[string][]byte{"image": picture}, map[string]string{"model": "tiny-paint-2.0-oracle"}, 422, "model"},
		{"texture fields without texture", "/v1/generate", map[string][]byte{"image": picture}, map[string]string{"texture_size": "256"}, 422, "texture_size"},
		{"a textured generation as STL", "/v1/generate", map[string][]byte{"image": picture}, map[string]string{"texture": "true", "format": "stl"}, 422, "format"},
		{"texture not a boolean", "/v1/generate", map[string][]byte{"image": picture}, map[string]string{"texture": "maybe"}, 422, "texture"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, ct := form(tc.files, tc.fields)
			p := readProblem(t, s.do(t, "POST", tc.path, body, "Content-Type", ct), tc.status)
			if !hasFieldError(p, tc.field) {
				t.Errorf("problem %+v does not name %s", p, tc.field)
			}
		})
	}
	// Both files are needed, so a raw body cannot carry them.
	resp := s.do(t, "POST", "/v1/textures", bytes.NewReader(picture), "Content-Type", "image/png")
	readProblem(t, resp, http.StatusUnsupportedMediaType)
}

func TestAServerWithoutAPaintModelSaysSo(t *testing.T) {
	s := tinyServer(t)
	body, ct := multipartBody(t, disc(t, 96, 200), map[string]string{"texture": "true"})
	p := readProblem(t, s.do(t, "POST", "/v1/generate", body, "Content-Type", ct), http.StatusUnprocessableEntity)
	if !hasFieldError(p, "texture") || !strings.Contains(p.Errors[0].Message, "--paint") {
		t.Errorf("%+v", p)
	}
	// The drop-in route keeps api_server.py's clients working: the shape
	// alone, with a warning.
	resp := s.do(t, "POST", "/generate", strings.NewReader(`{"image": "`+base64.StdEncoding.EncodeToString(disc(t, 96, 200))+
		`", "texture": true, "octree_resolution": 24, "num_inference_steps": 2}`), "Content-Type", "application/json")
	b := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Warning"), "texture ignored") || string(b[:4]) != "glTF" {
		t.Fatalf("%d %q %d bytes", resp.StatusCode, resp.Header.Get("Warning"), len(b))
	}
}

func TestDropInRoutesHonourTexture(t *testing.T) {
	s := paintingServer(t)
	picture := base64.StdEncoding.EncodeToString(disc(t, 96, 200))
	glb := tinyMeshGLB(t, s)
	body := func(fields map[string]any) io.Reader {
		fields["image"] = picture
		b, err := json.Marshal(fields)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.NewReader(b)
	}
	for name, fields := range map[string]map[string]any{
		"generated and painted": {"texture": true, "octree_resolution": 24, "num_inference_steps": 2},
		"an uploaded mesh":      {"texture": true, "mesh": base64.StdEncoding.EncodeToString(glb), "seed": 5},
	} {
		t.Run(name, func(t *testing.T) {
			resp := s.do(t, "POST", "/generate", body(fields), "Content-Type", "application/json")
			b := readAll(t, resp)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
			meshtest.RequireTexturedGLB(t, b, false)
		})
	}
	resp := s.do(t, "POST", "/generate", body(map[string]any{"mesh": base64.StdEncoding.EncodeToString(glb)}), "Content-Type", "application/json")
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("a mesh without texture=true: %d", resp.StatusCode)
	}
}
