package ort

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

// Session runs one graph. It is safe for concurrent use: ONNX Runtime
// sessions allow concurrent Run calls, and Close waits for those in flight.
type Session struct {
	name     string
	st       *session
	cleanup  runtime.Cleanup
	inputs   []tensor.Info
	outputs  []tensor.Info
	maxBatch int
}

// session is the native half of a Session, kept apart so that the Session
// can be garbage collected (and its cleanup can close this) while the
// Runtime still tracks this for Runtime.Close.
type session struct {
	// mu is held shared by every Run and exclusively by close, so a
	// session is never destroyed under a running call.
	mu  sync.RWMutex
	ort *ortgo.DynamicAdvancedSession // nil once closed
	rt  *Runtime
}

// openSession builds the native session from path when it is not empty
// (so that external-data files beside the graph are found), else from onnx.
func (r *Runtime) openSession(name string, onnx []byte, path string, io *modelIO) (*session, error) {
	opts, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("ort: %s: session options: %w", name, err)
	}
	defer func() { _ = opts.Destroy() }()
	if n := r.opts.IntraOpThreads; n > 0 {
		if err := opts.SetIntraOpNumThreads(n); err != nil {
			return nil, fmt.Errorf("ort: %s: intra-op threads: %w", name, err)
		}
	}
	if n := r.opts.InterOpThreads; n > 0 {
		if err := opts.SetInterOpNumThreads(n); err != nil {
			return nil, fmt.Errorf("ort: %s: inter-op threads: %w", name, err)
		}
	}
	// Idle pool threads would otherwise spin between calls, taking the cores
	// from the Go work (meshing, cleanup, other jobs) that runs between them.
	if err := opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
		return nil, fmt.Errorf("ort: %s: session config: %w", name, err)
	}
	names := func(vs []valueInfo) []string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = v.name
		}
		return out
	}
	var s *ortgo.DynamicAdvancedSession
	if path != "" {
		s, err = ortgo.NewDynamicAdvancedSession(path, names(io.inputs), names(io.outputs), opts)
	} else {
		s, err = ortgo.NewDynamicAdvancedSessionWithONNXData(onnx, names(io.inputs), names(io.outputs), opts)
	}
	if err != nil {
		return nil, fmt.Errorf("ort: %s: %w: %w", name, tensor.ErrModelFile, err)
	}
	return &session{ort: s, rt: r}, nil
}

// close destroys the native session once, after in-flight runs finish.
func (st *session) close() error {
	st.mu.Lock()
	if st.ort == nil {
		st.mu.Unlock()
		return nil
	}
	err := st.ort.Destroy()
	st.ort = nil
	st.mu.Unlock()
	st.rt.forget(st)
	if rerr := releaseEnvironment(); err == nil {
		err = rerr
	}
	return err
}

func wrapSession(name string, st *session, io *modelIO, maxBatch int) *Session {
	infos := func(vs []valueInfo) []tensor.Info {
		out := make([]tensor.Info, len(vs))
		for i, v := range vs {
			out[i] = tensor.Info{Name: v.name, DType: v.dtype(), Dims: slices.Clone(v.dims)}
		}
		return out
	}
	s := &Session{name: name, st: st, inputs: infos(io.inputs), outputs: infos(io.outputs), maxBatch: maxBatch}
	// A forgotten Session must not keep its native memory and the library
	// alive for the life of the process.
	s.cleanup = runtime.AddCleanup(s, func(st *session) { _ = st.close() }, st)
	return s
}

// adoptManifest checks the model against the manifest's description of the
// graph and takes the manifest's static dims where the model leaves a dim
// open, so that calls the manifest rules out fail here as they would on a
// TensorRT engine built from it.
func (io *modelIO) adoptManifest(name string, g engines.Graph) error {
	for _, side := range []struct {
		what   string
		values []valueInfo
		specs  []engines.TensorSpec
	}{{"inputs", io.inputs, g.Inputs}, {"outputs", io.outputs, g.Outputs}} {
		mismatch := func() error {
			have := make([]string, len(side.values))
			for i, v := range side.values {
				have[i] = fmt.Sprint(v.name, v.dims)
			}
			want := make([]string, len(side.specs))
			for i, sp := range side.specs {
				want[i] = fmt.Sprint(sp.Name, sp.Shape)
			}
			return fmt.Errorf("ort: %s: model %s %v, manifest %v: %w", name, side.what, have, want, tensor.ErrModelFile)
		}
		if len(side.values) != len(side.specs) {
			return mismatch()
		}
		for i := range side.values {
			v := &side.values[i]
			j := slices.IndexFunc(side.specs, func(sp engines.TensorSpec) bool { return sp.Name == v.name })
			if j < 0 || len(side.specs[j].Shape) != len(v.dims) {
				return mismatch()
			}
			for k, d := range side.specs[j].Shape {
				switch {
				case d < 0:
				case v.dims[k] < 0:
					v.dims[k] = d
				case v.dims[k] != d:
					return mismatch()
				}
			}
		}
	}
	return nil
}

// Name is the graph name the session was loaded as.
func (s *Session) Name() string { return s.name }

// Inputs describes the graph inputs in the order ONNX Runtime lists them.
func (s *Session) Inputs() []tensor.Info { return cloneInfos(s.inputs) }

// Outputs describes the graph outputs in the order Run returns them.
func (s *Session) Outputs() []tensor.Info { return cloneInfos(s.outputs) }

// MaxBatch is the largest batch Run accepts.
func (s *Session) MaxBatch() int { return s.maxBatch }

func cloneInfos(in []tensor.Info) []tensor.Info {
	out := make([]tensor.Info, len(in))
	for i, info := range in {
		info.Dims = slices.Clone(info.Dims)
		out[i] = info
	}
	return out
}

// Close releases the session after in-flight runs finish; later runs fail
// with tensor.ErrClosed. It is idempotent.
func (s *Session) Close() error {
	s.cleanup.Stop()
	return s.st.close()
}

// Run checks the inputs against the graph (every input once, by name;
// float32 data matching its shape; static dims; one batch size, at most
// MaxBatch) and runs the graph, returning the outputs in Outputs order with
// the shapes ONNX Runtime computed. Inputs are only read. A cancelled ctx
// stops the run between two graph nodes (ONNX Runtime's terminate flag);
// a single node is never interrupted.
func (s *Session) Run(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ort: %s: %w", s.name, err)
	}
	ordered, err := s.arrange(inputs)
	if err != nil {
		return nil, err
	}

	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	if s.st.ort == nil {
		return nil, fmt.Errorf("ort: %s: %w", s.name, tensor.ErrClosed)
	}

	values := make([]ortgo.Value, len(ordered))
	defer destroyValues(values)
	for i, t := range ordered {
		// The tensor wraps t.Data without a copy; ONNX Runtime only reads it.
		v, err := ortgo.NewTensor(ortgo.NewShape(t.Shape...), t.Data)
		if err != nil {
			return nil, fmt.Errorf("ort: %s: input %q: %w", s.name, t.Name, err)
		}
		values[i] = v
	}
	outputs := make([]ortgo.Value, len(s.outputs))
	defer destroyValues(outputs)

	opts, stop, err := terminateOnDone(ctx)
	if err != nil {
		return nil, fmt.Errorf("ort: %s: %w", s.name, err)
	}
	err = s.st.ort.RunWithOptions(values, outputs, opts)
	stop()
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("ort: %s: run stopped: %w", s.name, cerr)
		}
		return nil, fmt.Errorf("ort: %s: %w", s.name, err)
	}

	out := make([]tensor.Tensor, len(outputs))
	for i, v := range outputs {
		ft, ok := v.(*ortgo.Tensor[float32])
		if !ok {
			return nil, fmt.Errorf("ort: %s: output %q is not a float32 tensor: %w", s.name, s.outputs[i].Name, tensor.ErrDType)
		}
		// GetData is a Go slice the binding copied ONNX Runtime's result
		// into; it stays valid after the value is destroyed.
		out[i] = tensor.Tensor{Name: s.outputs[i].Name, Shape: []int64(ft.GetShape()), Data: ft.GetData()}
	}
	return out, nil
}

func destroyValues(vs []ortgo.Value) {
	for _, v := range vs {
		if v != nil {
			_ = v.Destroy()
		}
	}
}

// terminateOnDone returns run options whose terminate flag is raised when
// ctx is done (nil options when ctx can never be), and a stop function that
// must be called once the run has returned: after it, the flag is never
// touched again and the options are freed.
func terminateOnDone(ctx context.Context) (*ortgo.RunOptions, func(), error) {
	if ctx.Done() == nil {
		return nil, func() {}, nil
	}
	opts, err := ortgo.NewRunOptions()
	if err != nil {
		return nil, nil, fmt.Errorf("run options: %w", err)
	}
	var (
		mu   sync.Mutex
		done bool
	)
	stopWatch := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			_ = opts.Terminate()
		}
	})
	return opts, func() {
		stopWatch()
		mu.Lock()
		done = true
		mu.Unlock()
		_ = opts.Destroy()
	}, nil
}

// arrange orders the inputs as the session lists them and checks them.
func (s *Session) arrange(inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	ordered := make([]tensor.Tensor, len(s.inputs))
	given := make([]bool, len(s.inputs))
	for _, t := range inputs {
		i := slices.IndexFunc(s.inputs, func(info tensor.Info) bool { return info.Name == t.Name })
		if i < 0 {
			return nil, fmt.Errorf("ort: %s: input %q (engine inputs: %s): %w",
				s.name, t.Name, strings.Join(tensor.Names(s.inputs), ", "), tensor.ErrUnknownInput)
		}
		if given[i] {
			return nil, fmt.Errorf("ort: %s: input %q given twice: %w", s.name, t.Name, tensor.ErrUnknownInput)
		}
		ordered[i], given[i] = t, true
	}
	var missing []string
	for i, ok := range given {
		if !ok {
			missing = append(missing, s.inputs[i].Name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("ort: %s: input %s not given: %w", s.name, strings.Join(missing, ", "), tensor.ErrMissingInput)
	}

	var errs []error
	for i, t := range ordered {
		if err := t.Check(s.inputs[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("ort: %s: %w", s.name, err)
	}
	batch := ordered[0].Shape[0]
	for _, t := range ordered[1:] {
		if t.Shape[0] != batch {
			return nil, fmt.Errorf("ort: %s: input %q has batch %d, input %q has batch %d: %w",
				s.name, ordered[0].Name, batch, t.Name, t.Shape[0], tensor.ErrShape)
		}
	}
	if batch > int64(s.maxBatch) {
		return nil, fmt.Errorf("ort: %s: batch %d above the maximum %d: %w", s.name, batch, s.maxBatch, tensor.ErrBatch)
	}
	return ordered, nil
}
