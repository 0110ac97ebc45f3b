package jobs

import (
	"context"
	"time"

	"github.com/hy3d/hy3d/results"
)

// The engine's side of a Broker. A gateway (RoleGateway, RoleAll) stores
// each job through the broker and mirrors its task (task.remote) from the
// records the broker reports; a worker (RoleWorker, RoleAll) takes jobs
// from the broker into its step loop (task.delivery) and settles them
// there. In RoleAll one process does both, and the mirror hears of the
// worker through the broker like any other gateway.

const (
	// recordTimeout bounds a record written in the background.
	recordTimeout = 10 * time.Second
	// settleTimeout bounds storing a job's outcome; past it the job stays
	// queued and runs again.
	settleTimeout = 30 * time.Second
	// recentRecords bounds the task records kept for mirrors not made yet.
	recentRecords = 1024
)

// submitDurable has the broker store the job (or find the task it joins,
// or its result) before the generation exists, then stores the generation.
func (e *Engine) submitDurable(ctx context.Context, sub Submission) (string, error) {
	e.mu.Lock()
	e.releaseLocked(sub.Ticket)
	if err := e.admissibleLocked(sub.Params.Priority); err != nil {
		e.mu.Unlock()
		return "", err
	}
	e.storing++
	e.mu.Unlock()
	now := time.Now()
	enq, err := e.broker.Enqueue(ctx, Spec{
		Key: sub.Key, ID: NewID()[:8], Model: sub.Model.Name, Fingerprint: sub.Model.Fingerprint,
		Params: sub.Params, Input: sub.Input, Image: sub.Image, Preprocess: sub.Preprocess,
		Enqueued: now, Deadline: now.Add(sub.Params.Timeout),
	})
	e.mu.Lock()
	e.storing--
	if err != nil {
		e.mu.Unlock()
		return "", &StorageError{Op: "storing the job", Err: err}
	}
	if enq.Result != nil {
		e.mu.Unlock()
		if err := e.store.Put(enq.Result); err != nil {
			e.log.Warn().Err(err).Msg("keeping a shared result on this machine")
		}
		e.obs.CacheLookup(results.TierDisk)
		e.mu.Lock()
		g := e.addCachedLocked(sub, enq.Result)
		e.saveLaterLocked(g)
		e.mu.Unlock()
		return g.id, nil
	}
	t := e.inflight[sub.Key]
	if t == nil || !t.remote || t.id != enq.Task.ID {
		t = e.mirrorLocked(enq.Task, sub.Model, sub.Params, sub.Input, sub.Preprocess)
	}
	g := e.attachLocked(t, sub, now)
	g.coalesced = !enq.Created
	rec := e.generationRecordLocked(g)
	e.mu.Unlock()
	if err := e.broker.SaveGeneration(ctx, rec); err != nil {
		e.Abandon(g.id)
		return "", &StorageError{Op: "storing the generation", Err: err}
	}
	e.obs.CacheLookup(results.TierMiss)
	if g.coalesced {
		e.obs.Coalesced()
	}
	e.log.Info().Str("job", t.id).Str("generation", g.id).Str("model", sub.Model.Name).
		Str("key", sub.Key.String()[:16]).Bool("coalesced", g.coalesced).Msg("job stored")
	return g.id, nil
}

// mirrorLocked makes the local mirror of a task the broker holds, and
// lists it in flight while it is unfinished.
func (e *Engine) mirrorLocked(rec TaskRecord, m *Model, p Params, in *Prepared, preprocess time.Duration) *task {
	t := &task{
		id: rec.ID, key: rec.Key, model: m, params: p, input: in, preprocess: preprocess,
		priority: priorityRank(p.Priority), state: rec.State, enqueued: rec.Enqueued, started: rec.Started,
		finished: rec.Finished, summary: rec.Summary, failure: rec.Failure,
		remote: true, revision: rec.Revision, changed: make(chan struct{}),
		// A mirror runs nothing: its context is the engine's.
		ctx: e.runCtx, cancel: func(error) {},
	}
	if t.state.Terminal() {
		t.input = t.input.described()
		return t
	}
	e.inflight[rec.Key] = t
	if later, ok := e.recent[rec.Key]; ok {
		delete(e.recent, rec.Key)
		if later.ID == rec.ID {
			e.applyLocked(t, later)
		}
	}
	return t
}

// generationRecordLocked is g as the broker stores it.
func (e *Engine) generationRecordLocked(g *generation) GenerationRecord {
	t := g.task
	r := GenerationRecord{
		ID: g.id, Key: t.key, Task: t.id, Params: g.params, Timeout: g.params.Timeout, Client: g.client,
		Created: g.created, Cached: g.cached, Coalesced: g.coalesced, Input: t.input.described(),
		Own: g.own, Failure: g.failure, Finished: g.finished,
	}
	if g.cached {
		r.Summary = t.summary
	}
	return r
}

// saveLaterLocked stores a generation born succeeded in the background:
// the request that made it is answered from the store without waiting for
// the broker.
func (e *Engine) saveLaterLocked(g *generation) {
	if e.broker == nil {
		return
	}
	rec := e.generationRecordLocked(g)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
		defer cancel()
		if err := e.broker.SaveGeneration(ctx, rec); err != nil {
			e.log.Warn().Err(err).Str("generation", rec.ID).Msg("storing a generation answered from the cache")
		}
	}()
}

// leaveLater records in the background that a generation left its task.
func (e *Engine) leaveLater(rec GenerationRecord) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
		defer cancel()
		if _, err := e.broker.Leave(ctx, rec); err != nil {
			e.log.Warn().Err(err).Str("generation", rec.ID).Msg("recording that a generation ended")
		}
	}()
}

// recall loads a generation this engine does not know from the broker's
// records (another gateway made it, or this one before a restart) and
// follows its task from then on.
func (e *Engine) recall(ctx context.Context, id string) (*generation, error) {
	grec, trec, err := e.broker.LoadGeneration(ctx, id)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if g := e.gens[id]; g != nil {
		return g, nil
	}
	m := e.modelLocked(grec.Params.Model)
	var t *task
	switch {
	case grec.Cached:
		t = &task{
			id: grec.Task, key: grec.Key, model: m, params: grec.Params, input: grec.Input,
			state: StateSucceeded, enqueued: grec.Created, started: grec.Created, finished: grec.Created,
			summary: grec.Summary, changed: make(chan struct{}), remote: true, ctx: e.runCtx, cancel: func(error) {},
		}
	case trec.ID != grec.Task:
		// The key's record now belongs to a later task: this one ended
		// without a result that is still kept.
		t = e.mirrorLocked(TaskRecord{
			ID: grec.Task, Key: grec.Key, State: StateFailed, Enqueued: grec.Created, Finished: grec.Created,
			Failure: &Failure{Kind: FailGenerator, Detail: "a later job for the same request replaced this one's record, so its outcome is no longer known; submit again"},
		}, m, grec.Params, grec.Input, 0)
	default:
		if f := e.inflight[grec.Key]; f != nil && f.remote && f.id == trec.ID {
			t = f
		} else {
			t = e.mirrorLocked(trec, m, grec.Params, grec.Input, 0)
		}
	}
	g := &generation{
		id: grec.ID, task: t, params: grec.Params, client: grec.Client, created: grec.Created,
		cached: grec.Cached, coalesced: grec.Coalesced, own: grec.Own, failure: grec.Failure, finished: grec.Finished,
	}
	g.params.Timeout = grec.Timeout
	e.gens[id] = g
	t.gens = append(t.gens, g)
	switch {
	case g.own != "":
		e.endedLocked(g, g.finished)
	case t.state.Terminal():
		e.endedLocked(g, t.finished)
	default:
		t.refs++
		e.armDeadlineLocked(g, grec.Timeout, max(time.Until(grec.Created.Add(grec.Timeout)), 0))
	}
	return g, nil
}

// modelLocked is the served model of that name, or a stand-in for one this
// engine does not serve (a record another gateway made).
func (e *Engine) modelLocked(name string) *Model {
	if m := e.cfg.model(name); m != nil {
		return m
	}
	return &Model{Name: name}
}

// observeTask applies a task's new record to its mirror.
func (e *Engine) observeTask(rec TaskRecord) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.inflight[rec.Key]
	if t == nil || !t.remote || t.id != rec.ID {
		if len(e.recent) >= recentRecords {
			clear(e.recent)
		}
		if old, ok := e.recent[rec.Key]; !ok || old.Revision < rec.Revision {
			e.recent[rec.Key] = rec
		}
		return
	}
	e.applyLocked(t, rec)
}

func (e *Engine) applyLocked(t *task, rec TaskRecord) {
	if rec.Revision <= t.revision || t.state.Terminal() {
		return
	}
	t.revision = rec.Revision
	switch {
	case rec.State == StateRunning:
		if t.state != StateRunning || rec.Started.After(t.started) {
			t.progress = Progress{} // a new attempt starts over
		}
		t.state, t.started = StateRunning, rec.Started
	case rec.State.Terminal():
		t.state, t.finished, t.summary, t.failure = rec.State, rec.Finished, rec.Summary, rec.Failure
		if t.started.IsZero() {
			t.started = rec.Started
		}
		e.endMirrorLocked(t)
	default:
		t.state = rec.State
	}
	t.notify()
}

// endMirrorLocked records the end of a mirrored task, as finish does for
// a task run here.
func (e *Engine) endMirrorLocked(t *task) {
	e.leaveInflightLocked(t)
	t.input = t.input.described()
	e.taskEndedLocked(t)
	if t.state == StateSucceeded {
		for _, g := range t.gens {
			if g.upload != (results.Key{}) {
				e.uploads.put(g.upload, uploadEntry{result: t.key, generation: g.id, input: t.input})
			}
		}
	}
	if e.cfg.Role == RoleGateway {
		// A worker counts the jobs it runs; a gateway alone counts those it
		// mirrored, so that its own metrics are not empty.
		started := t.started
		if started.IsZero() {
			started = t.finished
		}
		e.obs.Finished(string(t.state), t.params.Decode, started.Sub(t.enqueued), t.finished.Sub(started), t.finished)
	}
}

// observeProgress applies a running task's progress to its mirror.
func (e *Engine) observeProgress(key results.Key, p Progress) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.inflight[key]
	if t == nil || !t.remote || t.state.Terminal() {
		return
	}
	if t.state == StateQueued {
		// Progress can outrun the record that says the job started.
		t.state, t.started = StateRunning, time.Now()
	}
	t.progress = p
	t.notify()
}

// observeQueue tells the watchers of queued mirrors that their place in
// the queue changed.
func (e *Engine) observeQueue() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.inflight {
		if t.remote && t.state == StateQueued {
			t.notify()
		}
	}
}

// sharedResult fetches a result from the broker and keeps it on this
// machine too.
func (e *Engine) sharedResult(ctx context.Context, key results.Key) (*results.Result, error) {
	r, err := e.broker.Result(ctx, key)
	if err != nil {
		return nil, &StorageError{Op: "fetching the result", Err: err}
	}
	if r != nil {
		if err := e.store.Put(r); err != nil {
			e.log.Warn().Err(err).Msg("keeping a shared result on this machine")
		}
	}
	return r, nil
}

// takeRemote is take with a broker: up to n jobs of model m claimed from
// it, none once the drain has begun (the queue keeps them for another
// worker, or for this one after a restart).
func (e *Engine) takeRemote(m *Model, n int, wait bool) ([]*task, bool) {
	if n <= 0 {
		return nil, true
	}
	e.mu.Lock()
	handed := e.takeHandedLocked(m, n)
	stopping := e.draining || e.stopped
	if stopping && wait && len(handed) == 0 {
		// A job running elsewhere in this engine may still be handed here.
		for !e.stopped && e.running > 0 && len(e.handed[m.Name]) == 0 {
			e.work.Wait()
		}
		handed = e.takeHandedLocked(m, n)
	}
	if stopping || len(handed) > 0 {
		e.mu.Unlock()
		if stopping || len(handed) == n {
			return handed, len(handed) > 0 || !wait
		}
		return append(handed, e.takeDeliveries(e.takeCtx, m, n-len(handed), false)...), true
	}
	// A job handed to this loop while it waits on the broker wakes it.
	ctx, wake := context.WithCancel(e.takeCtx)
	e.wakeTake[m.Name] = wake
	e.mu.Unlock()
	taken := e.takeDeliveries(ctx, m, n, wait)
	e.mu.Lock()
	delete(e.wakeTake, m.Name)
	e.mu.Unlock()
	wake()
	return taken, true
}

// takeDeliveries claims up to n of m's queued jobs from the broker and
// mirrors them as running tasks; with wait it blocks until there is one or
// ctx ends.
func (e *Engine) takeDeliveries(ctx context.Context, m *Model, n int, wait bool) []*task {
	ds, err := e.broker.Take(ctx, m.Name, n, wait)
	if err != nil && ctx.Err() == nil {
		e.log.Warn().Err(err).Str("model", m.Name).Int("taken", len(ds)).Msg("taking jobs from the queue")
		if wait && len(ds) == 0 {
			// Nothing else to do until the queue answers again.
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	// Jobs claimed before an error are this worker's all the same: dropped
	// here, their heartbeats would hold them forever.
	now := time.Now()
	tasks := make([]*task, 0, len(ds))
	for _, d := range ds {
		spec := d.Spec()
		t := &task{
			id: spec.ID, key: spec.Key, model: m, params: spec.Params, input: d.Input(), preprocess: spec.Preprocess,
			priority: priorityRank(spec.Params.Priority), state: StateRunning, enqueued: spec.Enqueued, started: now,
			delivery: d, changed: make(chan struct{}),
		}
		t.ctx, t.cancel = context.WithCancelCause(e.runCtx)
		context.AfterFunc(d.Context(), func() { t.cancel(context.Cause(d.Context())) })
		tasks = append(tasks, t)
	}
	e.mu.Lock()
	e.running += len(tasks)
	e.mu.Unlock()
	// A worker that died after storing a result, before acknowledging its
	// job, left the result behind: the job needs no second run.
	fresh := tasks[:0]
	for _, t := range tasks {
		if r, _, _ := e.store.Get(t.ctx, t.key); r != nil {
			e.settle(t, Outcome{State: StateSucceeded, Started: now, Finished: now, Summary: summarize(r), Result: r}, false)
			continue
		}
		fresh = append(fresh, t)
	}
	return fresh
}

// finishDelivery is finish for a job taken from the broker: the result goes
// to the store, then the outcome to the broker, which acknowledges the job.
// A job cut short by the end of the drain goes back to the queue instead.
func (e *Engine) finishDelivery(t *task, out Output) {
	now := time.Now()
	o := Outcome{Started: t.started, Finished: now}
	var res *results.Result
	if out.Err == nil {
		res, out.Err = e.buildResult(t, out, now)
	}
	release := false
	switch {
	case out.Err == nil:
		if err := e.store.Put(res); err != nil {
			o.State, o.Failure = StateFailed, failureStorage(err)
			break
		}
		o.State, o.Summary, o.Result = StateSucceeded, summarize(res), res
		for _, st := range res.Stages {
			e.obs.Stage(st.Stage, st.Duration)
		}
	case e.runCtx.Err() != nil:
		release = true
	case t.ctx.Err() != nil:
		o.State, o.Failure = StateCancelled, failureCancelled()
	default:
		o.State, o.Failure = StateFailed, failureGenerator(out.Err)
	}
	e.settle(t, o, release)
	ev := e.jobLine(o.State, out.Err, res)
	status := string(o.State)
	if release {
		status = "released"
	}
	ev.Str("job", t.id).Str("model", t.model.Name).Str("status", status).
		Dur("queued", t.started.Sub(t.enqueued)).Dur("ran", now.Sub(t.started)).Msg("job finished")
}

// settle hands a taken job's outcome to the broker (or the job back to
// the queue) and counts it.
func (e *Engine) settle(t *task, o Outcome, release bool) {
	e.mu.Lock()
	e.running--
	if !release {
		e.ranLocked(o.Finished.Sub(t.started))
		e.obs.Finished(string(o.State), t.params.Decode, t.started.Sub(t.enqueued), o.Finished.Sub(t.started), o.Finished)
	}
	e.mu.Unlock()
	if release {
		t.delivery.Release()
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
		err := t.delivery.Finish(ctx, o)
		cancel()
		if err != nil {
			e.log.Error().Err(err).Str("job", t.id).Msg("storing the job's outcome failed; the job goes back to the queue")
		}
	}
	t.cancel(nil)
	e.mu.Lock()
	e.checkIdleLocked()
	e.work.Broadcast()
	e.mu.Unlock()
}
