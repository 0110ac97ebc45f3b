// Package server owns hy3d's HTTP face: the /v1 API and the drop-in routes of
// Hunyuan3D's api_server.py, request decoding and validation of untrusted
// input, content negotiation, the preprocessing limiter, rate limits,
// authentication, CORS, problem details (problem.go maps the job engine's
// typed errors to responses), the access log, and the wiring of the job
// engine (package jobs), the result store (package results), metrics, GPU
// telemetry and /v1/stats with its advice. It consumes the pipeline through
// small interfaces (Preprocessor, jobs.Generator), so that everything here
// is tested with fakes; Pipelines adapts package pipeline to them.
package server

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/results"
	"github.com/hy3d/hy3d/telemetry"
)

// Config configures a Server. Zero values take the defaults noted.
type Config struct {
	Models       []Model // at least one
	DefaultModel string  // default: the first model
	Preprocessor Preprocessor
	Generator    Generator
	// GPU samples the GPUs; nil means no telemetry, and GPUUnavailable says why.
	GPU            telemetry.GPUSampler
	GPUUnavailable string
	Logger         zerolog.Logger

	MaxQueue              int           // jobs waiting; default 64
	MaxBatch              int           // jobs sampling together per model; default 4
	Workers               int           // goroutines per model running the stages after sampling; default 1
	Policy                jobs.Policy   // how jobs are batched; default jobs.PolicyContinuous
	PreprocessConcurrency int           // default GOMAXPROCS
	CacheBytes            int64         // in-memory result cache; default 256 MiB, negative disables it
	ResultsDir            string        // default: a temporary directory removed by Close
	ResultsBytes          int64         // bound of ResultsDir (least recently used leave); default 10 GiB, negative: unbounded
	ResultsClientShare    float64       // part of ResultsBytes one client may hold before its own results leave first; default 1/4, ≥ 1: none
	MaxBodyBytes          int64         // default 32 MiB (room for base64 JSON)
	Limits                Limits        // default DefaultLimits
	JobTimeout            time.Duration // deadline of a job without a timeout parameter; default 10 min
	RetainFinished        time.Duration // how long a finished generation's status is kept; default 1 h
	MaxGenerations        int           // generations kept; past it the oldest finished leave first; default 10,000
	RateLimit             float64       // generation requests per second per client; default 2, negative disables
	RateBurst             int           // default 20
	APIKeys               []string      // empty: no authentication
	CORSOrigins           []string      // empty: no CORS headers
	TrustedProxies        []netip.Prefix
	DrainTimeout          time.Duration // default 2 min
	ResultGrace           time.Duration // status and result routes stay up this long after a drain that had jobs; default 30 s, negative: none
	ReadHeaderTimeout     time.Duration // default 10 s
	ReadTimeout           time.Duration // default 60 s
	WriteTimeout          time.Duration // default 60 s; synchronous and SSE responses extend it
	IdleTimeout           time.Duration // default 120 s
	GPUInterval           time.Duration // default 2 s
	Heartbeat             time.Duration // SSE keep-alive; default 15 s
	// Broker keeps accepted jobs and generation records outside this
	// process (package durable); nil keeps the queue in memory.
	Broker jobs.Broker
	Role   jobs.Role // which half of the job engine runs here; default jobs.RoleAll
	// Fleet shares every worker's figures with every gateway; nil on a
	// server alone. Name is this server's name among them.
	Fleet Fleet
	Name  string
}

// Fleet is where the workers behind one queue report their figures, and
// gateways read them all.
type Fleet interface {
	Report(ctx context.Context, v telemetry.WorkerView) error
	Workers() []telemetry.WorkerView
}

// fleetInterval is how often a worker reports to the fleet.
const fleetInterval = 2 * time.Second

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxQueue, 64)
	def(&c.MaxBatch, 4)
	def(&c.Workers, 1)
	def(&c.PreprocessConcurrency, runtime.GOMAXPROCS(0))
	def(&c.RateBurst, 20)
	def(&c.MaxGenerations, 10_000)
	if c.CacheBytes == 0 {
		c.CacheBytes = 256 << 20
	}
	if c.ResultsBytes == 0 {
		c.ResultsBytes = 10 << 30
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 32 << 20
	}
	if c.Limits == (Limits{}) {
		c.Limits = DefaultLimits
	}
	if c.Limits.MaxTextureSize == 0 {
		c.Limits.MinTextureSize, c.Limits.MaxTextureSize = DefaultLimits.MinTextureSize, DefaultLimits.MaxTextureSize
	}
	if c.RateLimit == 0 {
		c.RateLimit = 2
	}
	defDur(&c.JobTimeout, 10*time.Minute)
	defDur(&c.RetainFinished, time.Hour)
	defDur(&c.DrainTimeout, 2*time.Minute)
	if c.ResultGrace == 0 {
		c.ResultGrace = 30 * time.Second
	}
	defDur(&c.ReadHeaderTimeout, 10*time.Second)
	defDur(&c.ReadTimeout, time.Minute)
	defDur(&c.WriteTimeout, time.Minute)
	defDur(&c.IdleTimeout, 2*time.Minute)
	defDur(&c.GPUInterval, 2*time.Second)
	defDur(&c.Heartbeat, 15*time.Second)
	if c.Role == "" {
		c.Role = jobs.RoleAll
	}
	for _, m := range c.Models {
		if c.DefaultModel == "" && !m.IsPaint() {
			c.DefaultModel = m.Name
		}
	}
}

// Server is a running hy3d HTTP server.
type Server struct {
	cfg       Config
	log       zerolog.Logger
	echo      *echo.Echo
	engine    *jobs.Engine
	store     *results.Store
	met       *telemetry.Metrics
	gpu       *telemetry.GPUMonitor
	limiter   *rateLimiter
	keys      apiKeys
	params    paramParser
	pre       Preprocessor
	slots     *slots
	models    map[string]*Model
	modelList []*Model
	started   time.Time
	tempDir   string // removed by Close when the store lives there
	stop      context.CancelFunc
	closeOnce sync.Once
	// hurry ends when Abort is called: it bounds the drain and the grace
	// period of Serve.
	hurry context.Context
	abort context.CancelFunc
}

// New builds a server and starts its workers and background sampling.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if cfg.Preprocessor == nil || cfg.Generator == nil {
		return nil, errors.New("server: a Preprocessor and a Generator are required")
	}
	if len(cfg.Models) == 0 {
		return nil, errors.New("server: no models")
	}
	s := &Server{cfg: cfg, log: cfg.Logger, pre: cfg.Preprocessor, models: map[string]*Model{}, started: time.Now()}
	for i := range cfg.Models {
		m := &cfg.Models[i]
		if _, dup := s.models[m.Name]; dup {
			return nil, fmt.Errorf("server: model %q listed twice", m.Name)
		}
		s.models[m.Name] = m
		s.modelList = append(s.modelList, m)
	}
	if m := s.models[cfg.DefaultModel]; m == nil || m.IsPaint() {
		return nil, fmt.Errorf("server: default model %q is not among the shape models", cfg.DefaultModel)
	}

	dir := cfg.ResultsDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "hy3d-results-")
		if err != nil {
			return nil, fmt.Errorf("server: results dir: %w", err)
		}
		dir, s.tempDir = tmp, tmp
	}
	cacheBytes := max(cfg.CacheBytes, 0)
	store, err := results.NewStore(dir, cacheBytes, cfg.ResultsBytes, results.Options{ClientShare: cfg.ResultsClientShare}, s.log)
	if err != nil {
		return nil, err
	}
	s.store = store
	s.met = telemetry.NewMetrics(cfg.MaxBatch)
	s.limiter = newRateLimiter(cfg.RateLimit, cfg.RateBurst)
	s.keys = newAPIKeys(cfg.APIKeys)
	s.params = paramParser{models: s.models, defaultModel: cfg.DefaultModel, limits: cfg.Limits, jobTimeout: cfg.JobTimeout}
	for _, m := range s.modelList {
		if m.IsPaint() && s.params.defaultPaint == "" {
			s.params.defaultPaint = m.Name
		}
	}
	if v, ok := cfg.Generator.(ParamValidator); ok {
		s.params.validator = v
	}
	s.slots = newSlots(cfg.PreprocessConcurrency)
	reason := cfg.GPUUnavailable
	if cfg.GPU == nil && reason == "" {
		reason = "no GPU sampler configured"
	}
	s.gpu = telemetry.NewGPUMonitor(cfg.GPU, reason, cfg.GPUInterval, cfg.Logger)
	s.engine = jobs.New(jobs.Config{
		Models: s.modelList, MaxQueue: cfg.MaxQueue, MaxBatch: cfg.MaxBatch, Finishers: cfg.Workers,
		Policy: cfg.Policy, Retain: cfg.RetainFinished, MaxGenerations: cfg.MaxGenerations,
		Broker: cfg.Broker, Role: cfg.Role,
	}, cfg.Generator, store, s.met, cfg.Logger)
	s.echo = s.newEcho()

	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.hurry, s.abort = context.WithCancel(context.Background())
	s.engine.Start(ctx)
	go s.gpu.Run(ctx)
	if cfg.Fleet != nil && cfg.Role != jobs.RoleGateway {
		go s.reportToFleet(ctx)
	}
	if cfg.GPU == nil {
		s.log.Warn().Str("reason", reason).Msg("GPU telemetry off")
	}
	s.log.Info().Str("results_dir", dir).Str("role", string(cfg.Role)).Int("workers", cfg.Workers).Int("max_batch", cfg.MaxBatch).
		Int("max_queue", cfg.MaxQueue).Int64("cache_bytes", cacheBytes).Str("default_model", cfg.DefaultModel).
		Msg("server ready")
	return s, nil
}

// reportToFleet shares this worker's figures every fleetInterval until ctx
// ends.
func (s *Server) reportToFleet(ctx context.Context) {
	var models []string
	for _, m := range s.modelList {
		models = append(models, m.Name)
	}
	tick := time.NewTicker(fleetInterval)
	defer tick.Stop()
	for {
		now := time.Now()
		v := telemetry.WorkerOf(s.cfg.Name, string(s.cfg.Role), models, s.ownStats(now), now)
		rctx, cancel := context.WithTimeout(ctx, fleetInterval)
		if err := s.cfg.Fleet.Report(rctx, v); err != nil && ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("reporting to the fleet")
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Server) newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(zerologWriter{s.log})
	ips := clientAddr{trusted: s.cfg.TrustedProxies}
	e.IPExtractor = ips.extract
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		if unreadBody(c) {
			// Otherwise net/http would read the rest of the body before
			// sending the answer, which a slow client delays at will.
			c.Response().Header().Set("Connection", "close")
		}
		if werr := writeProblem(c, problemFrom(err)); werr != nil {
			s.log.Debug().Err(werr).Msg("writing an error response")
		}
	}
	e.Use(s.accessLog, s.recoverPanics)
	if len(s.cfg.CORSOrigins) > 0 {
		e.Use(cors(s.cfg.CORSOrigins))
	}
	if s.keys.enabled() {
		e.Use(s.requireKey)
	}
	e.Use(limitBody(s.cfg.MaxBodyBytes))
	s.routes(e)
	return e
}

// zerologWriter routes Echo's and net/http's own log lines into zerolog.
type zerologWriter struct{ log zerolog.Logger }

func (w zerologWriter) Write(p []byte) (int, error) {
	w.log.Warn().Str("source", "http").Msg(string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

// Handler is the server's HTTP handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.echo }

// HTTPServer wraps the handler with a timeout on every connection phase.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.echo,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          stdlog.New(zerologWriter{s.log}, "", 0),
	}
}

// Serve answers on ln until ctx ends, then drains: readiness turns 503 and
// new jobs are refused while accepted ones finish (their clients can still
// poll them), up to DrainTimeout or until Abort. When jobs were in flight,
// their status and results stay reachable for ResultGrace more (or until
// Abort); then the listener closes.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := s.HTTPServer(ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(problemListener{ln}) }()
	s.log.Info().Str("addr", ln.Addr().String()).Msg("listening")
	select {
	case err := <-errc:
		expired, cancel := context.WithCancel(context.Background())
		cancel()
		_ = s.Drain(expired)
		s.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info().Dur("timeout", s.cfg.DrainTimeout).Msg("draining")
	load := s.engine.Load()
	drainCtx, cancel := context.WithTimeout(s.hurry, s.cfg.DrainTimeout)
	derr := s.Drain(drainCtx)
	cancel()
	inFlight := load.Queued + load.Running
	if s.cfg.Broker != nil {
		// Queued jobs stay in the broker's queue, for another worker or
		// the next start; only the jobs that ran here ended in the drain.
		inFlight = load.Running
	}
	if inFlight > 0 && s.cfg.ResultGrace > 0 {
		// Clients of the jobs that just ended poll for them; the results
		// stay reachable for a while (new jobs are still refused).
		s.log.Info().Dur("grace", s.cfg.ResultGrace).Msg("drained; results stay reachable for the grace period")
		grace := time.NewTimer(s.cfg.ResultGrace)
		select {
		case <-grace.C:
		case <-s.hurry.Done():
			grace.Stop()
		}
	}
	// Responses already being written (a synchronous result, a final SSE
	// event) get a moment to complete.
	graceCtx, cancel := context.WithTimeout(s.hurry, 10*time.Second)
	herr := hs.Shutdown(graceCtx)
	cancel()
	if herr != nil {
		_ = hs.Close()
	}
	s.Close()
	s.log.Info().Msg("stopped")
	return errors.Join(derr, herr)
}

// Abort cuts a drain of Serve short, as its timeout would: the jobs still
// queued or running fail with shutdown, and the listener closes at once.
// Called before Serve's context ends, it makes that drain immediate.
func (s *Server) Abort() { s.abort() }

// ListenAndServe listens on addr and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.Close()
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Drain refuses new jobs and waits for the accepted ones; past ctx, jobs
// still queued or running fail with a status that says the server shut down.
func (s *Server) Drain(ctx context.Context) error { return s.engine.Drain(ctx) }

// Close stops background work and releases the store; call it after Drain.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.stop()
		s.store.Close()
		if s.tempDir != "" {
			if err := os.RemoveAll(s.tempDir); err != nil {
				s.log.Warn().Err(err).Msg("removing the temporary results dir")
			}
		}
	})
}
