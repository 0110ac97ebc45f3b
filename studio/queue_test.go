package studio_test

import (
	"bytes"
	"fmt"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hy3d/hy3d/server"
)

// TestStudioManyPicturesBehindAPrefixWithAKey serves hy3d under /hy3d/ of a
// reverse proxy, with an API key required. The studio asks for the key, keeps
// it, and sends it on every request, its progress streams included; a folder
// of four pictures (and a file that is not one) becomes four generations in
// the queue (one more than the page follows by stream at once: the last is
// polled until a stream is free), which all finish and open; a repeat of one
// is the same generation, opened at once, and a copy encoded otherwise a
// cached result, opened at once; and the dashboard under the same prefix
// fills with the key. No request leaves the prefix.
func TestStudioManyPicturesBehindAPrefixWithAKey(t *testing.T) {
	const key = "s3cret-studio-key"
	base := serveTiny(t, func(c *server.Config) { c.APIKeys = []string{key} })
	proxy, prefixed := newPrefixProxy(t, "/hy3d", base)
	// The page is opened before the key is typed: its first call is refused on purpose.
	ctx, pageErrors := newBrowser(t, t.TempDir(), func(m chromedp.ConsoleMessage) bool {
		return m.Source == "network" && strings.Contains(m.Text, "401") && strings.HasSuffix(m.URL, "/hy3d/v1/models")
	})
	step(t, ctx, "opening the studio without the key",
		chromedp.Navigate(prefixed),
		until(`document.getElementById("form-msg").textContent.includes("API key")`, 30*time.Second),
	)
	if denied := proxy.takeDenied(); len(denied) != 1 {
		t.Errorf("before the key, the server refused %v; want the model list alone", denied)
	}
	step(t, ctx, "typing the key",
		chromedp.SetValue(chromedp.ID("api-key"), key),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("api-key").dispatchEvent(new Event("change"))`),
		chromedp.WaitVisible(chromedp.ID("f-steps")),
	)
	if msg := read(t, ctx, "reading the form message", chromedp.Text(chromedp.ID("form-msg"))); msg != "" {
		t.Errorf("with the key the form still says %q", msg)
	}

	folder := t.TempDir()
	picture(t, folder, "a-disc.png", disc, color.NRGBA{R: 200, G: 90, B: 40, A: 255})
	picture(t, folder, "b-square.png", square, color.NRGBA{R: 40, G: 80, B: 200, A: 255})
	repeat := picture(t, folder, "c-ring.png", ring, color.NRGBA{R: 30, G: 160, B: 60, A: 255})
	picture(t, folder, "d-disc.png", disc, color.NRGBA{R: 120, G: 40, B: 160, A: 255})
	if err := os.WriteFile(filepath.Join(folder, "notes.txt"), []byte("not a picture"), 0o644); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "choosing the folder",
		chromedp.SetUploadFiles(chromedp.ID("folder"), []string{folder}),
		until(`document.getElementById("preview").src.startsWith("data:image/png")`, 60*time.Second),
		chromedp.WaitEnabled(chromedp.ID("generate")),
	)
	if msg := read(t, ctx, "reading the picture message", chromedp.Text(chromedp.ID("picture-msg"))); !strings.HasPrefix(msg, "4 pictures (1 other file left out)") {
		t.Errorf("the folder is described as %q", msg)
	}
	screenshot(t, ctx, "studio-7-folder")

	allOpened := `(() => { const rows = [...document.querySelectorAll("#queue li")];
		return rows.length === %d && rows.every((r) => r.dataset.state === "succeeded" && r.dataset.opened === "true"); })()`
	step(t, ctx, "generating the four",
		chromedp.SetValue(chromedp.ID("f-steps"), "2"),
		chromedp.Click(chromedp.ID("generate")),
		until(`document.querySelectorAll("#queue li").length === 4`, 30*time.Second),
	)
	screenshot(t, ctx, "studio-8-queue")
	step(t, ctx, "waiting for all four to finish and open", until(fmt.Sprintf(allOpened, 4), 90*time.Second))
	screenshot(t, ctx, "studio-9-queue-done")
	ids := read(t, ctx, "reading the queue", chromedp.Evaluate[[]string](`[...document.querySelectorAll("#queue li")].map((r) => r.dataset.id)`))
	for _, id := range ids {
		if code, st := generationStatus(t, base, id, "X-API-Key", key); code != http.StatusOK || st["status"] != "succeeded" {
			t.Errorf("the server has %s as %d %v", id, code, st["status"])
		}
	}

	// The same bytes with the same parameters are the same generation: it comes back to the top and opens.
	step(t, ctx, "generating one of them again",
		chromedp.Evaluate[chromedp.Void](`delete document.body.dataset.shown`),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{repeat}),
		until(`document.getElementById("generate").textContent === "Generate" && !document.getElementById("generate").disabled`, 30*time.Second),
		chromedp.Click(chromedp.ID("generate")),
		until(`document.body.dataset.shown !== undefined`, 30*time.Second),
	)
	first := `document.querySelector("#queue li")`
	if top := read(t, ctx, "reading the top row", chromedp.Evaluate[[]string](`[`+first+`.dataset.id, `+first+`.querySelector(".name").textContent, document.body.dataset.shown]`)); !strings.HasSuffix(top[1], "c-ring.png") || top[2] != top[0] || !slices.Contains(ids, top[0]) {
		t.Errorf("after the repeat the top row is %v and the viewer shows %s", top[:2], top[2])
	}
	// A copy encoded otherwise meets the stored result by its pixels: a new generation, cached, open at once.
	copyPath := filepath.Join(t.TempDir(), "c-ring-copy.png")
	if err := os.WriteFile(copyPath, reencode(t, repeat), 0o644); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "generating a copy encoded otherwise",
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{copyPath}),
		until(`document.getElementById("picture-msg").textContent.startsWith("png")`, 30*time.Second),
		chromedp.Click(chromedp.ID("generate")),
		until(fmt.Sprintf(allOpened, 5), 30*time.Second),
	)
	if s := read(t, ctx, "reading the copy's row", chromedp.Evaluate[string](first+`.querySelector(".state").textContent`)); s != "succeeded (cached)" {
		t.Errorf("the copy reads %q, want a cached success", s)
	}
	if n := read(t, ctx, "counting the copy's statuses", chromedp.Evaluate[int](`Number(`+first+`.dataset.updates)`)); n != 1 {
		t.Errorf("the cached copy took %d statuses to open, want 1 (its creation)", n)
	}
	if shown, copyID := read(t, ctx, "reading the shown generation", chromedp.Evaluate[string](`document.body.dataset.shown`)),
		read(t, ctx, "reading the copy's id", chromedp.Evaluate[string](first+`.dataset.id`)); shown != copyID || slices.Contains(ids, copyID) {
		t.Errorf("the viewer shows %s; the copy is %s, the first four %v", shown, copyID, ids)
	}
	screenshot(t, ctx, "studio-9-queue-cached")

	step(t, ctx, "opening the dashboard under the prefix",
		chromedp.Navigate(prefixed+"dashboard"),
		until(`[...document.querySelectorAll(".chart")].every((c) => Number(c.dataset.points || 0) >= 2)`, 30*time.Second),
	)
	if u := read(t, ctx, "reading the dashboard's state", chromedp.Text(chromedp.ID("updated"))); !strings.HasPrefix(u, "updated") {
		t.Errorf("the dashboard says %q", u)
	}
	if denied := proxy.takeDenied(); len(denied) > 0 {
		t.Errorf("with the key typed, the server still refused %v", denied)
	}
	if stray := proxy.strays(); len(stray) > 0 {
		t.Errorf("the pages asked for %v, outside their prefix", stray)
	}
	requirePageClean(t, pageErrors)
}

// TestStudioHistoryReopensWhatTheServerKeeps: a generation made in the
// studio is in its history after a reload and reopens in the viewer; after
// the server behind the proxy is replaced by a fresh one (a restart that
// kept nothing), the history says the server no longer has it, and Forget
// takes it out for good.
func TestStudioHistoryReopensWhatTheServerKeeps(t *testing.T) {
	first := serveTiny(t)
	proxy, prefixed := newPrefixProxy(t, "/hy3d", first)
	// The fresh server does not know the remembered generation: its 404 is expected.
	ctx, pageErrors := newBrowser(t, t.TempDir(), func(m chromedp.ConsoleMessage) bool {
		return m.Source == "network" && strings.Contains(m.Text, "404") && strings.Contains(m.URL, "/hy3d/v1/generations/")
	})
	step(t, ctx, "generating one",
		chromedp.Navigate(prefixed),
		chromedp.WaitVisible(chromedp.ID("f-steps")),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{objectPicture(t)}),
		chromedp.WaitEnabled(chromedp.ID("generate")),
		chromedp.SetValue(chromedp.ID("f-steps"), "2"),
		chromedp.Click(chromedp.ID("generate")),
		until(`document.body.dataset.shown !== undefined`, 60*time.Second),
	)
	id := read(t, ctx, "reading the generation", chromedp.Evaluate[string](`document.body.dataset.shown`))
	row := `document.querySelector('#queue li[data-id="` + id + `"]')`

	step(t, ctx, "reloading the page",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.ID("f-steps")),
		until(row+` !== null && Number(`+row+`.dataset.updates) > 0`, 30*time.Second),
	)
	if shown := read(t, ctx, "reading the viewer", chromedp.Evaluate[bool](`document.body.dataset.shown !== undefined`)); shown {
		t.Error("a finished generation from the history opened by itself after the reload")
	}
	if name := read(t, ctx, "reading the row's name", chromedp.Evaluate[string](row+`.querySelector(".name").textContent`)); name != "disc.png" {
		t.Errorf("the history row is named %q", name)
	}
	step(t, ctx, "reopening it",
		chromedp.Click(chromedp.CSS(`#queue li[data-id="`+id+`"] button[data-action="open"]`)),
		until(`document.body.dataset.shown === "`+id+`"`, 30*time.Second),
		until(`document.getElementById("count-faces").textContent !== "–"`, 10*time.Second),
	)
	screenshot(t, ctx, "studio-10-history")

	proxy.point(t, serveTiny(t))
	step(t, ctx, "reloading against a server that never saw it",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.ID("f-steps")),
		until(row+` !== null && `+row+`.dataset.state === "gone"`, 30*time.Second),
	)
	if s := read(t, ctx, "reading the row", chromedp.Evaluate[string](row+`.querySelector(".state").textContent`)); s != "no longer on the server" {
		t.Errorf("the forgotten generation reads %q", s)
	}
	if disabled := read(t, ctx, "reading its Open button", chromedp.Evaluate[bool](row+`.querySelector('[data-action="open"]').disabled`)); !disabled {
		t.Error("a generation the server no longer has can be opened")
	}
	screenshot(t, ctx, "studio-11-history-gone")
	step(t, ctx, "forgetting it",
		chromedp.Click(chromedp.CSS(`#queue li[data-id="`+id+`"] button[data-action="forget"]`)),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.ID("f-steps")),
	)
	if n := read(t, ctx, "counting the rows", chromedp.Evaluate[int](`document.querySelectorAll("#queue li").length`)); n != 0 {
		t.Errorf("%d rows after forgetting the only one", n)
	}
	requirePageClean(t, pageErrors)
}

// reencode answers the PNG at path encoded with other settings: the same
// pixels in other bytes.
func reencode(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.NoCompression}).Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
