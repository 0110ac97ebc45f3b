package results

import (
	"container/list"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// diskBudget keeps the result directory under a byte bound by removing the
// least recently used results. Recency survives restarts because every use
// sets meta.json's modification time, which the startup scan sorts by.
type diskBudget struct {
	limit int64 // ≤ 0: unbounded

	mu      sync.Mutex
	total   int64
	order   *list.List               // of *diskEntry, most recently used first
	entries map[string]*list.Element // key → element of order
	evicted uint64
}

type diskEntry struct {
	key   string
	dir   string
	bytes int64
}

func newDiskBudget(limit int64) *diskBudget {
	return &diskBudget{limit: limit, order: list.New(), entries: map[string]*list.Element{}}
}

// scan indexes the results already in root (oldest use first) and removes
// the temporary directories of writes a crash interrupted.
func (b *diskBudget) scan(root string) error {
	type found struct {
		diskEntry
		used time.Time
	}
	var all []found
	shards, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, shard := range shards {
		if !shard.IsDir() {
			continue
		}
		names, err := os.ReadDir(filepath.Join(root, shard.Name()))
		if err != nil {
			return err
		}
		for _, n := range names {
			dir := filepath.Join(root, shard.Name(), n.Name())
			if strings.HasPrefix(n.Name(), ".tmp-") {
				_ = os.RemoveAll(dir)
				continue
			}
			info, err := os.Stat(filepath.Join(dir, "meta.json"))
			if err != nil {
				continue // not a result; get() treats what it cannot read as a miss
			}
			all = append(all, found{diskEntry{key: n.Name(), dir: dir, bytes: dirBytes(dir)}, info.ModTime()})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].used.Before(all[j].used) })
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range all {
		e := f.diskEntry
		b.entries[e.key] = b.order.PushFront(&e)
		b.total += e.bytes
	}
	return nil
}

func dirBytes(dir string) int64 {
	files, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, f := range files {
		if info, err := f.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
	}
	return n
}

// add records a result just written (or found already written) and returns
// the directories to remove to get back under the bound. The result just
// added is never among them, even when it alone exceeds the bound.
func (b *diskBudget) add(key, dir string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if el, ok := b.entries[key]; ok {
		b.order.MoveToFront(el)
	} else {
		e := &diskEntry{key: key, dir: dir, bytes: dirBytes(dir)}
		b.entries[key] = b.order.PushFront(e)
		b.total += e.bytes
	}
	return b.overflowLocked()
}

// overflow returns the directories to remove to get back under the bound.
func (b *diskBudget) overflow() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.overflowLocked()
}

func (b *diskBudget) overflowLocked() []string {
	var victims []string
	for b.limit > 0 && b.total > b.limit && b.order.Len() > 1 {
		e := b.order.Remove(b.order.Back()).(*diskEntry)
		delete(b.entries, e.key)
		b.total -= e.bytes
		b.evicted++
		victims = append(victims, e.dir)
	}
	return victims
}

// touch marks a result as just used. It reports whether that changed the
// order: a result already the most recently used (every repeat of one
// request) needs no new modification time on disk.
func (b *diskBudget) touch(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	el, ok := b.entries[key]
	if !ok || b.order.Front() == el {
		return false
	}
	b.order.MoveToFront(el)
	return true
}

// forget drops a result that left the directory by another way.
func (b *diskBudget) forget(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if el, ok := b.entries[key]; ok {
		b.total -= el.Value.(*diskEntry).bytes
		b.order.Remove(el)
		delete(b.entries, key)
	}
}

// DiskStats describes the result directory.
type DiskStats struct {
	Results    int    `json:"results"`
	Bytes      int64  `json:"bytes"`
	LimitBytes int64  `json:"limit_bytes"` // 0: unbounded
	Evicted    uint64 `json:"evicted"`
}

func (b *diskBudget) stats() DiskStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return DiskStats{Results: b.order.Len(), Bytes: b.total, LimitBytes: max(b.limit, 0), Evicted: b.evicted}
}
