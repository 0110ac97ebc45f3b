package studio_test

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/mesh/meshtest"
)

// recordQueue installs a page-side observer of the queue: every text a
// row's state showed and every value its progress bar took, in order, for
// the test to read back (SSE events come faster than the test could poll).
const recordQueue = `(() => {
	window.queueSeen = [];
	const note = () => {
		for (const li of document.querySelectorAll("#queue li")) {
			const state = li.querySelector(".state").textContent, bar = li.querySelector("progress").value;
			const last = window.queueSeen[window.queueSeen.length - 1];
			if (!last || last.state !== state || last.bar !== bar) window.queueSeen.push({state, bar});
		}
	};
	new MutationObserver(note).observe(document.getElementById("queue"), {childList: true, subtree: true, characterData: true});
})()`

type queueSight struct {
	State string  `json:"state"`
	Bar   float64 `json:"bar"`
}

// selectValue sets a select and tells the page, as a user's choice does.
func selectValue(id, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const s = document.getElementById(%q); s.value = %q; s.dispatchEvent(new Event("change")); })()`, id, value))
}

// zipNames answers the names of the files in a zip archive.
func zipNames(t *testing.T, b []byte) []string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("the ZIP download is no zip: %v", err)
	}
	var names []string
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n == 0 {
			t.Errorf("%s in the zip: %d bytes, %v", f.Name, n, err)
		}
		names = append(names, f.Name)
	}
	return names
}

// requireOBJZip fails unless the names are an OBJ, its MTL and a PNG texture.
func requireOBJZip(t *testing.T, names []string) {
	t.Helper()
	for _, ext := range []string{".obj", ".mtl", ".png"} {
		if !slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, ext) }) {
			t.Errorf("the ZIP holds %v: no %s", names, ext)
		}
	}
}

const (
	downloadFormats = `[...document.querySelectorAll("#downloads button")].map((b) => b.dataset.format + (b.disabled ? " (disabled)" : ""))`
	stageTitles     = `[...document.querySelectorAll("#stages span")].map((s) => s.title.split(" ")[0])`
)

// TestStudioTexturesAGeneration: on a server with a paint model the studio
// offers the Texture control; an invalid texture size is explained next to
// its field; a textured generation runs through the shape stages and then
// the paint stages in the queue (the progress bar never running back, the
// paint_diffuse steps counted) and opens in its texture, with the clay,
// normal and wireframe shadings a choice away and the texture back after
// them; its stage bar shows the paint stages, its downloads are GLB (a
// valid textured glTF) and ZIP (OBJ, MTL, PNG); after a reload the history
// reopens it textured. The page passes the accessibility scan.
func TestStudioTexturesAGeneration(t *testing.T) {
	base := servePainting(t)
	downloads := t.TempDir()
	ctx, pageErrors := newBrowser(t, downloads, refusedGeneration)
	step(t, ctx, "opening the studio", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("f-texture")))
	if state := read(t, ctx, "reading the Texture control", chromedp.Evaluate[[]any](`[
		document.getElementById("f-texture").disabled, document.getElementById("f-texture").checked,
		document.getElementById("texture-options").hidden, document.getElementById("f-paint_model") !== null,
		document.getElementById("help-texture").textContent]`)); state[0] != false || state[1] != false || state[2] != true || state[3] != false ||
		!strings.HasPrefix(state[4].(string), "painted by tiny-paint") {
		t.Errorf("the Texture control reads [disabled checked options-hidden paint-model-select help] = %v; want an enabled, unchecked box naming the one paint model", state)
	}
	step(t, ctx, "picking a picture and checking Texture",
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{objectPicture(t)}),
		until(`document.getElementById("preview").src.startsWith("data:image/png")`, 60*time.Second),
		chromedp.WaitEnabled(chromedp.ID("generate")),
		chromedp.Click(chromedp.ID("f-texture")),
		chromedp.WaitVisible(chromedp.ID("f-texture_size")),
	)
	if size := read(t, ctx, "reading the texture size", chromedp.Value(chromedp.ID("f-texture_size"))); size != "1024" {
		t.Errorf("the texture size defaults to %q, want the paint model's 1024", size)
	}

	step(t, ctx, "sending texture_size=5",
		chromedp.SetValue(chromedp.ID("f-texture_size"), "5"),
		chromedp.Click(chromedp.ID("generate")),
		until(`document.getElementById("err-texture_size").textContent !== ""`, 30*time.Second),
	)
	if msg := read(t, ctx, "reading the field's message", chromedp.Text(chromedp.ID("err-texture_size"))); !strings.Contains(msg, "between 64 and 4096") {
		t.Errorf("texture_size=5 shows %q next to its field, want the range", msg)
	}
	screenshot(t, ctx, "studio-12-texture-invalid")

	step(t, ctx, "generating a textured mesh",
		chromedp.WaitEnabled(chromedp.ID("generate")),
		chromedp.Evaluate[chromedp.Void](recordQueue),
		chromedp.SetValue(chromedp.ID("f-texture_size"), "128"),
		chromedp.SetValue(chromedp.ID("f-steps"), "2"),
		chromedp.SetValue(chromedp.ID("f-faces"), "3000"),
		chromedp.Click(chromedp.ID("generate")),
		until(`document.body.dataset.shown !== undefined && document.getElementById("view").dataset.texture !== undefined`, 85*time.Second),
	)
	id := read(t, ctx, "reading the shown generation", chromedp.Evaluate[string](`document.body.dataset.shown`))
	if msg := read(t, ctx, "reading the fixed field", chromedp.Text(chromedp.ID("err-texture_size"))); msg != "" {
		t.Errorf("the fixed field still shows %q", msg)
	}
	code, status := generationStatus(t, base, id)
	if params, _ := status["params"].(map[string]any); code != http.StatusOK || params["texture"] != true || params["texture_size"] != 128.0 {
		t.Fatalf("the server has the generation as %d with params %v", code, status["params"])
	}

	// The queue went through the shape stages, then the paint stages, and
	// the bar never ran back.
	seen := read(t, ctx, "reading what the queue showed", chromedp.Evaluate[[]queueSight](`window.queueSeen`))
	var shapeAt, diffuseAt = -1, -1
	for i, s := range seen {
		if shapeAt < 0 && (strings.HasPrefix(s.State, "sample") || strings.HasPrefix(s.State, "decode") || strings.HasPrefix(s.State, "surface")) {
			shapeAt = i
		}
		if diffuseAt < 0 && strings.HasPrefix(s.State, "paint_diffuse step ") {
			diffuseAt = i
		}
		if i > 0 && s.Bar < seen[i-1].Bar {
			t.Errorf("the progress bar ran back from %.3f (%s) to %.3f (%s)", seen[i-1].Bar, seen[i-1].State, s.Bar, s.State)
		}
		if strings.HasPrefix(s.State, "paint_") && s.Bar < 0.45 {
			t.Errorf("painting (%s) shows the bar at %.3f, below the shape phase's end", s.State, s.Bar)
		}
	}
	var stagesSeen []string
	for _, s := range seen {
		if stage, _, _ := strings.Cut(s.State, " "); len(stagesSeen) == 0 || stagesSeen[len(stagesSeen)-1] != stage {
			stagesSeen = append(stagesSeen, stage)
		}
	}
	t.Logf("the queue showed %d states, in turn %v", len(seen), stagesSeen)
	if shapeAt < 0 || diffuseAt < shapeAt {
		t.Errorf("the queue showed %v: want a shape stage, then paint_diffuse with its steps", seen)
	}
	row := fmt.Sprintf(`document.querySelector('#queue li[data-id="%s"]')`, id)
	if tag := read(t, ctx, "reading the row's tag", chromedp.Evaluate[string](`(`+row+`.querySelector(".tag") || {}).textContent || ""`)); tag != "textured" {
		t.Errorf("the row's tag reads %q, want textured", tag)
	}

	// The viewer draws the texture, the stage bar the paint stages, and the downloads are GLB and ZIP.
	if tex, shading := read(t, ctx, "reading the viewer", chromedp.Evaluate[string](`document.getElementById("view").dataset.texture`)),
		read(t, ctx, "reading the shading", chromedp.Value(chromedp.ID("shading"))); tex != "128x128" || shading != "texture" {
		t.Errorf("the viewer draws a texture of %q in %q shading, want 128x128 in texture", tex, shading)
	}
	stages := read(t, ctx, "reading the stage bar", chromedp.Evaluate[[]string](stageTitles))
	if !slices.Contains(stages, "sample") || !slices.Contains(stages, "paint_diffuse") || !slices.Contains(stages, "paint_bake") ||
		slices.Index(stages, "paint_diffuse") < slices.Index(stages, "sample") {
		t.Errorf("the stage bar shows %v, want the shape stages and then the paint stages", stages)
	}
	if sum := read(t, ctx, "reading the phase times", chromedp.Text(chromedp.ID("stage-sum"))); !strings.HasPrefix(sum, "preprocess ") || !strings.Contains(sum, " · shape ") || !strings.Contains(sum, " · paint ") {
		t.Errorf("the phase times read %q", sum)
	}
	if formats := read(t, ctx, "reading the downloads", chromedp.Evaluate[[]string](downloadFormats)); !slices.Equal(formats, []string{"glb", "zip"}) {
		t.Errorf("a textured result offers %v, want glb and zip", formats)
	}
	textured := read(t, ctx, "measuring the texture", chromedp.Evaluate[[]float64](canvasStats))
	screenshot(t, ctx, "studio-13-textured")

	// Clay, wireframe and normals are a choice away, and the texture comes back.
	step(t, ctx, "shading in clay", selectValue("shading", "clay"), chromedp.Sleep(300*time.Millisecond))
	clay := read(t, ctx, "measuring the clay", chromedp.Evaluate[[]float64](canvasStats))
	if tex := read(t, ctx, "reading the viewer", chromedp.Evaluate[bool](`"texture" in document.getElementById("view").dataset`)); tex {
		t.Error("clay shading still draws the texture")
	}
	// The picture is orange: its texture is redder than the grey clay.
	if redder := (textured[1] - textured[3]) - (clay[1] - clay[3]); redder < 5 {
		t.Errorf("the textured mesh (mean %v) is not redder than the clay one (mean %v)", textured[1:], clay[1:])
	}
	step(t, ctx, "back to the texture, in wireframe",
		selectValue("shading", "texture"),
		chromedp.Click(chromedp.ID("wireframe")),
		chromedp.Sleep(300*time.Millisecond),
	)
	wire := read(t, ctx, "measuring the textured wireframe", chromedp.Evaluate[[]float64](canvasStats))
	if wire[0] > 0.85*textured[0] {
		t.Errorf("the textured wireframe covers %.3f of the canvas, the solid mesh %.3f", wire[0], textured[0])
	}
	step(t, ctx, "shading by normals", chromedp.Click(chromedp.ID("wireframe")), selectValue("shading", "normal"), chromedp.Sleep(300*time.Millisecond))
	normals := read(t, ctx, "measuring the normals", chromedp.Evaluate[[]float64](canvasStats))
	if d := abs(normals[1]-textured[1]) + abs(normals[2]-textured[2]) + abs(normals[3]-textured[3]); d < 6 {
		t.Errorf("normal shading looks like the texture: mean colours %v and %v", normals[1:], textured[1:])
	}
	step(t, ctx, "back to the texture", selectValue("shading", "texture"), chromedp.Sleep(300*time.Millisecond))
	again := read(t, ctx, "measuring the texture again", chromedp.Evaluate[[]float64](canvasStats))
	if d := abs(again[1]-textured[1]) + abs(again[2]-textured[2]) + abs(again[3]-textured[3]); d > 3 {
		t.Errorf("the texture came back as mean colour %v, first %v", again[1:], textured[1:])
	}

	step(t, ctx, "downloading the GLB", chromedp.Click(chromedp.CSS(`#downloads button[data-format="glb"]`)))
	meshtest.RequireTexturedGLB(t, waitForDownload(t, downloads, ".glb"), false)
	step(t, ctx, "downloading the ZIP", chromedp.Click(chromedp.CSS(`#downloads button[data-format="zip"]`)))
	requireOBJZip(t, zipNames(t, waitForDownload(t, downloads, ".zip")))
	requireAccessible(t, ctx, "studio with a textured model")

	// The history keeps it textured.
	step(t, ctx, "reloading and reopening it",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.ID("f-steps")),
		until(row+` !== null && Number(`+row+`.dataset.updates) > 0`, 30*time.Second),
		chromedp.Click(chromedp.CSS(`#queue li[data-id="`+id+`"] button[data-action="open"]`)),
		until(`document.body.dataset.shown === "`+id+`" && document.getElementById("view").dataset.texture === "128x128"`, 30*time.Second),
	)
	if tag := read(t, ctx, "reading the row's tag", chromedp.Evaluate[string](`(`+row+`.querySelector(".tag") || {}).textContent || ""`)); tag != "textured" {
		t.Errorf("after the reload the row's tag reads %q", tag)
	}
	if formats := read(t, ctx, "reading the downloads", chromedp.Evaluate[[]string](downloadFormats)); !slices.Equal(formats, []string{"glb", "zip"}) {
		t.Errorf("the reopened textured result offers %v", formats)
	}
	requirePageClean(t, pageErrors)
}

// TestStudioPaintsAMeshYouHave: with a mesh chosen beside the picture, the
// studio paints it (POST /v1/textures) instead of generating one: the
// shape parameters are disabled, a file that is no mesh is explained next
// to the mesh field, and a GLB dropped with its picture is painted, opened
// in its texture, with GLB and ZIP downloads; clearing the mesh brings
// generation back.
func TestStudioPaintsAMeshYouHave(t *testing.T) {
	base := servePainting(t)
	dir := t.TempDir()
	picture := objectPicture(t)
	data, err := os.ReadFile(picture)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/v1/generate?steps=2&resolution=24&seed=9", "image/png", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	glb, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("making a mesh to paint: %d %v", resp.StatusCode, err)
	}
	broken := filepath.Join(dir, "broken.obj")
	if err := os.WriteFile(broken, []byte("this is no mesh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	downloads := t.TempDir()
	// The broken mesh is sent on purpose: its 422 is the browser's only expected error.
	ctx, pageErrors := newBrowser(t, downloads, func(m chromedp.ConsoleMessage) bool {
		return m.Source == "network" && strings.Contains(m.Text, "422") && strings.HasSuffix(m.URL, "/v1/textures")
	})
	step(t, ctx, "choosing a picture and a file that is no mesh",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("f-texture")),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{picture}),
		chromedp.SetUploadFiles(chromedp.ID("mesh"), []string{broken}),
		until(`document.getElementById("generate").textContent === "Paint mesh" && !document.getElementById("generate").disabled`, 30*time.Second),
	)
	form := `[document.getElementById("f-steps").disabled, document.getElementById("f-seed").disabled,
		document.getElementById("f-texture").checked, document.getElementById("texture-options").hidden]`
	if state := read(t, ctx, "reading the form", chromedp.Evaluate[[]bool](form)); !slices.Equal(state, []bool{true, false, true, false}) {
		t.Errorf("painting a mesh: [steps disabled, seed disabled, texture checked, texture options hidden] = %v, want [true false true false]", state)
	}
	step(t, ctx, "sending it",
		chromedp.SetValue(chromedp.ID("f-texture_size"), "128"),
		chromedp.Click(chromedp.ID("generate")),
		until(`document.getElementById("err-mesh").textContent !== ""`, 30*time.Second),
	)
	if n := read(t, ctx, "counting queue rows", chromedp.Evaluate[int](`document.querySelectorAll("#queue li").length`)); n != 0 {
		t.Errorf("a refused mesh left %d rows in the queue", n)
	}
	t.Logf("the broken mesh reads: %s", read(t, ctx, "reading the mesh's message", chromedp.Text(chromedp.ID("err-mesh"))))

	step(t, ctx, "dropping a GLB with the picture and painting it",
		chromedp.WaitEnabled(chromedp.ID("generate")),
		chromedp.Evaluate[chromedp.Void](`(() => {
			const dt = new DataTransfer();
			dt.items.add(`+jsFile("chair.glb", glb, "")+`);
			dt.items.add(`+jsFile("disc.png", data, "image/png")+`);
			document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
		})()`),
		until(`document.getElementById("err-mesh").textContent === "" && document.getElementById("help-mesh").textContent.startsWith("chair.glb:")`, 10*time.Second),
		chromedp.WaitEnabled(chromedp.ID("generate")),
		chromedp.Click(chromedp.ID("generate")),
		until(`document.body.dataset.shown !== undefined && document.getElementById("view").dataset.texture === "128x128"`, 85*time.Second),
	)
	id := read(t, ctx, "reading the shown generation", chromedp.Evaluate[string](`document.body.dataset.shown`))
	row := fmt.Sprintf(`document.querySelector('#queue li[data-id="%s"]')`, id)
	if title := read(t, ctx, "reading the row", chromedp.Evaluate[[]string](`[`+row+`.querySelector(".name").textContent, `+row+`.querySelector(".tag").textContent]`)); !slices.Equal(title, []string{"chair.glb painted from disc.png", "painted mesh"}) {
		t.Errorf("the row reads %v", title)
	}
	if code, status := generationStatus(t, base, id); code != http.StatusOK || status["status"] != "succeeded" || status["params"].(map[string]any)["texture"] != true {
		t.Errorf("the server has the painting as %d %v", code, status)
	}
	if stages := read(t, ctx, "reading the stage bar", chromedp.Evaluate[[]string](stageTitles)); !slices.Contains(stages, "paint_diffuse") || slices.Contains(stages, "sample") {
		t.Errorf("a painted mesh's stages are %v, want paint stages and no sampling", stages)
	}
	if formats := read(t, ctx, "reading the downloads", chromedp.Evaluate[[]string](downloadFormats)); !slices.Equal(formats, []string{"glb", "zip"}) {
		t.Errorf("a painted mesh offers %v, want glb and zip", formats)
	}
	if sum := read(t, ctx, "reading the phase times", chromedp.Text(chromedp.ID("stage-sum"))); strings.Contains(sum, "shape") || !strings.Contains(sum, "paint ") {
		t.Errorf("a painted mesh's phase times read %q", sum)
	}
	screenshot(t, ctx, "studio-14-painted-mesh")
	requireAccessible(t, ctx, "studio painting a mesh")
	step(t, ctx, "downloading the ZIP", chromedp.Click(chromedp.CSS(`#downloads button[data-format="zip"]`)))
	requireOBJZip(t, zipNames(t, waitForDownload(t, downloads, ".zip")))

	step(t, ctx, "clearing the mesh",
		chromedp.Click(chromedp.ID("mesh-clear")),
		until(`document.getElementById("generate").textContent === "Generate" && !document.getElementById("f-steps").disabled`, 10*time.Second),
	)
	if state := read(t, ctx, "reading the form", chromedp.Evaluate[[]bool](form)); !slices.Equal(state, []bool{false, false, false, true}) {
		t.Errorf("after clearing the mesh: [steps disabled, seed disabled, texture checked, texture options hidden] = %v, want [false false false true]", state)
	}
	requirePageClean(t, pageErrors)
}

// TestStudioChoosesAPaintModel: with two paint sets served, the Texture
// control offers the paint model as a select (the server's default chosen
// first); choosing the 2.1 set shows its description and defaults, and the
// generation is painted by it: its GLB carries a metallic-roughness texture
// beside the base colour, and the viewer draws the texture.
func TestStudioChoosesAPaintModel(t *testing.T) {
	oracle20, err := engines.DefaultPaint()
	if err != nil {
		t.Fatal(err)
	}
	oracle21, err := engines.Open(filepath.Join("..", "engines", "tiny-paint-2.1-oracle"))
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, []*engines.Set{oracle20, oracle21}, nil)
	downloads := t.TempDir()
	ctx, pageErrors := newBrowser(t, downloads, noErrors)
	step(t, ctx, "opening the studio and checking Texture",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("f-texture")),
		chromedp.Click(chromedp.ID("f-texture")),
		chromedp.WaitVisible(chromedp.ID("f-paint_model")),
	)
	options := read(t, ctx, "reading the paint models", chromedp.Evaluate[[]string](`[...document.getElementById("f-paint_model").options].map((o) => o.value + (o.selected ? " (selected)" : ""))`))
	if !slices.Equal(options, []string{oracle20.Name + " (selected)", oracle21.Name}) {
		t.Errorf("the paint model select offers %v, want %s (the default, selected) and %s", options, oracle20.Name, oracle21.Name)
	}
	step(t, ctx, "choosing the 2.1 set and generating",
		selectValue("f-paint_model", oracle21.Name),
		until(`document.getElementById("help-texture").textContent.startsWith("painted by `+oracle21.Name+`")`, 10*time.Second),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{objectPicture(t)}),
		chromedp.WaitEnabled(chromedp.ID("generate")),
		chromedp.SetValue(chromedp.ID("f-texture_size"), "128"),
		chromedp.SetValue(chromedp.ID("f-steps"), "2"),
		chromedp.SetValue(chromedp.ID("f-faces"), "3000"),
		chromedp.Click(chromedp.ID("generate")),
		until(`document.body.dataset.shown !== undefined && document.getElementById("view").dataset.texture === "128x128"`, 85*time.Second),
	)
	id := read(t, ctx, "reading the shown generation", chromedp.Evaluate[string](`document.body.dataset.shown`))
	if _, status := generationStatus(t, base, id); status["params"].(map[string]any)["paint_model"] != oracle21.Name {
		t.Errorf("the generation was painted with %v, want %s", status["params"], oracle21.Name)
	}
	if st := read(t, ctx, "measuring the canvas", chromedp.Evaluate[[]float64](canvasStats)); st[0] < 0.01 {
		t.Errorf("the 2.1 set's textured mesh covers %.4f of the canvas", st[0])
	}
	screenshot(t, ctx, "studio-16-paint-2.1")
	step(t, ctx, "downloading the GLB", chromedp.Click(chromedp.CSS(`#downloads button[data-format="glb"]`)))
	meshtest.RequireTexturedGLB(t, waitForDownload(t, downloads, ".glb"), true)
	requirePageClean(t, pageErrors)
}

// TestStudioWithoutAPaintModel: on a server that serves no paint model the
// Texture control is a disabled box saying how to serve one, no mesh can be
// chosen for painting, and a dropped one is left out with the reason.
func TestStudioWithoutAPaintModel(t *testing.T) {
	base := serveTiny(t)
	ctx, pageErrors := newBrowser(t, t.TempDir(), noErrors)
	step(t, ctx, "opening the studio", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("f-texture")))
	state := read(t, ctx, "reading the Texture control", chromedp.Evaluate[[]any](`[
		document.getElementById("f-texture").disabled, document.getElementById("help-texture").textContent,
		document.getElementById("f-texture_size") === null, document.getElementById("mesh").disabled]`))
	if state[0] != true || !strings.Contains(state[1].(string), "hy3d serve --paint DIR") || state[2] != true || state[3] != true {
		t.Errorf("without a paint model: [texture disabled, help, no texture size, mesh disabled] = %v", state)
	}
	step(t, ctx, "dropping a mesh",
		chromedp.Evaluate[chromedp.Void](`(() => {
			const dt = new DataTransfer();
			dt.items.add(`+jsFile("chair.obj", []byte("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"), "")+`);
			document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
		})()`),
		until(`document.getElementById("picture-msg").textContent !== ""`, 10*time.Second),
	)
	if msg := read(t, ctx, "reading the picture message", chromedp.Text(chromedp.ID("picture-msg"))); !strings.Contains(msg, "paints no meshes") {
		t.Errorf("a mesh dropped on a server that paints none reads %q", msg)
	}
	if label := read(t, ctx, "reading the button", chromedp.Text(chromedp.ID("generate"))); label != "Generate" {
		t.Errorf("after the mesh was dropped the button reads %q", label)
	}
	screenshot(t, ctx, "studio-15-no-paint-model")
	requireAccessible(t, ctx, "studio without a paint model")
	requirePageClean(t, pageErrors)
}

func abs(x float64) float64 { return max(x, -x) }
