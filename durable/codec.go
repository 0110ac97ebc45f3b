package durable

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/results"
)

// What this package stores, as it stores it. Keys are hex strings on the
// wire; each record carries a version so that a later hy3d can read (or
// refuse with a reason) what an earlier one wrote.

const recordVersion = 1

// wireSpec is a job message's header: the job without its upload, which
// is the message's body (or an object of the uploads bucket when large).
type wireSpec struct {
	Version     int           `json:"v"`
	Key         string        `json:"key"`
	ID          string        `json:"id"`
	Model       string        `json:"model"`
	Fingerprint string        `json:"fingerprint"`
	Params      jobs.Params   `json:"params"`
	Timeout     time.Duration `json:"timeout_ns"`
	Input       *wireInput    `json:"input,omitempty"`
	Upload      string        `json:"upload,omitempty"` // object name when the body is empty
	Preprocess  time.Duration `json:"preprocess_ns"`
	Enqueued    time.Time     `json:"enqueued"`
	Deadline    time.Time     `json:"deadline"`
}

type wireInput struct {
	Hash     string   `json:"sha256"`
	Format   string   `json:"format"`
	Width    int      `json:"width"`
	Height   int      `json:"height"`
	Warnings []string `json:"warnings,omitempty"`
}

func inputToWire(p *jobs.Prepared) *wireInput {
	if p == nil {
		return nil
	}
	return &wireInput{Hash: hex.EncodeToString(p.Hash[:]), Format: p.Format, Width: p.Width, Height: p.Height, Warnings: p.Warnings}
}

func inputFromWire(w *wireInput) (*jobs.Prepared, error) {
	if w == nil {
		return nil, nil
	}
	p := &jobs.Prepared{Format: w.Format, Width: w.Width, Height: w.Height, Warnings: w.Warnings}
	if err := decodeHex(p.Hash[:], w.Hash); err != nil {
		return nil, fmt.Errorf("input hash: %w", err)
	}
	return p, nil
}

func decodeHex(dst []byte, s string) error {
	b, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	if len(b) != len(dst) {
		return fmt.Errorf("%d bytes, want %d", len(b), len(dst))
	}
	copy(dst, b)
	return nil
}

func parseKey(s string) (results.Key, error) {
	var k results.Key
	if err := decodeHex(k[:], s); err != nil {
		return k, fmt.Errorf("key %q: %w", s, err)
	}
	return k, nil
}

// recordKey checks a decoded record's version and parses its key; kind
// names the record in errors.
func recordKey(kind string, version int, key string) (results.Key, error) {
	if version != recordVersion {
		return results.Key{}, fmt.Errorf("%s record version %d, this hy3d reads %d", kind, version, recordVersion)
	}
	k, err := parseKey(key)
	if err != nil {
		return results.Key{}, fmt.Errorf("%s record: %w", kind, err)
	}
	return k, nil
}

func specToWire(s jobs.Spec) wireSpec {
	return wireSpec{
		Version: recordVersion, Key: s.Key.String(), ID: s.ID, Model: s.Model, Fingerprint: s.Fingerprint,
		Params: s.Params, Timeout: s.Params.Timeout, Input: inputToWire(s.Input), Preprocess: s.Preprocess,
		Enqueued: s.Enqueued, Deadline: s.Deadline,
	}
}

func specFromWire(w wireSpec) (jobs.Spec, error) {
	key, err := recordKey("job", w.Version, w.Key)
	if err != nil {
		return jobs.Spec{}, err
	}
	in, err := inputFromWire(w.Input)
	if err != nil {
		return jobs.Spec{}, err
	}
	s := jobs.Spec{
		Key: key, ID: w.ID, Model: w.Model, Fingerprint: w.Fingerprint, Params: w.Params, Input: in,
		Preprocess: w.Preprocess, Enqueued: w.Enqueued, Deadline: w.Deadline,
	}
	s.Params.Timeout = w.Timeout
	return s, nil
}

// wireTask is a task's record in the tasks bucket.
type wireTask struct {
	Version  int                 `json:"v"`
	Key      string              `json:"key"`
	ID       string              `json:"id"`
	Model    string              `json:"model"`
	State    jobs.State          `json:"state"`
	Holders  int                 `json:"holders"`
	Attempts int                 `json:"attempts"`
	Claim    uint64              `json:"claim,omitempty"`
	Worker   string              `json:"worker,omitempty"`
	Enqueued time.Time           `json:"enqueued"`
	Started  time.Time           `json:"started,omitzero"`
	Finished time.Time           `json:"finished,omitzero"`
	Deadline time.Time           `json:"deadline"`
	Summary  *jobs.ResultSummary `json:"summary,omitempty"`
	Failure  *jobs.Failure       `json:"failure,omitempty"`
}

func encodeTask(t jobs.TaskRecord) []byte {
	b, _ := json.Marshal(wireTask{ // cannot fail: plain values
		Version: recordVersion, Key: t.Key.String(), ID: t.ID, Model: t.Model, State: t.State, Holders: t.Holders,
		Attempts: t.Attempts, Claim: t.Claim, Worker: t.Worker, Enqueued: t.Enqueued, Started: t.Started, Finished: t.Finished,
		Deadline: t.Deadline, Summary: t.Summary, Failure: t.Failure,
	})
	return b
}

func decodeTask(b []byte, revision uint64) (jobs.TaskRecord, error) {
	var w wireTask
	if err := json.Unmarshal(b, &w); err != nil {
		return jobs.TaskRecord{}, fmt.Errorf("task record: %w", err)
	}
	key, err := recordKey("task", w.Version, w.Key)
	if err != nil {
		return jobs.TaskRecord{}, err
	}
	return jobs.TaskRecord{
		Revision: revision, Key: key, ID: w.ID, Model: w.Model, State: w.State, Holders: w.Holders,
		Attempts: w.Attempts, Claim: w.Claim, Worker: w.Worker, Enqueued: w.Enqueued, Started: w.Started, Finished: w.Finished,
		Deadline: w.Deadline, Summary: w.Summary, Failure: w.Failure,
	}, nil
}

// wireGeneration is a generation's record in the generations bucket.
type wireGeneration struct {
	Version   int                 `json:"v"`
	ID        string              `json:"id"`
	Key       string              `json:"key"`
	Task      string              `json:"task"`
	Params    jobs.Params         `json:"params"`
	Timeout   time.Duration       `json:"timeout_ns"`
	Client    string              `json:"client,omitempty"`
	Created   time.Time           `json:"created"`
	Cached    bool                `json:"cached,omitempty"`
	Coalesced bool                `json:"coalesced,omitempty"`
	Input     *wireInput          `json:"input,omitempty"`
	Own       jobs.State          `json:"own,omitempty"`
	Failure   *jobs.Failure       `json:"failure,omitempty"`
	Finished  time.Time           `json:"finished,omitzero"`
	Summary   *jobs.ResultSummary `json:"summary,omitempty"`
}

func encodeGeneration(g jobs.GenerationRecord) []byte {
	b, _ := json.Marshal(wireGeneration{ // cannot fail: plain values
		Version: recordVersion, ID: g.ID, Key: g.Key.String(), Task: g.Task, Params: g.Params, Timeout: g.Timeout,
		Client: g.Client, Created: g.Created, Cached: g.Cached, Coalesced: g.Coalesced, Input: inputToWire(g.Input),
		Own: g.Own, Failure: g.Failure, Finished: g.Finished, Summary: g.Summary,
	})
	return b
}

func decodeGeneration(b []byte) (jobs.GenerationRecord, error) {
	var w wireGeneration
	if err := json.Unmarshal(b, &w); err != nil {
		return jobs.GenerationRecord{}, fmt.Errorf("generation record: %w", err)
	}
	key, err := recordKey("generation", w.Version, w.Key)
	if err != nil {
		return jobs.GenerationRecord{}, err
	}
	in, err := inputFromWire(w.Input)
	if err != nil {
		return jobs.GenerationRecord{}, fmt.Errorf("generation record: %w", err)
	}
	g := jobs.GenerationRecord{
		ID: w.ID, Key: key, Task: w.Task, Params: w.Params, Timeout: w.Timeout, Client: w.Client, Created: w.Created,
		Cached: w.Cached, Coalesced: w.Coalesced, Input: in, Own: w.Own, Failure: w.Failure, Finished: w.Finished,
		Summary: w.Summary,
	}
	g.Params.Timeout = w.Timeout
	return g, nil
}

// wireProgress is a running job's progress message.
type wireProgress struct {
	ID string `json:"id"`
	jobs.Progress
}

// A result travels between machines as one object: a length-prefixed JSON
// header, then every format's bytes in the header's order, each checked
// against its SHA-256 when read.
type wireResult struct {
	Version  int                `json:"v"`
	Key      string             `json:"key"`
	Vertices int                `json:"vertices"`
	Faces    int                `json:"faces"`
	Created  time.Time          `json:"created"`
	Stages   []wireStage        `json:"stages"`
	Warnings []string           `json:"warnings,omitempty"`
	Meshes   []wireResultFormat `json:"meshes"`
}

type wireStage struct {
	Stage    string        `json:"stage"`
	Duration time.Duration `json:"ns"`
}

type wireResultFormat struct {
	Format string `json:"format"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
}

func encodeResult(r *results.Result) []byte {
	w := wireResult{Version: recordVersion, Key: r.Key.String(), Vertices: r.Vertices, Faces: r.Faces,
		Created: r.Created, Warnings: r.Warnings}
	for _, st := range r.Stages {
		w.Stages = append(w.Stages, wireStage{st.Stage, st.Duration})
	}
	var body bytes.Buffer
	for _, f := range slices.Sorted(maps.Keys(r.Meshes)) {
		m := r.Meshes[f]
		w.Meshes = append(w.Meshes, wireResultFormat{Format: f, Bytes: len(m.Data), SHA256: hex.EncodeToString(m.SHA256[:])})
		body.Write(m.Data)
	}
	head, _ := json.Marshal(w) // cannot fail: plain values
	out := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(head)+body.Len()), uint32(len(head)))
	out = append(out, head...)
	return append(out, body.Bytes()...)
}

var errCorruptResult = errors.New("corrupt shared result")

func decodeResult(b []byte, key results.Key) (*results.Result, error) {
	if len(b) < 4 || int(binary.BigEndian.Uint32(b)) > len(b)-4 {
		return nil, fmt.Errorf("%w %s: truncated header", errCorruptResult, key)
	}
	n := binary.BigEndian.Uint32(b)
	var w wireResult
	if err := json.Unmarshal(b[4:4+n], &w); err != nil {
		return nil, fmt.Errorf("%w %s: %v", errCorruptResult, key, err)
	}
	if w.Version != recordVersion || w.Key != key.String() {
		return nil, fmt.Errorf("%w %s: names %q (version %d)", errCorruptResult, key, w.Key, w.Version)
	}
	r := &results.Result{Key: key, Meshes: map[string]*results.Mesh{}, Vertices: w.Vertices, Faces: w.Faces,
		Created: w.Created, Warnings: w.Warnings}
	for _, st := range w.Stages {
		r.Stages = append(r.Stages, results.StageTiming{Stage: st.Stage, Duration: st.Duration})
	}
	rest := b[4+n:]
	for _, f := range w.Meshes {
		if !results.IsFormat(f.Format) || f.Bytes < 0 || f.Bytes > len(rest) {
			return nil, fmt.Errorf("%w %s: format %q of %d bytes", errCorruptResult, key, f.Format, f.Bytes)
		}
		data := rest[:f.Bytes:f.Bytes]
		rest = rest[f.Bytes:]
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != f.SHA256 {
			return nil, fmt.Errorf("%w %s: %s does not match its hash", errCorruptResult, key, f.Format)
		}
		r.Meshes[f.Format] = results.NewMesh(data)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w %s: %d bytes past the last format", errCorruptResult, key, len(rest))
	}
	return r, nil
}
