package results

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// storeResult is a result whose meshes take about size bytes on disk.
func storeResult(id byte, size int) *Result {
	data := make([]byte, size)
	data[0] = id
	return &Result{Key: Key{id}, Meshes: map[string]*Mesh{"glb": NewMesh(data)}, Created: time.Unix(0, 0)}
}

// onDisk lists which of ids the store's directory holds.
func onDisk(s *Store, ids ...byte) map[byte]bool {
	held := map[byte]bool{}
	for _, id := range ids {
		if s.Has(Key{id}) {
			held[id] = true
		}
	}
	return held
}

func TestResultStoreEvictsTheLeastRecentlyUsedPastItsBound(t *testing.T) {
	const size = 10_000 // meta.json adds a few hundred bytes per result
	tests := []struct {
		name  string
		limit int64
		use   []byte // results read back after putting 1, 2, 3 and before putting 4
		kept  []byte
	}{
		{"oldest leaves", 3 * (size + 1000), nil, []byte{2, 3, 4}},
		{"a read keeps a result", 3 * (size + 1000), []byte{1}, []byte{1, 3, 4}},
		{"room for two", 2 * (size + 1000), []byte{2}, []byte{2, 4}},
		{"newest stays even alone over the bound", size / 2, nil, []byte{4}},
		{"unbounded", -1, nil, []byte{1, 2, 3, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewStore(t.TempDir(), 0, tc.limit, Options{}, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for id := byte(1); id <= 3; id++ {
				if err := s.Put(storeResult(id, size)); err != nil {
					t.Fatal(err)
				}
			}
			for _, id := range tc.use {
				if r, tier, err := s.Get(context.Background(), Key{id}); r == nil || err != nil {
					t.Fatalf("get %d: %v %s %v", id, r, tier, err)
				}
			}
			if err := s.Put(storeResult(4, size)); err != nil {
				t.Fatal(err)
			}
			held := onDisk(s, 1, 2, 3, 4)
			for _, id := range tc.kept {
				if !held[id] {
					t.Errorf("result %d left the store; held %v", id, held)
				}
			}
			if len(held) != len(tc.kept) {
				t.Errorf("held %v, want only %v", held, tc.kept)
			}
			st := s.disk.stats()
			if st.Results != len(tc.kept) || st.Evicted != uint64(4-len(tc.kept)) {
				t.Errorf("stats %+v", st)
			}
			if tc.limit > 0 && len(tc.kept) > 1 && st.Bytes > tc.limit {
				t.Errorf("%d bytes over the bound %d", st.Bytes, tc.limit)
			}
		})
	}
}

func TestResultStoreKeepsItsOrderAndBoundAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	s, err := NewStore(dir, 0, -1, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for id := byte(1); id <= 4; id++ {
		if err := s.Put(storeResult(id, 10_000)); err != nil {
			t.Fatal(err)
		}
	}
	// Use order 2, 4, 1, 3 (3 most recent), spaced for coarse file clocks.
	for i, id := range []byte{2, 4, 1, 3} {
		at := time.Now().Add(time.Duration(i-10) * time.Second)
		if err := os.Chtimes(filepath.Join(s.path(Key{id}), "meta.json"), at, at); err != nil {
			t.Fatal(err)
		}
	}
	// A write a crash interrupted.
	if err := os.MkdirAll(filepath.Join(dir, "01", ".tmp-123"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = NewStore(dir, 0, 2*11_000, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	held := onDisk(s, 1, 2, 3, 4)
	if !held[1] || !held[3] || len(held) != 2 {
		t.Errorf("after a restart with a smaller bound, held %v; want the two most recently used, 1 and 3", held)
	}
	if _, err := os.Stat(filepath.Join(dir, "01", ".tmp-123")); !os.IsNotExist(err) {
		t.Errorf("leftover temporary directory: %v", err)
	}
	if st := s.disk.stats(); st.Results != 2 || st.Evicted != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestEvictedResultStillAnswersFromMemory(t *testing.T) {
	s, err := NewStore(t.TempDir(), 1<<20, 1, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for id := byte(1); id <= 2; id++ {
		if err := s.Put(storeResult(id, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	s.mem.Wait()
	if s.Has(Key{1}) {
		t.Fatal("result 1 is still on disk past the bound")
	}
	r, tier, err := s.Get(context.Background(), Key{1})
	if err != nil || r == nil || tier != TierMemory {
		t.Fatalf("get: %v %s %v", r, tier, err)
	}
}
