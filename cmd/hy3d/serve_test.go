package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/engines"
)

func TestServeRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--max-queue", "0"},
		{"--workers", "-1"},
		{"--cache-bytes", "lots"},
		{"--log-format", "xml"},
		{"--log-level", "trace"},
		{"--log-level", "loud"},
		{"--rate-limit", "-2"},
		{"--results-client-share", "0"},
		{"--results-client-share", "1.5"},
		{"--trusted-proxy", "not-an-address"},
		{"--paint", "none", "--paint", "../../engines/tiny-paint-2.0"},
		{"stray"},
	} {
		code, _, stderr := runCLI(t, append([]string{"serve"}, args...)...)
		if code != exitUsage || !strings.HasPrefix(stderr, "hy3d serve: ") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
	if code, stdout, _ := runCLI(t, "help", "serve"); code != exitOK || !strings.Contains(stdout, "-max-batch") {
		t.Errorf("help: %d %q", code, stdout)
	}
}

// The paint sets follow the shape sets: the embedded toy painter only
// beside the embedded shape models, never beside sets an operator chose,
// and a set of the wrong kind is refused by name.
func TestServePaintsWithTheSetsItIsGiven(t *testing.T) {
	cases := []struct {
		args         []string
		shape, paint []string
		err          string
	}{
		{nil, []string{"silhouette"}, []string{"tiny-paint-2.0-oracle"}, ""},
		{[]string{"--paint", "none"}, []string{"silhouette"}, nil, ""},
		{[]string{"--engines", "../../engines/tiny"}, []string{"tiny"}, nil, ""},
		{[]string{"--engines", "../../engines/tiny", "--paint", "../../engines/tiny-paint-2.1"}, []string{"tiny"}, []string{"tiny-paint-2.1"}, ""},
		{[]string{"--paint", "../../engines/tiny"}, nil, nil, "not a paint set"},
		{[]string{"--engines", "../../engines/tiny-paint-2.0"}, nil, nil, "is a paint set"},
	}
	for _, tc := range cases {
		f, err := parseServeFlags(io.Discard, tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		shapes, paints, err := f.modelSets(zerolog.Nop())
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: error %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		names := func(sets []*engines.Set) []string {
			var out []string
			for _, s := range sets {
				out = append(out, s.Name)
			}
			return out
		}
		if got := names(shapes); !slices.Equal(got, tc.shape) {
			t.Errorf("%v: shape sets %v, want %v", tc.args, got, tc.shape)
		}
		if got := names(paints); !slices.Equal(got, tc.paint) {
			t.Errorf("%v: paint sets %v, want %v", tc.args, got, tc.paint)
		}
	}
}

func TestServeFlagsBecomeTheServerConfig(t *testing.T) {
	f, err := parseServeFlags(io.Discard, []string{
		"--cache-bytes", "0", "--results-bytes", "0", "--rate-limit", "0", "--max-body", "8MiB", "--api-key", "a", "--result-grace", "0",
		"--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "192.168.1.7", "--cors-origin", "https://x.example",
	})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{apiKeysEnv: " b, ,c "}
	cfg, err := f.serverConfig(zerolog.Nop(), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CacheBytes != -1 || cfg.ResultsBytes != -1 || cfg.RateLimit != -1 || cfg.ResultGrace >= 0 {
		t.Errorf("0 on the command line must switch off: cache %d, results %d, rate %v, result grace %v", cfg.CacheBytes, cfg.ResultsBytes, cfg.RateLimit, cfg.ResultGrace)
	}
	if cfg.MaxBodyBytes != 8<<20 || strings.Join(cfg.APIKeys, ",") != "a,b,c" || cfg.CORSOrigins[0] != "https://x.example" {
		t.Errorf("%+v", cfg)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32")}
	if len(cfg.TrustedProxies) != 2 || cfg.TrustedProxies[0] != want[0] || cfg.TrustedProxies[1] != want[1] {
		t.Errorf("proxies %v", cfg.TrustedProxies)
	}
}

func TestServeLogLevel(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		debug     bool
		info      bool
		errorLine bool
	}{
		{nil, false, true, true}, // info by default: debug lines are off
		{[]string{"--log-level", "debug"}, true, true, true},
		{[]string{"--log-level", "error"}, false, false, true},
	} {
		f, err := parseServeFlags(io.Discard, tc.args)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		log := f.logger(&buf)
		log.Debug().Msg("debug-line")
		log.Info().Msg("info-line")
		log.Error().Msg("error-line")
		got := buf.String()
		for _, want := range []struct {
			line string
			on   bool
		}{{"debug-line", tc.debug}, {"info-line", tc.info}, {"error-line", tc.errorLine}} {
			if strings.Contains(got, want.line) != want.on {
				t.Errorf("%v: %s logged %v, want %v", tc.args, want.line, !want.on, want.on)
			}
		}
	}
}

func TestServeAnswersAndStopsOnSignal(t *testing.T) {
	needORT(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var stderr syncWriter
	done := make(chan int, 1)
	go func() {
		done <- serve(ctx, stdio{strings.NewReader(""), io.Discard, &stderr},
			[]string{"--addr", addr, "--data-dir", t.TempDir(), "--threads", "2"})
	}()
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	picture, err := os.ReadFile(writePicture(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/v1/generate?resolution=16&steps=2", "image/png", bytes.NewReader(picture))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(body, []byte("glTF")) {
		t.Fatalf("%d %.200s", resp.StatusCode, body)
	}

	stop() // SIGINT
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	log := stderr.String()
	for _, want := range []string{`"message":"data directory"`, `"message":"model loaded"`, `"message":"draining"`, `"message":"stopped"`, `"path":"/v1/generate"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s", want)
		}
	}
}

// syncWriter lets the server's goroutines share one buffer.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func TestSecondSignalAbortsTheDrain(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	notified := make(chan struct{})
	notify := func() (<-chan os.Signal, func()) { close(notified); return sigs, func() {} }
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	aborted := make(chan struct{})
	go func() {
		abortOnSecondSignal(ctx, done, notify, func() { close(aborted) })
		close(done)
	}()
	select {
	case <-notified:
		t.Fatal("listening for a second signal before the first")
	default:
	}
	stop() // the first signal
	<-notified
	sigs <- os.Interrupt
	select {
	case <-aborted:
	case <-time.After(30 * time.Second):
		t.Fatal("the second signal did not abort")
	}
}

func TestNoAbortWhenServeEndsFirst(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan struct{})
	close(done)
	abortOnSecondSignal(ctx, done, func() (<-chan os.Signal, func()) {
		t.Error("listening for signals after serve ended")
		return nil, func() {}
	}, func() { t.Error("aborted") })
}

func TestMaxPixelsReachesThePipeline(t *testing.T) {
	f, err := parseServeFlags(io.Discard, []string{"--max-pixels", "12345", "--threads", "3"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.pipelineConfig(nil, nil, zerolog.Nop())
	if cfg.MaxPixels != 12345 || cfg.Threads != 3 {
		t.Errorf("pipeline config: max pixels %d, threads %d; want 12345 and 3", cfg.MaxPixels, cfg.Threads)
	}
}
