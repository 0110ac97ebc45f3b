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
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/internal/tinypipeline"
	"github.com/hy3d/hy3d/server"
	"github.com/hy3d/hy3d/studio"
)

// screenshotDir is where the browser tests leave their screenshots and the
// pages' measured sizes: the repository's build folder (the README's
// pictures are taken from here).
const screenshotDir = "../build/screenshots"

// serveTiny starts hy3d on loopback over the embedded reference models on
// ONNX Runtime, the path `make run` takes, and answers its base URL.
func serveTiny(t *testing.T, opts ...func(*server.Config)) string {
	t.Helper()
	return serve(t, nil, opts)
}

// servePainting is serveTiny with the embedded oracle paint set beside the
// shape models, as `make run` serves it.
func servePainting(t *testing.T, opts ...func(*server.Config)) string {
	t.Helper()
	set, err := engines.DefaultPaint()
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, []*engines.Set{set}, opts)
}

// serve starts hy3d over the tiny shape models and the paint sets paints
// (the first of them the default paint model).
func serve(t *testing.T, paints []*engines.Set, opts []func(*server.Config)) string {
	t.Helper()
	if !studio.Built() {
		t.Fatal("the pages are not built: run `make studio` (npm and esbuild) before go test")
	}
	p, set := tinypipeline.Open(t, t.Fatalf)
	g, err := server.NewPipelines([]server.PipelineModel{{Pipeline: p, Set: set}}, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	for _, set := range paints {
		painter, _ := tinypipeline.OpenPaintSet(t, set, t.Fatalf, 16<<20)
		if err := g.AddPaint(server.PaintModel{Painter: painter, Set: set}); err != nil {
			t.Fatal(err)
		}
	}
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

// prefixProxy is a reverse proxy on loopback that serves a backend under a
// path prefix, as an operator's proxy would. It refuses (and records) every
// request outside the prefix, records every 401 its backend answers, and can
// be pointed at another backend, as after a restart.
type prefixProxy struct {
	prefix string
	mu     sync.Mutex
	target *url.URL
	stray  []string // requests outside the prefix
	denied []string // requests the backend answered 401
}

// newPrefixProxy starts a proxy serving backend under prefix ("/hy3d") and
// answers the URL of the prefix, with its trailing slash.
func newPrefixProxy(t *testing.T, prefix, backend string) (*prefixProxy, string) {
	t.Helper()
	p := &prefixProxy{prefix: prefix}
	p.point(t, backend)
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			p.mu.Lock()
			target := p.target
			p.mu.Unlock()
			r.SetURL(target)
			r.Out.URL.Path = strings.TrimPrefix(r.In.URL.Path, prefix)
			r.Out.URL.RawPath = ""
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusUnauthorized {
				p.mu.Lock()
				p.denied = append(p.denied, resp.Request.URL.Path)
				p.mu.Unlock()
			}
			return nil
		},
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, prefix+"/") {
			p.mu.Lock()
			p.stray = append(p.stray, r.URL.Path)
			p.mu.Unlock()
			http.NotFound(w, r)
			return
		}
		rp.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return p, "http://" + ln.Addr().String() + prefix + "/"
}

// point sends the proxy's traffic to another backend.
func (p *prefixProxy) point(t *testing.T, backend string) {
	u, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.target = u
	p.mu.Unlock()
}

// takeDenied answers the paths answered 401 since the last call, and forgets them.
func (p *prefixProxy) takeDenied() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.denied
	p.denied = nil
	return d
}

func (p *prefixProxy) strays() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.stray...)
}

// chromium is Debian's chromium, headless, started by the first test that
// needs it and shared by the package's tests, each in a browser context of
// its own (its own storage, as a fresh profile has).
var chromium struct {
	once sync.Once
	ctx  context.Context
	stop func()
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if chromium.stop != nil {
		chromium.stop()
	}
	os.Exit(code)
}

func startChromium() {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		chromium.err = fmt.Errorf("chromium not found (make deps installs it): %w", err)
		return
	}
	profile, err := os.MkdirTemp("", "hy3d-studio-chromium-")
	if err != nil {
		chromium.err = err
		return
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1400, 1000),
	}
	// SwiftShader draws WebGL on the CPU: the machines that run the tests have no GPU.
	for _, f := range []string{"headless", "no-sandbox", "disable-gpu", "disable-quic", "no-first-run",
		"disable-background-networking", "disable-component-update", "disable-sync",
		"enable-unsafe-swiftshader", "no-default-browser-check", "mute-audio"} {
		opts = append(opts, chromedp.Flag(f, true))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	chromium.ctx = ctx
	chromium.stop = func() {
		cancel()
		cancelAlloc()
		os.RemoveAll(profile)
	}
	if err := chromedp.Do(ctx); err != nil {
		chromium.err = fmt.Errorf("starting chromium: %w", err)
	}
}

// newBrowser opens a tab in a new browser context of the shared chromium,
// lets downloads land in downloads, and collects the page's console errors,
// uncaught exceptions and browser-log errors (but those for which expected
// says they were provoked on purpose).
func newBrowser(t *testing.T, downloads string, expected func(chromedp.ConsoleMessage) bool) (context.Context, func() []string) {
	t.Helper()
	chromium.once.Do(startChromium)
	if chromium.err != nil {
		t.Fatal(chromium.err)
	}
	ctx, cancel := chromedp.NewContext(chromium.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads,
		BrowserContextID: chromedp.FromContext(ctx).BrowserContextID}); err != nil {
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

// noErrors is the console filter of a test that provokes no error.
func noErrors(chromedp.ConsoleMessage) bool { return false }

// requirePageClean fails the test with every console error the page logged.
func requirePageClean(t *testing.T, pageErrors func() []string) {
	t.Helper()
	if p := pageErrors(); len(p) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(p, "\n"))
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

// A shape is an object outline for test pictures.
type shape func(dx, dy, r int) bool

var (
	disc   shape = func(dx, dy, r int) bool { return dx*dx+dy*dy < r*r }
	square shape = func(dx, dy, r int) bool { return max(dx, -dx) < r*4/5 && max(dy, -dy) < r*4/5 }
	ring   shape = func(dx, dy, r int) bool { d := dx*dx + dy*dy; return d < r*r && d > r*r/4 }
)

// pictureBytes draws an opaque object on a transparent square, as a PNG.
func pictureBytes(t *testing.T, inside shape, c color.NRGBA) []byte {
	t.Helper()
	const size = 256
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for y := range size {
		for x := range size {
			if inside(x-size/2, y-size/2, size/3) {
				img.SetNRGBA(x, y, c)
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// picture writes pictureBytes as dir/name and answers its path.
func picture(t *testing.T, dir, name string, inside shape, c color.NRGBA) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pictureBytes(t, inside, c), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// objectPicture is the tests' usual picture: an orange disc.
func objectPicture(t *testing.T) string {
	return picture(t, t.TempDir(), "disc.png", disc, color.NRGBA{R: 200, G: 90, B: 40, A: 255})
}

// step runs browser actions under a bound, naming what was awaited when it fails.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	start := time.Now()
	defer func() { t.Logf("%s took %s", what, time.Since(start)) }()
	if err := chromedp.Do(sctx, actions...); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("[role=status], [role=alert], .err, #queue li")].map((e) => (e.id || e.dataset.id || "") + ": " + e.textContent).join(" | ")`))
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

// generationStatus reads a generation's status from the server.
func generationStatus(t *testing.T, base, id string, header ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/v1/generations/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, st
}

// axeViolation is one rule axe-core found broken, with the elements breaking it.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

// requireAccessible injects axe-core (the npm package pinned in
// package-lock.json) into the page, runs its WCAG 2 A and AA rules and
// best practices, and fails the test on every serious or critical
// violation. Lesser ones are logged.
func requireAccessible(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	src, err := os.ReadFile("node_modules/axe-core/axe.min.js")
	if err != nil {
		t.Fatalf("axe-core is not installed (make deps runs npm ci in studio/): %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](string(src))); err != nil {
		t.Fatalf("injecting axe-core: %v", err)
	}
	raw := read(t, ctx, "running axe-core", chromedp.Evaluate[string](
		`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}}).then((r) => JSON.stringify({passes: r.passes.length, violations: r.violations}))`,
		chromedp.EvalAwaitPromise))
	var result struct {
		Passes     int
		Violations []axeViolation
	}
	if err := json.Unmarshal([]byte(raw), &result); err != nil {
		t.Fatalf("reading axe-core's answer: %v", err)
	}
	if result.Passes < 10 {
		t.Errorf("%s: axe-core passed only %d rules: did it see the page?", page, result.Passes)
	}
	t.Logf("%s: axe-core passed %d rules, found %d violations", page, result.Passes, len(result.Violations))
	for _, v := range result.Violations {
		var where []string
		for _, n := range v.Nodes {
			where = append(where, fmt.Sprint(n.Target))
		}
		msg := fmt.Sprintf("%s: axe-core %s violation %s (%s) at %s", page, v.Impact, v.ID, v.Help, strings.Join(where, ", "))
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Error(msg)
		} else {
			t.Log(msg)
		}
	}
}
