// Package ort runs the model graphs on the CPU with ONNX Runtime: it is the
// reference backend that TensorRT engines are checked against and the path
// hy3d takes on machines without a GPU. It owns finding and loading the ONNX
// Runtime shared library (through github.com/yalue/onnxruntime_go, which
// dlopens it), one dynamic-shape session per graph, and checking every call
// against the graph's contract (names, float32, shapes, batch) before ONNX
// Runtime sees it, so misuse yields the typed errors of package tensor.
package ort

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

// Options configures a Runtime.
type Options struct {
	// LibraryPath is the ONNX Runtime shared library. Empty means $HY3D_ORT_LIB,
	// else build/onnxruntime/libonnxruntime.so.1.24.1 under the working
	// directory, the executable's directory, or a parent up to the module root.
	LibraryPath string
	// IntraOpThreads and InterOpThreads size each session's thread pools;
	// 0 leaves ONNX Runtime's default (one thread per core).
	IntraOpThreads int
	InterOpThreads int
}

// Runtime loads sessions. Several Runtimes may coexist as long as they use
// the same library. Close closes every session the Runtime loaded.
type Runtime struct {
	opts    Options
	library string

	mu       sync.Mutex
	closed   bool
	sessions map[*session]struct{}
}

// environment counts the users of the ONNX Runtime environment.
// onnxruntime_go keeps the environment, the dlopen handle and the library path
// in package variables, so there is exactly one per process whatever we do;
// the count deciding when to create and destroy it has to be just as global.
// A Runtime holds one reference and every open session another, so the
// library is unloaded only when nothing can still call into it. This is the
// package's only mutable package-level state, and it also means no other
// package in the process may use onnxruntime_go directly.
var environment struct {
	mu      sync.Mutex
	refs    int
	library string
}

func acquireEnvironment(library string) error {
	environment.mu.Lock()
	defer environment.mu.Unlock()
	if environment.refs > 0 {
		if environment.library != library {
			return fmt.Errorf("onnx runtime already loaded from %s, cannot also load %s: %w",
				environment.library, library, tensor.ErrUnavailable)
		}
		environment.refs++
		return nil
	}
	ortgo.SetSharedLibraryPath(library)
	// ONNX Runtime would print to stderr every failure it also returns as a
	// status (which we wrap), including each run a cancelled context stops;
	// only its fatal messages have no other way out.
	if err := ortgo.InitializeEnvironment(ortgo.WithLogLevelFatal()); err != nil {
		return fmt.Errorf("onnx runtime %s: %w: %w", library, tensor.ErrUnavailable, err)
	}
	environment.refs, environment.library = 1, library
	return nil
}

// retainEnvironment adds a reference while the caller already holds one.
func retainEnvironment() {
	environment.mu.Lock()
	environment.refs++
	environment.mu.Unlock()
}

func releaseEnvironment() error {
	environment.mu.Lock()
	defer environment.mu.Unlock()
	environment.refs--
	if environment.refs > 0 {
		return nil
	}
	if err := ortgo.DestroyEnvironment(); err != nil {
		return fmt.Errorf("onnx runtime: destroy environment: %w", err)
	}
	return nil
}

// NewRuntime finds and loads the ONNX Runtime library. A missing or unloadable
// library is an error wrapping tensor.ErrUnavailable.
func NewRuntime(opts Options) (*Runtime, error) {
	if opts.IntraOpThreads < 0 || opts.InterOpThreads < 0 {
		return nil, fmt.Errorf("ort: negative thread count (intra %d, inter %d)", opts.IntraOpThreads, opts.InterOpThreads)
	}
	library, err := findLibrary(opts.LibraryPath, os.Getenv(LibraryEnv), searchStarts())
	if err != nil {
		return nil, err
	}
	if abs, err := filepath.Abs(library); err == nil {
		library = abs
	}
	if resolved, err := filepath.EvalSymlinks(library); err == nil {
		library = resolved
	}
	if err := acquireEnvironment(library); err != nil {
		return nil, err
	}
	opts.LibraryPath = library
	return &Runtime{opts: opts, library: library, sessions: map[*session]struct{}{}}, nil
}

// Library is the resolved path of the loaded shared library.
func (r *Runtime) Library() string { return r.library }

// Version is the ONNX Runtime version string.
func (r *Runtime) Version() string { return ortgo.GetVersion() }

// Load opens one graph of a model set; its maximum batch comes from the
// manifest, and the model's inputs and outputs must agree with the manifest.
// Loading is not interruptible; ctx is checked before it starts.
func (r *Runtime) Load(ctx context.Context, set *engines.Set, graph string) (*Session, error) {
	g, ok := set.Graphs[graph]
	if !ok {
		return nil, fmt.Errorf("ort: model set %q has no graph %q: %w", set.Name, graph, tensor.ErrModelFile)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ort: load %s: %w", graph, err)
	}
	onnx, err := set.ReadGraph(graph)
	if err != nil {
		return nil, fmt.Errorf("ort: %w: %w", tensor.ErrModelFile, err)
	}
	// Graphs over 2 GB keep their weights in external-data files named
	// relative to the graph, which ONNX Runtime finds only when it opens
	// the graph by path; the embedded set has no path, and no such files.
	var path string
	if set.Dir != "" {
		path = filepath.Join(set.Dir, filepath.FromSlash(g.ONNX))
	}
	return r.load(ctx, graph, onnx, path, g.MaxBatch, &g)
}

// LoadBytes opens a session from serialized ONNX. name labels errors. A
// model whose weights live in external-data files must be loaded with Load
// from a model set on disk instead.
func (r *Runtime) LoadBytes(ctx context.Context, name string, onnx []byte, maxBatch int) (*Session, error) {
	return r.load(ctx, name, onnx, "", maxBatch, nil)
}

// load checks the model (and, given one, against its manifest entry) before
// ONNX Runtime spends time and memory building the session. onnx is the
// graph's bytes; path, when not empty, is the file they came from, which
// ONNX Runtime then opens itself.
func (r *Runtime) load(ctx context.Context, name string, onnx []byte, path string, maxBatch int, manifest *engines.Graph) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ort: load %s: %w", name, err)
	}
	if maxBatch < 1 {
		return nil, fmt.Errorf("ort: %s: max batch %d < 1", name, maxBatch)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, fmt.Errorf("ort: load %s: runtime %w", name, tensor.ErrClosed)
	}
	// Taken under r.mu while the Runtime's own reference is still held, so
	// the environment cannot be torn down by a concurrent Close until this
	// session, or the failed attempt at it, lets go.
	retainEnvironment()
	r.mu.Unlock()

	io, err := describe(name, onnx)
	if err == nil && manifest != nil {
		err = io.adoptManifest(name, *manifest)
	}
	if err != nil {
		_ = releaseEnvironment()
		return nil, err
	}
	st, err := r.openSession(name, onnx, path, io)
	if err != nil {
		_ = releaseEnvironment()
		return nil, err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		_ = st.close()
		return nil, fmt.Errorf("ort: load %s: runtime %w", name, tensor.ErrClosed)
	}
	r.sessions[st] = struct{}{}
	r.mu.Unlock()
	return wrapSession(name, st, io, maxBatch), nil
}

// describe parses the model's inputs and outputs and enforces the float32
// contract. When the bytes are not a model, ONNX Runtime's own diagnosis is
// carried in the error.
func describe(name string, onnx []byte) (*modelIO, error) {
	io, err := parseModelIO(onnx)
	if err != nil {
		if ortErr := ortDiagnosis(onnx); ortErr != nil {
			return nil, fmt.Errorf("ort: %s: %w: %w", name, tensor.ErrModelFile, ortErr)
		}
		return nil, fmt.Errorf("ort: %s: %w: %w", name, tensor.ErrModelFile, err)
	}
	if len(io.inputs) == 0 || len(io.outputs) == 0 {
		return nil, fmt.Errorf("ort: %s: model has %d inputs and %d outputs: %w",
			name, len(io.inputs), len(io.outputs), tensor.ErrModelFile)
	}
	for _, list := range []struct {
		what   string
		values []valueInfo
	}{{"input", io.inputs}, {"output", io.outputs}} {
		for _, v := range list.values {
			if v.kind != "tensor" || v.elemType != onnxFloat {
				return nil, fmt.Errorf("ort: %s: %s %q is %s, the engine contract requires float32: %w",
					name, list.what, v.name, v.typeName(), tensor.ErrDType)
			}
			if !v.hasShape {
				return nil, fmt.Errorf("ort: %s: %s %q has no declared shape: %w", name, list.what, v.name, tensor.ErrShape)
			}
		}
	}
	for _, in := range io.inputs {
		if len(in.dims) == 0 {
			return nil, fmt.Errorf("ort: %s: input %q is a scalar, but batch must be its first dim: %w",
				name, in.name, tensor.ErrShape)
		}
	}
	return io, nil
}

// ortDiagnosis asks ONNX Runtime why bytes that do not parse as a model are
// wrong; nil if it accepts them after all.
func ortDiagnosis(onnx []byte) error {
	s, err := ortgo.NewDynamicAdvancedSessionWithONNXData(onnx, nil, nil, nil)
	if err != nil {
		return err
	}
	_ = s.Destroy()
	return nil
}

// Close closes every session this Runtime loaded, waiting for their in-flight
// runs, and releases the library once no session of any Runtime remains.
// It is idempotent.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	open := make([]*session, 0, len(r.sessions))
	for st := range r.sessions {
		open = append(open, st)
	}
	r.mu.Unlock()

	var first error
	for _, st := range open {
		if err := st.close(); err != nil && first == nil {
			first = err
		}
	}
	if err := releaseEnvironment(); err != nil && first == nil {
		first = err
	}
	return first
}

// forget drops a closed session from the Runtime's books.
func (r *Runtime) forget(st *session) {
	r.mu.Lock()
	delete(r.sessions, st)
	r.mu.Unlock()
}
