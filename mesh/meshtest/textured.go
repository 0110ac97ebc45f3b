package meshtest

import (
	"encoding/binary"
	"encoding/json"
	"testing"
)

// RequireTexturedGLB fails the test unless glb passes the validator and
// carries one material with a base colour texture and, exactly when pbr, a
// metallic-roughness texture, with an image for each.
func RequireTexturedGLB(t testing.TB, glb []byte, pbr bool) {
	t.Helper()
	RequireValidGLB(t, glb)
	if len(glb) < 20 {
		t.Fatalf("GLB of %d bytes", len(glb))
	}
	n := binary.LittleEndian.Uint32(glb[12:16])
	if uint64(n) > uint64(len(glb)-20) {
		t.Fatalf("GLB JSON chunk of %d bytes in %d", n, len(glb))
	}
	var doc struct {
		Materials []struct {
			PBR map[string]json.RawMessage `json:"pbrMetallicRoughness"`
		} `json:"materials"`
		Images []json.RawMessage `json:"images"`
	}
	if err := json.Unmarshal(glb[20:20+n], &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Materials) != 1 {
		t.Fatalf("%d materials, want 1", len(doc.Materials))
	}
	pbrBlock := doc.Materials[0].PBR
	if _, ok := pbrBlock["baseColorTexture"]; !ok {
		t.Errorf("no baseColorTexture in the material")
	}
	if _, ok := pbrBlock["metallicRoughnessTexture"]; ok != pbr {
		t.Errorf("metallicRoughnessTexture present %v, want %v", ok, pbr)
	}
	if want := map[bool]int{false: 1, true: 2}[pbr]; len(doc.Images) != want {
		t.Errorf("%d images, want %d", len(doc.Images), want)
	}
}
