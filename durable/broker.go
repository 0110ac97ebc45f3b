// Package durable keeps hy3d's accepted jobs, and the records of its
// generations, in NATS JetStream, so that no accepted job is lost when a
// process dies and any number of gateways and GPU workers share one
// queue. Broker implements jobs.Broker: jobs are a work-queue stream
// (subjects hy3d.jobs.<model>.<priority>, one durable pull consumer per
// model and priority, acknowledged only once the result is stored, kept
// alive by in-progress heartbeats, redelivered when a worker dies, failed
// with a reason after too many attempts); task and generation records are
// key-value buckets (a create decides who runs an identical job); running
// jobs publish progress on core subjects; results travel through an object
// store when machines share them, and large uploads through another.
// StartNode runs the NATS server itself, in-process: the embedded server
// of a single machine (no listener, in-process connection) or one node of
// a cluster (hy3d nats).
package durable

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/results"
)

// Names of what the broker keeps in NATS.
const (
	streamName       = "HY3D_JOBS"
	tasksBucket      = "hy3d_tasks"
	generationBucket = "hy3d_generations"
	resultsBucket    = "hy3d_results"
	uploadsBucket    = "hy3d_uploads"
	jobSubjects      = "hy3d.jobs.>"
)

// Priorities in the order a worker takes them.
var priorities = []string{jobs.PriorityHigh, jobs.PriorityNormal, jobs.PriorityLow}

// Model is one model set a broker queues jobs for.
type Model struct {
	Name        string
	Fingerprint string // a worker runs only jobs computed for the same fingerprint
}

// Config configures a Broker. Zero values take the defaults noted.
type Config struct {
	Conn   *nats.Conn
	Name   string  // this process in task records (the worker that ran a job)
	Models []Model // the models whose queues this process uses
	// Replicas of every stream and bucket: 1 on one server, 3 on a
	// cluster of three or more. 0 asks for 3 and settles for 1 when the
	// server is not clustered.
	Replicas int
	// AckWait is how long a worker may go silent before its job goes to
	// another; heartbeats come every third of it. Default 30 s.
	AckWait time.Duration
	// MaxAttempts is how many times workers may take one job. Default 3.
	MaxAttempts int
	// SharedResults stores every result in an object store too, for
	// gateways on other machines. Off on a single machine.
	SharedResults bool
	// Prepare preprocesses an upload again on a worker that did not
	// receive the gateway's preprocessed picture.
	Prepare func(ctx context.Context, model string, image []byte) (*jobs.Prepared, error)
	// Retain is how long a generation's record is kept after its last
	// change. Default 90 min.
	Retain time.Duration
	// ResultsTTL is how long a shared result stays in the object store.
	// Default 24 h.
	ResultsTTL time.Duration
	// PollInterval is how often the queue's depth is read. Default 500 ms.
	PollInterval time.Duration
	// QueueBytes bounds the job stream; past it new jobs are refused while
	// the records of the jobs already accepted still have room. 0: no
	// bound of its own.
	QueueBytes int64
	// Reset redelivers at once the jobs a previous process held and never
	// acknowledged. Only for a process that is the queue's sole user (the
	// embedded server, whose data directory it holds locked).
	Reset  bool
	Logger zerolog.Logger
}

func (c *Config) setDefaults() {
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 3
	}
	if c.Retain <= 0 {
		c.Retain = 90 * time.Minute
	}
	if c.ResultsTTL <= 0 {
		c.ResultsTTL = 24 * time.Hour
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 500 * time.Millisecond
	}
}

// taskTTL is how long a task's record outlives its last change: far
// beyond any job's deadline, so a record never leaves before its job.
const taskTTL = 24 * time.Hour

// casAttempts bounds the retries of a compare-and-set that others keep
// winning.
const casAttempts = 20

// Broker is the NATS JetStream implementation of jobs.Broker.
type Broker struct {
	cfg     Config
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	tasks   jetstream.KeyValue
	gens    jetstream.KeyValue
	uploads jetstream.ObjectStore
	results jetstream.ObjectStore // nil unless SharedResults
	workers jetstream.KeyValue
	queues  map[string]*modelQueue
	log     zerolog.Logger
	inline  int // uploads up to this size travel in the job message

	ctx    context.Context // the background goroutines'; ended by Close
	stop   context.CancelFunc
	wg     sync.WaitGroup
	subs   []*nats.Subscription
	listen sync.Once

	mu       sync.Mutex
	listener jobs.Listener
	handoff  map[string]*jobs.Prepared // task id → the gateway's preprocessed picture, for a worker of this process
	queued   map[results.Key]queuedJob // jobs this process stored, while queued
	held     map[results.Key]*delivery // jobs this process's workers run
	depth    atomic.Int64              // queued jobs as last polled
	stored   atomic.Int64              // jobs this process stored since the last poll
}

// modelQueue is one model's consumers, most urgent first.
type modelQueue struct {
	token     string
	consumers []jetstream.Consumer
	pending   []uint64 // per priority: undelivered, as last polled
	delivered []uint64 // per priority: the stream sequence last delivered
	dirty     atomic.Bool
	wake      chan struct{}
}

type queuedJob struct {
	model    string
	priority int // index into priorities
	seq      uint64
}

// Open creates (or updates) the stream, the buckets and the consumers of
// the configured models, and starts the broker's background work.
func Open(ctx context.Context, cfg Config) (*Broker, error) {
	cfg.setDefaults()
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b := &Broker{
		cfg: cfg, nc: cfg.Conn, js: js, queues: map[string]*modelQueue{}, log: cfg.Logger,
		handoff: map[string]*jobs.Prepared{}, queued: map[results.Key]queuedJob{}, held: map[results.Key]*delivery{},
	}
	b.inline = min(1<<20, int(cfg.Conn.MaxPayload())-64<<10)
	if err := b.declare(ctx); err != nil {
		return nil, err
	}
	if cfg.Reset {
		if err := b.reconcile(ctx); err != nil {
			return nil, err
		}
	}
	b.ctx, b.stop = context.WithCancel(context.Background())
	if err := b.subscribe(); err != nil {
		b.Close()
		return nil, err
	}
	b.poll(ctx)
	b.goBackground(b.pollLoop)
	b.goBackground(b.heartbeatLoop)
	return b, nil
}

// declareTimeout bounds how long Open waits for a cluster that is still
// electing its leaders.
const (
	declareTimeout = 60 * time.Second
	declareAttempt = 5 * time.Second
)

// declare creates (or updates) the stream and the buckets, waiting while
// the cluster is not ready yet, and settles the number of replicas.
func (b *Broker) declare(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, declareTimeout)
	defer cancel()
	auto := b.cfg.Replicas == 0
	if auto {
		b.cfg.Replicas = 3
	}
	for {
		// Each attempt on its own clock: a cluster without a leader does
		// not answer at all.
		actx, acancel := context.WithTimeout(ctx, declareAttempt)
		err := b.declareOnce(actx)
		acancel()
		var api *jetstream.APIError
		switch {
		case err == nil:
			return nil
		case auto && b.cfg.Replicas > 1 && errors.As(err, &api) &&
			(api.ErrorCode == jsErrReplicasNotSupported || api.ErrorCode == jsErrInsufficientResources):
			b.log.Info().Str("reason", api.Description).Msg("NATS is not a cluster of three: one copy of the queue")
			b.cfg.Replicas = 1
			continue
		case errors.As(err, &api) && api.ErrorCode == jsErrClusterNotAvailable,
			errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil, errors.Is(err, jetstream.ErrJetStreamNotEnabled),
			errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrTimeout):
			b.log.Info().Err(err).Msg("waiting for NATS JetStream")
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("NATS JetStream not ready within %s: %w", declareTimeout, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// JetStream API error codes the broker tells apart.
const (
	jsErrClusterNotAvailable   = 10008
	jsErrInsufficientResources = 10023
	jsErrReplicasNotSupported  = 10074
)

func (b *Broker) declareOnce(ctx context.Context) error {
	cfg := b.cfg
	var err error
	if b.stream, err = b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: streamName, Description: "hy3d jobs waiting or running", Subjects: []string{jobSubjects},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
		Duplicates: 2 * time.Minute, MaxBytes: cfg.QueueBytes, Discard: jetstream.DiscardNew,
	}); err != nil {
		return fmt.Errorf("job stream: %w", err)
	}
	js := b.js
	if b.tasks, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: tasksBucket, Description: "hy3d tasks by result key", History: 1, TTL: taskTTL,
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	}); err != nil {
		return fmt.Errorf("task records: %w", err)
	}
	if b.gens, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: generationBucket, Description: "hy3d generations by id", History: 1, TTL: cfg.Retain,
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	}); err != nil {
		return fmt.Errorf("generation records: %w", err)
	}
	if b.uploads, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: uploadsBucket, Description: "hy3d uploads too large for a job message", TTL: taskTTL,
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	}); err != nil {
		return fmt.Errorf("upload store: %w", err)
	}
	if cfg.SharedResults {
		if b.results, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: resultsBucket, Description: "hy3d results shared by every machine", TTL: cfg.ResultsTTL,
			Storage: jetstream.FileStorage, Replicas: cfg.Replicas, Compression: true,
		}); err != nil {
			return fmt.Errorf("result store: %w", err)
		}
	}
	if b.workers, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: workersBucket, Description: "hy3d workers' last reports", History: 1, TTL: workerTTL,
		Storage: jetstream.MemoryStorage, Replicas: cfg.Replicas,
	}); err != nil {
		return fmt.Errorf("worker reports: %w", err)
	}
	for _, m := range cfg.Models {
		q, err := b.openQueue(ctx, m.Name)
		if err != nil {
			return err
		}
		b.queues[m.Name] = q
	}
	return nil
}

// Replicas is the number of copies the cluster keeps of the queue.
func (b *Broker) Replicas() int { return b.cfg.Replicas }

// openQueue creates model's consumers; with Reset it first removes those
// a dead process left holding jobs, so those jobs come back at once.
func (b *Broker) openQueue(ctx context.Context, model string) (*modelQueue, error) {
	q := &modelQueue{token: subjectToken(model), wake: make(chan struct{}, 1),
		pending: make([]uint64, len(priorities)), delivered: make([]uint64, len(priorities))}
	q.dirty.Store(true)
	for _, p := range priorities {
		name := "jobs_" + q.token + "_" + p
		if b.cfg.Reset {
			if c, err := b.stream.Consumer(ctx, name); err == nil {
				if info, err := c.Info(ctx); err == nil && info.NumAckPending > 0 {
					b.log.Warn().Str("consumer", name).Int("jobs", info.NumAckPending).
						Msg("jobs a previous process took and never finished go back to the queue")
					if err := b.stream.DeleteConsumer(ctx, name); err != nil {
						return nil, fmt.Errorf("resetting %s: %w", name, err)
					}
				}
			}
		}
		c, err := b.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable: name, Description: "hy3d workers of " + model + ", " + p + " priority",
			FilterSubject: jobSubject(q.token, p), AckPolicy: jetstream.AckExplicitPolicy, AckWait: b.cfg.AckWait,
			MaxDeliver: -1, MaxAckPending: -1,
		})
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", name, err)
		}
		q.consumers = append(q.consumers, c)
	}
	return q, nil
}

func jobSubject(token, priority string) string { return "hy3d.jobs." + token + "." + priority }
func wakeSubject(token string) string          { return "hy3d.wake." + token }
func progressSubject(k results.Key) string     { return "hy3d.progress." + k.String() }
func cancelSubject(k results.Key) string       { return "hy3d.cancel." + k.String() }

// subjectToken makes a model name safe as one subject token and in a
// consumer name.
func subjectToken(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, name)
}

func (b *Broker) goBackground(f func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
}

// Close stops the broker's background work; the connection stays the
// caller's.
func (b *Broker) Close() {
	for _, s := range b.subs {
		_ = s.Unsubscribe()
	}
	b.stop()
	b.wg.Wait()
}

// subscribe listens for workers' wake-ups and cancellations.
func (b *Broker) subscribe() error {
	for model, q := range b.queues {
		q := q
		s, err := b.nc.Subscribe(wakeSubject(q.token), func(*nats.Msg) { q.nudge() })
		if err != nil {
			return fmt.Errorf("wake-ups of %s: %w", model, err)
		}
		b.subs = append(b.subs, s)
	}
	s, err := b.nc.Subscribe("hy3d.cancel.*", func(m *nats.Msg) {
		key, err := parseKey(strings.TrimPrefix(m.Subject, "hy3d.cancel."))
		if err != nil {
			return
		}
		b.mu.Lock()
		d := b.held[key]
		b.mu.Unlock()
		if d != nil {
			d.cancel(jobs.ErrAbandoned)
		}
	})
	if err != nil {
		return fmt.Errorf("cancellations: %w", err)
	}
	b.subs = append(b.subs, s)
	return nil
}

func (q *modelQueue) nudge() {
	q.dirty.Store(true)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Listen implements jobs.Broker: task records from a watch of the tasks
// bucket, progress from the progress subjects.
func (b *Broker) Listen(l jobs.Listener) {
	b.listen.Do(func() {
		b.mu.Lock()
		b.listener = l
		b.mu.Unlock()
		s, err := b.nc.Subscribe("hy3d.progress.*", func(m *nats.Msg) {
			key, err := parseKey(strings.TrimPrefix(m.Subject, "hy3d.progress."))
			if err != nil {
				return
			}
			var p wireProgress
			if json.Unmarshal(m.Data, &p) == nil && l.Progress != nil {
				l.Progress(key, p.Progress)
			}
		})
		if err != nil {
			b.log.Error().Err(err).Msg("progress of running jobs will not reach this gateway")
		} else {
			b.subs = append(b.subs, s)
		}
		b.goBackground(func() { b.watchTasks(l) })
	})
}

// watchTasks follows every change of a task record, re-establishing the
// watch when the connection comes back.
func (b *Broker) watchTasks(l jobs.Listener) {
	for b.ctx.Err() == nil {
		w, err := b.tasks.WatchAll(b.ctx, jetstream.UpdatesOnly())
		if err != nil {
			b.log.Warn().Err(err).Msg("watching task records")
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			rec, err := decodeTask(e.Value(), e.Revision())
			if err != nil {
				b.log.Warn().Err(err).Str("key", e.Key()).Msg("unreadable task record")
				continue
			}
			b.forgetQueued(rec)
			if l.Task != nil {
				l.Task(rec)
			}
		}
		_ = w.Stop()
	}
}

// forgetQueued drops the bookkeeping of a job that left the queue.
func (b *Broker) forgetQueued(rec jobs.TaskRecord) {
	if rec.State == jobs.StateQueued {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.queued, rec.Key)
	if rec.State.Terminal() {
		delete(b.handoff, rec.ID)
	}
}

// casTask reads the task record of key, lets change edit it and writes it
// back unless another writer changed it in between, in which case it reads
// again. change returns false to write nothing; found says whether a
// record existed (rec is zero otherwise).
func (b *Broker) casTask(ctx context.Context, key results.Key, change func(rec *jobs.TaskRecord, found bool) (bool, error)) (jobs.TaskRecord, error) {
	k := key.String()
	for range casAttempts {
		var rec jobs.TaskRecord
		data, rev, found, err := leaderGet(ctx, b.nc, tasksBucket, k)
		switch {
		case err != nil:
			return rec, fmt.Errorf("reading task %s: %w", k[:16], err)
		case found:
			if rec, err = decodeTask(data, rev); err != nil {
				return rec, err
			}
		default:
			rev = 0
		}
		write, err := change(&rec, rev != 0)
		if err != nil || !write {
			return rec, err
		}
		var newRev uint64
		if rev != 0 {
			newRev, err = kvUpdate(ctx, b.tasks, k, encodeTask(rec), rev)
		} else {
			newRev, err = kvCreate(ctx, b.tasks, k, encodeTask(rec))
		}
		switch {
		case err == nil:
			rec.Revision = newRev
			return rec, nil
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyExists):
			continue
		default:
			return rec, fmt.Errorf("writing task %s: %w", k[:16], err)
		}
	}
	return jobs.TaskRecord{}, fmt.Errorf("task %s: %d concurrent changes in a row", k[:16], casAttempts)
}

func freshTask(spec jobs.Spec) jobs.TaskRecord {
	return jobs.TaskRecord{
		Key: spec.Key, ID: spec.ID, Model: spec.Model, State: jobs.StateQueued, Holders: 1,
		Enqueued: spec.Enqueued, Deadline: spec.Deadline,
	}
}

// Enqueue implements jobs.Broker. A new task costs a key-value create and
// a publish; a request identical to a task in flight, a compare-and-set
// that counts it among the task's holders.
func (b *Broker) Enqueue(ctx context.Context, spec jobs.Spec) (jobs.Enqueued, error) {
	rec := freshTask(spec)
	rev, err := kvCreate(ctx, b.tasks, spec.Key.String(), encodeTask(rec))
	if err == nil {
		rec.Revision = rev
		return b.publish(ctx, spec, rec)
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return jobs.Enqueued{}, fmt.Errorf("creating task: %w", err)
	}
	var found *results.Result
	created := false
	rec, err = b.casTask(ctx, spec.Key, func(r *jobs.TaskRecord, exists bool) (bool, error) {
		created, found = false, nil
		if exists && r.ID == spec.ID {
			created = true // the create above landed before its answer was lost
			return false, nil
		}
		if exists && !r.State.Terminal() {
			r.Holders++
			if spec.Deadline.After(r.Deadline) {
				r.Deadline = spec.Deadline
			}
			return true, nil
		}
		if exists && r.State == jobs.StateSucceeded {
			res, err := b.Result(ctx, spec.Key)
			if err != nil {
				return false, err
			}
			if res != nil {
				found = res
				return false, nil
			}
		}
		// Ended without a result to be had here: the job runs anew.
		*r, created = freshTask(spec), true
		return true, nil
	})
	switch {
	case err != nil:
		return jobs.Enqueued{}, err
	case found != nil:
		return jobs.Enqueued{Result: found}, nil
	case created:
		return b.publish(ctx, spec, rec)
	}
	if rec.State == jobs.StateQueued {
		// The gateway that created the task may have died before its job
		// message was stored: store it again, under the task's id, which
		// NATS deduplicates for two minutes (and a worker runs only one
		// copy of a job later on).
		spec.ID, spec.Enqueued, spec.Deadline = rec.ID, rec.Enqueued, rec.Deadline
		if _, err := b.publishJob(ctx, spec); err != nil {
			return jobs.Enqueued{}, fmt.Errorf("storing the job again: %w", err)
		}
	}
	return jobs.Enqueued{Task: rec}, nil
}

// publish stores the job message of a task just recorded, and wakes the
// workers of its model. A job that cannot be stored fails its record, so
// that nobody waits for it.
func (b *Broker) publish(ctx context.Context, spec jobs.Spec, rec jobs.TaskRecord) (jobs.Enqueued, error) {
	seq, err := b.publishJob(ctx, spec)
	if err != nil {
		failCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, ferr := b.casTask(failCtx, spec.Key, func(r *jobs.TaskRecord, exists bool) (bool, error) {
			if !exists || r.ID != spec.ID || r.State.Terminal() {
				return false, nil
			}
			r.State, r.Finished = jobs.StateFailed, time.Now()
			r.Failure = &jobs.Failure{Kind: jobs.FailGenerator, Detail: "the job could not be stored: " + err.Error()}
			return true, nil
		})
		return jobs.Enqueued{}, errors.Join(fmt.Errorf("storing job: %w", err), ferr)
	}
	q := b.queues[spec.Model]
	b.mu.Lock()
	if spec.Input != nil && spec.Input.Input != nil {
		b.handoff[spec.ID] = spec.Input
	}
	b.queued[spec.Key] = queuedJob{model: spec.Model, priority: priorityIndex(spec.Params.Priority), seq: seq}
	b.mu.Unlock()
	b.stored.Add(1)
	if q != nil {
		_ = b.nc.Publish(wakeSubject(q.token), nil)
	}
	return jobs.Enqueued{Created: true, Task: rec}, nil
}

func priorityIndex(p string) int {
	for i, q := range priorities {
		if q == p {
			return i
		}
	}
	return 1
}

// publishJob writes the job message: a length-prefixed spec, then the
// upload (or nothing, when the upload went to the object store).
func (b *Broker) publishJob(ctx context.Context, spec jobs.Spec) (uint64, error) {
	w := specToWire(spec)
	body := spec.Image
	if len(body) > b.inline {
		name := uploadName(body)
		if _, err := b.uploads.GetInfo(ctx, name); err != nil {
			if _, err := retried(ctx, func(ctx context.Context) (*jetstream.ObjectInfo, error) {
				return b.uploads.PutBytes(ctx, name, body)
			}); err != nil {
				return 0, fmt.Errorf("storing the upload: %w", err)
			}
		}
		w.Upload, body = name, nil
	}
	data := encodeJob(w, body)
	token := subjectToken(spec.Model)
	if q := b.queues[spec.Model]; q != nil {
		token = q.token
	}
	ack, err := retried(ctx, func(ctx context.Context) (*jetstream.PubAck, error) {
		return b.js.Publish(ctx, jobSubject(token, spec.Params.Priority), data, jetstream.WithMsgID(spec.ID))
	})
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// encodeJob is a job message: a length-prefixed spec, then the upload.
func encodeJob(w wireSpec, body []byte) []byte {
	head, _ := json.Marshal(w) // cannot fail: plain values
	data := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(head)+len(body)), uint32(len(head)))
	return append(append(data, head...), body...)
}

// decodeJob reads a job message.
func decodeJob(data []byte) (jobs.Spec, []byte, string, error) {
	if len(data) < 4 || int(binary.BigEndian.Uint32(data)) > len(data)-4 {
		return jobs.Spec{}, nil, "", errors.New("job message: truncated")
	}
	n := binary.BigEndian.Uint32(data)
	var w wireSpec
	if err := json.Unmarshal(data[4:4+n], &w); err != nil {
		return jobs.Spec{}, nil, "", fmt.Errorf("job message: %w", err)
	}
	spec, err := specFromWire(w)
	if err != nil {
		return spec, nil, "", fmt.Errorf("job message: %w", err)
	}
	return spec, data[4+n:], w.Upload, nil
}

// SaveGeneration implements jobs.Broker.
func (b *Broker) SaveGeneration(ctx context.Context, g jobs.GenerationRecord) error {
	if _, err := kvPut(ctx, b.gens, g.ID, encodeGeneration(g)); err != nil {
		return fmt.Errorf("storing generation %s: %w", g.ID, err)
	}
	return nil
}

// LoadGeneration implements jobs.Broker.
func (b *Broker) LoadGeneration(ctx context.Context, id string) (jobs.GenerationRecord, jobs.TaskRecord, error) {
	if !validID(id) {
		return jobs.GenerationRecord{}, jobs.TaskRecord{}, fmt.Errorf("%w: %q", jobs.ErrNotFound, id)
	}
	data, _, found, err := leaderGet(ctx, b.nc, generationBucket, id)
	if err != nil {
		return jobs.GenerationRecord{}, jobs.TaskRecord{}, &jobs.StorageError{Op: "reading generation " + id, Err: err}
	}
	if !found {
		return jobs.GenerationRecord{}, jobs.TaskRecord{}, fmt.Errorf("%w: %q", jobs.ErrNotFound, id)
	}
	g, err := decodeGeneration(data)
	if err != nil {
		return g, jobs.TaskRecord{}, err
	}
	var t jobs.TaskRecord
	data, rev, found, err := leaderGet(ctx, b.nc, tasksBucket, g.Key.String())
	switch {
	case err != nil:
		return g, t, &jobs.StorageError{Op: "reading the task of generation " + id, Err: err}
	case found:
		if t, err = decodeTask(data, rev); err != nil {
			return g, t, err
		}
	}
	return g, t, nil
}

// validID reports whether id has the shape of a generation id (a UUID),
// which is also a valid key.
func validID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i, r := range id {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f'):
			return false
		}
	}
	return true
}

// Leave implements jobs.Broker: the generation's record says how it ended
// (only the first to say so wins), then its task loses a holder; the last
// holder's leaving cancels the task, and a worker running it stops.
func (b *Broker) Leave(ctx context.Context, g jobs.GenerationRecord) (bool, error) {
	won := false
	for range casAttempts {
		data, rev, found, err := leaderGet(ctx, b.nc, generationBucket, g.ID)
		switch {
		case err != nil:
			return false, fmt.Errorf("reading generation %s: %w", g.ID, err)
		case !found:
			_, err = kvCreate(ctx, b.gens, g.ID, encodeGeneration(g))
		default:
			old, derr := decodeGeneration(data)
			if derr == nil && old.Own != "" {
				return false, nil
			}
			_, err = kvUpdate(ctx, b.gens, g.ID, encodeGeneration(g), rev)
		}
		if err == nil {
			won = true
			break
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return false, fmt.Errorf("storing generation %s: %w", g.ID, err)
		}
	}
	if !won {
		return false, fmt.Errorf("generation %s: %d concurrent changes in a row", g.ID, casAttempts)
	}
	cancelled := false
	_, err := b.casTask(ctx, g.Key, func(r *jobs.TaskRecord, exists bool) (bool, error) {
		cancelled = false
		if !exists || r.ID != g.Task || r.State.Terminal() {
			return false, nil
		}
		if r.Holders--; r.Holders <= 0 {
			r.State, r.Failure, r.Finished, cancelled = jobs.StateCancelled, g.Failure, time.Now(), true
		}
		return true, nil
	})
	if err != nil {
		return true, err
	}
	if cancelled {
		_ = b.nc.Publish(cancelSubject(g.Key), nil)
	}
	return true, nil
}

// Result implements jobs.Broker.
func (b *Broker) Result(ctx context.Context, key results.Key) (*results.Result, error) {
	if b.results == nil {
		return nil, nil
	}
	// Asked only for a task recorded as succeeded, whose worker shared the
	// result before recording it: a replica that answers "not found", or
	// serves chunks whose digest does not match yet, may not have applied
	// all of it.
	var data []byte
	var err error
	for wait := time.Now().Add(resultLag); ; {
		data, err = retried(ctx, func(ctx context.Context) ([]byte, error) { return b.results.GetBytes(ctx, key.String()) })
		lagging := errors.Is(err, jetstream.ErrObjectNotFound) || errors.Is(err, jetstream.ErrDigestMismatch)
		if !lagging || time.Now().After(wait) || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetching result %s: %w", key.String()[:16], err)
	}
	r, err := decodeResult(data, key)
	if err != nil {
		b.log.Warn().Err(err).Msg("dropped a corrupt shared result")
		_ = b.results.Delete(ctx, key.String())
		return nil, nil
	}
	return r, nil
}

// resultLag bounds how long a shared result may take to reach the replica
// that answers a read. A cluster that just lost a node, on loaded machines,
// was seen to serve mismatching chunks for more than 2 s; a reader waiting
// a little longer beats a 503 for a result that exists.
const resultLag = 10 * time.Second

// putResult shares a result with the other machines.
func (b *Broker) putResult(ctx context.Context, r *results.Result) error {
	if b.results == nil {
		return nil
	}
	if _, err := b.results.GetInfo(ctx, r.Key.String()); err == nil {
		return nil // equal keys mean equal bytes
	}
	if _, err := retried(ctx, func(ctx context.Context) (*jetstream.ObjectInfo, error) {
		return b.results.PutBytes(ctx, r.Key.String(), encodeResult(r))
	}); err != nil {
		return fmt.Errorf("sharing result %s: %w", r.Key.String()[:16], err)
	}
	return nil
}

// Depth implements jobs.Broker.
func (b *Broker) Depth() int { return int(b.depth.Load() + b.stored.Load()) }

// Position implements jobs.Broker: the jobs of higher priority waiting for
// the same model, plus the jobs of its own priority this process stored
// before it and no worker has taken yet. Jobs other gateways stored in
// between are not counted.
func (b *Broker) Position(key results.Key) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	j, ok := b.queued[key]
	q := b.queues[j.model]
	if !ok || q == nil {
		return 0
	}
	pos := 1
	for p := range j.priority {
		pos += int(q.pending[p])
	}
	for k, o := range b.queued {
		if k != key && o.model == j.model && o.priority == j.priority && o.seq < j.seq && o.seq > q.delivered[j.priority] {
			pos++
		}
	}
	return pos
}

// pollLoop reads the queue's depth every PollInterval.
func (b *Broker) pollLoop() {
	tick := time.NewTicker(b.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(b.ctx, b.cfg.PollInterval*4)
			b.poll(ctx)
			cancel()
		}
	}
}

// poll reads every consumer's pending and delivered counts; when they
// moved, the engine hears that queue positions changed. Workers are woken
// too, so that jobs redelivered after a dead worker's AckWait are taken.
func (b *Broker) poll(ctx context.Context) {
	var depth int64
	moved := false
	stored := b.stored.Load() // counted by the consumers' answers from here on
	for _, q := range b.queues {
		for i, c := range q.consumers {
			info, err := c.Info(ctx)
			if err != nil {
				return // keep the last view
			}
			b.mu.Lock()
			if q.pending[i] != info.NumPending || q.delivered[i] != info.Delivered.Stream {
				moved = true
			}
			q.pending[i], q.delivered[i] = info.NumPending, info.Delivered.Stream
			b.mu.Unlock()
			depth += int64(info.NumPending)
		}
		q.nudge()
	}
	b.depth.Store(depth)
	b.stored.Add(-stored)
	b.mu.Lock()
	l := b.listener
	b.mu.Unlock()
	if moved && l.Queue != nil {
		l.Queue()
	}
}

var _ jobs.Broker = (*Broker)(nil)
