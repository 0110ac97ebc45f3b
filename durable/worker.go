package durable

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hy3d/hy3d/jobs"
)

// A worker's side of the broker: taking jobs, keeping them alive, settling
// them.

// errReleased ends the context of a delivery handed back or settled.
var errReleased = errors.New("the job left this worker")

// fingerprintRetry is how soon a job this worker cannot run (another build
// computed its key) is offered again, to another worker.
const fingerprintRetry = 5 * time.Second

// Take implements jobs.Broker. Between two sampling steps (wait false) it
// asks NATS only when a job may have arrived since it last looked: a
// gateway's wake-up, or the poll.
func (b *Broker) Take(ctx context.Context, model string, n int, wait bool) ([]jobs.Delivery, error) {
	q := b.queues[model]
	if q == nil {
		return nil, fmt.Errorf("no queue for model %q", model)
	}
	for {
		if wait || q.dirty.Load() {
			q.dirty.Store(false)
			out, full, err := b.fetch(ctx, model, q, n)
			if full {
				q.dirty.Store(true) // more may be waiting
			}
			if err != nil || len(out) > 0 || !wait {
				return out, err
			}
		} else {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-q.wake:
		}
	}
}

// fetch takes up to n jobs, the most urgent priority first. full reports
// that n messages came, so more may be waiting.
func (b *Broker) fetch(ctx context.Context, model string, q *modelQueue, n int) (out []jobs.Delivery, full bool, err error) {
	got := 0
	for _, c := range q.consumers {
		if got >= n {
			break
		}
		batch, err := c.FetchNoWait(n - got)
		if err != nil {
			return out, false, fmt.Errorf("fetching jobs of %s: %w", model, err)
		}
		for msg := range batch.Messages() {
			got++
			if d := b.claim(ctx, model, msg); d != nil {
				out = append(out, d)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return out, false, fmt.Errorf("fetching jobs of %s: %w", model, err)
		}
	}
	return out, got >= n, nil
}

// claim makes a fetched job this worker's: the task's record says so
// (running, one more attempt), unless the task ended, was replaced, is
// past its deadline or has used its attempts, in which case the job
// leaves the queue here (with a record that says why).
func (b *Broker) claim(ctx context.Context, model string, msg jetstream.Msg) jobs.Delivery {
	spec, image, upload, err := decodeJob(msg.Data())
	if err != nil {
		b.log.Error().Err(err).Str("subject", msg.Subject()).Msg("dropping a job message hy3d cannot read")
		_ = msg.TermWithReason(err.Error())
		return nil
	}
	for _, m := range b.cfg.Models {
		if m.Name == model && m.Fingerprint != "" && spec.Fingerprint != m.Fingerprint {
			b.log.Warn().Str("job", spec.ID).Str("model", model).
				Msg("a job for another build of this model set: left to another worker")
			_ = msg.NakWithDelay(fingerprintRetry)
			return nil
		}
	}
	now := time.Now()
	var copyID uint64 // this message's sequence: which copy of the job it is
	if meta, err := msg.Metadata(); err == nil {
		copyID = meta.Sequence.Stream
	}
	verdict := ""
	rec, err := b.casTask(ctx, spec.Key, func(r *jobs.TaskRecord, exists bool) (bool, error) {
		verdict = ""
		switch {
		case exists && r.ID != spec.ID:
			verdict = "replaced by a later job"
			return false, nil
		case exists && r.State.Terminal():
			verdict = "already " + string(r.State)
			return false, nil
		case exists && r.State == jobs.StateRunning && r.Claim != 0 && r.Claim != copyID:
			// A gateway stored the job again (see Enqueue) and another copy
			// runs: this one would run it twice.
			verdict = "a second copy of a running job"
			return false, nil
		case !exists:
			*r = freshTask(spec) // its record expired while it waited
		}
		switch {
		case !r.Deadline.IsZero() && now.After(r.Deadline):
			r.State, r.Finished, r.Failure = jobs.StateFailed, now, jobs.FailureDeadline(spec.Params.Timeout)
			verdict = "past its deadline"
		case r.Attempts >= b.cfg.MaxAttempts:
			r.State, r.Finished, r.Failure = jobs.StateFailed, now, jobs.FailureAttempts(r.Attempts)
			verdict = "attempts exhausted"
		default:
			r.State, r.Started, r.Worker, r.Claim = jobs.StateRunning, now, b.cfg.Name, copyID
			r.Attempts++
		}
		return true, nil
	})
	if err != nil {
		b.log.Warn().Err(err).Str("job", spec.ID).Msg("claiming a job; it stays queued")
		_ = msg.NakWithDelay(time.Second)
		return nil
	}
	if verdict != "" {
		b.log.Info().Str("job", spec.ID).Str("why", verdict).Msg("job leaves the queue without running")
		_ = msg.Ack()
		return nil
	}
	in, err := b.input(ctx, spec, image, upload)
	if err != nil {
		b.log.Error().Err(err).Str("job", spec.ID).Msg("job fails before running")
		d := b.newDelivery(msg, spec, nil)
		if ferr := d.Finish(ctx, jobs.Outcome{State: jobs.StateFailed, Started: now, Finished: time.Now(),
			Failure: &jobs.Failure{Kind: jobs.FailGenerator, Detail: err.Error()}}); ferr != nil {
			b.log.Error().Err(ferr).Str("job", spec.ID).Msg("recording the failure")
		}
		return nil
	}
	b.log.Info().Str("job", spec.ID).Str("model", model).Int("attempt", rec.Attempts).Msg("job taken")
	return b.newDelivery(msg, spec, in)
}

// input is the job's preprocessed picture: the gateway's own when it is in
// this process, else the upload preprocessed again, which must give the
// same pixels the job's key was computed from.
func (b *Broker) input(ctx context.Context, spec jobs.Spec, image []byte, upload string) (*jobs.Prepared, error) {
	b.mu.Lock()
	in := b.handoff[spec.ID]
	delete(b.handoff, spec.ID)
	b.mu.Unlock()
	if in != nil {
		return in, nil
	}
	if upload != "" {
		var err error
		if image, err = retried(ctx, func(ctx context.Context) ([]byte, error) { return b.uploads.GetBytes(ctx, upload) }); err != nil {
			return nil, fmt.Errorf("the job's upload could not be read: %w", err)
		}
	}
	if b.cfg.Prepare == nil {
		return nil, errors.New("this worker cannot preprocess pictures")
	}
	in, err := b.cfg.Prepare(ctx, spec.Model, image)
	if err != nil {
		return nil, fmt.Errorf("preprocessing the picture again on worker %s: %w", b.cfg.Name, err)
	}
	if spec.Input != nil && in.Hash != spec.Input.Hash {
		return nil, fmt.Errorf("worker %s preprocessed the picture into other pixels than the gateway did (another hy3d build or model set)", b.cfg.Name)
	}
	return in, nil
}

func uploadName(image []byte) string {
	sum := sha256.Sum256(image)
	return hex.EncodeToString(sum[:])
}

// delivery is a job a worker of this process holds.
type delivery struct {
	b      *Broker
	msg    jetstream.Msg
	spec   jobs.Spec
	input  *jobs.Prepared
	ctx    context.Context
	cancel context.CancelCauseFunc
	once   sync.Once
}

func (b *Broker) newDelivery(msg jetstream.Msg, spec jobs.Spec, in *jobs.Prepared) *delivery {
	d := &delivery{b: b, msg: msg, spec: spec, input: in}
	d.ctx, d.cancel = context.WithCancelCause(context.Background())
	b.mu.Lock()
	b.held[spec.Key] = d
	b.mu.Unlock()
	return d
}

func (d *delivery) Spec() jobs.Spec          { return d.spec }
func (d *delivery) Input() *jobs.Prepared    { return d.input }
func (d *delivery) Context() context.Context { return d.ctx }

// Progress implements jobs.Delivery: a core message, lost when nobody
// listens.
func (d *delivery) Progress(p jobs.Progress) {
	b, _ := json.Marshal(wireProgress{ID: d.spec.ID, Progress: p})
	_ = d.b.nc.Publish(progressSubject(d.spec.Key), b)
}

// Finish implements jobs.Delivery: the shared result, then the record,
// then the acknowledgement, each only once the one before is stored. When
// one fails the job goes back to the queue, to run again (a worker that
// finds the result already stored settles it at once).
func (d *delivery) Finish(ctx context.Context, o jobs.Outcome) error {
	err := d.finish(ctx, o)
	if err != nil {
		_ = d.msg.NakWithDelay(time.Second)
	}
	d.done()
	return err
}

func (d *delivery) finish(ctx context.Context, o jobs.Outcome) error {
	if o.Result != nil {
		if err := d.b.putResult(ctx, o.Result); err != nil {
			return err
		}
	}
	if _, err := d.b.casTask(ctx, d.spec.Key, func(r *jobs.TaskRecord, exists bool) (bool, error) {
		if !exists || r.ID != d.spec.ID || r.State.Terminal() {
			return false, nil
		}
		r.State, r.Started, r.Finished, r.Summary, r.Failure = o.State, o.Started, o.Finished, o.Summary, o.Failure
		r.Worker = d.b.cfg.Name
		return true, nil
	}); err != nil {
		return err
	}
	if _, err := retried(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, d.msg.DoubleAck(ctx) }); err != nil {
		return fmt.Errorf("acknowledging job %s: %w", d.spec.ID, err)
	}
	return nil
}

// Release implements jobs.Delivery: the record says queued again (a
// hand-back is not an attempt that failed) and the message is offered to
// the next worker at once.
func (d *delivery) Release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := d.b.casTask(ctx, d.spec.Key, func(r *jobs.TaskRecord, exists bool) (bool, error) {
		if !exists || r.ID != d.spec.ID || r.State != jobs.StateRunning || r.Worker != d.b.cfg.Name {
			return false, nil
		}
		r.State, r.Worker, r.Started, r.Claim = jobs.StateQueued, "", time.Time{}, 0
		r.Attempts = max(r.Attempts-1, 0)
		return true, nil
	}); err != nil {
		d.b.log.Warn().Err(err).Str("job", d.spec.ID).Msg("recording a job handed back")
	}
	_ = d.msg.Nak()
	d.done()
}

func (d *delivery) done() {
	d.once.Do(func() {
		d.b.mu.Lock()
		if d.b.held[d.spec.Key] == d {
			delete(d.b.held, d.spec.Key)
		}
		d.b.mu.Unlock()
		d.cancel(errReleased)
	})
}

// heartbeatLoop tells NATS, every third of AckWait, that the jobs held
// here are still being worked on.
func (b *Broker) heartbeatLoop() {
	tick := time.NewTicker(b.cfg.AckWait / 3)
	defer tick.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-tick.C:
		}
		b.mu.Lock()
		held := make([]*delivery, 0, len(b.held))
		for _, d := range b.held {
			held = append(held, d)
		}
		b.mu.Unlock()
		for _, d := range held {
			if err := d.msg.InProgress(); err != nil {
				b.log.Warn().Err(err).Str("job", d.spec.ID).Msg("heartbeat")
			}
		}
	}
}

var _ jobs.Delivery = (*delivery)(nil)
