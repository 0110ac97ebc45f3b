package jobs

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// sampling is one job inside the step loop.
type sampling struct {
	t   *task
	job Job
	s   Sampling
}

// BatchLimit is how many of model m's jobs sample together: the smaller of
// the engines' own limit and Config.MaxBatch.
func (e *Engine) BatchLimit(m *Model) int {
	if m.MaxBatch > 0 && m.MaxBatch < e.cfg.MaxBatch {
		return m.MaxBatch
	}
	return e.cfg.MaxBatch
}

// loop is model m's step loop, under the engine's policy, until Drain.
func (e *Engine) loop(m *Model) {
	if e.cfg.Policy == PolicyDispatch {
		e.dispatchLoop(m)
		return
	}
	e.continuousLoop(m)
}

// continuousLoop runs the DiT one step at a time over every job of m that
// is sampling. Between steps, queued jobs join as far as the batch has room
// (in queue order, so by priority) — under PolicyAdaptive only as far as
// the measured step costs say batching pays — conditioned together;
// cancelled jobs leave; jobs whose sampling is done go to the finishers,
// which run the stages after sampling while the loop steps on.
func (e *Engine) continuousLoop(m *Model) {
	limit := e.BatchLimit(m)
	done := make(chan sampling, limit)
	var finishers sync.WaitGroup
	for range e.cfg.Finishers {
		finishers.Add(1)
		go func() {
			defer finishers.Done()
			for a := range done {
				e.finishJob(m, a)
			}
		}()
	}
	defer func() {
		close(done)
		finishers.Wait()
	}()

	costs := newStepCosts()
	finished := func(a sampling) bool {
		if a.s.Done() {
			done <- a
			return true
		}
		return false
	}
	var active []sampling
	for {
		room := limit - len(active)
		if e.cfg.Policy == PolicyAdaptive {
			room = costs.room(len(active), limit)
		}
		arrivals, ok := e.take(m, room, len(active) == 0)
		if !ok {
			return
		}
		// A job whose start left nothing to sample goes straight on.
		active = slices.DeleteFunc(append(active, e.start(m, arrivals)...), finished)
		active = e.dropCancelled(active)
		if len(active) == 0 {
			continue
		}
		began := e.now()
		if !e.step(m, active) {
			active = nil
			continue
		}
		costs.observe(len(active), e.now().Sub(began))
		active = slices.DeleteFunc(active, finished)
	}
}

// dispatchLoop takes up to a batch of m's queued jobs, samples them
// together to the end, runs the stages after sampling one job after
// another, and only then takes the next batch: batching at dispatch, as a
// baseline for the continuous loop.
func (e *Engine) dispatchLoop(m *Model) {
	limit := e.BatchLimit(m)
	for {
		batch, ok := e.take(m, limit, true)
		if !ok {
			return
		}
		var sampled []sampling
		finished := func(a sampling) bool {
			if a.s.Done() {
				sampled = append(sampled, a)
				return true
			}
			return false
		}
		active := slices.DeleteFunc(e.start(m, batch), finished)
		for len(active) > 0 {
			active = e.dropCancelled(active)
			if len(active) == 0 || !e.step(m, active) {
				break
			}
			active = slices.DeleteFunc(active, finished)
		}
		for _, a := range sampled {
			e.finishJob(m, a)
		}
	}
}

// take moves up to n queued jobs of model m, in queue order, into the
// running state. With wait it blocks until there is at least one; ok is
// false when the loop should stop (draining is over, or aborted, and
// nothing of m is left).
func (e *Engine) take(m *Model, n int, wait bool) (_ []*task, ok bool) {
	if e.broker != nil {
		return e.takeRemote(m, n, wait)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for wait && !e.stopped && !e.hasQueuedLocked(m) && len(e.handed[m.Name]) == 0 {
		e.work.Wait()
	}
	if wait && e.stopped && !e.hasQueuedLocked(m) && len(e.handed[m.Name]) == 0 {
		return nil, false
	}
	if n <= 0 {
		return nil, true
	}
	out := e.takeHandedLocked(m, n)
	n -= len(out)
	rest := e.queue[:0]
	first := -1
	taken := 0
	for i, t := range e.queue {
		if taken < n && t.model.Name == m.Name {
			out, taken = append(out, t), taken+1
			if first < 0 {
				first = i
			}
		} else {
			rest = append(rest, t)
		}
	}
	if taken == 0 {
		return out, true
	}
	clear(e.queue[len(rest):])
	e.queue = rest
	e.positionsChangedLocked(first)
	now := time.Now()
	for _, t := range out[len(out)-taken:] {
		t.state, t.started = StateRunning, now
		t.notify()
	}
	e.running += taken
	return out, true
}

// takeHandedLocked takes up to n of the jobs handed on to m's loop, in the
// order they were handed.
func (e *Engine) takeHandedLocked(m *Model, n int) []*task {
	h := e.handed[m.Name]
	k := min(n, len(h))
	if k <= 0 {
		return nil
	}
	out := slices.Clone(h[:k])
	clear(h[:k])
	e.handed[m.Name] = h[k:]
	e.work.Broadcast() // a finisher may wait for room to hand a job on
	return out
}

// handOn passes a running job on from model from's finisher to the step
// loop of the model its generator named, keeping what it reported so far
// for its result. While that other loop already has a batch of handed jobs
// waiting, the finisher waits: a job waiting for its next phase holds
// memory (a prepared painting), so the slower loop's pace throttles the
// faster one instead of its backlog growing. A loop's own handoffs never
// wait (its finishers would wait for the loop that waits to give them
// work), and need not: it takes queued jobs only once it has taken every
// handed one. During a shutdown past the drain timeout the job ends
// instead, as every running job does.
func (e *Engine) handOn(from *Model, t *task, out Output) {
	next := e.cfg.model(out.Handoff.Model)
	e.mu.Lock()
	for next != nil && next != from && len(e.handed[next.Name]) >= e.BatchLimit(next) && !e.stopped && e.runCtx.Err() == nil {
		e.work.Wait()
	}
	if next == nil || e.stopped || e.runCtx.Err() != nil {
		e.mu.Unlock()
		if next == nil {
			out = Output{Err: fmt.Errorf("handed on to model %q, which this engine does not run", out.Handoff.Model)}
		} else {
			out = Output{Err: context.Cause(e.runCtx)}
		}
		e.finish(t, out)
		return
	}
	t.carried.Stages = append(t.carried.Stages, out.Stages...)
	t.carried.Warnings = append(t.carried.Warnings, out.Warnings...)
	t.handoff = out.Handoff.State
	e.handed[next.Name] = append(e.handed[next.Name], t)
	if wake := e.wakeTake[next.Name]; wake != nil {
		wake()
	}
	e.work.Broadcast()
	e.mu.Unlock()
}

func (e *Engine) hasQueuedLocked(m *Model) bool {
	return slices.ContainsFunc(e.queue, func(t *task) bool { return t.model.Name == m.Name })
}

// start hands newly taken jobs to the generator in one call (one
// conditioner batch) and returns the ones that may sample.
func (e *Engine) start(m *Model, tasks []*task) []sampling {
	if len(tasks) == 0 {
		return nil
	}
	jobs := make([]Job, len(tasks))
	e.mu.Lock()
	for i, t := range tasks {
		jobs[i] = Job{
			ID: t.id, Context: t.ctx, Input: t.input, Params: t.params, Formats: t.params.Formats(),
			Progress: func(p Progress) { e.progress(t, p) }, Handoff: t.handoff,
		}
		t.handoff = nil
	}
	e.mu.Unlock()
	var states []Sampling
	var errs []error
	err := e.guard("start", func() {
		states, errs = e.gen.Start(e.runCtx, jobs)
		if len(states) != len(jobs) || len(errs) != len(jobs) {
			panic(fmt.Sprintf("generator started %d states and %d errors for %d jobs", len(states), len(errs), len(jobs)))
		}
	})
	startGraph, _, _ := m.graphs()
	e.obs.Batch(startGraph, len(jobs))
	var out []sampling
	for i, t := range tasks {
		switch {
		case err != nil:
			e.finish(t, Output{Err: err})
		case errs[i] != nil:
			e.finish(t, Output{Err: errs[i]})
		default:
			out = append(out, sampling{t: t, job: jobs[i], s: states[i]})
		}
	}
	return out
}

// dropCancelled ends the jobs whose context is done (cancelled, past their
// deadline, abandoned) and returns the others.
func (e *Engine) dropCancelled(active []sampling) []sampling {
	return slices.DeleteFunc(active, func(a sampling) bool {
		if a.t.ctx.Err() == nil {
			return false
		}
		e.finish(a.t, Output{Err: context.Cause(a.t.ctx)})
		return true
	})
}

// step advances every active job by one sampling step; on failure it ends
// them all and reports false.
func (e *Engine) step(m *Model, active []sampling) bool {
	states := make([]Sampling, len(active))
	for i, a := range active {
		states[i] = a.s
	}
	var err error
	if gerr := e.guard("step", func() { err = e.gen.Step(e.runCtx, states) }); gerr != nil {
		err = gerr
	}
	_, stepGraph, _ := m.graphs()
	e.obs.Batch(stepGraph, len(states))
	if err == nil {
		return true
	}
	for _, a := range active {
		e.finish(a.t, Output{Err: fmt.Errorf("sample: %w", err)})
	}
	return false
}

// finishJob runs the stages after sampling for one job and records its
// end, or hands it on to the next model's loop.
func (e *Engine) finishJob(m *Model, a sampling) {
	var out Output
	if err := e.guard("finish", func() { out = e.gen.Finish(e.runCtx, a.job, a.s) }); err != nil {
		out = Output{Err: err}
	}
	_, _, finishGraph := m.graphs()
	e.obs.Batch(finishGraph, 1)
	if out.Err == nil && out.Handoff != nil {
		e.handOn(m, a.t, out)
		return
	}
	e.finish(a.t, out)
}

// guard runs a generator call and turns a panic into an error: a bad job
// must not take the server down, nor leave its batch running forever.
func (e *Engine) guard(call string, f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e.log.Error().Interface("panic", r).Str("call", call).Msg("generator panicked")
			err = fmt.Errorf("generator panicked: %v", r)
		}
	}()
	f()
	return nil
}
