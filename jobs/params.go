package jobs

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"time"

	"github.com/hy3d/hy3d/results"
)

// Decode modes of the volume decoder.
const (
	DecodeDense        = "dense"
	DecodeCoarseToFine = "coarse_to_fine"
)

// Params are the validated parameters of one generation.
type Params struct {
	Model      string  `json:"model"`
	Format     string  `json:"format"`
	Steps      int     `json:"steps"`
	Guidance   float64 `json:"guidance"`
	Seed       int64   `json:"seed"`
	Resolution int     `json:"resolution"`
	Faces      int     `json:"faces"`
	Decode     string  `json:"decode"`
	Priority   string  `json:"priority"`
	// Texture asks for a textured result (TexturedFormats): the mesh is
	// painted from the picture by PaintModel at TextureSize² texels.
	Texture     bool          `json:"texture,omitempty"`
	PaintModel  string        `json:"paint_model,omitempty"`
	TextureSize int           `json:"texture_size,omitempty"`
	Timeout     time.Duration `json:"-"`
}

// Formats are the formats a result of these parameters holds.
func (p Params) Formats() []string {
	if p.Texture {
		return results.TexturedFormats
	}
	return results.Formats
}

// Priorities order the queue: a job runs before every queued job of a lower
// priority, and in arrival order among its equals.
const (
	PriorityLow    = "low"
	PriorityNormal = "normal"
	PriorityHigh   = "high"
)

// priorityRank orders priorities; unknown ones (never validated) rank normal.
func priorityRank(p string) int {
	switch p {
	case PriorityLow:
		return 0
	case PriorityHigh:
		return 2
	}
	return 1
}

// CacheKey hashes the preprocessed picture with every parameter that
// changes the output. Format is absent because every result is stored in all
// formats; timeout and priority are absent because they change when a job
// stops or runs, not what it produces.
func CacheKey(picture [32]byte, p Params, fingerprint string) results.Key {
	return paramKey("hy3d-result-v1", picture, p, fingerprint)
}

// UploadKey hashes an upload's bytes, as they arrived, with the same
// parameters as CacheKey. It is asked before anything decodes the picture,
// so that a repeat costs a hash and a lookup; a re-encoded copy of a picture
// misses it and still meets its result through CacheKey.
func UploadKey(upload []byte, p Params, fingerprint string) results.Key {
	return paramKey("hy3d-upload-v1", sha256.Sum256(upload), p, fingerprint)
}

// paramKey hashes a domain, a digest and the output-changing parameters; the
// domain keeps the two kinds of key apart.
func paramKey(domain string, digest [32]byte, p Params, fingerprint string) results.Key {
	h := sha256.New()
	h.Write([]byte(domain + "\x00"))
	h.Write(digest[:])
	for _, s := range []string{p.Model, fingerprint, p.Decode} {
		h.Write(binary.AppendUvarint(nil, uint64(len(s))))
		h.Write([]byte(s))
	}
	var buf [8]byte
	for _, n := range []uint64{uint64(p.Steps), math.Float64bits(p.Guidance), uint64(p.Seed), uint64(p.Resolution), uint64(p.Faces)} {
		binary.LittleEndian.PutUint64(buf[:], n)
		h.Write(buf[:])
	}
	if p.Texture {
		// Only textured keys carry the paint fields, so that the keys of
		// untextured results stay what they were.
		h.Write(binary.AppendUvarint(nil, uint64(len(p.PaintModel))))
		h.Write([]byte(p.PaintModel))
		binary.LittleEndian.PutUint64(buf[:], uint64(p.TextureSize))
		h.Write(buf[:])
	}
	var k results.Key
	h.Sum(k[:0])
	return k
}
