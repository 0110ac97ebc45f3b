package jobs

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hy3d/hy3d/results"
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
				e.finishJob(a)
			}
		}()
	}
	defer func() {
		close(done)
		finishers.Wait()
	}()

	costs := newStepCosts()
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
		active = append(active, e.start(arrivals)...)
		active = e.dropCancelled(active)
		if len(active) == 0 {
			continue
		}
		began := e.now()
		if !e.step(active) {
			active = nil
			continue
		}
		costs.observe(len(active), e.now().Sub(began))
		active = slices.DeleteFunc(active, func(a sampling) bool {
			if a.s.Done() {
				done <- a
				return true
			}
			return false
		})
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
		active := e.start(batch)
		var sampled []sampling
		for len(active) > 0 {
			active = e.dropCancelled(active)
			if len(active) == 0 || !e.step(active) {
				break
			}
			active = slices.DeleteFunc(active, func(a sampling) bool {
				if a.s.Done() {
					sampled = append(sampled, a)
					return true
				}
				return false
			})
		}
		for _, a := range sampled {
			e.finishJob(a)
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
	for wait && !e.stopped && !e.hasQueuedLocked(m) {
		e.work.Wait()
	}
	if wait && e.stopped && !e.hasQueuedLocked(m) {
		return nil, false
	}
	if n <= 0 {
		return nil, true
	}
	var out []*task
	rest := e.queue[:0]
	first := -1
	for i, t := range e.queue {
		if len(out) < n && t.model.Name == m.Name {
			out = append(out, t)
			if first < 0 {
				first = i
			}
		} else {
			rest = append(rest, t)
		}
	}
	if len(out) == 0 {
		return nil, true
	}
	clear(e.queue[len(rest):])
	e.queue = rest
	e.positionsChangedLocked(first)
	now := time.Now()
	for _, t := range out {
		t.state, t.started = StateRunning, now
		t.notify()
	}
	e.running += len(out)
	return out, true
}

func (e *Engine) hasQueuedLocked(m *Model) bool {
	return slices.ContainsFunc(e.queue, func(t *task) bool { return t.model.Name == m.Name })
}

// start hands newly taken jobs to the generator in one call (one
// conditioner batch) and returns the ones that may sample.
func (e *Engine) start(tasks []*task) []sampling {
	if len(tasks) == 0 {
		return nil
	}
	jobs := make([]Job, len(tasks))
	for i, t := range tasks {
		jobs[i] = Job{
			ID: t.id, Context: t.ctx, Input: t.input, Params: t.params, Formats: results.Formats,
			Progress: func(p Progress) { e.progress(t, p) },
		}
	}
	var states []Sampling
	var errs []error
	err := e.guard("start", func() {
		states, errs = e.gen.Start(e.runCtx, jobs)
		if len(states) != len(jobs) || len(errs) != len(jobs) {
			panic(fmt.Sprintf("generator started %d states and %d errors for %d jobs", len(states), len(errs), len(jobs)))
		}
	})
	e.obs.Batch("condition", len(jobs))
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
func (e *Engine) step(active []sampling) bool {
	states := make([]Sampling, len(active))
	for i, a := range active {
		states[i] = a.s
	}
	var err error
	if gerr := e.guard("step", func() { err = e.gen.Step(e.runCtx, states) }); gerr != nil {
		err = gerr
	}
	e.obs.Batch("dit", len(states))
	if err == nil {
		return true
	}
	for _, a := range active {
		e.finish(a.t, Output{Err: fmt.Errorf("sample: %w", err)})
	}
	return false
}

// finishJob runs the stages after sampling for one job and records its end.
func (e *Engine) finishJob(a sampling) {
	var out Output
	if err := e.guard("finish", func() { out = e.gen.Finish(e.runCtx, a.job, a.s) }); err != nil {
		out = Output{Err: err}
	}
	e.obs.Batch("decode", 1)
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
