// Package results owns hy3d's finished meshes: Result (one generation in
// every format, with content-hash ETags and compressed variants made once),
// Key (what identifies a result), and Store, a bytes-bounded in-memory cache
// (ristretto) in front of a content-addressed directory that is the source of
// truth and is itself bounded, least recently used results leaving first.
package results

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/rs/zerolog"
)

// Result is one finished generation in every format.
type Result struct {
	Key      Key
	Meshes   map[string]*Mesh
	Vertices int
	Faces    int
	Stages   []StageTiming
	Warnings []string
	Created  time.Time
}

// StageTiming is the wall time one pipeline stage took for one job.
type StageTiming struct {
	Stage    string
	Duration time.Duration
}

// Mesh is one format's bytes with their content hash, which is also the ETag.
type Mesh struct {
	Data   []byte
	SHA256 [32]byte

	mu      sync.Mutex
	encoded map[string][]byte // content coding → compressed bytes, made on first use
}

func NewMesh(data []byte) *Mesh { return &Mesh{Data: data, SHA256: sha256.Sum256(data)} }

// ETag is a strong validator of the identity representation.
func (m *Mesh) ETag() string { return `"` + hex.EncodeToString(m.SHA256[:16]) + `"` }

// Encoded returns the bytes compressed with coding (gzip or zstd), computed
// once per mesh.
func (m *Mesh) Encoded(coding string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.encoded[coding]; ok {
		return b, nil
	}
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch coding {
	case "zstd":
		w, err = zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	case "gzip":
		w, err = gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	default:
		return nil, fmt.Errorf("unknown content coding %q", coding)
	}
	if err == nil {
		_, err = w.Write(m.Data)
		err = errors.Join(err, w.Close())
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", coding, err)
	}
	if m.encoded == nil {
		m.encoded = map[string][]byte{}
	}
	m.encoded[coding] = buf.Bytes()
	return buf.Bytes(), nil
}

func (r *Result) size() int64 {
	n := int64(512)
	for _, m := range r.Meshes {
		n += int64(len(m.Data))
	}
	return n
}

// Formats are the mesh formats every result holds, in the order the store
// keeps them.
var Formats = []string{"glb", "obj", "ply", "stl"}

// IsFormat reports whether s is one of Formats.
func IsFormat(s string) bool { return slices.Contains(Formats, s) }

// Key identifies a result: the same key means the same mesh bytes.
type Key [32]byte

func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Cache tiers a lookup can be answered from.
const (
	TierMemory = "memory_hit"
	TierDisk   = "disk_hit"
	TierMiss   = "miss"
)

// Store is a bytes-bounded ristretto cache in front of a
// content-addressed directory: dir/ab/abcdef…/{meta.json, mesh.glb, …}. The
// directory is the source of truth; the cache only saves reading it. The
// directory is bounded too (diskBytes ≤ 0: unbounded): past the bound the
// least recently used results leave it.
type Store struct {
	dir  string
	mem  *ristretto.Cache[string, *Result]
	disk *diskBudget
	log  zerolog.Logger
}

// NewStore opens (creating it if need be) the store in dir; cacheBytes
// bounds the memory cache (0 disables it), diskBytes the directory (≤ 0:
// unbounded).
func NewStore(dir string, cacheBytes, diskBytes int64, log zerolog.Logger) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("result store %s: %w", dir, err)
	}
	s := &Store{dir: dir, disk: newDiskBudget(diskBytes), log: log}
	if err := s.disk.scan(dir); err != nil {
		return nil, fmt.Errorf("result store %s: %w", dir, err)
	}
	s.evict(s.disk.overflow())
	if cacheBytes > 0 {
		// ~1 MB per result: ten counters per expected entry, as ristretto advises.
		counters := max(cacheBytes/(1<<20)*10, 1000)
		mem, err := ristretto.NewCache(&ristretto.Config[string, *Result]{
			NumCounters:        counters,
			MaxCost:            cacheBytes,
			BufferItems:        64,
			IgnoreInternalCost: true,
		})
		if err != nil {
			return nil, fmt.Errorf("result cache: %w", err)
		}
		s.mem = mem
	}
	return s, nil
}

// DiskStats describes the directory and its bound.
func (s *Store) DiskStats() DiskStats { return s.disk.stats() }

// Close releases the memory cache.
func (s *Store) Close() {
	if s.mem != nil {
		s.mem.Close()
	}
}

func (s *Store) path(k Key) string {
	h := k.String()
	return filepath.Join(s.dir, h[:2], h)
}

// Has reports whether the directory holds a result for k, without reading it.
func (s *Store) Has(k Key) bool {
	_, err := os.Stat(filepath.Join(s.path(k), "meta.json"))
	return err == nil
}

// Get returns the result for k and the tier that answered, or (nil, TierMiss,
// nil). A corrupt entry on disk is removed and reported as a miss with an error.
func (s *Store) Get(k Key) (*Result, string, error) {
	if s.mem != nil {
		if r, ok := s.mem.Get(k.String()); ok {
			s.used(k)
			return r, TierMemory, nil
		}
	}
	r, err := s.read(k)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, TierMiss, nil
	}
	if err != nil {
		if _, statErr := os.Stat(s.path(k)); errors.Is(statErr, fs.ErrNotExist) {
			return nil, TierMiss, nil // evicted while being read
		}
		_ = os.RemoveAll(s.path(k))
		s.disk.forget(k.String())
		return nil, TierMiss, err
	}
	s.remember(r)
	s.used(k)
	return r, TierDisk, nil
}

// used moves k to the front of the eviction order, on disk too so that the
// order survives a restart.
func (s *Store) used(k Key) {
	if !s.disk.touch(k.String()) {
		return
	}
	now := time.Now()
	_ = os.Chtimes(filepath.Join(s.path(k), "meta.json"), now, now)
}

// evict removes results the disk budget gave up. A result still in memory
// keeps answering from there.
func (s *Store) evict(dirs []string) {
	for _, dir := range dirs {
		if err := os.RemoveAll(dir); err != nil {
			s.log.Warn().Err(err).Str("dir", dir).Msg("evicting a result from the store")
			continue
		}
		s.log.Debug().Str("dir", dir).Msg("evicted a result from the store")
	}
}

// remember puts r in the memory cache and waits for ristretto's buffered
// write to land, so the next request for r (often the very next one) finds
// it there instead of reading the disk again.
func (s *Store) remember(r *Result) {
	if s.mem != nil {
		s.mem.Set(r.Key.String(), r, r.size())
		s.mem.Wait()
	}
}

// meta is meta.json: everything about a result except the mesh bytes.
type meta struct {
	Version  int                 `json:"version"`
	Key      string              `json:"key"`
	Created  time.Time           `json:"created"`
	Vertices int                 `json:"vertices"`
	Faces    int                 `json:"faces"`
	Stages   []metaStage         `json:"stages"`
	Warnings []string            `json:"warnings,omitempty"`
	Formats  map[string]metaFile `json:"formats"`
}

type metaStage struct {
	Stage      string `json:"stage"`
	DurationNS int64  `json:"duration_ns"`
}

type metaFile struct {
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Put writes r into its directory atomically (a renamed temp directory) and
// remembers it in memory. A result already on disk is left as it is: equal
// keys mean equal bytes.
func (s *Store) Put(r *Result) error {
	s.remember(r)
	final := s.path(r.Key)
	if s.Has(r.Key) {
		s.evict(s.disk.add(r.Key.String(), final))
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return fmt.Errorf("result store: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(final), ".tmp-")
	if err != nil {
		return fmt.Errorf("result store: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	m := meta{Version: 1, Key: r.Key.String(), Created: r.Created, Vertices: r.Vertices, Faces: r.Faces,
		Warnings: r.Warnings, Formats: map[string]metaFile{}}
	for _, st := range r.Stages {
		m.Stages = append(m.Stages, metaStage{Stage: st.Stage, DurationNS: int64(st.Duration)})
	}
	for f, mesh := range r.Meshes {
		if err := os.WriteFile(filepath.Join(tmp, "mesh."+f), mesh.Data, 0o644); err != nil {
			return fmt.Errorf("result store: %w", err)
		}
		m.Formats[f] = metaFile{Bytes: len(mesh.Data), SHA256: hex.EncodeToString(mesh.SHA256[:])}
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("result store: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), mb, 0o644); err != nil {
		return fmt.Errorf("result store: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil && !s.Has(r.Key) {
		return fmt.Errorf("result store: %w", err)
	}
	s.evict(s.disk.add(r.Key.String(), final))
	return nil
}

// read loads a result from disk and verifies every file against its hash.
func (s *Store) read(k Key) (*Result, error) {
	dir := s.path(k)
	mb, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return nil, err
	}
	var m meta
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, fmt.Errorf("result %s: meta.json: %w", k, err)
	}
	if m.Version != 1 || m.Key != k.String() {
		return nil, fmt.Errorf("result %s: meta.json names %q (version %d)", k, m.Key, m.Version)
	}
	r := &Result{Key: k, Meshes: map[string]*Mesh{}, Vertices: m.Vertices, Faces: m.Faces,
		Warnings: m.Warnings, Created: m.Created}
	for _, st := range m.Stages {
		r.Stages = append(r.Stages, StageTiming{Stage: st.Stage, Duration: time.Duration(st.DurationNS)})
	}
	for f, mf := range m.Formats {
		if !IsFormat(f) {
			return nil, fmt.Errorf("result %s: unknown format %q", k, f)
		}
		data, err := os.ReadFile(filepath.Join(dir, "mesh."+f))
		if err != nil {
			// %v, not %w: a missing mesh file is corruption, not an absent result.
			return nil, fmt.Errorf("result %s: %v", k, err)
		}
		mesh := NewMesh(data)
		if hex.EncodeToString(mesh.SHA256[:]) != mf.SHA256 {
			return nil, fmt.Errorf("result %s: mesh.%s does not match its hash", k, f)
		}
		r.Meshes[f] = mesh
	}
	return r, nil
}
