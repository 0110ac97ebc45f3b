package jobs

import "github.com/hy3d/hy3d/results"

// uploadIndexEntries bounds the upload index: about 100 bytes each.
const uploadIndexEntries = 1 << 16

// uploadEntry is what the bytes of one upload, with its parameters, became.
type uploadEntry struct {
	result     results.Key // the result's key in the store
	generation string      // the generation that made or answered it
	input      *Prepared   // the picture's description, without its tensor
}

// uploadIndex maps upload keys to their results, so that a repeated request
// is answered before its picture is decoded. It holds at most max entries
// and forgets the oldest first; forgetting costs only speed, since the key
// on preprocessed pixels still finds the result. The engine's mutex
// guards it.
type uploadIndex struct {
	max     int
	entries map[results.Key]uploadEntry
	order   []results.Key // insertion order
}

func newUploadIndex(max int) *uploadIndex {
	return &uploadIndex{max: max, entries: map[results.Key]uploadEntry{}}
}

func (x *uploadIndex) get(k results.Key) (uploadEntry, bool) {
	e, ok := x.entries[k]
	return e, ok
}

func (x *uploadIndex) put(k results.Key, e uploadEntry) {
	if _, known := x.entries[k]; !known {
		x.order = append(x.order, k)
	}
	x.entries[k] = e
	for len(x.entries) > x.max {
		delete(x.entries, x.order[0])
		x.order = x.order[1:]
	}
}
