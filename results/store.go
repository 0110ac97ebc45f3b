// Package results owns hy3d's finished meshes: Result (one generation in
// every format, with content-hash ETags and compressed variants made once
// and kept beside the mesh on disk), Key (what identifies a result), and
// Store, a bytes-bounded in-memory cache (ristretto) in front of a
// content-addressed directory that is the source of truth and is itself
// bounded, least recently used results leaving first and no client holding
// more than its share while others' results would have to leave. The store
// bounds how many disk reads and compressions run at once, so that a burst
// of downloads of large uncached results queues instead of taking every core
// and the memory each one needs.
package results

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
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
	Owner    string // the client whose request made it, for the store's per-client share
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
	kept    *keptFile         // where the store keeps the mesh, once it does
}

// keptFile is a mesh's file in the store, beside which its compressed
// variants are kept.
type keptFile struct {
	store *Store
	key   Key
	path  string
}

func NewMesh(data []byte) *Mesh { return &Mesh{Data: data, SHA256: sha256.Sum256(data)} }

// ETag is a strong validator of the identity representation.
func (m *Mesh) ETag() string { return `"` + hex.EncodeToString(m.SHA256[:16]) + `"` }

// Encoded returns the bytes compressed with coding (gzip or zstd): from
// memory, else from the variant the store keeps beside the mesh, else
// compressed now (and then kept there). Waiting for the store's bound on
// concurrent heavy work ends with ctx.
func (m *Mesh) Encoded(ctx context.Context, coding string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.encoded[coding]; ok {
		return b, nil
	}
	if coding != "zstd" && coding != "gzip" {
		return nil, fmt.Errorf("unknown content coding %q", coding)
	}
	if m.kept != nil {
		release, err := m.kept.store.acquire(ctx)
		if err != nil {
			return nil, err
		}
		defer release()
		if b := m.kept.variant(coding); b != nil {
			m.rememberEncoded(coding, b)
			return b, nil
		}
	}
	b, err := compress(m.Data, coding)
	if err != nil {
		return nil, err
	}
	m.rememberEncoded(coding, b)
	if m.kept != nil && len(m.Data) >= keepVariantBytes {
		m.kept.keepVariant(coding, b)
	}
	return b, nil
}

func (m *Mesh) rememberEncoded(coding string, b []byte) {
	if m.encoded == nil {
		m.encoded = map[string][]byte{}
	}
	m.encoded[coding] = b
}

func (m *Mesh) keep(f *keptFile) {
	m.mu.Lock()
	m.kept = f
	m.mu.Unlock()
}

// keepVariantBytes is the smallest mesh whose compressed variants are kept
// on disk: below it compressing again costs less than a file.
const keepVariantBytes = 1 << 20

func compress(data []byte, coding string) ([]byte, error) {
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
		_, err = w.Write(data)
		err = errors.Join(err, w.Close())
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", coding, err)
	}
	return buf.Bytes(), nil
}

// variant reads the kept variant for coding, or nil. Its file is named
// after its own hash, so that a damaged variant is found and removed
// instead of served.
func (f *keptFile) variant(coding string) []byte {
	names, _ := filepath.Glob(f.path + "." + coding + ".*")
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err == nil && strings.HasSuffix(name, "."+variantHash(b)) {
			return b
		}
		_ = os.Remove(name)
		f.store.log.Warn().Str("file", name).Msg("removed a damaged compressed variant from the store")
	}
	return nil
}

// keepVariant writes a compressed variant beside its mesh. Failing to
// (a result evicted meanwhile, a full disk) costs only a later compression.
func (f *keptFile) keepVariant(coding string, b []byte) {
	name := f.path + "." + coding + "." + variantHash(b)
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".tmp-variant-")
	if err == nil {
		_, err = tmp.Write(b)
		err = errors.Join(err, tmp.Close())
		if err == nil {
			err = os.Rename(tmp.Name(), name)
		}
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}
	if err != nil {
		f.store.log.Debug().Err(err).Str("file", name).Msg("could not keep a compressed variant")
		return
	}
	f.store.evict(f.store.disk.grow(f.key.String(), int64(len(b))))
}

func variantHash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

func (r *Result) size() int64 {
	n := int64(512)
	for _, m := range r.Meshes {
		n += int64(len(m.Data))
	}
	return n
}

// Formats are the mesh formats every untextured result holds, in the order
// the store keeps them.
var Formats = []string{"glb", "obj", "ply", "stl"}

// TexturedFormats are the formats every textured result holds: a GLB with
// its material, and a zip of OBJ, MTL and texture images. PLY and STL carry
// no texture.
var TexturedFormats = []string{"glb", "zip"}

// IsFormat reports whether s is one of Formats or TexturedFormats.
func IsFormat(s string) bool {
	return slices.Contains(Formats, s) || slices.Contains(TexturedFormats, s)
}

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
	dir   string
	mem   *ristretto.Cache[string, *Result]
	disk  *diskBudget
	heavy chan struct{} // one token per disk read or compression under way
	log   zerolog.Logger
}

// Options tunes a store beyond its two bounds.
type Options struct {
	// ClientShare is the part of the directory's bound one client may hold
	// before its own results leave first (0: 1/4; ≥ 1: no share).
	ClientShare float64
	// HeavyWork bounds the disk reads and compressions running at once
	// (0: the number of CPUs, at least 2).
	HeavyWork int
}

// NewStore opens (creating it if need be) the store in dir; cacheBytes
// bounds the memory cache (0 disables it), diskBytes the directory (≤ 0:
// unbounded).
func NewStore(dir string, cacheBytes, diskBytes int64, opt Options, log zerolog.Logger) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("result store %s: %w", dir, err)
	}
	if opt.ClientShare == 0 {
		opt.ClientShare = 0.25
	}
	if opt.HeavyWork <= 0 {
		opt.HeavyWork = max(runtime.NumCPU(), 2)
	}
	s := &Store{dir: dir, disk: newDiskBudget(diskBytes, opt.ClientShare), heavy: make(chan struct{}, opt.HeavyWork), log: log}
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

// acquire waits for a turn at heavy work; release ends it.
func (s *Store) acquire(ctx context.Context) (release func(), err error) {
	select {
	case s.heavy <- struct{}{}:
		return func() { <-s.heavy }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting to read the result store: %w", context.Cause(ctx))
	}
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
// nil). A corrupt entry on disk is removed and reported as a miss with an
// error. Reading the disk waits its turn among the store's heavy work; if
// ctx ends first, Get returns ctx's error (check ctx.Err to tell it from
// corruption).
func (s *Store) Get(ctx context.Context, k Key) (*Result, string, error) {
	if s.mem != nil {
		if r, ok := s.mem.Get(k.String()); ok {
			s.used(k)
			return r, TierMemory, nil
		}
	}
	if !s.Has(k) {
		return nil, TierMiss, nil
	}
	release, err := s.acquire(ctx)
	if err != nil {
		return nil, TierMiss, err
	}
	r, err := s.read(k)
	release()
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
	Owner    string              `json:"owner,omitempty"`
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
		s.keepMeshes(r)
		s.evict(s.disk.add(r.Key.String(), final, r.Owner))
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
	m := meta{Version: 1, Key: r.Key.String(), Owner: r.Owner, Created: r.Created, Vertices: r.Vertices,
		Faces: r.Faces, Warnings: r.Warnings, Formats: map[string]metaFile{}}
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
	s.keepMeshes(r)
	s.evict(s.disk.add(r.Key.String(), final, r.Owner))
	return nil
}

// keepMeshes tells r's meshes where the store keeps them, so that their
// compressed variants are kept beside them.
func (s *Store) keepMeshes(r *Result) {
	for f, mesh := range r.Meshes {
		mesh.keep(&keptFile{store: s, key: r.Key, path: filepath.Join(s.path(r.Key), "mesh."+f)})
	}
}

// readOwner is the owner meta.json in dir names, or "".
func readOwner(dir string) string {
	mb, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return ""
	}
	var m struct {
		Owner string `json:"owner"`
	}
	_ = json.Unmarshal(mb, &m)
	return m.Owner
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
	r := &Result{Key: k, Owner: m.Owner, Meshes: map[string]*Mesh{}, Vertices: m.Vertices, Faces: m.Faces,
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
	s.keepMeshes(r)
	return r, nil
}
