package studio_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/mesh/meshtest"
	"github.com/hy3d/hy3d/pipeline"
	"github.com/hy3d/hy3d/server"
	"github.com/hy3d/hy3d/studio"
	"github.com/hy3d/hy3d/tensor"
)

// screenshotDir is where the browser tests leave their screenshots: the
// repository's build folder (the README's pictures are taken from here).
const screenshotDir = "../build/screenshots"

// serveTiny starts hy3d on loopback over the embedded reference models on
// ONNX Runtime, the path `make run` takes, and answers its base URL.
func serveTiny(t *testing.T, opts ...func(*server.Config)) string {
	t.Helper()
	if !studio.Built() {
		t.Fatal("the pages are not built: run `make studio` (npm and esbuild) before go test")
	}
	set, err := engines.Tiny()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	loader, err := pipeline.OpenBackend(ctx, set, pipeline.BackendOptions{Kind: pipeline.BackendORT, Logger: zerolog.Nop()})
	if errors.Is(err, tensor.ErrUnavailable) {
		t.Fatalf("ONNX Runtime not installed (make deps): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loader.Close() })
	p, err := pipeline.New(ctx, pipeline.Config{Set: set, Loader: loader, Logger: zerolog.Nop(), Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	g, err := server.NewPipelines([]server.PipelineModel{{Pipeline: p, Set: set}}, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	cfg := server.Config{Models: g.Models(), Preprocessor: g, Generator: g, Logger: zerolog.Nop(), ResultsDir: t.TempDir()}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("serve: %v", err)
		}
		s.Close()
	})
	return "http://" + ln.Addr().String()
}

// newBrowser starts Debian's chromium headless with a fresh profile, lets
// downloads land in downloads, and collects the page's console errors,
// uncaught exceptions and browser-log errors (but those for which expected
// says they were provoked on purpose).
func newBrowser(t *testing.T, downloads string, expected func(chromedp.ConsoleMessage) bool) (context.Context, func() []string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found (make deps installs it): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	}
	// SwiftShader draws WebGL on the CPU: the machines that run the tests have no GPU.
	for _, f := range []string{"headless", "no-sandbox", "disable-gpu", "disable-quic", "no-first-run",
		"disable-background-networking", "disable-component-update", "disable-sync",
		"enable-unsafe-swiftshader", "no-default-browser-check", "mute-audio"} {
		opts = append(opts, chromedp.Flag(f, true))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads}); err != nil {
		t.Fatalf("allowing downloads: %v", err)
	}
	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if (m.Type == chromedp.ConsoleError || m.IsException()) && !expected(m) {
				mu.Lock()
				problems = append(problems, m.String()+" ("+m.URL+")")
				mu.Unlock()
			}
		}
	}()
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// screenshot saves the page as build/screenshots/<name>.png.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// objectPicture draws an opaque disc on a transparent square, as a PNG file.
func objectPicture(t *testing.T) string {
	t.Helper()
	const size = 256
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for y := range size {
		for x := range size {
			dx, dy := x-size/2, y-size/2
			if dx*dx+dy*dy < (size/3)*(size/3) {
				img.SetNRGBA(x, y, color.NRGBA{R: 200, G: 90, B: 40, A: 255})
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "disc.png")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// step runs browser actions under a bound, naming what was awaited when it fails.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("[role=status], [role=alert], .err")].map((e) => (e.id || "") + ": " + e.textContent).join(" | ")`))
		t.Fatalf("%s: %v (page: %s)", what, err, state)
	}
}

// read runs one browser action that answers a value, under a bound.
func read[T any](t *testing.T, ctx context.Context, what string, action chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, action)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// until polls a JavaScript condition until it holds.
func until(expr string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout))
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := poll(ctx, t)
		return err
	})
}

// TestStudioPictureToDownloadedModel walks the studio as a user does: pick a
// picture, see what the model sees, send an invalid parameter and read its
// message next to the field, generate with live progress, see the mesh drawn,
// download the GLB and validate it.
func TestStudioPictureToDownloadedModel(t *testing.T) {
	base := serveTiny(t)
	downloads := t.TempDir()
	// The invalid parameter is sent on purpose: its 422 is the browser's only expected error.
	ctx, pageErrors := newBrowser(t, downloads, func(m chromedp.ConsoleMessage) bool {
		return m.Source == "network" && strings.Contains(m.Text, "422") && strings.HasSuffix(m.URL, "/v1/generations")
	})

	step(t, ctx, "opening the studio", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("f-steps")))
	if v := read(t, ctx, "reading the defaults", chromedp.Value(chromedp.ID("f-steps"))); v == "" {
		t.Fatal("the steps field has no default from /v1/models")
	}

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
	screenshot(t, ctx, "studio-2-invalid-field")

	step(t, ctx, "generating",
		chromedp.WaitEnabled(chromedp.ID("generate")),
		chromedp.SetValue(chromedp.ID("f-steps"), "3"),
		chromedp.Click(chromedp.ID("generate")),
		until(`document.body.dataset.shown !== undefined`, 80*time.Second),
	)
	if n := read(t, ctx, "counting progress events", chromedp.Evaluate[int](`Number(document.body.dataset.events || 0)`)); n < 2 {
		t.Errorf("%d progress events arrived, want at least 2 (running and succeeded)", n)
	}
	if msg := read(t, ctx, "reading the fixed field", chromedp.Text(chromedp.ID("err-steps"))); msg != "" {
		t.Errorf("the fixed field still shows %q", msg)
	}
	if p := read(t, ctx, "reading the progress", chromedp.Text(chromedp.ID("progress"))); !strings.HasPrefix(p, "succeeded") {
		t.Errorf("progress reads %q, want succeeded", p)
	}
	if c := read(t, ctx, "reading the counts", chromedp.Text(chromedp.ID("counts"))); !strings.Contains(c, "faces") {
		t.Errorf("counts read %q", c)
	}

	// The canvas is drawn over a flat background: the mesh must cover part of it.
	step(t, ctx, "letting a few frames render", chromedp.Sleep(300*time.Millisecond))
	covered := read(t, ctx, "measuring the canvas", chromedp.Evaluate[float64](`(() => {
		const src = document.querySelector("#view canvas");
		const c = document.createElement("canvas");
		c.width = src.width; c.height = src.height;
		const g = c.getContext("2d");
		g.drawImage(src, 0, 0);
		const px = g.getImageData(0, 0, c.width, c.height).data;
		const [r, gg, b] = [px[0], px[1], px[2]];
		let differ = 0;
		for (let i = 0; i < px.length; i += 4) {
			if (Math.abs(px[i] - r) + Math.abs(px[i+1] - gg) + Math.abs(px[i+2] - b) > 24) differ++;
		}
		return differ / (px.length / 4);
	})()`))
	if covered < 0.01 {
		t.Errorf("the mesh covers %.4f of the canvas, want at least 1%%", covered)
	}
	screenshot(t, ctx, "studio-3-model")

	if n := read(t, ctx, "reading the stage bar", chromedp.Evaluate[int](`document.querySelectorAll("#stages span").length`)); n != 7 {
		t.Errorf("the stage bar has %d stages, want 7 (preprocess to export)", n)
	}

	step(t, ctx, "toggling wireframe", chromedp.Click(chromedp.ID("wireframe")), chromedp.Sleep(200*time.Millisecond))
	screenshot(t, ctx, "studio-4-wireframe")
	step(t, ctx, "shading by normals",
		chromedp.Click(chromedp.ID("wireframe")),
		chromedp.SetValue(chromedp.ID("shading"), "normal"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("shading").dispatchEvent(new Event("change"))`),
		chromedp.Sleep(200*time.Millisecond),
	)
	screenshot(t, ctx, "studio-5-normals")

	step(t, ctx, "downloading the GLB", chromedp.Click(chromedp.CSS(`#downloads button[data-format="glb"]`)))
	meshtest.RequireValidGLB(t, waitForDownload(t, downloads, ".glb"))

	if p := pageErrors(); len(p) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(p, "\n"))
	}
}

// waitForDownload waits (bounded) for a finished download ending in ext.
func waitForDownload(t *testing.T, dir, ext string) []byte {
	t.Helper()
	for range 300 {
		matches, _ := filepath.Glob(filepath.Join(dir, "*"+ext))
		if len(matches) == 1 {
			b, err := os.ReadFile(matches[0])
			if err == nil && len(b) > 0 {
				return b
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	entries, _ := os.ReadDir(dir)
	t.Fatalf("no %s download in %s after 30 s (found %s)", ext, dir, fmt.Sprint(entries))
	return nil
}

// TestDashboardFillsWithData opens the dashboard after one generation: every
// chart gathers points from the once-a-second refresh, the stage latency and
// batch tables list what ran, and the GPU panel states what it knows.
func TestDashboardFillsWithData(t *testing.T) {
	base := serveTiny(t)
	picture, err := os.ReadFile(objectPicture(t))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/v1/generate?steps=2", "image/png", bytes.NewReader(picture))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("generating before the dashboard: status %d", resp.StatusCode)
	}

	ctx, pageErrors := newBrowser(t, t.TempDir(), func(chromedp.ConsoleMessage) bool { return false })
	step(t, ctx, "opening the dashboard and waiting for three refreshes",
		chromedp.Navigate(base+"/dashboard"),
		until(`[...document.querySelectorAll(".chart")].every((c) => Number(c.dataset.points || 0) >= 3)`, 30*time.Second),
	)
	stages := read(t, ctx, "reading the stage table", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("#stages tbody tr")].map((r) => r.cells[0].textContent)`))
	for _, want := range []string{"preprocess", "sample", "export"} {
		if !slices.Contains(stages, want) {
			t.Errorf("stage table lists %v, want %s among them", stages, want)
		}
	}
	batches := read(t, ctx, "reading the batch table", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("#batches tbody tr")].map((r) => r.cells[0].textContent)`))
	if !slices.Contains(batches, "dit") {
		t.Errorf("batch table lists %v, want dit", batches)
	}
	if gpu := read(t, ctx, "reading the GPU state", chromedp.Text(chromedp.ID("gpu-state"))); gpu == "" {
		t.Error("the GPU panel says nothing")
	}
	if n := read(t, ctx, "counting drawn charts", chromedp.Evaluate[int](`document.querySelectorAll(".chart canvas").length`)); n != 4 {
		t.Errorf("%d charts drawn, want 4", n)
	}
	screenshot(t, ctx, "dashboard")
	if p := pageErrors(); len(p) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(p, "\n"))
	}
}

// TestStudioCancelsAQueuedGeneration: with one job sampling at a time and a
// long job running, the studio's generation waits in the queue, shows its
// place, and Cancel takes it out.
func TestStudioCancelsAQueuedGeneration(t *testing.T) {
	base := serveTiny(t, func(c *server.Config) { c.MaxBatch = 1 })
	picture := objectPicture(t)
	data, err := os.ReadFile(picture)
	if err != nil {
		t.Fatal(err)
	}
	ctx, pageErrors := newBrowser(t, t.TempDir(), func(chromedp.ConsoleMessage) bool { return false })
	step(t, ctx, "picking a picture",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("f-steps")),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{picture}),
		chromedp.WaitEnabled(chromedp.ID("generate")),
	)
	// Jobs of 200 steps each, sampled one at a time, hold the sampler for a while.
	var ahead []string
	for seed := range 8 {
		resp, err := http.Post(fmt.Sprintf("%s/v1/generations?steps=200&resolution=16&seed=%d", base, seed+100), "image/png", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		var long struct{ ID string }
		err = json.NewDecoder(resp.Body).Decode(&long)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("a job ahead: status %d, %v", resp.StatusCode, err)
		}
		ahead = append(ahead, long.ID)
		t.Cleanup(func() { deleteGeneration(t, base, long.ID) })
	}
	step(t, ctx, "queueing a generation behind them",
		chromedp.Click(chromedp.ID("generate")),
		until(`document.getElementById("progress").textContent.startsWith("queued: position")`, 60*time.Second),
	)
	screenshot(t, ctx, "studio-6-queued")
	step(t, ctx, "cancelling it",
		chromedp.Click(chromedp.ID("cancel")),
		until(`document.getElementById("progress").textContent.startsWith("cancelled")`, 30*time.Second),
	)
	id := read(t, ctx, "reading the generation's id", chromedp.Evaluate[string](`document.body.dataset.generation || ""`))
	if id == "" || slices.Contains(ahead, id) {
		t.Fatalf("the page names generation %q", id)
	}
	resp, err := http.Get(base + "/v1/generations/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct{ Status string }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || st.Status != "cancelled" {
		t.Errorf("the server has the studio's generation %s as %q (%v), want cancelled", id, st.Status, err)
	}
	if p := pageErrors(); len(p) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(p, "\n"))
	}
}

// deleteGeneration cancels a generation, whatever its state.
func deleteGeneration(t *testing.T, base, id string) {
	req, err := http.NewRequest(http.MethodDelete, base+"/v1/generations/"+id, nil)
	if err != nil {
		t.Error(err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return
	}
	resp.Body.Close()
}
