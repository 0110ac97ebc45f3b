package studio_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hy3d/hy3d/mesh/meshtest"
	"github.com/hy3d/hy3d/server"
)

// canvasStats measures the viewer's canvas: the share of pixels that differ
// from the top-left one (the background) and the mean colour.
const canvasStats = `(() => {
	const src = document.querySelector("#view canvas");
	const c = document.createElement("canvas");
	c.width = src.width; c.height = src.height;
	const g = c.getContext("2d");
	g.drawImage(src, 0, 0);
	const px = g.getImageData(0, 0, c.width, c.height).data;
	const [r, gg, b] = [px[0], px[1], px[2]];
	let differ = 0, sr = 0, sg = 0, sb = 0;
	for (let i = 0; i < px.length; i += 4) {
		if (Math.abs(px[i] - r) + Math.abs(px[i+1] - gg) + Math.abs(px[i+2] - b) > 24) differ++;
		sr += px[i]; sg += px[i+1]; sb += px[i+2];
	}
	const n = px.length / 4;
	return [differ / n, sr / n, sg / n, sb / n];
})()`

// refusedGeneration is the console error of a generation the server refused
// with 422: the tests that send an invalid parameter on purpose expect it.
func refusedGeneration(m chromedp.ConsoleMessage) bool {
	return m.Source == "network" && strings.Contains(m.Text, "422") && strings.HasSuffix(m.URL, "/v1/generations")
}

// TestStudioPictureToDownloadedModel walks the studio as a user does: pick a
// picture, see what the model sees, send an invalid parameter and read its
// message next to the field, generate with live progress in the queue, see
// the mesh drawn with its counts and bounding box, switch the lighting
// presets and the shading, download the GLB and validate it; the page passes
// an accessibility scan and logs no error.
func TestStudioPictureToDownloadedModel(t *testing.T) {
	base := serveTiny(t)
	downloads := t.TempDir()
	// The invalid parameter is sent on purpose: its 422 is the browser's only expected error.
	ctx, pageErrors := newBrowser(t, downloads, refusedGeneration)

	step(t, ctx, "opening the studio", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("f-steps")))
	if v := read(t, ctx, "reading the defaults", chromedp.Value(chromedp.ID("f-steps"))); v == "" {
		t.Fatal("the steps field has no default from /v1/models")
	}
	recordPageWeight(t, ctx, "studio")

	step(t, ctx, "picking a picture and waiting for its preview",
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{objectPicture(t)}),
		until(`document.getElementById("preview").src.startsWith("data:image/png")`, 60*time.Second),
		chromedp.WaitEnabled(chromedp.ID("generate")),
	)
	if msg := read(t, ctx, "reading the picture's description", chromedp.Text(chromedp.ID("picture-msg"))); !strings.Contains(msg, "png 256×256") {
		t.Errorf("picture message %q does not describe the picture", msg)
	}
	screenshot(t, ctx, "studio-1-preview")

	step(t, ctx, "sending steps=0",
		chromedp.SetValue(chromedp.ID("f-steps"), "0"),
		chromedp.Click(chromedp.ID("generate")),
		until(`document.getElementById("err-steps").textContent !== ""`, 30*time.Second),
	)
	if msg := read(t, ctx, "reading the field's message", chromedp.Text(chromedp.ID("err-steps"))); !strings.Contains(msg, "between 1 and") {
		t.Errorf("steps=0 shows %q next to its field, want the range", msg)
	}
	if n := read(t, ctx, "counting queue rows", chromedp.Evaluate[int](`document.querySelectorAll("#queue li").length`)); n != 0 {
		t.Errorf("a refused generation left %d rows in the queue", n)
	}
	screenshot(t, ctx, "studio-2-invalid-field")

	step(t, ctx, "generating",
		chromedp.WaitEnabled(chromedp.ID("generate")),
		chromedp.SetValue(chromedp.ID("f-steps"), "3"),
		// Few faces: each is several pixels wide, so the wireframe leaves the background showing.
		chromedp.SetValue(chromedp.ID("f-faces"), "3000"),
		chromedp.Click(chromedp.ID("generate")),
		until(`document.body.dataset.shown !== undefined`, 80*time.Second),
	)
	id := read(t, ctx, "reading the shown generation", chromedp.Evaluate[string](`document.body.dataset.shown`))
	row := fmt.Sprintf(`document.querySelector('#queue li[data-id="%s"]')`, id)
	if n := read(t, ctx, "counting progress events", chromedp.Evaluate[int](`Number(`+row+`.dataset.updates)`)); n < 3 {
		t.Errorf("%d statuses arrived, want at least 3 (accepted, running, succeeded)", n)
	}
	if msg := read(t, ctx, "reading the fixed field", chromedp.Text(chromedp.ID("err-steps"))); msg != "" {
		t.Errorf("the fixed field still shows %q", msg)
	}
	if s := read(t, ctx, "reading the row", chromedp.Evaluate[string](row+`.querySelector(".state").textContent`)); !strings.HasPrefix(s, "succeeded") {
		t.Errorf("the queue row reads %q, want succeeded", s)
	}

	// The counts are the mesh's; the bounding box is finite and not flat.
	code, status := generationStatus(t, base, id)
	if code != http.StatusOK {
		t.Fatalf("status of %s: %d", id, code)
	}
	result := status["result"].(map[string]any)
	for field, want := range map[string]float64{"count-vertices": result["vertices"].(float64), "count-faces": result["faces"].(float64)} {
		text := read(t, ctx, "reading "+field, chromedp.Text(chromedp.ID(field)))
		if got, err := strconv.Atoi(strings.ReplaceAll(text, ",", "")); err != nil || float64(got) != want || got == 0 {
			t.Errorf("%s shows %q, the server counts %v", field, text, want)
		}
	}
	bbox := read(t, ctx, "reading the bounding box", chromedp.Text(chromedp.ID("bbox")))
	m := regexp.MustCompile(`^(\d+\.\d+) × (\d+\.\d+) × (\d+\.\d+) \(from (-?\d+\.\d+), (-?\d+\.\d+), (-?\d+\.\d+) to (-?\d+\.\d+), (-?\d+\.\d+), (-?\d+\.\d+)\)$`).FindStringSubmatch(bbox)
	if m == nil {
		t.Fatalf("bounding box reads %q", bbox)
	}
	for axis := range 3 {
		size, _ := strconv.ParseFloat(m[1+axis], 64)
		lo, _ := strconv.ParseFloat(m[4+axis], 64)
		hi, _ := strconv.ParseFloat(m[7+axis], 64)
		if size <= 0 || math.Abs(hi-lo-size) > 0.002 {
			t.Errorf("bounding box %q: axis %d is %v from %v to %v", bbox, axis, size, lo, hi)
		}
	}
	if n := read(t, ctx, "reading the stage bar", chromedp.Evaluate[int](`document.querySelectorAll("#stages span").length`)); n != 7 {
		t.Errorf("the stage bar has %d stages, want 7 (preprocess to export)", n)
	}

	// Each lighting preset draws the mesh in its own light over its own background.
	means := map[string][3]float64{}
	var clayCover float64
	for _, preset := range []string{"studio", "outdoor", "neutral"} {
		step(t, ctx, "lighting "+preset,
			chromedp.SetValue(chromedp.ID("lighting"), preset),
			chromedp.Evaluate[chromedp.Void](`document.getElementById("lighting").dispatchEvent(new Event("change"))`),
			until(`document.body.dataset.lighting === "`+preset+`"`, 30*time.Second),
			chromedp.Sleep(300*time.Millisecond),
		)
		st := read(t, ctx, "measuring the canvas", chromedp.Evaluate[[]float64](canvasStats))
		if st[0] < 0.01 {
			t.Errorf("%s lighting: the mesh covers %.4f of the canvas, want at least 1%%", preset, st[0])
		}
		for other, mean := range means {
			if d := math.Abs(mean[0]-st[1]) + math.Abs(mean[1]-st[2]) + math.Abs(mean[2]-st[3]); d < 6 {
				t.Errorf("%s and %s lighting look alike (mean colours %v and %v)", preset, other, mean, st[1:])
			}
		}
		means[preset] = [3]float64{st[1], st[2], st[3]}
		if preset == "studio" {
			clayCover = st[0]
		}
		screenshot(t, ctx, "studio-3-model-"+preset)
	}
	step(t, ctx, "back to studio lighting",
		chromedp.SetValue(chromedp.ID("lighting"), "studio"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("lighting").dispatchEvent(new Event("change"))`),
	)

	step(t, ctx, "toggling wireframe", chromedp.Click(chromedp.ID("wireframe")), chromedp.Sleep(300*time.Millisecond))
	wire := read(t, ctx, "measuring the wireframe", chromedp.Evaluate[[]float64](canvasStats))
	screenshot(t, ctx, "studio-4-wireframe")
	step(t, ctx, "shading by normals",
		chromedp.Click(chromedp.ID("wireframe")),
		chromedp.SetValue(chromedp.ID("shading"), "normal"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("shading").dispatchEvent(new Event("change"))`),
		chromedp.Sleep(300*time.Millisecond),
	)
	normals := read(t, ctx, "measuring the normals", chromedp.Evaluate[[]float64](canvasStats))
	if wire[0] > 0.85*clayCover {
		t.Errorf("the wireframe covers %.3f of the canvas, the solid mesh %.3f: want the background between its edges", wire[0], clayCover)
	}
	if clay := means["studio"]; math.Abs(clay[0]-normals[1])+math.Abs(clay[1]-normals[2])+math.Abs(clay[2]-normals[3]) < 6 {
		t.Errorf("normal shading looks like clay: mean colours %v and %v", clay, normals[1:])
	}
	screenshot(t, ctx, "studio-5-normals")

	step(t, ctx, "downloading the GLB", chromedp.Click(chromedp.CSS(`#downloads button[data-format="glb"]`)))
	meshtest.RequireValidGLB(t, waitForDownload(t, downloads, ".glb"))

	requireAccessible(t, ctx, "studio")
	requirePageClean(t, pageErrors)
}

// TestStudioTakesPastedAndDroppedPictures pastes a picture (a clipboard
// event carrying a File, as Ctrl+V of a copied image sends) and then drops
// two on the page and a text file with them: the pasted one is previewed, the
// dropped pictures both become the pictures to generate and the text file is
// left out.
func TestStudioTakesPastedAndDroppedPictures(t *testing.T) {
	base := serveTiny(t)
	ctx, pageErrors := newBrowser(t, t.TempDir(), noErrors)
	step(t, ctx, "opening the studio", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("f-steps")))

	blue := pictureBytes(t, square, color.NRGBA{R: 40, G: 80, B: 200, A: 255})
	green := pictureBytes(t, ring, color.NRGBA{R: 30, G: 160, B: 60, A: 255})

	step(t, ctx, "pasting a picture",
		chromedp.Evaluate[chromedp.Void](`(() => {
			const dt = new DataTransfer();
			dt.items.add(`+jsFile("pasted.png", blue, "image/png")+`);
			document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: dt, bubbles: true, cancelable: true}));
		})()`),
		until(`document.getElementById("preview").src.startsWith("data:image/png")`, 60*time.Second),
		chromedp.WaitEnabled(chromedp.ID("generate")),
	)
	if msg := read(t, ctx, "reading the picture's description", chromedp.Text(chromedp.ID("picture-msg"))); !strings.Contains(msg, "png 256×256") {
		t.Errorf("after the paste the picture message reads %q", msg)
	}
	if label := read(t, ctx, "reading the button", chromedp.Text(chromedp.ID("generate"))); label != "Generate" {
		t.Errorf("one pasted picture: the button reads %q", label)
	}
	screenshot(t, ctx, "studio-paste")

	step(t, ctx, "dropping two pictures and a text file",
		chromedp.Evaluate[chromedp.Void](`(() => {
			document.getElementById("preview").removeAttribute("src");
			const dt = new DataTransfer();
			dt.items.add(`+jsFile("dropped-blue.png", blue, "image/png")+`);
			dt.items.add(`+jsFile("notes.txt", []byte("not a picture"), "text/plain")+`);
			dt.items.add(`+jsFile("dropped-green.png", green, "image/png")+`);
			const zone = document.getElementById("drop");
			zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true, cancelable: true}));
			zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
		})()`),
		until(`document.getElementById("preview").src.startsWith("data:image/png")`, 60*time.Second),
	)
	picked := read(t, ctx, "reading the pictures chosen", chromedp.Evaluate[[]string](`[...document.querySelectorAll("#picked button")].map((b) => b.textContent)`))
	if !slices.Equal(picked, []string{"dropped-blue.png", "dropped-green.png"}) {
		t.Errorf("after the drop the pictures chosen are %v", picked)
	}
	if label := read(t, ctx, "reading the button", chromedp.Text(chromedp.ID("generate"))); label != "Generate 2" {
		t.Errorf("two dropped pictures: the button reads %q", label)
	}
	if msg := read(t, ctx, "reading the picture's description", chromedp.Text(chromedp.ID("picture-msg"))); !strings.Contains(msg, "2 pictures (1 other file left out); dropped-blue.png: png 256×256") {
		t.Errorf("after the drop the picture message reads %q", msg)
	}
	step(t, ctx, "previewing the second dropped picture",
		chromedp.Click(chromedp.CSS(`#picked button:nth-child(2)`)),
		until(`document.getElementById("picture-msg").textContent.includes("dropped-green.png: png")`, 60*time.Second),
	)
	screenshot(t, ctx, "studio-drop")
	requirePageClean(t, pageErrors)
}

// TestStudioCancelsAQueuedGeneration: with one job sampling at a time and
// long jobs ahead, the studio's generation waits in the queue and shows its
// place; after a reload of the page it is still followed (from the history),
// and its Cancel button takes it out.
func TestStudioCancelsAQueuedGeneration(t *testing.T) {
	base := serveTiny(t, func(c *server.Config) { c.MaxBatch = 1 })
	picture := objectPicture(t)
	data, err := os.ReadFile(picture)
	if err != nil {
		t.Fatal(err)
	}
	ctx, pageErrors := newBrowser(t, t.TempDir(), noErrors)
	step(t, ctx, "picking a picture",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("f-steps")),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{picture}),
		chromedp.WaitEnabled(chromedp.ID("generate")),
	)
	// Jobs of 200 steps each, sampled one at a time, hold the sampler for a while.
	var ahead []string
	for seed := range 8 {
		id := postGeneration(t, base, fmt.Sprintf("steps=200&resolution=16&seed=%d", seed+100), data)
		ahead = append(ahead, id)
		t.Cleanup(func() { deleteGeneration(t, base, id) })
	}
	queued := `document.querySelector("#queue li .state").textContent.startsWith("queued: position")`
	step(t, ctx, "queueing a generation behind them",
		chromedp.Click(chromedp.ID("generate")),
		until(`document.querySelector("#queue li") !== null`, 30*time.Second),
		until(queued, 60*time.Second),
	)
	id := read(t, ctx, "reading the generation's id", chromedp.Evaluate[string](`document.querySelector("#queue li").dataset.id`))
	if id == "" || slices.Contains(ahead, id) {
		t.Fatalf("the queue row names generation %q", id)
	}
	screenshot(t, ctx, "studio-6-queued")

	step(t, ctx, "reloading the page while it waits",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.ID("f-steps")),
		until(`document.querySelector('#queue li[data-id="`+id+`"]') !== null`, 10*time.Second),
		until(queued+` && Number(document.querySelector("#queue li").dataset.updates) > 0`, 30*time.Second),
	)
	step(t, ctx, "cancelling it",
		chromedp.Click(chromedp.CSS(`#queue li[data-id="`+id+`"] button[data-action="cancel"]`)),
		until(`document.querySelector("#queue li").dataset.state === "cancelled"`, 30*time.Second),
	)
	if _, st := generationStatus(t, base, id); st["status"] != "cancelled" {
		t.Errorf("the server has the studio's generation %s as %v, want cancelled", id, st["status"])
	}
	requirePageClean(t, pageErrors)
}

// jsFile is a JavaScript expression making a File of data, as a page receives one dropped or pasted.
func jsFile(name string, data []byte, mediaType string) string {
	return fmt.Sprintf(`new File([Uint8Array.from(atob(%q), (c) => c.charCodeAt(0))], %q, {type: %q})`,
		base64.StdEncoding.EncodeToString(data), name, mediaType)
}

// postGeneration creates a generation over the API and answers its id.
func postGeneration(t *testing.T, base, query string, picture []byte) string {
	t.Helper()
	resp, err := http.Post(base+"/v1/generations?"+query, "image/png", bytes.NewReader(picture))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("creating a generation: status %d, %v", resp.StatusCode, err)
	}
	return st.ID
}

// recordPageWeight reads from the browser's resource timing what the page
// transferred to open (its HTML, scripts and styles; not the API calls),
// compressed as sent, writes it to the build folder and fails above the
// studio's budget of 300 kB.
func recordPageWeight(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	type entry struct {
		Name    string  `json:"name"`
		Encoded float64 `json:"encoded"`
		Decoded float64 `json:"decoded"`
	}
	entries := read(t, ctx, "reading the resource timing", chromedp.Evaluate[[]entry](`[...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")]
		.map((e) => ({name: new URL(e.name).pathname, encoded: e.encodedBodySize, decoded: e.decodedBodySize}))
		.filter((e) => !e.name.includes("/v1/") && !e.name.endsWith("/metrics"))`))
	var total, plain float64
	var lines []string
	for _, e := range entries {
		total += e.Encoded
		plain += e.Decoded
		lines = append(lines, fmt.Sprintf("%-28s %8.1f kB (%8.1f kB uncompressed)", e.Name, e.Encoded/1000, e.Decoded/1000))
	}
	report := fmt.Sprintf("%s: %.1f kB transferred, %.1f kB uncompressed\n%s\n", page, total/1000, plain/1000, strings.Join(lines, "\n"))
	t.Log(report)
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, "size-"+page+".txt"), []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(entries) < 3 || total == 0 {
		t.Errorf("%s: the resource timing lists %d files of %v bytes", page, len(entries), total)
	}
	if total > 300_000 {
		t.Errorf("%s transfers %.1f kB, over the 300 kB budget", page, total/1000)
	}
}
