package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/results"
)

// Scheduling constants.
const (
	// defaultJobEstimate stands in for the measured time per job until the
	// first job has finished.
	defaultJobEstimate = 2 * time.Second
	// ewmaWeight is the weight of the newest job in the time-per-job average.
	ewmaWeight = 0.2
)

var errShutdown = errors.New("server shutting down")

// ErrAbandoned is the cause of a job's context once every request for it
// left (cancelled, past its deadline, or its client gone).
var ErrAbandoned = errors.New("every request for this job left")

// Policy is how the step loop batches jobs.
type Policy string

// Policies.
const (
	// PolicyContinuous steps every sampling job together, lets new jobs join
	// between steps and runs the stages after sampling beside the next
	// steps.
	PolicyContinuous Policy = "continuous"
	// PolicyDispatch takes a batch from the queue, runs it to the end (the
	// stages after sampling one job after another) and only then takes the
	// next.
	PolicyDispatch Policy = "dispatch"
	// PolicyAdaptive is PolicyContinuous, except that a job joins a
	// running batch only when the step loop has measured that batching
	// pays (see joinCostShare); otherwise it waits for the batch to end.
	PolicyAdaptive Policy = "adaptive"
)

// Config configures an Engine. Zero values take the defaults noted.
type Config struct {
	Models   []*Model
	MaxQueue int // jobs waiting; default 64
	// MaxBatch bounds the jobs sampling together per model (Model.MaxBatch
	// bounds it further); default 4.
	MaxBatch int
	// Finishers is the number of goroutines per model that run the stages
	// after sampling; default 1.
	Finishers int
	Policy    Policy        // default PolicyContinuous
	Retain    time.Duration // how long a finished generation stays queryable; default 1 h
	// MaxGenerations bounds the generations kept; past it the oldest
	// finished ones are forgotten first. Default 10,000.
	MaxGenerations int
	// Broker keeps the queue and the records outside this process; nil
	// keeps the queue in memory.
	Broker Broker
	// Role says which half of the engine runs here: RoleAll (the default)
	// admits and runs jobs, RoleGateway only admits them (a Broker's
	// workers run them), RoleWorker only runs what it takes from the Broker.
	Role Role
}

// Role is the part an engine plays when a Broker connects several.
type Role string

// Roles.
const (
	RoleAll     Role = "all"
	RoleGateway Role = "gateway"
	RoleWorker  Role = "worker"
)

// model finds a served model by name; nil when there is none.
func (c *Config) model(name string) *Model {
	for _, m := range c.Models {
		if m.Name == name {
			return m
		}
	}
	return nil
}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxQueue, 64)
	def(&c.MaxBatch, 4)
	def(&c.Finishers, 1)
	def(&c.MaxGenerations, 10_000)
	if c.Retain <= 0 {
		c.Retain = time.Hour
	}
	if c.Policy == "" {
		c.Policy = PolicyContinuous
	}
	if c.Role == "" {
		c.Role = RoleAll
	}
}

// Observer hears what the engine does, for metrics. Calls come from many
// goroutines and must return quickly.
type Observer interface {
	CacheLookup(tier string) // results.TierMemory, TierDisk or TierMiss
	Coalesced()
	Shed(reason string) // queue_full or draining
	// Batch reports one call of a graph (condition, dit, decode) over size jobs.
	Batch(graph string, size int)
	Stage(name string, d time.Duration)
	// Finished reports a job's end: its outcome (a terminal State), its
	// decode mode, how long it queued and ran.
	Finished(outcome, decode string, queued, ran time.Duration, at time.Time)
}

// Engine admits jobs, runs them through a Generator and keeps every
// generation's record. One mutex guards its state.
type Engine struct {
	cfg    Config
	gen    Generator
	store  *results.Store
	obs    Observer
	log    zerolog.Logger
	broker Broker // nil: the queue is e.queue

	now    func() time.Time // the step loop's clock, for its step costs
	runCtx context.Context  // the generator calls'; cancelled past the drain timeout
	abort  context.CancelCauseFunc
	// takeCtx bounds the step loops' waits on the broker; it ends when the
	// drain begins.
	takeCtx    context.Context
	stopTaking context.CancelFunc
	wg         sync.WaitGroup

	mu       sync.Mutex
	work     *sync.Cond
	queue    []*task
	inflight map[results.Key]*task
	// inflightUploads finds the task of an upload by its bytes, before the
	// picture is decoded.
	inflightUploads map[results.Key]*task
	// handed holds, per model, running jobs handed on to that model's step
	// loop (Output.Handoff); the loop takes them before queued ones.
	handed map[string][]*task
	// wakeTake interrupts a step loop's wait on the broker when a job is
	// handed to it.
	wakeTake map[string]context.CancelFunc
	uploads  *uploadIndex
	gens     map[string]*generation
	// ended lists finished generations in the order they finished: the
	// sweep and the bound on generations forget from its front.
	ended    []endedGeneration
	reserved int // admission tickets held by requests still preprocessing
	storing  int // jobs the broker is storing: queued, but not yet in its Depth
	// recent keeps task records heard of before a mirror of their task
	// existed (a worker of this process claims a job before Submit returns).
	recent   map[results.Key]TaskRecord
	running  int
	draining bool
	stopped  bool
	idle     chan struct{} // closed once draining with nothing queued or running
	perJob   time.Duration // EWMA of a job's run time divided by the jobs running beside it
}

// New builds an engine over a generator and a result store; Start sets it
// going.
func New(cfg Config, gen Generator, store *results.Store, obs Observer, log zerolog.Logger) *Engine {
	cfg.setDefaults()
	e := &Engine{
		cfg: cfg, gen: gen, store: store, obs: obs, log: log, now: time.Now, broker: cfg.Broker,
		recent:          map[results.Key]TaskRecord{},
		inflight:        map[results.Key]*task{},
		inflightUploads: map[results.Key]*task{},
		handed:          map[string][]*task{},
		wakeTake:        map[string]context.CancelFunc{},
		uploads:         newUploadIndex(uploadIndexEntries),
		gens:            map[string]*generation{},
		idle:            make(chan struct{}),
	}
	e.work = sync.NewCond(&e.mu)
	e.runCtx, e.abort = context.WithCancelCause(context.Background())
	e.takeCtx, e.stopTaking = context.WithCancel(e.runCtx)
	return e
}

// Start launches one step loop per model and the sweeper of finished
// generations; the sweeper stops with ctx, the loops with Drain.
func (e *Engine) Start(ctx context.Context) {
	if e.broker != nil {
		e.broker.Listen(Listener{Task: e.observeTask, Progress: e.observeProgress, Queue: e.observeQueue})
	}
	for _, m := range e.cfg.Models {
		if e.cfg.Role == RoleGateway {
			break
		}
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.loop(m)
		}()
	}
	go func() {
		tick := time.NewTicker(time.Minute)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				e.sweep(now)
			}
		}
	}()
}

// Submission is one request for a generation.
type Submission struct {
	Key        results.Key // of the preprocessed picture and the parameters (CacheKey)
	Upload     results.Key // of the upload's bytes and the parameters (UploadKey)
	Model      *Model
	Params     Params
	Input      *Prepared
	Preprocess time.Duration
	Client     string
	Ticket     *Ticket // the admission ticket taken before preprocessing, if any
	// Image is the upload as it arrived: a Broker stores it with the job,
	// for a worker that must preprocess it again.
	Image []byte
}

// Ticket is a place in the queue held while a request's picture is
// preprocessed, so that a request the queue cannot take is refused before
// it costs any CPU.
type Ticket struct{ returned bool }

// Reserve takes an admission ticket for a job of the given priority, or
// refuses with the error Submit would give: ErrDraining or a
// *QueueFullError. Every ticket goes back through Release (a no-op once
// Submit used it).
func (e *Engine) Reserve(priority string) (*Ticket, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.admissibleLocked(priority); err != nil {
		return nil, err
	}
	e.reserved++
	return &Ticket{}, nil
}

// Release gives a ticket back.
func (e *Engine) Release(t *Ticket) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.releaseLocked(t)
}

func (e *Engine) releaseLocked(t *Ticket) {
	if t != nil && !t.returned {
		t.returned = true
		e.reserved--
	}
}

// admissibleLocked refuses a new job while draining or when the queue,
// counting the places that tickets hold, is full for its priority.
func (e *Engine) admissibleLocked(priority string) error {
	if e.draining {
		e.obs.Shed("draining")
		return ErrDraining
	}
	if depth := e.queuedLocked() + e.reserved; depth >= e.capacityLocked(priority) {
		e.obs.Shed("queue_full")
		return &QueueFullError{Depth: depth, LowPriority: priority == PriorityLow, RetryAfter: e.estimateLocked(depth + 1)}
	}
	return nil
}

// queuedLocked is the number of jobs waiting to run.
func (e *Engine) queuedLocked() int {
	if e.broker != nil {
		return e.broker.Depth() + e.storing
	}
	return len(e.queue)
}

// SubmitUpload answers a request by the key of its upload alone, before its
// picture is decoded: from the result store, or by joining the job in flight
// for the same bytes. ok is false when neither knows the upload. With record
// false a stored result comes back as it is, with the id of the generation
// that made it while that is still kept ("" otherwise), and no generation is
// created; with record true the answer (id) is that generation when its
// parameters equal the request's, else a new one born succeeded.
func (e *Engine) SubmitUpload(ctx context.Context, sub Submission, record bool) (id string, r *results.Result, madeBy string, ok bool) {
	e.mu.Lock()
	entry, known := e.uploads.get(sub.Upload)
	if t := e.inflightUploads[sub.Upload]; t != nil && !e.draining && e.broker == nil {
		g := e.coalesceLocked(t, sub)
		e.mu.Unlock()
		e.obs.CacheLookup(results.TierMiss)
		e.obs.Coalesced()
		return g.id, nil, "", true
	}
	e.mu.Unlock()
	if !known {
		return "", nil, "", false
	}
	r, tier, err := e.store.Get(ctx, entry.result)
	e.logStoreError(ctx, err)
	if r == nil {
		return "", nil, "", false
	}
	e.obs.CacheLookup(tier)
	e.mu.Lock()
	defer e.mu.Unlock()
	if made := e.gens[entry.generation]; made != nil && made.state() == StateSucceeded && made.task.key == entry.result {
		madeBy = made.id
		if record && made.params == sub.Params {
			return made.id, nil, "", true
		}
	}
	if !record {
		return "", r, madeBy, true
	}
	sub.Key, sub.Input = entry.result, entry.input
	g := e.addCachedLocked(sub, r)
	e.saveLaterLocked(g)
	return g.id, nil, "", true
}

// Submit answers from the result store, joins an identical job in flight, or
// admits a new job, and returns the id of the request's generation. It
// refuses with ErrDraining, a *QueueFullError, or ctx's error when ctx
// ends while the store is read.
func (e *Engine) Submit(ctx context.Context, sub Submission) (string, error) {
	for attempt := 0; ; attempt++ {
		r, tier, err := e.store.Get(ctx, sub.Key)
		if ctx.Err() != nil {
			e.Release(sub.Ticket)
			return "", fmt.Errorf("submit: %w", context.Cause(ctx))
		}
		e.logStoreError(ctx, err)
		if r != nil {
			e.obs.CacheLookup(tier)
			e.mu.Lock()
			e.releaseLocked(sub.Ticket)
			g := e.addCachedLocked(sub, r)
			e.saveLaterLocked(g)
			e.mu.Unlock()
			return g.id, nil
		}
		if e.broker != nil {
			return e.submitDurable(ctx, sub)
		}

		e.mu.Lock()
		e.releaseLocked(sub.Ticket)
		if e.draining {
			// Even a request identical to a job in flight: that job may
			// still be cut short by the drain's deadline.
			err := e.admissibleLocked(sub.Params.Priority)
			e.mu.Unlock()
			return "", err
		}
		if t := e.inflight[sub.Key]; t != nil {
			g := e.coalesceLocked(t, sub)
			e.mu.Unlock()
			e.obs.CacheLookup(results.TierMiss)
			e.obs.Coalesced()
			return g.id, nil
		}
		// A job for this key may have finished, and left the in-flight
		// table, between the lookup above and the lock.
		if attempt == 0 && e.store.Has(sub.Key) {
			e.mu.Unlock()
			continue
		}
		if err := e.admissibleLocked(sub.Params.Priority); err != nil {
			e.mu.Unlock()
			return "", err
		}
		now := time.Now()
		t := &task{
			id: NewID()[:8], key: sub.Key, model: sub.Model, params: sub.Params, input: sub.Input,
			preprocess: sub.Preprocess, state: StateQueued, enqueued: now, changed: make(chan struct{}),
			priority: priorityRank(sub.Params.Priority), owner: sub.Client,
		}
		t.ctx, t.cancel = context.WithCancelCause(e.runCtx)
		e.inflight[sub.Key] = t
		e.enqueueLocked(t)
		g := e.attachLocked(t, sub, now)
		e.work.Broadcast()
		e.mu.Unlock()
		e.obs.CacheLookup(results.TierMiss)
		e.log.Info().Str("job", t.id).Str("generation", g.id).Str("model", sub.Model.Name).
			Str("key", sub.Key.String()[:16]).Msg("job queued")
		return g.id, nil
	}
}

// coalesceLocked attaches a request to the identical job t in flight.
func (e *Engine) coalesceLocked(t *task, sub Submission) *generation {
	g := e.attachLocked(t, sub, time.Now())
	if rank := priorityRank(sub.Params.Priority); t.state == StateQueued && rank > t.priority {
		// The shared job runs as soon as its most urgent request needs.
		e.removeQueuedLocked(t)
		t.priority = rank
		e.enqueueLocked(t)
	}
	g.coalesced = true
	return g
}

// addCachedLocked creates a generation born succeeded, for a request the
// store answered.
func (e *Engine) addCachedLocked(sub Submission, r *results.Result) *generation {
	now := time.Now()
	t := &task{
		id: NewID()[:8], key: sub.Key, model: sub.Model, params: sub.Params, input: sub.Input.described(),
		state: StateSucceeded, enqueued: now, started: now, finished: now,
		summary: summarize(r), changed: make(chan struct{}),
	}
	g := e.attachLocked(t, sub, now)
	g.cached = true
	e.endedLocked(g, now)
	if sub.Upload != (results.Key{}) {
		e.uploads.put(sub.Upload, uploadEntry{result: sub.Key, generation: g.id, input: t.input})
	}
	return g
}

func (e *Engine) attachLocked(t *task, sub Submission, now time.Time) *generation {
	g := &generation{
		id: NewID(), task: t, params: sub.Params, client: sub.Client, upload: sub.Upload, created: now,
	}
	e.gens[g.id] = g
	t.gens = append(t.gens, g)
	if sub.Upload != (results.Key{}) && !t.state.Terminal() && e.inflightUploads[sub.Upload] == nil {
		e.inflightUploads[sub.Upload] = t
		t.uploads = append(t.uploads, sub.Upload)
	}
	if !t.state.Terminal() {
		t.refs++
		timeout := sub.Params.Timeout
		e.armDeadlineLocked(g, timeout, timeout)
	}
	return g
}

// armDeadlineLocked ends g as past its deadline (of the given length) once
// left has passed.
func (e *Engine) armDeadlineLocked(g *generation, timeout, left time.Duration) {
	g.timer = time.AfterFunc(left, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.leaveRecordedLocked(g, StateFailed, failureDeadline(timeout))
	})
}

// leaveRecordedLocked is leaveLocked for a generation whose client is not
// told: with a broker, the end is recorded there in the background.
func (e *Engine) leaveRecordedLocked(g *generation, state State, failure *Failure) {
	if e.leaveLocked(g, state, failure) && e.broker != nil {
		e.leaveLater(e.generationRecordLocked(g))
	}
}

// leaveLocked ends one generation ahead of its task. The task itself stops
// only when no generation wants it any more: a queued task leaves the queue,
// a running one has its context cancelled and leaves the step loop at the
// next step.
func (e *Engine) leaveLocked(g *generation, state State, failure *Failure) bool {
	t := g.task
	if g.own != "" || t.state.Terminal() {
		return false
	}
	g.own, g.failure, g.finished = state, failure, time.Now()
	if g.timer != nil {
		g.timer.Stop()
	}
	e.endedLocked(g, g.finished)
	t.refs--
	if t.remote {
		// The broker cancels the task once every generation, on any
		// engine, has left it (Leave).
		if t.refs == 0 {
			e.leaveInflightLocked(t)
		}
		t.notify()
		return true
	}
	if t.refs == 0 {
		e.leaveInflightLocked(t)
		t.cancel(ErrAbandoned)
		if t.state == StateQueued {
			e.removeQueuedLocked(t)
			t.state, t.failure, t.finished = StateCancelled, failure, g.finished
			t.input = t.input.described()
			e.obs.Finished(string(StateCancelled), t.params.Decode, 0, 0, g.finished)
			e.checkIdleLocked()
		}
	}
	t.notify()
	return true
}

// enqueueLocked places t after every queued task of its priority or above.
func (e *Engine) enqueueLocked(t *task) {
	i := len(e.queue)
	for i > 0 && e.queue[i-1].priority < t.priority {
		i--
	}
	e.queue = slices.Insert(e.queue, i, t)
	e.positionsChangedLocked(i)
}

// positionsChangedLocked tells the watchers of the queued tasks from index
// from on that their queue position changed.
func (e *Engine) positionsChangedLocked(from int) {
	for _, q := range e.queue[from:] {
		q.notify()
	}
}

// capacityLocked is how long the queue may be when a job of priority p
// arrives: low-priority jobs leave the last quarter of the queue to the
// others, so that a backlog of bulk work cannot shed interactive requests.
func (e *Engine) capacityLocked(p string) int {
	if p == PriorityLow {
		return max(e.cfg.MaxQueue*3/4, 1)
	}
	return e.cfg.MaxQueue
}

func (e *Engine) removeQueuedLocked(t *task) {
	if i := slices.Index(e.queue, t); i >= 0 {
		e.queue = slices.Delete(e.queue, i, i+1)
		e.positionsChangedLocked(i)
	}
}

// Cancel ends generation id at its client's request; it fails with
// ErrNotFound or a *FinishedError.
func (e *Engine) Cancel(ctx context.Context, id string) (Snapshot, error) {
	g, err := e.find(ctx, id)
	if err != nil {
		return Snapshot{}, err
	}
	e.mu.Lock()
	if !e.leaveLocked(g, StateCancelled, failureCancelled()) {
		e.mu.Unlock()
		return Snapshot{}, &FinishedError{ID: id, State: g.state()}
	}
	snap := e.snapshotLocked(g)
	if e.broker == nil {
		e.mu.Unlock()
		return snap, nil
	}
	rec := e.generationRecordLocked(g)
	e.mu.Unlock()
	if _, err := e.broker.Leave(ctx, rec); err != nil {
		return snap, &StorageError{Op: "recording the cancellation", Err: err}
	}
	return snap, nil
}

// Abandon ends a generation whose client went away (a synchronous request
// that disconnected); it is a cancel that nobody is told about.
func (e *Engine) Abandon(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if g := e.gens[id]; g != nil {
		e.leaveRecordedLocked(g, StateCancelled, failureCancelled())
	}
}

// find returns generation id, from the broker's records when this engine
// does not know it.
func (e *Engine) find(ctx context.Context, id string) (*generation, error) {
	e.mu.Lock()
	g := e.gens[id]
	e.mu.Unlock()
	if g != nil {
		return g, nil
	}
	if e.broker == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return e.recall(ctx, id)
}

func (e *Engine) progress(t *task, p Progress) {
	if t.delivery != nil {
		t.delivery.Progress(p)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if t.state == StateRunning {
		t.progress = p
		t.notify()
	}
}

// finish records a job's end: its result in the store, its state, the
// upload keys that will find the result, and the metrics.
func (e *Engine) finish(t *task, out Output) {
	if t.delivery != nil {
		e.finishDelivery(t, out)
		return
	}
	now := time.Now()
	var res *results.Result
	var putErr error
	if out.Err == nil {
		res, out.Err = e.buildResult(t, out, now)
	}
	if out.Err == nil {
		// Stored before the job leaves the in-flight table, so an identical
		// request always finds one or the other.
		putErr = e.store.Put(res)
		for _, st := range res.Stages {
			e.obs.Stage(st.Stage, st.Duration)
		}
	}

	e.mu.Lock()
	e.running--
	e.leaveInflightLocked(t)
	t.finished = now
	switch {
	case out.Err == nil:
		t.state, t.summary = StateSucceeded, summarize(res)
		if putErr != nil {
			t.pinned = res
		}
	case e.runCtx.Err() != nil:
		// Checked on the engine's own context: a job's context hears of the
		// shutdown a moment after the generator may have.
		t.state, t.failure = StateFailed, failureShutdown(true)
	case t.ctx.Err() != nil:
		t.state, t.failure = StateCancelled, failureCancelled()
	default:
		t.state, t.failure = StateFailed, failureGenerator(out.Err)
	}
	t.input = t.input.described()
	t.cancel(nil)
	e.taskEndedLocked(t)
	if t.state == StateSucceeded {
		for _, g := range t.gens {
			if g.upload != (results.Key{}) {
				e.uploads.put(g.upload, uploadEntry{result: t.key, generation: g.id, input: t.input})
			}
		}
	}
	queued, ran := t.started.Sub(t.enqueued), now.Sub(t.started)
	e.ranLocked(ran)
	// Counted before anyone hears of the end, so that a client that saw the
	// job finish also finds it in the metrics.
	e.obs.Finished(string(t.state), t.params.Decode, queued, ran, now)
	t.notify()
	e.checkIdleLocked()
	e.work.Broadcast()
	e.mu.Unlock()

	e.jobLine(t.state, out.Err, res).Str("job", t.id).Str("model", t.model.Name).Str("status", string(t.state)).
		Dur("queued", queued).Dur("ran", ran).Msg("job finished")
	if putErr != nil {
		e.log.Error().Err(putErr).Str("job", t.id).Msg("result kept in memory only")
	}
}

// ranLocked adds a job that ran for d, beside the jobs still running, to
// the time-per-job average.
func (e *Engine) ranLocked(d time.Duration) {
	per := d / time.Duration(e.running+1)
	if e.perJob == 0 {
		e.perJob = per
	} else {
		e.perJob = time.Duration(ewmaWeight*float64(per) + (1-ewmaWeight)*float64(e.perJob))
	}
}

func (e *Engine) buildResult(t *task, out Output, now time.Time) (*results.Result, error) {
	r := &results.Result{
		Key: t.key, Owner: t.owner, Meshes: map[string]*results.Mesh{}, Vertices: out.Vertices, Faces: out.Faces,
		Warnings: out.Warnings, Created: now,
	}
	r.Stages = append([]results.StageTiming{{Stage: "preprocess", Duration: t.preprocess}}, t.carried.Stages...)
	r.Stages = append(r.Stages, out.Stages...)
	if len(t.carried.Warnings) > 0 {
		r.Warnings = append(slices.Clone(t.carried.Warnings), out.Warnings...)
	}
	for _, f := range t.params.Formats() {
		b := out.Meshes[f]
		if len(b) == 0 {
			return nil, fmt.Errorf("generator returned no %s mesh", f)
		}
		r.Meshes[f] = results.NewMesh(b)
	}
	return r, nil
}

func (e *Engine) checkIdleLocked() {
	if !e.draining || len(e.queue) > 0 || e.running > 0 {
		return
	}
	select {
	case <-e.idle:
	default:
		close(e.idle)
	}
}

// Drain stops admission and lets every accepted job finish. If ctx ends
// first, queued jobs fail as "shut down before they ran" and running ones
// are cancelled; either way each job's status says what happened.
func (e *Engine) Drain(ctx context.Context) error {
	e.mu.Lock()
	e.draining = true
	e.checkIdleLocked()
	e.mu.Unlock()
	e.stopTaking()
	var err error
	select {
	case <-e.idle:
	case <-ctx.Done():
		err = fmt.Errorf("drain: %w", ctx.Err())
		e.abortAll()
	}
	e.mu.Lock()
	e.stopped = true
	e.work.Broadcast()
	e.mu.Unlock()
	e.wg.Wait()
	return err
}

func (e *Engine) abortAll() {
	e.mu.Lock()
	now := time.Now()
	for _, t := range e.queue {
		e.leaveInflightLocked(t)
		t.state, t.failure, t.finished = StateFailed, failureShutdown(false), now
		t.input = t.input.described()
		e.taskEndedLocked(t)
		t.notify()
		e.obs.Finished(string(StateFailed), t.params.Decode, 0, 0, now)
	}
	e.queue = nil
	e.mu.Unlock()
	e.abort(errShutdown)
}

// endedGeneration is one entry of the list of finished generations.
type endedGeneration struct {
	id string
	at time.Time
}

// endedLocked records that g finished at the given time, and forgets the
// oldest finished generations beyond cfg.MaxGenerations. Generations still
// queued or running are never forgotten: their clients are waiting.
func (e *Engine) endedLocked(g *generation, at time.Time) {
	e.ended = append(e.ended, endedGeneration{id: g.id, at: at})
	for len(e.gens) > e.cfg.MaxGenerations && len(e.ended) > 0 {
		e.forgetOldestLocked()
	}
}

// taskEndedLocked stops the deadlines of t's generations, which end with it,
// and records those that had not left it before.
func (e *Engine) taskEndedLocked(t *task) {
	for _, g := range t.gens {
		if g.timer != nil {
			g.timer.Stop()
		}
		if g.own == "" {
			e.endedLocked(g, t.finished)
		}
	}
}

func (e *Engine) forgetOldestLocked() {
	delete(e.gens, e.ended[0].id)
	e.ended[0] = endedGeneration{}
	e.ended = e.ended[1:]
}

// leaveInflightLocked removes t from the tables that let identical requests
// join it.
func (e *Engine) leaveInflightLocked(t *task) {
	if e.inflight[t.key] == t {
		delete(e.inflight, t.key)
	}
	for _, u := range t.uploads {
		if e.inflightUploads[u] == t {
			delete(e.inflightUploads, u)
		}
	}
}

// sweep forgets generations that finished longer ago than cfg.Retain; their
// results stay in the store.
func (e *Engine) sweep(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for len(e.ended) > 0 && now.Sub(e.ended[0].at) > e.cfg.Retain {
		e.forgetOldestLocked()
	}
}

// estimateLocked is the wait before a job at queue position pos (1-based)
// starts: the measured time per job times the jobs ahead.
func (e *Engine) estimateLocked(pos int) time.Duration {
	per := e.perJob
	if per == 0 {
		per = defaultJobEstimate
	}
	return per * time.Duration(pos)
}

// Watch returns generation id's snapshot and a channel closed at its next
// change.
func (e *Engine) Watch(ctx context.Context, id string) (Snapshot, <-chan struct{}, error) {
	g, err := e.find(ctx, id)
	if err != nil {
		return Snapshot{}, nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.snapshotLocked(g), g.task.changed, nil
}

// Wait blocks until generation id ends or ctx does.
func (e *Engine) Wait(ctx context.Context, id string) (Snapshot, error) {
	for {
		st, changed, err := e.Watch(ctx, id)
		if err != nil || st.State.Terminal() {
			return st, err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
}

// Result returns the mesh of a succeeded generation; it fails with
// ErrNotFound, a *NotReadyError, ErrResultGone, or ctx's error when ctx
// ends while the store is read.
func (e *Engine) Result(ctx context.Context, id string) (*results.Result, Snapshot, error) {
	g, err := e.find(ctx, id)
	if err != nil {
		return nil, Snapshot{}, err
	}
	e.mu.Lock()
	st := e.snapshotLocked(g)
	pinned, key := g.task.pinned, g.task.key
	e.mu.Unlock()
	if st.State != StateSucceeded {
		nr := &NotReadyError{ID: id, State: st.State}
		if !st.State.Terminal() {
			nr.RetryAfter = st.EstimatedWait + time.Second
		}
		return nil, st, nr
	}
	if pinned != nil {
		return pinned, st, nil
	}
	r, _, err := e.store.Get(ctx, key)
	if ctx.Err() != nil {
		return nil, st, fmt.Errorf("result %s: %w", id, context.Cause(ctx))
	}
	e.logStoreError(ctx, err)
	if r == nil && e.broker != nil {
		if r, err = e.sharedResult(ctx, key); err != nil {
			return nil, st, err
		}
	}
	if r == nil {
		return nil, st, ErrResultGone
	}
	return r, st, nil
}

// jobLine starts the one log line a finished job gets, with every stage's
// duration (in ms, like every zerolog duration here).
func (e *Engine) jobLine(state State, err error, res *results.Result) *zerolog.Event {
	ev := e.log.Info()
	if state != StateSucceeded {
		ev = e.log.Warn().Err(err)
	}
	if res != nil {
		stages := zerolog.Dict()
		for _, st := range res.Stages {
			stages = stages.Dur(st.Stage, st.Duration)
		}
		ev = ev.Dict("stages", stages).Int("faces", res.Faces)
	}
	return ev
}

// logStoreError reports a result the store found corrupt (and dropped); a
// read cut short by ctx is not one.
func (e *Engine) logStoreError(ctx context.Context, err error) {
	if err != nil && ctx.Err() == nil {
		e.log.Warn().Err(err).Msg("dropped a corrupt result from the store")
	}
}

// Load is the engine's state, for statistics, metrics and readiness.
type Load struct {
	Queued, Running, Capacity, Finishers, MaxBatch int
	PerJob                                         time.Duration
	Draining                                       bool
	Generations                                    int
	Policy                                         Policy
}

// Load reads the engine's state now.
func (e *Engine) Load() Load {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Load{
		Queued: e.queuedLocked(), Running: e.running, Capacity: e.cfg.MaxQueue, Finishers: e.cfg.Finishers,
		MaxBatch: e.cfg.MaxBatch, PerJob: e.perJob, Draining: e.draining, Generations: len(e.gens),
		Policy: e.cfg.Policy,
	}
}

// RetryAfterDraining is the wait a client refused by a draining engine is told.
func RetryAfterDraining() time.Duration { return defaultJobEstimate }

func (e *Engine) snapshotLocked(g *generation) Snapshot {
	t := g.task
	st := Snapshot{
		ID: g.id, State: g.state(), Params: g.params, Created: g.created, Started: t.started,
		Cached: g.cached, Coalesced: g.coalesced, Input: t.input.described(),
	}
	switch st.State {
	case StateQueued:
		if t.remote {
			if pos := e.broker.Position(t.key); pos > 0 {
				st.QueuePosition, st.EstimatedWait = pos, e.estimateLocked(pos)
			}
		} else if i := slices.Index(e.queue, t); i >= 0 {
			st.QueuePosition = i + 1
			st.EstimatedWait = e.estimateLocked(i + 1)
		}
	case StateRunning:
		p := t.progress
		st.Progress = &p
	}
	failure := t.failure
	switch {
	case g.own != "":
		st.Finished = g.finished
		failure = g.failure
	case t.state.Terminal():
		st.Finished = t.finished
	}
	if st.State != StateSucceeded {
		st.Failure = failure
	} else {
		st.Result = t.summary
	}
	return st
}
