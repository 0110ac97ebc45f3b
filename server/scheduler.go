package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Scheduling constants.
const (
	// defaultJobEstimate stands in for the measured time per job until the
	// first batch has finished.
	defaultJobEstimate = 2 * time.Second
	// ewmaWeight is the weight of the newest batch in the time-per-job average.
	ewmaWeight = 0.2
)

var (
	errShutdown  = errors.New("server shutting down")
	errAbandoned = errors.New("every request for this job left")
)

type schedulerConfig struct {
	workers  int
	maxBatch int
	maxQueue int
	retain   time.Duration // how long finished generations stay queryable
	// maxGenerations bounds the generations kept; past it the oldest
	// finished ones are forgotten first.
	maxGenerations int
	maxUploads     int // entries of the upload index
}

// scheduler owns admission, the bounded queue, the workers that hand batches
// to the Generator, the coalescing of identical jobs and every generation's
// state. One mutex guards all of it.
type scheduler struct {
	cfg   schedulerConfig
	gen   Generator
	store *resultStore
	met   *metrics
	log   zerolog.Logger

	batchCtx     context.Context
	abortBatches context.CancelCauseFunc
	wg           sync.WaitGroup

	mu       sync.Mutex
	work     *sync.Cond
	queue    []*task
	inflight map[Key]*task
	// inflightUploads finds the task of an upload by its bytes, before the
	// picture is decoded.
	inflightUploads map[Key]*task
	uploads         *uploadIndex
	gens            map[string]*generation
	// ended lists finished generations in the order they finished: the
	// sweep and the bound on generations forget from its front.
	ended    []endedGeneration
	reserved int // admission tickets held by requests still preprocessing
	running  int
	draining bool
	stopped  bool
	idle     chan struct{} // closed once draining with nothing queued or running
	perJob   time.Duration // EWMA of a batch's wall time divided by its size
}

func newScheduler(cfg schedulerConfig, gen Generator, store *resultStore, met *metrics, log zerolog.Logger) *scheduler {
	s := &scheduler{
		cfg: cfg, gen: gen, store: store, met: met, log: log,
		inflight:        map[Key]*task{},
		inflightUploads: map[Key]*task{},
		uploads:         newUploadIndex(cfg.maxUploads),
		gens:            map[string]*generation{},
		idle:            make(chan struct{}),
	}
	s.work = sync.NewCond(&s.mu)
	s.batchCtx, s.abortBatches = context.WithCancelCause(context.Background())
	return s
}

// start launches the workers and the sweeper of finished generations; the
// sweeper stops with ctx, the workers with drain.
func (s *scheduler) start(ctx context.Context) {
	for range s.cfg.workers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				batch := s.next()
				if batch == nil {
					return
				}
				s.run(batch)
			}
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
				s.sweep(now)
			}
		}
	}()
}

type submission struct {
	key        Key // of the preprocessed picture and the parameters
	upload     Key // of the upload's bytes and the parameters
	model      *Model
	params     Params
	input      *Prepared
	preprocess time.Duration
	client     string
	ticket     *ticket // the admission ticket taken before preprocessing, if any
}

// ticket is a place in the queue held while a request's picture is
// preprocessed, so that a request the queue cannot take is refused before
// it costs any CPU.
type ticket struct{ returned bool }

// reserve takes an admission ticket for a job of the given priority, or
// refuses with the answer submit would give: draining, or a full queue.
// Every ticket goes back through release (a no-op once submit used it).
func (s *scheduler) reserve(priority string) (*ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.admissibleLocked(priority); err != nil {
		return nil, err
	}
	s.reserved++
	return &ticket{}, nil
}

func (s *scheduler) release(t *ticket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(t)
}

func (s *scheduler) releaseLocked(t *ticket) {
	if t != nil && !t.returned {
		t.returned = true
		s.reserved--
	}
}

// admissibleLocked refuses a new job while draining or when the queue,
// counting the places that tickets hold, is full for its priority.
func (s *scheduler) admissibleLocked(priority string) error {
	if s.draining {
		s.met.shedding("draining")
		return overloaded(http.StatusServiceUnavailable, "draining", "Server shutting down",
			"the server is draining and accepts no new jobs", defaultJobEstimate)
	}
	if depth := len(s.queue) + s.reserved; depth >= s.capacityLocked(priority) {
		retry := s.estimateLocked(depth + 1)
		s.met.shedding("queue_full")
		detail := fmt.Sprintf("%d jobs are waiting; retry later", depth)
		if priority == PriorityLow {
			detail = fmt.Sprintf("%d jobs are waiting, as many as low-priority jobs may join; retry later", depth)
		}
		return overloaded(http.StatusServiceUnavailable, "queue-full", "Queue full", detail, retry)
	}
	return nil
}

// submitUpload answers a request by the key of its upload alone, before its
// picture is decoded: from the result store, or by joining the job in flight
// for the same bytes. ok is false when neither knows the upload. With record
// false a stored result comes back as it is, with the id of the generation
// that made it while that is still kept ("" otherwise), and no generation is
// created; with record true the answer is that generation when its
// parameters equal the request's, else a new one born succeeded.
func (s *scheduler) submitUpload(sub submission, record bool) (g *generation, r *Result, madeBy string, ok bool) {
	s.mu.Lock()
	e, known := s.uploads.get(sub.upload)
	if t := s.inflightUploads[sub.upload]; t != nil && !s.draining {
		g := s.coalesceLocked(t, sub)
		s.mu.Unlock()
		s.met.cacheLookup(tierMiss)
		s.met.coalesce()
		return g, nil, "", true
	}
	s.mu.Unlock()
	if !known {
		return nil, nil, "", false
	}
	r, tier, err := s.store.get(e.result)
	if err != nil {
		s.log.Warn().Err(err).Msg("dropped a corrupt result from the store")
	}
	if r == nil {
		return nil, nil, "", false
	}
	s.met.cacheLookup(tier)
	s.mu.Lock()
	defer s.mu.Unlock()
	if made := s.gens[e.generation]; made != nil && made.state() == StateSucceeded && made.task.key == e.result {
		madeBy = made.id
		if record && made.params == sub.params {
			return made, nil, "", true
		}
	}
	if !record {
		return nil, r, madeBy, true
	}
	sub.key, sub.input = e.result, e.input
	return s.addCachedLocked(sub, r), nil, "", true
}

// submit answers from the result store, joins an identical job in flight, or
// admits a new job; it refuses with 503 when the queue is full or the server
// is draining.
func (s *scheduler) submit(sub submission) (*generation, error) {
	for attempt := 0; ; attempt++ {
		r, tier, err := s.store.get(sub.key)
		if err != nil {
			s.log.Warn().Err(err).Msg("dropped a corrupt result from the store")
		}
		if r != nil {
			s.met.cacheLookup(tier)
			s.mu.Lock()
			s.releaseLocked(sub.ticket)
			g := s.addCachedLocked(sub, r)
			s.mu.Unlock()
			return g, nil
		}

		s.mu.Lock()
		s.releaseLocked(sub.ticket)
		if s.draining {
			// Even a request identical to a job in flight: that job may
			// still be cut short by the drain's deadline.
			err := s.admissibleLocked(sub.params.Priority)
			s.mu.Unlock()
			return nil, err
		}
		if t := s.inflight[sub.key]; t != nil {
			g := s.coalesceLocked(t, sub)
			s.mu.Unlock()
			s.met.cacheLookup(tierMiss)
			s.met.coalesce()
			return g, nil
		}
		// A job for this key may have finished, and left the in-flight
		// table, between the lookup above and the lock.
		if attempt == 0 && s.store.has(sub.key) {
			s.mu.Unlock()
			continue
		}
		if err := s.admissibleLocked(sub.params.Priority); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		now := time.Now()
		t := &task{
			id: newID()[:8], key: sub.key, model: sub.model, params: sub.params, input: sub.input,
			preprocess: sub.preprocess, state: StateQueued, enqueued: now, changed: make(chan struct{}),
			priority: priorityRank(sub.params.Priority),
		}
		t.ctx, t.cancel = context.WithCancelCause(s.batchCtx)
		s.inflight[sub.key] = t
		s.enqueueLocked(t)
		g := s.attachLocked(t, sub, now)
		s.work.Signal()
		s.mu.Unlock()
		s.met.cacheLookup(tierMiss)
		s.log.Info().Str("job", t.id).Str("generation", g.id).Str("model", sub.model.Name).
			Str("key", sub.key.String()[:16]).Msg("job queued")
		return g, nil
	}
}

// coalesceLocked attaches a request to the identical job t in flight.
func (s *scheduler) coalesceLocked(t *task, sub submission) *generation {
	g := s.attachLocked(t, sub, time.Now())
	if rank := priorityRank(sub.params.Priority); t.state == StateQueued && rank > t.priority {
		// The shared job runs as soon as its most urgent request needs.
		s.removeQueuedLocked(t)
		t.priority = rank
		s.enqueueLocked(t)
	}
	g.coalesced = true
	return g
}

// addCachedLocked creates a generation born succeeded, for a request the
// store answered.
func (s *scheduler) addCachedLocked(sub submission, r *Result) *generation {
	now := time.Now()
	t := &task{
		id: newID()[:8], key: sub.key, model: sub.model, params: sub.params, input: sub.input.described(),
		state: StateSucceeded, enqueued: now, started: now, finished: now,
		summary: summarize(r), changed: make(chan struct{}),
	}
	g := s.attachLocked(t, sub, now)
	g.cached = true
	s.endedLocked(g, now)
	if sub.upload != (Key{}) {
		s.uploads.put(sub.upload, uploadEntry{result: sub.key, generation: g.id, input: t.input})
	}
	return g
}

func (s *scheduler) attachLocked(t *task, sub submission, now time.Time) *generation {
	g := &generation{
		id: newID(), task: t, params: sub.params, client: sub.client, upload: sub.upload,
		created: now, deadline: now.Add(sub.params.Timeout),
	}
	s.gens[g.id] = g
	t.gens = append(t.gens, g)
	if sub.upload != (Key{}) && !t.state.terminal() && s.inflightUploads[sub.upload] == nil {
		s.inflightUploads[sub.upload] = t
		t.uploads = append(t.uploads, sub.upload)
	}
	if !t.state.terminal() {
		t.refs++
		timeout := sub.params.Timeout
		g.timer = time.AfterFunc(timeout, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.leaveLocked(g, StateFailed, failureDeadline(timeout))
		})
	}
	return g
}

// leaveLocked ends one generation ahead of its task. The task itself stops
// only when no generation wants it any more: a queued task leaves the queue,
// a running one has its context cancelled and ends when the generator notices.
func (s *scheduler) leaveLocked(g *generation, state State, failure *Problem) bool {
	t := g.task
	if g.own != "" || t.state.terminal() {
		return false
	}
	g.own, g.failure, g.finished = state, failure, time.Now()
	if g.timer != nil {
		g.timer.Stop()
	}
	s.endedLocked(g, g.finished)
	t.refs--
	if t.refs == 0 {
		s.leaveInflightLocked(t)
		t.cancel(errAbandoned)
		if t.state == StateQueued {
			s.removeQueuedLocked(t)
			t.state, t.failure, t.finished = StateCancelled, failure, g.finished
			t.input = t.input.described()
			s.met.finished(string(StateCancelled), 0, 0, g.finished)
			s.checkIdleLocked()
		}
	}
	t.notify()
	return true
}

// enqueueLocked places t after every queued task of its priority or above.
func (s *scheduler) enqueueLocked(t *task) {
	i := len(s.queue)
	for i > 0 && s.queue[i-1].priority < t.priority {
		i--
	}
	s.queue = slices.Insert(s.queue, i, t)
	s.positionsChangedLocked(i)
}

// positionsChangedLocked tells the watchers of the queued tasks from index
// from on that their queue position changed.
func (s *scheduler) positionsChangedLocked(from int) {
	for _, q := range s.queue[from:] {
		q.notify()
	}
}

// capacityLocked is how long the queue may be when a job of priority p
// arrives: low-priority jobs leave the last quarter of the queue to the
// others, so that a backlog of bulk work cannot shed interactive requests.
func (s *scheduler) capacityLocked(p string) int {
	if p == PriorityLow {
		return max(s.cfg.maxQueue*3/4, 1)
	}
	return s.cfg.maxQueue
}

func (s *scheduler) removeQueuedLocked(t *task) {
	if i := slices.Index(s.queue, t); i >= 0 {
		s.queue = slices.Delete(s.queue, i, i+1)
		s.positionsChangedLocked(i)
	}
}

// cancel ends generation id at its client's request.
func (s *scheduler) cancel(id string) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gens[id]
	if g == nil {
		return Status{}, notFound(fmt.Sprintf("no generation %q", id))
	}
	if !s.leaveLocked(g, StateCancelled, failureCancelled()) {
		return Status{}, newProblem(http.StatusConflict, "already-finished", "Generation already finished",
			fmt.Sprintf("generation %s is %s", id, g.state()))
	}
	return s.statusLocked(g), nil
}

// next blocks until there is work and takes up to maxBatch queued jobs of
// the first job's model, in queue order; nil means the workers should stop.
func (s *scheduler) next() []*task {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.queue) == 0 && !s.stopped {
		s.work.Wait()
	}
	if len(s.queue) == 0 {
		return nil
	}
	first := s.queue[0]
	limit := s.cfg.maxBatch
	if first.model.MaxBatch > 0 && first.model.MaxBatch < limit {
		limit = first.model.MaxBatch
	}
	batch := []*task{first}
	rest := s.queue[:0]
	for _, t := range s.queue[1:] {
		if len(batch) < limit && t.model == first.model {
			batch = append(batch, t)
		} else {
			rest = append(rest, t)
		}
	}
	clear(s.queue[len(rest):])
	s.queue = rest
	s.positionsChangedLocked(0)
	now := time.Now()
	for _, t := range batch {
		t.state, t.started = StateRunning, now
		t.notify()
	}
	s.running += len(batch)
	if len(s.queue) > 0 {
		s.work.Signal()
	}
	return batch
}

func (s *scheduler) run(batch []*task) {
	jobs := make([]Job, len(batch))
	for i, t := range batch {
		jobs[i] = Job{
			ID: t.id, Context: t.ctx, Input: t.input, Params: t.params, Formats: Formats,
			Progress: func(p Progress) { s.progress(t, p) },
		}
	}
	start := time.Now()
	outs := s.generate(jobs)
	elapsed := time.Since(start)
	s.met.batch(len(batch))
	for i, t := range batch {
		s.finish(t, outs[i], elapsed)
	}
	s.mu.Lock()
	perJob := elapsed / time.Duration(len(batch))
	if s.perJob == 0 {
		s.perJob = perJob
	} else {
		s.perJob = time.Duration(ewmaWeight*float64(perJob) + (1-ewmaWeight)*float64(s.perJob))
	}
	s.mu.Unlock()
}

// generate calls the Generator and turns a panic or a malformed answer into
// a failure of every job of the batch: a bad batch must not take the server
// down, nor leave its jobs running forever.
func (s *scheduler) generate(jobs []Job) (outs []Output) {
	fail := func(err error) []Output {
		o := make([]Output, len(jobs))
		for i := range o {
			o[i].Err = err
		}
		return o
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error().Interface("panic", r).Msg("generator panicked")
			outs = fail(fmt.Errorf("generator panicked: %v", r))
		}
	}()
	outs = s.gen.Generate(s.batchCtx, jobs)
	if len(outs) != len(jobs) {
		return fail(fmt.Errorf("generator returned %d outputs for %d jobs", len(outs), len(jobs)))
	}
	return outs
}

func (s *scheduler) progress(t *task, p Progress) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.state == StateRunning {
		t.progress = p
		t.notify()
	}
}

func (s *scheduler) finish(t *task, out Output, elapsed time.Duration) {
	now := time.Now()
	var res *Result
	var putErr error
	if out.Err == nil {
		res, out.Err = s.buildResult(t, out, now)
	}
	if out.Err == nil {
		// Stored before the job leaves the in-flight table, so an identical
		// request always finds one or the other.
		putErr = s.store.put(res)
		for _, st := range res.Stages {
			s.met.stage(st.Stage, st.Duration)
		}
	}

	s.mu.Lock()
	s.running--
	s.leaveInflightLocked(t)
	t.finished = now
	switch {
	case out.Err == nil:
		t.state, t.summary = StateSucceeded, summarize(res)
		if putErr != nil {
			t.pinned = res
		}
	case s.batchCtx.Err() != nil:
		// Checked on the batch's own context: a job's context hears of the
		// shutdown a moment after the generator may have.
		t.state, t.failure = StateFailed, failureShutdown(true)
	case t.ctx.Err() != nil:
		t.state, t.failure = StateCancelled, failureCancelled()
	default:
		t.state, t.failure = StateFailed, failureGenerator(out.Err)
	}
	t.input = t.input.described()
	t.cancel(nil)
	s.taskEndedLocked(t)
	if t.state == StateSucceeded {
		for _, g := range t.gens {
			if g.upload != (Key{}) {
				s.uploads.put(g.upload, uploadEntry{result: t.key, generation: g.id, input: t.input})
			}
		}
	}
	queued := t.started.Sub(t.enqueued)
	// Counted before anyone hears of the end, so that a client that saw the
	// job finish also finds it in /v1/stats.
	s.met.finished(string(t.state), queued, elapsed, now)
	if t.state == StateSucceeded {
		s.met.decoded(t.params.Decode)
	}
	t.notify()
	s.checkIdleLocked()
	s.mu.Unlock()

	// One line per job, with every stage's duration (in ms, like every
	// zerolog duration here).
	ev := s.log.Info()
	if t.state != StateSucceeded {
		ev = s.log.Warn().Err(out.Err)
	}
	if res != nil {
		stages := zerolog.Dict()
		for _, st := range res.Stages {
			stages = stages.Dur(st.Stage, st.Duration)
		}
		ev = ev.Dict("stages", stages).Int("faces", res.Faces)
	}
	ev.Str("job", t.id).Str("model", t.model.Name).Str("status", string(t.state)).
		Dur("queued", queued).Dur("ran", elapsed).Msg("job finished")
	if putErr != nil {
		s.log.Error().Err(putErr).Str("job", t.id).Msg("result kept in memory only")
	}
}

func (s *scheduler) buildResult(t *task, out Output, now time.Time) (*Result, error) {
	r := &Result{
		Key: t.key, Meshes: map[string]*Mesh{}, Vertices: out.Vertices, Faces: out.Faces,
		Warnings: out.Warnings, Created: now,
	}
	r.Stages = append([]StageTiming{{Stage: "preprocess", Duration: t.preprocess}}, out.Stages...)
	for _, f := range Formats {
		b := out.Meshes[f]
		if len(b) == 0 {
			return nil, fmt.Errorf("generator returned no %s mesh", f)
		}
		r.Meshes[f] = newMesh(b)
	}
	return r, nil
}

func (s *scheduler) checkIdleLocked() {
	if !s.draining || len(s.queue) > 0 || s.running > 0 {
		return
	}
	select {
	case <-s.idle:
	default:
		close(s.idle)
	}
}

// drain stops admission and lets every accepted job finish. If ctx ends
// first, queued jobs fail as "shut down before they ran" and running batches
// are cancelled; either way each job's status says what happened.
func (s *scheduler) drain(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	s.checkIdleLocked()
	s.mu.Unlock()
	var err error
	select {
	case <-s.idle:
	case <-ctx.Done():
		err = fmt.Errorf("drain: %w", ctx.Err())
		s.abort()
	}
	s.mu.Lock()
	s.stopped = true
	s.work.Broadcast()
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *scheduler) abort() {
	s.mu.Lock()
	now := time.Now()
	for _, t := range s.queue {
		s.leaveInflightLocked(t)
		t.state, t.failure, t.finished = StateFailed, failureShutdown(false), now
		t.input = t.input.described()
		s.taskEndedLocked(t)
		t.notify()
		s.met.finished(string(StateFailed), 0, 0, now)
	}
	s.queue = nil
	s.mu.Unlock()
	s.abortBatches(errShutdown)
}

// endedGeneration is one entry of the list of finished generations.
type endedGeneration struct {
	id string
	at time.Time
}

// endedLocked records that g finished at the given time, and forgets the
// oldest finished generations beyond cfg.maxGenerations. Generations still
// queued or running are never forgotten: their clients are waiting.
func (s *scheduler) endedLocked(g *generation, at time.Time) {
	s.ended = append(s.ended, endedGeneration{id: g.id, at: at})
	for len(s.gens) > s.cfg.maxGenerations && len(s.ended) > 0 {
		s.forgetOldestLocked()
	}
}

// taskEndedLocked stops the deadlines of t's generations, which end with it,
// and records those that had not left it before.
func (s *scheduler) taskEndedLocked(t *task) {
	for _, g := range t.gens {
		if g.timer != nil {
			g.timer.Stop()
		}
		if g.own == "" {
			s.endedLocked(g, t.finished)
		}
	}
}

func (s *scheduler) forgetOldestLocked() {
	delete(s.gens, s.ended[0].id)
	s.ended[0] = endedGeneration{}
	s.ended = s.ended[1:]
}

// leaveInflightLocked removes t from the tables that let identical requests
// join it.
func (s *scheduler) leaveInflightLocked(t *task) {
	if s.inflight[t.key] == t {
		delete(s.inflight, t.key)
	}
	for _, u := range t.uploads {
		if s.inflightUploads[u] == t {
			delete(s.inflightUploads, u)
		}
	}
}

// sweep forgets generations that finished longer ago than cfg.retain; their
// results stay in the store.
func (s *scheduler) sweep(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.ended) > 0 && now.Sub(s.ended[0].at) > s.cfg.retain {
		s.forgetOldestLocked()
	}
}

// estimateLocked is the wait before a job at queue position pos (1-based)
// starts: the measured time per job, times the jobs ahead, shared by the
// workers.
func (s *scheduler) estimateLocked(pos int) time.Duration {
	per := s.perJob
	if per == 0 {
		per = defaultJobEstimate
	}
	return per * time.Duration(pos) / time.Duration(s.cfg.workers)
}

// watch returns generation id's status and a channel closed at its next change.
func (s *scheduler) watch(id string) (Status, <-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gens[id]
	if g == nil {
		return Status{}, nil, notFound(fmt.Sprintf("no generation %q", id))
	}
	return s.statusLocked(g), g.task.changed, nil
}

// wait blocks until generation id ends or ctx does.
func (s *scheduler) wait(ctx context.Context, id string) (Status, error) {
	for {
		st, changed, err := s.watch(id)
		if err != nil || st.Status.terminal() {
			return st, err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
}

// abandon ends a generation whose client went away (a synchronous request
// that disconnected); it is a cancel that nobody is told about.
func (s *scheduler) abandon(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.gens[id]; g != nil {
		s.leaveLocked(g, StateCancelled, failureCancelled())
	}
}

// result returns the mesh of a succeeded generation.
func (s *scheduler) result(id string) (*Result, Status, error) {
	s.mu.Lock()
	g := s.gens[id]
	if g == nil {
		s.mu.Unlock()
		return nil, Status{}, notFound(fmt.Sprintf("no generation %q", id))
	}
	st := s.statusLocked(g)
	pinned, key := g.task.pinned, g.task.key
	s.mu.Unlock()
	if st.Status != StateSucceeded {
		p := newProblem(http.StatusConflict, "not-ready", "Result not ready",
			fmt.Sprintf("generation %s is %s", id, st.Status))
		if !st.Status.terminal() {
			p.retryAfter = time.Duration(st.EstimatedWaitSeconds*float64(time.Second)) + time.Second
		}
		return nil, st, p
	}
	if pinned != nil {
		return pinned, st, nil
	}
	r, _, err := s.store.get(key)
	if err != nil {
		s.log.Warn().Err(err).Msg("dropped a corrupt result from the store")
	}
	if r == nil {
		return nil, st, newProblem(http.StatusGone, "result-gone", "Result gone",
			"the result is no longer in the store; submit the request again")
	}
	return r, st, nil
}

// load is the scheduler's state for /v1/stats, /metrics and Retry-After.
type load struct {
	queued, running, capacity, workers, maxBatch int
	perJob                                       time.Duration
	draining                                     bool
	generations                                  int
}

func (s *scheduler) load() load {
	s.mu.Lock()
	defer s.mu.Unlock()
	return load{
		queued: len(s.queue), running: s.running, capacity: s.cfg.maxQueue, workers: s.cfg.workers,
		maxBatch: s.cfg.maxBatch, perJob: s.perJob, draining: s.draining, generations: len(s.gens),
	}
}

func (s *scheduler) statusLocked(g *generation) Status {
	t := g.task
	st := Status{
		ID: g.id, Status: g.state(), Params: g.params, CreatedAt: g.created,
		Cached: g.cached, Coalesced: g.coalesced,
		Links: map[string]any{
			"self":   "/v1/generations/" + g.id,
			"events": "/v1/generations/" + g.id + "/events",
			"result": "/v1/generations/" + g.id + "/result",
		},
	}
	if t.input != nil {
		st.Input = &InputStatus{Format: t.input.Format, Width: t.input.Width, Height: t.input.Height,
			SHA256: fmt.Sprintf("%x", t.input.Hash[:])}
		st.Warnings = append(st.Warnings, t.input.Warnings...)
	}
	if !t.started.IsZero() {
		started := t.started
		st.StartedAt = &started
	}
	switch st.Status {
	case StateQueued:
		for i, q := range s.queue {
			if q == t {
				st.QueuePosition = i + 1
				st.EstimatedWaitSeconds = s.estimateLocked(i + 1).Seconds()
				break
			}
		}
	case StateRunning:
		p := t.progress
		st.Progress = &p
	}
	failure := t.failure
	switch {
	case g.own != "":
		finished := g.finished
		st.FinishedAt = &finished
		failure = g.failure
	case t.state.terminal():
		finished := t.finished
		st.FinishedAt = &finished
	}
	if failure != nil && st.Status != StateSucceeded {
		st.Error = &StatusError{Type: failure.Type, Title: failure.Title, Status: failure.Status, Detail: failure.Detail}
	}
	if st.Status == StateSucceeded && t.summary != nil {
		rs := &ResultStatus{Vertices: t.summary.vertices, Faces: t.summary.faces, Formats: map[string]FormatStatus{}}
		for f, fs := range t.summary.formats {
			rs.Formats[f] = FormatStatus{
				URL: "/v1/generations/" + g.id + "/result?format=" + f, MediaType: mediaTypes[f],
				Bytes: fs.bytes, ETag: fs.etag,
			}
		}
		st.Result = rs
		for _, stg := range t.summary.stages {
			st.Stages = append(st.Stages, StageStatus{Stage: stg.Stage, Milliseconds: float64(stg.Duration.Microseconds()) / 1000})
		}
		st.Warnings = append(st.Warnings, t.summary.warnings...)
	}
	return st
}
