package jobs

import (
	"testing"
	"time"

	"github.com/hy3d/hy3d/results"
)

func TestEveryKeyChangesWithEachOutputParameterAndTheFingerprint(t *testing.T) {
	base := Params{Model: "tiny", Format: "glb", Steps: 5, Guidance: 5, Seed: 1, Resolution: 64, Faces: 1000,
		Decode: DecodeDense, Priority: PriorityNormal, Timeout: time.Minute}
	picture := [32]byte{1}
	upload := []byte("picture bytes")
	keys := map[string]func(p Params, fp string) results.Key{
		"cacheKey":  func(p Params, fp string) results.Key { return CacheKey(picture, p, fp) },
		"uploadKey": func(p Params, fp string) results.Key { return UploadKey(upload, p, fp) },
	}
	for name, key := range keys {
		k := key(base, "fp1")
		changed := map[string]results.Key{"fingerprint": key(base, "fp2")}
		for field, edit := range map[string]func(*Params){
			"model": func(p *Params) { p.Model = "other" }, "steps": func(p *Params) { p.Steps++ },
			"guidance": func(p *Params) { p.Guidance += 0.5 }, "seed": func(p *Params) { p.Seed++ },
			"resolution": func(p *Params) { p.Resolution++ }, "faces": func(p *Params) { p.Faces++ },
			"decode": func(p *Params) { p.Decode = DecodeCoarseToFine },
		} {
			p := base
			edit(&p)
			changed[field] = key(p, "fp1")
		}
		for field, c := range changed {
			if c == k {
				t.Errorf("%s ignores %s", name, field)
			}
		}
		same := base
		same.Format, same.Priority, same.Timeout = "obj", PriorityHigh, time.Hour
		if key(same, "fp1") != k {
			t.Errorf("%s changes with format, priority or timeout", name)
		}
	}
	if UploadKey(upload, base, "fp1") == CacheKey([32]byte{}, base, "fp1") {
		t.Error("the two kinds of key collide")
	}
	if UploadKey([]byte("other bytes"), base, "fp1") == UploadKey(upload, base, "fp1") {
		t.Error("uploadKey ignores the bytes")
	}
}
