package verify

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// writeFakeReference stores the exact fake backend's results for fakeSet.
func writeFakeReference(t *testing.T) (string, Options) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "reference")
	o := testOptions()
	o.Seed = 7
	o.Sampler.Seed = 7
	if err := WriteReference(context.Background(), dir, fakeSet(), &fake{name: "exact"}, o, "make fake-reference"); err != nil {
		t.Fatal(err)
	}
	return dir, o
}

func TestReferenceReplaysWhatWasWritten(t *testing.T) {
	dir, o := writeFakeReference(t)
	set := fakeSet()
	ref, err := OpenReference(dir, set)
	if err != nil {
		t.Fatal(err)
	}
	// Comparing takes the reference's seed, batch and case whatever the
	// caller started from.
	ro := ref.Options(testOptions())
	if ro.Seed != 7 || ro.Batch != o.Batch || ro.Sampler != o.Sampler {
		t.Fatalf("Options = %+v, want seed 7, batch %d, case %+v", ro, o.Batch, o.Sampler)
	}
	skip := testOptions()
	skip.Sampler.Steps = 0
	if got := ref.Options(skip).Sampler; got.Steps != 0 {
		t.Errorf("Options of a base that skips the sampler = %+v, want it skipped", got)
	}
	r, err := Run(context.Background(), set, &fake{name: "live"}, ref, ro)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Pass || r.Want != "reference" {
		t.Fatalf("live vs reference: %+v", r)
	}
	for _, g := range r.Graphs {
		for _, c := range g.Outputs {
			if c.Worst != nil {
				t.Errorf("%s/%s differs from its reference: %+v", g.Graph, c.Output, c.Worst)
			}
		}
	}
}

func TestReferenceWritesTheSameBytesTwice(t *testing.T) {
	a, _ := writeFakeReference(t)
	b, _ := writeFakeReference(t)
	files, err := os.ReadDir(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1+3+1 { // header, double.y, split.lo, split.hi, volume
		t.Errorf("%d files in the reference, want 5", len(files))
	}
	for _, f := range files {
		x, _ := os.ReadFile(filepath.Join(a, f.Name()))
		y, err := os.ReadFile(filepath.Join(b, f.Name()))
		if err != nil || string(x) != string(y) {
			t.Errorf("%s differs between two writes (%v)", f.Name(), err)
		}
	}
}

func TestReferenceRefusesWhatItWasNotComputedFrom(t *testing.T) {
	dir, o := writeFakeReference(t)
	dir0 := dir
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(t *testing.T) (*Reference, Options)
		stale bool
		msg   string
	}{
		{"a changed ONNX graph", func(t *testing.T) (*Reference, Options) {
			set := fakeSet()
			set.FS.(fstest.MapFS)["split.onnx"] = &fstest.MapFile{Data: []byte("split v2")}
			ref, err := OpenReference(dir, set)
			if err != nil {
				t.Fatal(err)
			}
			return ref, o
		}, true, "split's ONNX file has changed"},
		{"other seeded inputs", func(t *testing.T) (*Reference, Options) {
			ref, err := OpenReference(dir, fakeSet())
			if err != nil {
				t.Fatal(err)
			}
			o := o
			o.Seed = 8
			return ref, o
		}, true, "seeded inputs"},
		{"a corrupt data file", func(t *testing.T) (*Reference, Options) {
			dir := filepath.Join(t.TempDir(), "copy")
			if err := os.CopyFS(dir, os.DirFS(dir0)); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "double.y.f32"), make([]byte, 2*4*4), 0o644); err != nil {
				t.Fatal(err)
			}
			ref, err := OpenReference(dir, fakeSet())
			if err != nil {
				t.Fatal(err)
			}
			return ref, o
		}, false, "corrupt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref, opts := tc.setup(t)
			var err error
			for _, g := range []string{"double", "split"} {
				in, ierr := Inputs(&fakeSet().Manifest, g, min(opts.Batch, fakeSet().Graphs[g].MaxBatch), opts.Seed)
				if ierr != nil {
					t.Fatal(ierr)
				}
				if _, err = ref.Run(ctx, g, in); err != nil {
					break
				}
			}
			if err == nil || errors.Is(err, ErrStaleReference) != tc.stale || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Run = %v; want an error containing %q (stale: %v)", err, tc.msg, tc.stale)
			}
			if tc.stale && !strings.Contains(err.Error(), "make fake-reference") {
				t.Errorf("%v: does not name the command that regenerates the reference", err)
			}
		})
	}
}

func TestReferenceVolumeIsForItsCaseAndGraphsOnly(t *testing.T) {
	dir, o := writeFakeReference(t)
	ctx := context.Background()
	ref, err := OpenReference(dir, fakeSet())
	if err != nil {
		t.Fatal(err)
	}
	if v, err := ref.Volume(ctx, o.Sampler); err != nil || v.Resolution != o.Sampler.Resolution {
		t.Fatalf("Volume(%+v) = %v, %v", o.Sampler, v, err)
	}
	other := o.Sampler
	other.Steps++
	if _, err := ref.Volume(ctx, other); err == nil {
		t.Error("the volume of another sampler case was returned")
	}
	set := fakeSet()
	set.FS.(fstest.MapFS)["double.onnx"] = &fstest.MapFile{Data: []byte("double v2")}
	if ref, err = OpenReference(dir, set); err != nil {
		t.Fatal(err)
	}
	if _, err := ref.Volume(ctx, o.Sampler); !errors.Is(err, ErrStaleReference) || !strings.Contains(err.Error(), "double") {
		t.Errorf("Volume after double.onnx changed = %v, want ErrStaleReference naming it", err)
	}
}

func TestOpenReferenceRefusesAnotherSetAndOtherFormats(t *testing.T) {
	dir, _ := writeFakeReference(t)
	set := fakeSet()
	set.Name = "other"
	if _, err := OpenReference(dir, set); !errors.Is(err, ErrStaleReference) {
		t.Errorf("OpenReference for another set = %v, want ErrStaleReference", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ReferenceFile), []byte(`{"format":"something/2","set":"fake"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReference(dir, fakeSet()); err == nil || !strings.Contains(err.Error(), "format") {
		t.Errorf("OpenReference of another format = %v", err)
	}
	bad := `{"format":"hy3d-verify-reference/1","set":"fake","batch":1,"sampler":{"case":{"steps":5,"resolution":100000}}}`
	if err := os.WriteFile(filepath.Join(dir, ReferenceFile), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReference(dir, fakeSet()); err == nil || !strings.Contains(err.Error(), "resolution") {
		t.Errorf("OpenReference of a case the pipeline refuses = %v", err)
	}
	if _, err := OpenReference(t.TempDir(), fakeSet()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReference of an empty folder = %v, want ErrNotExist", err)
	}
}

// FuzzOpenReference feeds arbitrary headers (the file an operator may have
// edited or truncated) through opening and replaying: errors are fine,
// panics are not.
func FuzzOpenReference(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "seed")
	o := testOptions()
	if err := WriteReference(context.Background(), dir, fakeSet(), &fake{name: "exact"}, o, "seed"); err != nil {
		f.Fatal(err)
	}
	header, err := os.ReadFile(filepath.Join(dir, ReferenceFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(header)
	f.Add([]byte(`{"format":"hy3d-verify-reference/1","set":"fake","graphs":{"double":{"outputs":[{"name":"y","shape":[-1,4],"file":"../x"}]}}}`))
	f.Add([]byte(`{"format":"hy3d-verify-reference/1","set":"fake","sampler":{"picture_sha256":"zz","volume":{"shape":[9223372036854775807,2]}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		work := t.TempDir()
		if err := os.CopyFS(work, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, ReferenceFile), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		set := fakeSet()
		ref, err := OpenReference(work, set)
		if err != nil {
			return
		}
		ro := ref.Options(o)
		// The fake's own volume stays small whatever the header asks for:
		// the pipeline's cost at a valid resolution is not the question.
		live := &fake{name: "live", volume: func(SamplerCase) *Volume { return sphere(8, 0) }}
		_, _ = Run(context.Background(), set, live, ref, ro)
	})
}
