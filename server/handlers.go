package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/paint"
	"github.com/hy3d/hy3d/results"
	"github.com/hy3d/hy3d/telemetry"
	"github.com/labstack/echo/v4"
)

// routes registers every endpoint.
func (s *Server) routes(e *echo.Echo) {
	v1 := e.Group("/v1")
	v1.GET("/stats", func(c echo.Context) error { return c.JSON(http.StatusOK, s.stats(time.Now())) })
	v1.GET("/gpu", func(c echo.Context) error { return c.JSON(http.StatusOK, s.gpu.View()) })
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", s.ready)
	e.GET("/metrics", s.metricsHandler)
	if s.cfg.Role == jobs.RoleWorker {
		return // a worker answers for itself only: the API is the gateways'
	}

	create := []echo.MiddlewareFunc{s.rateLimit}
	v1.POST("/generations", s.createGeneration, create...)
	v1.POST("/generate", s.generateSync, create...)
	v1.POST("/textures", s.createTexturing, create...)
	v1.GET("/generations/:id", s.getGeneration)
	v1.DELETE("/generations/:id", s.cancelGeneration)
	v1.GET("/generations/:id/events", s.events)
	v1.GET("/generations/:id/result", s.getResult)
	v1.HEAD("/generations/:id/result", s.getResult)
	v1.GET("/models", s.listModels)

	// Drop-in routes of Hunyuan3D's api_server.py.
	e.POST("/generate", s.hunyuanGenerate, create...)
	e.POST("/send", s.hunyuanSend, create...)
	e.GET("/status/:uid", s.hunyuanStatus)

	s.studioRoutes(e)
}

// admitted is what admission made of a request: a generation, or, for a
// synchronous request whose upload the store knows, the result itself with
// no generation created.
type admitted struct {
	params Params
	id     string // the generation, unless hit
	hit    *results.Result
	madeBy string // with hit: the generation that made it, while it is kept
}

// admit validates a decoded generation request and admits it (admitUpload).
func (s *Server) admit(c echo.Context, image []byte, raw map[string]string, sync bool) (admitted, error) {
	params, errs := s.params.parse(raw)
	if len(errs) > 0 {
		return admitted{}, invalidParams(errs)
	}
	if err := sniffImage(image); err != nil {
		return admitted{params: params}, err
	}
	return s.admitUpload(c, image, params, sync)
}

// admitUpload answers a validated request by its upload's bytes when it can
// (a repeat costs a hash and a lookup); otherwise it takes a place in the
// queue, preprocesses the upload and submits it. sync says the client waits
// for the mesh, so a stored result needs no generation.
func (s *Server) admitUpload(c echo.Context, upload []byte, params Params, sync bool) (admitted, error) {
	a := admitted{params: params}
	model, fp := s.models[params.Model], s.fingerprint(params)
	sub := jobs.Submission{Upload: jobs.UploadKey(upload, params, fp), Model: model, Params: params, Client: c.RealIP(), Image: upload}
	if id, r, madeBy, ok := s.engine.SubmitUpload(c.Request().Context(), sub, !sync); ok {
		a.id, a.hit, a.madeBy = id, r, madeBy
		return a, nil
	}
	tk, err := s.engine.Reserve(params.Priority)
	if err != nil {
		return a, err
	}
	defer s.engine.Release(tk)
	ctx := c.Request().Context()
	release, err := s.slots.acquire(ctx, params.Timeout)
	if err != nil {
		if errors.Is(err, errBusy) {
			s.met.Shed("busy")
		}
		return a, err
	}
	start := time.Now()
	prep, err := s.pre.Preprocess(ctx, params.Model, upload)
	took := time.Since(start)
	release()
	if err != nil {
		if ctx.Err() != nil {
			return a, clientGone(ctx.Err())
		}
		return a, imageProblem(err)
	}
	sub.Key, sub.Input, sub.Preprocess, sub.Ticket = jobs.CacheKey(prep.Hash, params, fp), prep, took, tk
	a.id, err = s.engine.Submit(ctx, sub)
	return a, err
}

// admitTexturing validates a decoded texturing request (a picture, a mesh
// and the paint fields) and admits it (admitUpload) with both files as
// one upload.
func (s *Server) admitTexturing(c echo.Context, req *decodedRequest, sync bool) (admitted, error) {
	params, errs := s.params.parseTexture(req.raw)
	if len(errs) > 0 {
		return admitted{}, invalidParams(errs)
	}
	if err := sniffImage(req.image); err != nil {
		return admitted{params: params}, err
	}
	if _, err := meshParser(req.mesh); err != nil {
		return admitted{params: params}, imageProblem(fmt.Errorf("%w: %v", errBadMesh, err))
	}
	return s.admitUpload(c, packTextureUpload(req.image, req.mesh), params, sync)
}

// fingerprint is what identifies the models that make a request's result:
// the shape model's, and the paint model's when the result is textured.
func (s *Server) fingerprint(p Params) string {
	fp := s.models[p.Model].Fingerprint
	if p.Texture && p.PaintModel != p.Model {
		fp += "+" + s.models[p.PaintModel].Fingerprint
	}
	return fp
}

// clientGone is the response nobody will read: the client closed the
// connection (499 in nginx's vocabulary, which the access log keeps).
func clientGone(err error) *Problem {
	p := newProblem(499, "client-closed", "Client closed request", "")
	p.cause = err
	return p
}

func (s *Server) createGeneration(c echo.Context) error {
	req, err := decodeGeneration(c.Request(), s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	wait, err := boolQuery(c, "wait")
	if err != nil {
		return err
	}
	if wait {
		return s.runSync(c, req)
	}
	a, err := s.admit(c, req.image, req.raw, false)
	if err != nil {
		return err
	}
	return s.accepted(c, a)
}

// accepted answers an asynchronous request with its generation's status:
// 202 while it runs, 200 when it had already ended (a stored result).
func (s *Server) accepted(c echo.Context, a admitted) error {
	snap, _, err := s.engine.Watch(c.Request().Context(), a.id)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/v1/generations/"+a.id)
	code := http.StatusAccepted
	if snap.State.Terminal() {
		code = http.StatusOK
	}
	return c.JSON(code, statusOf(snap))
}

// createTexturing is POST /v1/textures: paint an uploaded mesh from a
// picture with a paint model. It answers like POST /v1/generations: the
// generation's status, or with wait=true the textured file itself.
func (s *Server) createTexturing(c echo.Context) error {
	req, err := decodeTexturing(c.Request(), s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	wait, err := boolQuery(c, "wait")
	if err != nil {
		return err
	}
	format := ""
	if _, named := req.raw["format"]; wait && !named {
		if format, err = negotiateFormat("", c.Request().Header.Get("Accept"), "", results.TexturedFormats); err != nil {
			return err
		}
	}
	a, err := s.admitTexturing(c, req, wait)
	if err != nil {
		return err
	}
	if !wait {
		return s.accepted(c, a)
	}
	return s.answerSync(c, a, format)
}

func boolQuery(c echo.Context, name string) (bool, error) {
	v := c.QueryParam(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, invalidParams([]FieldError{{Field: name, Message: "must be true or false"}})
	}
	return b, nil
}

func (s *Server) generateSync(c echo.Context) error {
	req, err := decodeGeneration(c.Request(), s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	return s.runSync(c, req)
}

// runSync admits a request and answers with its mesh, in the format the
// parameters name or, when they name none, the one Accept prefers. Accept is
// checked before admission so that a 406 costs no generation.
func (s *Server) runSync(c echo.Context, req *decodedRequest) error {
	format := ""
	if _, named := req.raw["format"]; !named {
		textured, _ := strconv.ParseBool(req.raw["texture"])
		f, err := negotiateFormat("", c.Request().Header.Get("Accept"), "", Params{Texture: textured}.Formats())
		if err != nil {
			return err
		}
		format = f
	}
	a, err := s.admit(c, req.image, req.raw, true)
	if err != nil {
		return err
	}
	return s.answerSync(c, a, format)
}

// answerSync waits for a synchronous request's result and serves it in
// format, or in the format its parameters name when format is "".
func (s *Server) answerSync(c echo.Context, a admitted, format string) error {
	if format == "" {
		format = a.params.Format
	}
	if a.hit != nil {
		return serveHit(c, a, format)
	}
	r, err := s.waitResult(c, a)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/v1/generations/"+a.id)
	return serveMesh(c, r, format, a.id)
}

// serveHit answers a synchronous request from the result its upload found,
// naming the generation that made it while that is still kept.
func serveHit(c echo.Context, a admitted, format string) error {
	h := c.Response().Header()
	h.Set("Server-Timing", `cache;desc="hit"`)
	if a.madeBy != "" {
		h.Set("Location", "/v1/generations/"+a.madeBy)
	}
	return serveMesh(c, a.hit, format, a.madeBy)
}

// waitResult blocks until generation a ends and returns its mesh. A client
// that leaves abandons its generation; the job goes on only if another
// request shares it.
func (s *Server) waitResult(c echo.Context, a admitted) (*results.Result, error) {
	// The connection's write deadline is shorter than a job may take:
	// extend it for this response only.
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(a.params.Timeout + s.cfg.WriteTimeout))
	snap, err := s.engine.Wait(c.Request().Context(), a.id)
	if err != nil {
		s.engine.Abandon(a.id)
		return nil, clientGone(err)
	}
	if snap.State != jobs.StateSucceeded {
		p := newProblem(http.StatusInternalServerError, "generation-failed", "Generation failed", string(snap.State))
		if snap.Failure != nil {
			p = failureProblem(snap.Failure)
		}
		p.Detail = fmt.Sprintf("generation %s: %s", snap.ID, p.Detail)
		return nil, p
	}
	r, snap, err := s.engine.Result(c.Request().Context(), a.id)
	if err == nil {
		c.Response().Header().Set("Server-Timing", serverTiming(statusOf(snap)))
	}
	return r, err
}

// serverTiming is the Server-Timing header of a synchronous answer: the
// queue wait and every stage of the job that made the mesh, or the cache hit
// that spared one, so that browser tools and clients see where time went.
func serverTiming(st Status) string {
	if st.Cached {
		return `cache;desc="hit"`
	}
	var parts []string
	if st.StartedAt != nil {
		parts = append(parts, fmt.Sprintf("queue;dur=%.1f", float64(st.StartedAt.Sub(st.CreatedAt).Microseconds())/1000))
	}
	for _, stg := range st.Stages {
		parts = append(parts, fmt.Sprintf("%s;dur=%.1f", stg.Stage, stg.Milliseconds))
	}
	return strings.Join(parts, ", ")
}

func (s *Server) getGeneration(c echo.Context) error {
	snap, _, err := s.engine.Watch(c.Request().Context(), generationID(c, "id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, statusOf(snap))
}

func (s *Server) cancelGeneration(c echo.Context) error {
	snap, err := s.engine.Cancel(c.Request().Context(), generationID(c, "id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, statusOf(snap))
}

func (s *Server) getResult(c echo.Context) error {
	id := generationID(c, "id")
	r, snap, err := s.engine.Result(c.Request().Context(), id)
	if err != nil {
		return err
	}
	format, err := negotiateFormat(c.QueryParam("format"), c.Request().Header.Get("Accept"), snap.Params.Format, snap.Params.Formats())
	if err != nil {
		return err
	}
	return serveMesh(c, r, format, id)
}

// ModelView is one entry of /v1/models.
type ModelView struct {
	Name        string       `json:"name"`
	Kind        string       `json:"kind"` // shape or paint
	Family      string       `json:"family"`
	Description string       `json:"description,omitempty"`
	Backend     string       `json:"backend"`
	Default     bool         `json:"default"`
	MaxBatch    int          `json:"max_batch"` // jobs that sample together (one DiT or paint UNet call runs them all)
	Defaults    DefaultsView `json:"defaults"`
}

// DefaultsView shows a model's defaults under the request's field names.
type DefaultsView struct {
	Steps      int     `json:"steps"`
	Guidance   float64 `json:"guidance"`
	Resolution int     `json:"resolution"`
	Faces      int     `json:"faces"`
	Decode     string  `json:"decode"`
	Seed       int64   `json:"seed"`
	Format     string  `json:"format"`
	// TextureSize is a paint model's default texture side.
	TextureSize int `json:"texture_size,omitempty"`
}

func (s *Server) listModels(c echo.Context) error {
	out := make([]ModelView, 0, len(s.modelList))
	for _, m := range s.modelList {
		v := ModelView{
			Name: m.Name, Kind: jobs.KindShape, Family: m.Family, Description: m.Description, Backend: m.Backend,
			Default: m.Name == s.params.defaultModel, MaxBatch: s.engine.BatchLimit(m),
			Defaults: DefaultsView{Steps: m.Defaults.Steps, Guidance: m.Defaults.Guidance,
				Resolution: m.Defaults.Resolution, Faces: m.Defaults.Faces, Decode: m.Defaults.Decode,
				Seed: DefaultSeed, Format: "glb"},
		}
		if m.IsPaint() {
			v.Kind, v.Default = jobs.KindPaint, m.Name == s.params.defaultPaint
			v.Defaults = DefaultsView{Steps: m.Defaults.Steps, Guidance: m.Defaults.Guidance, Seed: DefaultSeed,
				Format: "glb", TextureSize: paint.DefaultTextureSize}
		}
		out = append(out, v)
	}
	return c.JSON(http.StatusOK, map[string]any{"models": out})
}

// stats is the body of /v1/stats: this server's own, and every worker of
// its fleet.
func (s *Server) stats(now time.Time) telemetry.StatsView {
	v := s.ownStats(now)
	if s.cfg.Fleet != nil {
		v.Workers = s.cfg.Fleet.Workers()
	}
	return v
}

// ownStats is this server's /v1/stats without the fleet.
func (s *Server) ownStats(now time.Time) telemetry.StatsView {
	ld := s.engine.Load()
	return s.met.Stats(telemetry.StatsInput{
		Now: now, Started: s.started,
		Queue: telemetry.QueueStats{Depth: ld.Queued, Capacity: ld.Capacity, Running: ld.Running, Workers: ld.Finishers,
			MaxBatch: ld.MaxBatch, Policy: ld.Policy, Draining: ld.Draining},
		SecondsPerJob: ld.PerJob.Seconds(), Generations: ld.Generations, Disk: s.store.DiskStats(), GPU: s.gpu,
	})
}

func (s *Server) ready(c echo.Context) error {
	if s.engine.Load().Draining {
		return newProblem(http.StatusServiceUnavailable, "draining", "Not ready", "the server is draining")
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) metricsHandler(c echo.Context) error {
	ld := s.engine.Load()
	gauges := []telemetry.Gauge{
		{Name: "hy3d_queue_depth", Help: "Jobs waiting in the queue.", Value: float64(ld.Queued)},
		{Name: "hy3d_queue_capacity", Help: "Queue capacity (--max-queue).", Value: float64(ld.Capacity)},
		{Name: "hy3d_jobs_running", Help: "Jobs between their first sampling step and their result.", Value: float64(ld.Running)},
		{Name: "hy3d_workers", Help: "Goroutines per model running the stages after sampling (--workers).", Value: float64(ld.Finishers)},
		{Name: "hy3d_seconds_per_job", Help: "EWMA of a job's run time divided by the jobs running beside it.", Value: ld.PerJob.Seconds()},
		{Name: "hy3d_generations_tracked", Help: "Generations whose status is kept.", Value: float64(ld.Generations)},
	}
	ds := s.store.DiskStats()
	gauges = append(gauges,
		telemetry.Gauge{Name: "hy3d_result_store_results", Help: "Results in the result directory.", Value: float64(ds.Results)},
		telemetry.Gauge{Name: "hy3d_result_store_bytes", Help: "Bytes of the results in the result directory.", Value: float64(ds.Bytes)},
		telemetry.Gauge{Name: "hy3d_result_store_limit_bytes", Help: "Bound of the result directory (--results-bytes; 0: unbounded).", Value: float64(ds.LimitBytes)},
		telemetry.Gauge{Name: "hy3d_result_store_evictions_total", Help: "Results removed from the directory to stay under its bound.", Value: float64(ds.Evicted), Counter: true},
	)
	gv := s.gpu.View()
	avail := 0.0
	if gv.Available {
		avail = 1
	}
	gauges = append(gauges, telemetry.Gauge{Name: "hy3d_gpu_telemetry_available", Help: "1 when NVML telemetry works.", Value: avail})
	for _, d := range gv.Devices {
		l := []string{"gpu", strconv.Itoa(d.Index), "name", d.Name}
		gauges = append(gauges,
			telemetry.Gauge{Name: "hy3d_gpu_utilization_ratio", Help: "GPU utilization (0..1).", Labels: l, Value: float64(d.UtilizationGPU) / 100},
			telemetry.Gauge{Name: "hy3d_gpu_memory_used_bytes", Help: "GPU memory in use.", Labels: l, Value: float64(d.MemoryUsedBytes)},
			telemetry.Gauge{Name: "hy3d_gpu_memory_total_bytes", Help: "GPU memory size.", Labels: l, Value: float64(d.MemoryTotalBytes)},
			telemetry.Gauge{Name: "hy3d_gpu_temperature_celsius", Help: "GPU temperature.", Labels: l, Value: float64(d.TemperatureC)},
			telemetry.Gauge{Name: "hy3d_gpu_power_watts", Help: "GPU power draw.", Labels: l, Value: d.PowerWatts},
			telemetry.Gauge{Name: "hy3d_gpu_sm_clock_hertz", Help: "SM clock.", Labels: l, Value: float64(d.SMClockMHz) * 1e6},
			telemetry.Gauge{Name: "hy3d_gpu_throttled", Help: "1 when a power or thermal reason slows the clocks.", Labels: l, Value: boolFloat(len(d.ThrottleReasons) > 0)},
		)
	}
	if s.cfg.Fleet != nil {
		gauges = append(gauges, telemetry.WorkerGauges(s.cfg.Fleet.Workers(), time.Now())...)
	}
	c.Response().Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	c.Response().WriteHeader(http.StatusOK)
	return s.met.Write(c.Response(), gauges)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Preprocessing limiter constants.
const (
	// defaultPreprocessEstimate stands in for the measured time of one
	// preprocessing until the first has finished.
	defaultPreprocessEstimate = 100 * time.Millisecond
	// ewmaWeight is the weight of the newest picture in the average time
	// of one preprocessing.
	ewmaWeight = 0.2
)

// slots bounds concurrent preprocessing (CPU-heavy decoding and matting).
// A request that finds every slot taken waits for one while the estimated
// wait, from the measured time of one preprocessing and the requests ahead,
// fits its deadline; past that the server is busy. How many may wait at all
// is bounded by admission: each holds a place in the queue.
type slots struct {
	ch      chan struct{}
	waiting atomic.Int64
	// perPicture is an EWMA of one preprocessing's wall time, in nanoseconds.
	perPicture atomic.Int64
}

func newSlots(n int) *slots {
	s := &slots{ch: make(chan struct{}, n)}
	s.perPicture.Store(int64(defaultPreprocessEstimate))
	return s
}

var errBusy = errors.New("too many pictures waiting for preprocessing")

// acquire takes a slot, waiting for one while the estimated wait is within
// deadline; the returned function gives it back and records how long it was
// held.
func (s *slots) acquire(ctx context.Context, deadline time.Duration) (func(), error) {
	select {
	case s.ch <- struct{}{}:
		return s.releaser(), nil
	default:
	}
	ahead := s.waiting.Add(1)
	defer s.waiting.Add(-1)
	if wait := s.estimate(ahead); wait > deadline {
		p := overloaded(http.StatusServiceUnavailable, "busy", "Server busy",
			fmt.Sprintf("%s: about %s before this picture's turn, beyond its deadline", errBusy, wait.Round(time.Millisecond)), wait)
		p.cause = errBusy
		return nil, p
	}
	select {
	case s.ch <- struct{}{}:
		return s.releaser(), nil
	case <-ctx.Done():
		return nil, clientGone(ctx.Err())
	}
}

// estimate is the wait of the pos-th request in line: the pictures ahead of
// it and its own share the slots.
func (s *slots) estimate(pos int64) time.Duration {
	return time.Duration(s.perPicture.Load() * pos / int64(cap(s.ch)))
}

func (s *slots) releaser() func() {
	start := time.Now()
	return func() {
		took := int64(time.Since(start))
		for {
			old := s.perPicture.Load()
			next := int64(ewmaWeight*float64(took) + (1-ewmaWeight)*float64(old))
			if s.perPicture.CompareAndSwap(old, next) {
				break
			}
		}
		<-s.ch
	}
}

// generationID reads a generation id from the path. Ids are lower-case
// UUIDs; clients that upper-case them (UUID libraries differ) name the
// same generation.
func generationID(c echo.Context, param string) string {
	return strings.ToLower(c.Param(param))
}
