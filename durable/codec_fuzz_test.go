package durable

import (
	"testing"
	"time"

	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/results"
)

// What the broker reads from NATS was written by another hy3d, but a
// damaged file or a stranger on the subjects may hand it anything: the
// decoders refuse it with an error, never a panic, and what they accept
// reads back the same.

func FuzzDecodeJob(f *testing.F) {
	spec := jobs.Spec{Key: results.Key{1}, ID: "abc", Model: "tiny", Params: jobs.Params{Steps: 3, Timeout: time.Minute},
		Input: &jobs.Prepared{Format: "png", Width: 2, Height: 3}, Enqueued: time.Unix(1, 0), Deadline: time.Unix(2, 0)}
	f.Add(encodeJob(specToWire(spec), []byte("picture")))
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, image, _, err := decodeJob(data)
		if err != nil {
			return
		}
		again, image2, _, err := decodeJob(encodeJob(specToWire(spec), image))
		if err != nil || again.ID != spec.ID || again.Key != spec.Key || string(image2) != string(image) {
			t.Fatalf("a decoded job does not read back: %v", err)
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	key := results.Key{7}
	r := &results.Result{Key: key, Meshes: map[string]*results.Mesh{}, Vertices: 3, Faces: 1, Created: time.Unix(5, 0)}
	for _, format := range results.Formats {
		r.Meshes[format] = results.NewMesh([]byte(format + " mesh"))
	}
	f.Add(encodeResult(r))
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeResult(data, key)
		if err != nil {
			return
		}
		again, err := decodeResult(encodeResult(got), key)
		if err != nil || len(again.Meshes) != len(got.Meshes) {
			t.Fatalf("a decoded result does not read back: %v", err)
		}
		for f, m := range got.Meshes {
			if again.Meshes[f].SHA256 != m.SHA256 {
				t.Fatalf("%s changed", f)
			}
		}
	})
}

func FuzzDecodeRecords(f *testing.F) {
	f.Add(encodeTask(jobs.TaskRecord{Key: results.Key{1}, ID: "t", State: jobs.StateRunning, Holders: 2}), true)
	f.Add(encodeGeneration(jobs.GenerationRecord{ID: "g", Key: results.Key{1}, Input: &jobs.Prepared{Format: "png"}}), false)
	f.Fuzz(func(t *testing.T, data []byte, task bool) {
		if task {
			if rec, err := decodeTask(data, 1); err == nil {
				if back, err := decodeTask(encodeTask(rec), 1); err != nil || back.ID != rec.ID || back.Key != rec.Key {
					t.Fatalf("a decoded task record does not read back: %v", err)
				}
			}
			return
		}
		if rec, err := decodeGeneration(data); err == nil {
			if back, err := decodeGeneration(encodeGeneration(rec)); err != nil || back.ID != rec.ID || back.Key != rec.Key {
				t.Fatalf("a decoded generation record does not read back: %v", err)
			}
		}
	})
}
