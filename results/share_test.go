package results

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/rs/zerolog"
)

func ownedResult(id byte, owner string, size int) *Result {
	r := storeResult(id, size)
	r.Owner = owner
	return r
}

func TestOneClientCannotPushEveryoneElsesResultsOut(t *testing.T) {
	const size = 10_000
	bound := int64(10 * (size + 1000))
	tests := []struct {
		name  string
		share float64
		// results 1–4 belong to others; a flood of 20 comes from "flood".
		othersKept int
	}{
		{"a quarter share leaves the others in place", 0.25, 4},
		{"half a share too", 0.5, 4},
		{"no share: plain recency lets the flood take everything", 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewStore(t.TempDir(), 0, bound, Options{ClientShare: tc.share}, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for id := byte(1); id <= 4; id++ {
				if err := s.Put(ownedResult(id, "10.0.0."+string('0'+id), size)); err != nil {
					t.Fatal(err)
				}
			}
			for id := byte(100); id < 120; id++ {
				if err := s.Put(ownedResult(id, "flood", size)); err != nil {
					t.Fatal(err)
				}
			}
			if got := len(onDisk(s, 1, 2, 3, 4)); got != tc.othersKept {
				t.Errorf("%d of the other clients' 4 results kept, want %d", got, tc.othersKept)
			}
			if !s.Has(Key{119}) {
				t.Error("the flood's newest result left the store")
			}
			st := s.disk.stats()
			if st.Bytes > bound {
				t.Errorf("%d bytes over the bound %d", st.Bytes, bound)
			}
		})
	}
}

func TestClientShareSurvivesARestart(t *testing.T) {
	const size = 10_000
	dir := t.TempDir()
	s, err := NewStore(dir, 0, -1, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ownedResult(1, "other", size)); err != nil {
		t.Fatal(err)
	}
	for id := byte(100); id < 104; id++ {
		if err := s.Put(ownedResult(id, "flood", size)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// Four of the five fit; the flood holds more than half of the bound, so
	// its oldest leaves although the other client's result is older.
	s, err = NewStore(dir, 0, 4*(size+1000), Options{ClientShare: 0.5}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	held := onDisk(s, 1, 100, 101, 102, 103)
	if !held[1] || held[100] || len(held) != 4 {
		t.Errorf("held %v; want the other client's result and the flood's newest three", held)
	}
	r, _, err := s.Get(context.Background(), Key{1})
	if err != nil || r == nil || r.Owner != "other" {
		t.Fatalf("owner not read back: %+v %v", r, err)
	}
}

// textResult is a result whose OBJ is large enough for its compressed
// variants to be kept on disk.
func textResult(id byte) *Result {
	var obj []byte
	for i := 0; len(obj) < 2*keepVariantBytes; i++ {
		// Vertex lines with varied digits compress about as a real OBJ does.
		obj = fmt.Appendf(obj, "v %.6f %.6f %.6f\n", math.Sin(float64(i)), math.Cos(float64(i)*0.7), float64(i%977)/977)
	}
	return &Result{Key: Key{id}, Meshes: map[string]*Mesh{"obj": NewMesh(obj)}, Created: time.Unix(0, 0)}
}

func variantFiles(t *testing.T, s *Store, k Key, coding string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(s.path(k), "mesh.obj."+coding+".*"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestCompressedVariantsAreKeptOnDiskAndChecked(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := NewStore(dir, 0, -1, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	r := textResult(1)
	if err := s.Put(r); err != nil {
		t.Fatal(err)
	}
	gz, err := r.Meshes["obj"].Encoded(ctx, "gzip")
	if err != nil {
		t.Fatal(err)
	}
	files := variantFiles(t, s, r.Key, "gzip")
	if len(files) != 1 {
		t.Fatalf("gzip variants on disk: %v", files)
	}
	if st := s.disk.stats(); st.Bytes < int64(len(r.Meshes["obj"].Data)+len(gz)) {
		t.Errorf("the directory's %d bytes do not count the %d-byte variant", st.Bytes, len(gz))
	}
	s.Close()

	// A new store (nothing in memory) serves the kept bytes.
	s, err = NewStore(dir, 0, -1, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	read := func() []byte {
		t.Helper()
		got, _, err := s.Get(ctx, r.Key)
		if err != nil || got == nil {
			t.Fatalf("get: %v %v", got, err)
		}
		b, err := got.Meshes["obj"].Encoded(ctx, "gzip")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if b := read(); !bytes.Equal(b, gz) {
		t.Error("the variant read back differs from the one kept")
	}

	// A damaged variant is removed and made again, never served.
	if err := os.WriteFile(files[0], []byte("not gzip"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := read()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("served a damaged variant: %v", err)
	}
	var plain bytes.Buffer
	if _, err := plain.ReadFrom(zr); err != nil || !bytes.Equal(plain.Bytes(), r.Meshes["obj"].Data) {
		t.Fatalf("the variant made again does not decompress to the mesh: %v", err)
	}
	if files := variantFiles(t, s, r.Key, "gzip"); len(files) != 1 || strings.HasSuffix(files[0], variantHash([]byte("not gzip"))) {
		t.Errorf("gzip variants after the damage: %v", files)
	}
}

func TestSmallMeshesKeepNoVariantFiles(t *testing.T) {
	s, err := NewStore(t.TempDir(), 0, -1, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := &Result{Key: Key{2}, Meshes: map[string]*Mesh{"obj": NewMesh(bytes.Repeat([]byte("v 1 2 3\n"), 1000))}}
	if err := s.Put(r); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Meshes["obj"].Encoded(context.Background(), "zstd"); err != nil {
		t.Fatal(err)
	}
	if files := variantFiles(t, s, r.Key, "zstd"); len(files) != 0 {
		t.Errorf("variant files for a small mesh: %v", files)
	}
}

func TestHeavyWorkWaitsItsTurnAndEndsWithTheContext(t *testing.T) {
	s, err := NewStore(t.TempDir(), 0, -1, Options{HeavyWork: 1}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := textResult(3)
	if err := s.Put(r); err != nil {
		t.Fatal(err)
	}
	release, err := s.acquire(context.Background()) // someone else's read under way
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if got, _, err := s.Get(ctx, r.Key); got != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("get while the only turn is taken: %v %v, want the context's deadline", got, err)
	}
	if _, err := r.Meshes["obj"].Encoded(ctx, "gzip"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("compression while the only turn is taken: %v, want the context's deadline", err)
	}
	release()
	if got, tier, err := s.Get(context.Background(), r.Key); got == nil || err != nil || tier != TierDisk {
		t.Errorf("get after the turn came back: %v %s %v", got, tier, err)
	}
	if got, tier, err := s.Get(ctx, Key{99}); got != nil || err != nil || tier != TierMiss {
		t.Errorf("a miss must not wait for a turn: %v %s %v", got, tier, err)
	}
}

// BenchmarkGzipOfAnUncachedResult compares answering a gzip download of a
// result that is no longer in memory by compressing it again with reading
// the variant kept on disk.
func BenchmarkGzipOfAnUncachedResult(b *testing.B) {
	ctx := context.Background()
	for _, keep := range []bool{false, true} {
		name := "compress"
		if keep {
			name = "kept-variant"
		}
		b.Run(name, func(b *testing.B) {
			s, err := NewStore(b.TempDir(), 0, -1, Options{}, zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			r := textResult(4)
			if err := s.Put(r); err != nil {
				b.Fatal(err)
			}
			if keep {
				if _, err := r.Meshes["obj"].Encoded(ctx, "gzip"); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(r.Meshes["obj"].Data)))
			for b.Loop() {
				m := NewMesh(r.Meshes["obj"].Data) // as read back from disk, nothing in memory
				if keep {
					m.keep(&keptFile{store: s, key: r.Key, path: filepath.Join(s.path(r.Key), "mesh.obj")})
				}
				if _, err := m.Encoded(ctx, "gzip"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
