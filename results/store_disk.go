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
//
// One client cannot push everyone else's results out: while some owner
// holds more than its share of the bound, that owner's own least recently
// used results leave first. Below its share a client's results compete in
// plain recency order with everyone's.
type diskBudget struct {
	limit int64 // ≤ 0: unbounded
	share int64 // bytes one owner may hold before its results leave first; ≤ 0: no share

	mu      sync.Mutex
	total   int64
	order   *list.List               // of *diskEntry, most recently used first
	entries map[string]*list.Element // key → element of order
	owned   map[string]int64         // owner → bytes of its results
	evicted uint64
}

type diskEntry struct {
	key   string
	dir   string
	owner string
	bytes int64
}

func newDiskBudget(limit int64, share float64) *diskBudget {
	b := &diskBudget{limit: limit, order: list.New(), entries: map[string]*list.Element{}, owned: map[string]int64{}}
	if limit > 0 && share > 0 && share < 1 {
		b.share = int64(float64(limit) * share)
	}
	return b
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
			e := diskEntry{key: n.Name(), dir: dir, owner: readOwner(dir), bytes: dirBytes(dir)}
			all = append(all, found{e, info.ModTime()})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].used.Before(all[j].used) })
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range all {
		e := f.diskEntry
		b.entries[e.key] = b.order.PushFront(&e)
		b.total += e.bytes
		b.owned[e.owner] += e.bytes
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

// add records a result just written (or found already written) by owner
// and returns the directories to remove to get back under the bound. The
// result just added is never among them, even when it alone exceeds the
// bound.
func (b *diskBudget) add(key, dir, owner string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if el, ok := b.entries[key]; ok {
		b.order.MoveToFront(el)
	} else {
		e := &diskEntry{key: key, dir: dir, owner: owner, bytes: dirBytes(dir)}
		b.entries[key] = b.order.PushFront(e)
		b.total += e.bytes
		b.owned[owner] += e.bytes
	}
	return b.overflowLocked()
}

// grow counts bytes written into a result's directory after it was added
// (a compressed variant) and returns the directories to remove to get back
// under the bound; the result that grew is never among them.
func (b *diskBudget) grow(key string, n int64) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	el, ok := b.entries[key]
	if !ok {
		return nil
	}
	e := el.Value.(*diskEntry)
	e.bytes += n
	b.total += n
	b.owned[e.owner] += n
	b.order.MoveToFront(el)
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
		el := b.victimLocked()
		e := b.order.Remove(el).(*diskEntry)
		b.dropLocked(e)
		b.evicted++
		victims = append(victims, e.dir)
	}
	return victims
}

// victimLocked is the least recently used result of the owner holding the
// most bytes beyond its share, or else the least recently used of all. The
// most recently used result (the one just added) is never chosen.
func (b *diskBudget) victimLocked() *list.Element {
	over, overBytes := "", b.share
	if b.share > 0 {
		for owner, n := range b.owned {
			if owner != "" && n > overBytes {
				over, overBytes = owner, n
			}
		}
	}
	if over != "" {
		for el := b.order.Back(); el != b.order.Front(); el = el.Prev() {
			if el.Value.(*diskEntry).owner == over {
				return el
			}
		}
	}
	return b.order.Back()
}

func (b *diskBudget) dropLocked(e *diskEntry) {
	delete(b.entries, e.key)
	b.total -= e.bytes
	if b.owned[e.owner] -= e.bytes; b.owned[e.owner] <= 0 {
		delete(b.owned, e.owner)
	}
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
		b.dropLocked(b.order.Remove(el).(*diskEntry))
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
