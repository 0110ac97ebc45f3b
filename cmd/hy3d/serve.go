package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/ort"
	"github.com/hy3d/hy3d/paint"
	"github.com/hy3d/hy3d/pipeline"
	"github.com/hy3d/hy3d/server"
	"github.com/hy3d/hy3d/telemetry"
)

func init() {
	register(command{
		name:    "serve",
		summary: "run the HTTP server: the /v1 API and Hunyuan3D's api_server.py routes",
		run:     serve,
	})
}

// apiKeysEnv holds API keys (comma-separated) for operators who would
// rather not put them on a command line that `ps` shows.
const apiKeysEnv = "HY3D_API_KEYS"

func serve(ctx context.Context, io stdio, args []string) int {
	return exitCode(io.stderr, "hy3d serve", runServe(ctx, io, args))
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// bytesFlag is a size such as 256MiB, 32MB or 1048576.
type bytesFlag int64

func (b *bytesFlag) String() string { return humanize.IBytes(uint64(*b)) }
func (b *bytesFlag) Set(v string) error {
	n, err := humanize.ParseBytes(v)
	if err != nil {
		return err
	}
	*b = bytesFlag(n)
	return nil
}

type serveFlags struct {
	addr              string
	engines           listFlag
	paints            listFlag
	backend, ortLib   string
	threads           int
	maxQueue          int
	maxBatch, workers int
	batching          string
	cacheBytes        bytesFlag
	condCacheBytes    bytesFlag
	maxBody           bytesFlag
	maxPixels         int
	dataDir           string
	dataDirSet        bool // --data-dir given, possibly as '' (a temporary directory)
	ephemeral         bool
	resultsDir        string
	resultsBytes      bytesFlag
	clientShare       float64
	jobTimeout        time.Duration
	drainTimeout      time.Duration
	resultGrace       time.Duration
	rateLimit         float64
	rateBurst         int
	apiKeys           listFlag
	corsOrigins       listFlag
	trustedProxies    listFlag
	logFormat         string
	logLevel          zerolog.Level
	queue             queueFlags
}

func parseServeFlags(stdout io.Writer, args []string) (*serveFlags, error) {
	f := &serveFlags{cacheBytes: 256 << 20, condCacheBytes: 64 << 20, maxBody: 32 << 20, resultsBytes: 10 << 30}
	fs := newFlagSet("hy3d serve")
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.Var(&f.engines, "engines", "model set folder with manifest.json (repeatable; default: the embedded silhouette set)")
	fs.Var(&f.paints, "paint", "paint set folder (repeatable) for texture=true and POST /v1/textures; 'none' serves none (default: the embedded tiny oracle paint set with the embedded shape set, else none)")
	fs.StringVar(&f.backend, "backend", pipeline.BackendAuto, "auto, trt or ort")
	fs.StringVar(&f.ortLib, "ort-lib", "", "ONNX Runtime shared library (default: $"+ort.LibraryEnv+", else build/onnxruntime)")
	fs.IntVar(&f.threads, "threads", 0, "CPU threads for geometry and ONNX Runtime (0: all cores)")
	fs.IntVar(&f.maxQueue, "max-queue", 64, "jobs waiting before new ones are refused with 503")
	fs.IntVar(&f.maxBatch, "max-batch", 4, "jobs sampling together per model set (one DiT step runs them all)")
	fs.IntVar(&f.workers, "workers", 1, "goroutines per model set running the stages after sampling beside the next steps")
	fs.StringVar(&f.batching, "batching", string(jobs.PolicyContinuous), "continuous (jobs join and leave between sampling steps), adaptive (continuous, but a job joins a running batch only when the measured step times say batching pays) or dispatch (each batch runs to its end before the next)")
	fs.Var(&f.cacheBytes, "cache-bytes", "in-memory result cache (0 disables it)")
	fs.Var(&f.condCacheBytes, "cond-cache-bytes", "in-memory cache of conditioner outputs by picture, and of each paint set's (0 disables them)")
	fs.Var(&f.maxBody, "max-body", "request body limit")
	fs.IntVar(&f.maxPixels, "max-pixels", 4096*4096, "picture pixel limit, checked before decoding")
	fs.StringVar(&f.dataDir, "data-dir", "", "where results, the job stream and job records persist (default: $"+dataDirEnv+", else $XDG_STATE_HOME/hy3d, else ~/.local/state/hy3d; '': a temporary directory removed on exit)")
	fs.BoolVar(&f.ephemeral, "ephemeral", false, "keep everything in a temporary directory removed on exit (as --data-dir '')")
	fs.StringVar(&f.resultsDir, "results-dir", "", "result store (default: results/ in the data directory)")
	fs.Var(&f.resultsBytes, "results-bytes", "bound of the result store; the least recently used results leave past it (0: unbounded)")
	fs.Float64Var(&f.clientShare, "results-client-share", 0.25, "part of --results-bytes one client may hold before its own results leave first (1: no share)")
	fs.DurationVar(&f.jobTimeout, "job-timeout", 10*time.Minute, "deadline of a generation without a timeout parameter")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", 2*time.Minute, "how long shutdown waits for accepted jobs")
	fs.DurationVar(&f.resultGrace, "result-grace", 30*time.Second, "how long status and results stay reachable after a drain that had jobs (0: not at all)")
	fs.Float64Var(&f.rateLimit, "rate-limit", 2, "generation requests per second per client (0: no limit)")
	fs.IntVar(&f.rateBurst, "rate-burst", 20, "burst of the per-client rate limit")
	fs.Var(&f.apiKeys, "api-key", "required API key (repeatable; also $"+apiKeysEnv+", comma-separated)")
	fs.Var(&f.corsOrigins, "cors-origin", "allowed CORS origin (repeatable; * for any)")
	fs.Var(&f.trustedProxies, "trusted-proxy", "CIDR of a proxy whose X-Forwarded-For is believed (repeatable)")
	f.queue.register(fs)
	fs.StringVar(&f.logFormat, "log-format", "json", "json (one object per line) or console")
	logLevel := fs.String("log-level", "info", "least severe lines logged: debug, info, warn or error")
	if err := parseFlags(fs, stdout, "usage: hy3d serve [flags]   (API: docs/api.md)", args); err != nil {
		return nil, err
	}
	if !(f.clientShare > 0 && f.clientShare <= 1) {
		return nil, usageError{fmt.Errorf("--results-client-share %v: want a share in (0, 1]", f.clientShare)}
	}
	fs.Visit(func(fl *flag.Flag) { f.dataDirSet = f.dataDirSet || fl.Name == "data-dir" })
	if err := f.queue.check(); err != nil {
		return nil, err
	}
	if p := jobs.Policy(f.batching); p != jobs.PolicyContinuous && p != jobs.PolicyAdaptive && p != jobs.PolicyDispatch {
		return nil, usageError{fmt.Errorf("--batching %q: want continuous, adaptive or dispatch", f.batching)}
	}
	if f.logFormat != "json" && f.logFormat != "console" {
		return nil, usageError{fmt.Errorf("--log-format %q: want json or console", f.logFormat)}
	}
	switch *logLevel {
	case "debug", "info", "warn", "error":
		f.logLevel, _ = zerolog.ParseLevel(*logLevel)
	default:
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", *logLevel)}
	}
	for _, n := range []struct {
		name  string
		value int
	}{{"max-queue", f.maxQueue}, {"max-batch", f.maxBatch}, {"workers", f.workers}, {"rate-burst", f.rateBurst}, {"max-pixels", f.maxPixels}} {
		if n.value < 1 {
			return nil, usageError{fmt.Errorf("--%s must be at least 1", n.name)}
		}
	}
	if slices.Contains(f.paints, "none") && len(f.paints) > 1 {
		return nil, usageError{errors.New("--paint none serves no paint set: give it alone")}
	}
	if f.rateLimit < 0 || f.jobTimeout <= 0 || f.drainTimeout <= 0 || f.maxBody <= 0 {
		return nil, usageError{errors.New("--rate-limit, --job-timeout, --drain-timeout and --max-body must be positive")}
	}
	return f, nil
}

// serverConfig turns the flags into the server's configuration, minus the
// models, the generator and the GPU sampler.
func (f *serveFlags) serverConfig(log zerolog.Logger, env func(string) string) (server.Config, error) {
	cfg := server.Config{
		Logger:             log,
		MaxQueue:           f.maxQueue,
		MaxBatch:           f.maxBatch,
		Workers:            f.workers,
		Policy:             jobs.Policy(f.batching),
		CacheBytes:         int64(f.cacheBytes),
		ResultsBytes:       int64(f.resultsBytes),
		ResultsClientShare: f.clientShare,
		MaxBodyBytes:       int64(f.maxBody),
		JobTimeout:         f.jobTimeout,
		DrainTimeout:       f.drainTimeout,
		ResultGrace:        resultGrace(f.resultGrace),
		RateLimit:          f.rateLimit,
		RateBurst:          f.rateBurst,
		APIKeys:            append([]string(nil), f.apiKeys...),
		CORSOrigins:        f.corsOrigins,
		TrustedProxies:     nil,
	}
	// The server reads 0 as "default" and negative as "off"; on the command
	// line 0 means off.
	if cfg.CacheBytes == 0 {
		cfg.CacheBytes = -1
	}
	if cfg.ResultsBytes == 0 {
		cfg.ResultsBytes = -1
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = -1
	}
	for _, k := range strings.Split(env(apiKeysEnv), ",") {
		if k = strings.TrimSpace(k); k != "" {
			cfg.APIKeys = append(cfg.APIKeys, k)
		}
	}
	for _, p := range f.trustedProxies {
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return cfg, usageError{fmt.Errorf("--trusted-proxy %q: want a CIDR or an address", p)}
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, prefix.Masked())
	}
	return cfg, nil
}

// openDataDir opens the data directory the flags and the environment name.
func (f *serveFlags) openDataDir(env func(string) string) (*dataDir, error) {
	path := f.dataDir
	if !f.dataDirSet && !f.ephemeral {
		p, err := defaultDataDir(env)
		if err != nil {
			return nil, err
		}
		path = p
	}
	return openDataDir(path, f.ephemeral)
}

// resultGrace maps the flag's 0 (no grace period) to the server's negative.
func resultGrace(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// modelSets opens the shape sets (--engines, else the embedded default)
// and the paint sets (--paint; by default the embedded oracle paint set
// beside the embedded shape set, so that a server started with no flags
// paints too, and none beside sets an operator chose: a toy painter must
// never paint real meshes unasked).
func (f *serveFlags) modelSets(log zerolog.Logger) (shapes, paints []*engines.Set, err error) {
	if len(f.engines) == 0 {
		set, err := engines.Default()
		if err != nil {
			return nil, nil, err
		}
		shapes = append(shapes, set)
	}
	for _, dir := range f.engines {
		set, err := engines.Open(dir)
		if err != nil {
			return nil, nil, err
		}
		if set.IsPaint() {
			return nil, nil, usageError{fmt.Errorf("--engines %s is a paint set: give it with --paint", dir)}
		}
		shapes = append(shapes, set)
	}
	switch {
	case slices.Contains(f.paints, "none"):
	case len(f.paints) == 0 && len(f.engines) == 0:
		set, err := engines.DefaultPaint()
		if err != nil {
			return nil, nil, err
		}
		paints = append(paints, set)
	case len(f.paints) == 0:
		log.Info().Msg("no paint set (--paint DIR): texture=true and POST /v1/textures are refused")
	}
	for _, dir := range f.paints {
		if dir == "none" {
			continue
		}
		set, err := engines.Open(dir)
		if err != nil {
			return nil, nil, err
		}
		if !set.IsPaint() {
			return nil, nil, usageError{fmt.Errorf("--paint %s is a %q set, not a paint set", dir, set.Kind)}
		}
		paints = append(paints, set)
	}
	return shapes, paints, nil
}

// pipelineConfig is the configuration of one model set's pipeline.
func (f *serveFlags) pipelineConfig(set *engines.Set, loader pipeline.Loader, log zerolog.Logger) pipeline.Config {
	return pipeline.Config{Set: set, Loader: loader, Logger: log, Threads: f.threads, MaxPixels: f.maxPixels}
}

// logger writes the server's log to w in the chosen format, from the chosen
// level up.
func (f *serveFlags) logger(w io.Writer) zerolog.Logger {
	if f.logFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(f.logLevel).With().Timestamp().Logger()
}

func runServe(ctx context.Context, io stdio, args []string) (err error) {
	f, err := parseServeFlags(io.stdout, args)
	if err != nil {
		return err
	}
	log := f.logger(io.stderr)
	cfg, err := f.serverConfig(log, os.Getenv)
	if err != nil {
		return err
	}
	data, err := f.openDataDir(os.Getenv)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, data.remove()) }()
	unlock, err := data.lock()
	if err != nil {
		return err
	}
	defer unlock()
	cfg.ResultsDir = f.resultsDir
	if cfg.ResultsDir == "" {
		cfg.ResultsDir = data.sub("results")
	}
	log.Info().Str("data_dir", data.Path).Bool("ephemeral", data.Ephemeral).Str("results_dir", cfg.ResultsDir).
		Msg("data directory")

	sets, paintSets, err := f.modelSets(log)
	if err != nil {
		return err
	}
	var models []server.PipelineModel
	// Pipelines close before their loaders, both after the server stops.
	var closers []func() error
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			err = errors.Join(err, closers[i]())
		}
	}()
	openBackend := func(set *engines.Set) (pipeline.Loader, error) {
		loader, err := pipeline.OpenBackend(ctx, set, pipeline.BackendOptions{
			Kind:   f.backend,
			ORT:    ort.Options{LibraryPath: f.ortLib, IntraOpThreads: f.threads},
			Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("model set %s: %w", set.Name, err)
		}
		closers = append(closers, loader.Close)
		return loader, nil
	}
	for _, set := range sets {
		loader, err := openBackend(set)
		if err != nil {
			return err
		}
		p, err := pipeline.New(ctx, f.pipelineConfig(set, loader, log))
		if err != nil {
			return fmt.Errorf("model set %s: %w", set.Name, err)
		}
		closers = append(closers, p.Close)
		models = append(models, server.PipelineModel{Pipeline: p, Set: set})
		log.Info().Str("model", set.Name).Str("family", set.Family).Str("backend", p.Backend()).Msg("model loaded")
	}
	g, err := server.NewPipelines(models, int64(f.condCacheBytes))
	if err != nil {
		return err
	}
	defer g.Close()
	for _, set := range paintSets {
		loader, err := openBackend(set)
		if err != nil {
			return err
		}
		p, err := paint.New(ctx, paint.Config{Set: set, Loader: loader, Logger: log, Threads: f.threads, CacheBytes: int64(f.condCacheBytes)})
		if err != nil {
			return fmt.Errorf("paint set %s: %w", set.Name, err)
		}
		closers = append(closers, p.Close)
		if err := g.AddPaint(server.PaintModel{Painter: p, Set: set}); err != nil {
			return err
		}
		log.Info().Str("model", set.Name).Str("kind", jobs.KindPaint).Str("backend", p.Backend()).Msg("model loaded")
	}
	cfg.Models, cfg.Preprocessor, cfg.Generator = g.Models(), g, g

	q, err := f.queue.open(ctx, data, cfg.Models, g.Preprocess, 0, log)
	if err != nil {
		return err
	}
	// Closed after the server has drained, before the data directory goes.
	closers = append([]func() error{func() error { q.close(); return nil }}, closers...)
	cfg.Broker, cfg.Role, cfg.Fleet, cfg.Name = q.broker, jobs.Role(f.queue.role), q.fleet, q.name

	if nv, err := telemetry.OpenNVML(nil); err != nil {
		cfg.GPUUnavailable = err.Error()
	} else {
		cfg.GPU = nv
		closers = append(closers, nv.Close)
	}

	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	served := make(chan struct{})
	defer close(served)
	go abortOnSecondSignal(ctx, served, notifyStop, func() {
		log.Warn().Msg("second signal: stopping without waiting for the drain")
		srv.Abort()
	})
	return srv.ListenAndServe(ctx, f.addr)
}

// notifyStop delivers SIGINT and SIGTERM on a new channel until its stop
// function is called.
func notifyStop() (<-chan os.Signal, func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	return sigs, func() { signal.Stop(sigs) }
}

// abortOnSecondSignal calls abort on a signal that arrives after ctx has
// ended (the first signal, which began the drain), unless done closes first.
// Listening starts only then, so the first signal is never counted twice.
func abortOnSecondSignal(ctx context.Context, done <-chan struct{}, notify func() (<-chan os.Signal, func()), abort func()) {
	select {
	case <-ctx.Done():
	case <-done:
		return
	}
	sigs, stop := notify()
	defer stop()
	select {
	case <-sigs:
		abort()
	case <-done:
	}
}
