package paint

import (
	"context"
	"errors"
	"image"
	"image/color"
	"slices"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/mesh"
	"github.com/hy3d/hy3d/pipeline"
	"github.com/hy3d/hy3d/tensor"
)

// countingLoader wraps a backend: it counts every graph's calls and rows,
// and fails a call when fail says so.
type countingLoader struct {
	pipeline.Loader
	mu    sync.Mutex
	calls map[string]int
	rows  map[string]int
	fail  func(graph string, in []tensor.Tensor) error
}

type countingEngine struct {
	pipeline.Engine
	l     *countingLoader
	graph string
}

func (l *countingLoader) Load(ctx context.Context, set *engines.Set, graph string) (pipeline.Engine, error) {
	e, err := l.Loader.Load(ctx, set, graph)
	if err != nil {
		return nil, err
	}
	return &countingEngine{Engine: e, l: l, graph: graph}, nil
}

func (e *countingEngine) Run(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
	e.l.mu.Lock()
	e.l.calls[e.graph]++
	e.l.rows[e.graph] += int(in[0].Shape[0])
	fail := e.l.fail
	e.l.mu.Unlock()
	if fail != nil {
		if err := fail(e.graph, in); err != nil {
			return nil, err
		}
	}
	return e.Engine.Run(ctx, in)
}

// counts returns the calls and rows so far and starts counting again.
func (l *countingLoader) counts() (calls, rows map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	calls, rows = l.calls, l.rows
	l.calls, l.rows = map[string]int{}, map[string]int{}
	return calls, rows
}

// newCountingPainter is newPainter over a countingLoader, with a condition
// cache of cacheBytes.
func newCountingPainter(t testing.TB, name string, cacheBytes int64) (*Painter, *countingLoader) {
	t.Helper()
	set, l := openTinySet(t, name)
	cl := &countingLoader{Loader: l, calls: map[string]int{}, rows: map[string]int{}}
	p, err := New(context.Background(), Config{Set: set, Loader: cl, Logger: zerolog.Nop(), Threads: 2, CacheBytes: cacheBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, cl
}

// paintCase is one job of the batching tests.
type paintCase struct {
	m   *mesh.Mesh
	pic image.Image
	opt Options
}

func paintCases() []paintCase {
	return []paintCase{
		{sphere(8, 16), quadrants(64), Options{TextureSize: 64, Seed: 1, Steps: 3}},
		{sphere(6, 12), quadrants(40), Options{TextureSize: 64, Seed: 2, Steps: 2, GuidanceScale: 1.5}},
		{sphere(10, 14), solid(48, color.NRGBA{200, 120, 30, 255}), Options{TextureSize: 64, Seed: 3, Steps: 4}},
	}
}

// solid is a size² picture of one colour.
func solid(size int, c color.NRGBA) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for p := 0; p < size*size; p++ {
		copy(img.Pix[4*p:], []uint8{c.R, c.G, c.B, c.A})
	}
	return img
}

// sameResult fails unless a and b carry the same GLB, views and textures.
func sameResult(t *testing.T, what string, a, b *Result) {
	t.Helper()
	if !slices.Equal(a.GLB, b.GLB) {
		t.Errorf("%s: GLBs differ (%d and %d bytes)", what, len(a.GLB), len(b.GLB))
	}
	if !slices.Equal(a.Material.BaseColor.Pix, b.Material.BaseColor.Pix) {
		t.Errorf("%s: base colour textures differ", what)
	}
	if len(a.Views) != len(b.Views) {
		t.Fatalf("%s: %d and %d views", what, len(a.Views), len(b.Views))
	}
	for i := range a.Views {
		if !slices.Equal(a.Views[i].Pix, b.Views[i].Pix) {
			t.Errorf("%s: view %d differs", what, i)
		}
	}
	if a.Steps != b.Steps {
		t.Errorf("%s: %d and %d steps", what, a.Steps, b.Steps)
	}
}

// Jobs stepped together — two that arrive together, a third that joins
// while they are mid-loop and starts at its own step 0, each at its own
// step count — give the same result, byte for byte, as each job painted
// alone; every Step makes ceil(running/JobsPerCall) paint_unet calls, none
// over the graph's batch; a finished job's Finish runs while the others
// step.
func TestStepBatchesJobsAtDifferentSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the paint graphs")
	}
	for _, set := range []string{"tiny-paint-2.0-oracle", "tiny-paint-2.0", "tiny-paint-2.0-turbo", "tiny-paint-2.1", "tiny-paint-2.1-oracle"} {
		t.Run(set, func(t *testing.T) {
			ctx := context.Background()
			p, cl := newCountingPainter(t, set, 0)
			cases := paintCases()
			alone := make([]*Result, len(cases))
			for i, c := range cases {
				res, err := p.Paint(ctx, c.m, c.pic, c.opt)
				if err != nil {
					t.Fatal(err)
				}
				alone[i] = res
			}
			jobs := make([]*Job, len(cases))
			prepare := func(idx ...int) {
				var batch []*Job
				for _, i := range idx {
					j, err := p.Prepare(ctx, cases[i].m, cases[i].pic, cases[i].opt)
					if err != nil {
						t.Fatal(err)
					}
					jobs[i] = j
					batch = append(batch, j)
				}
				for i, err := range p.Condition(ctx, batch) {
					if err != nil {
						t.Fatalf("condition job %d: %v", idx[i], err)
					}
				}
			}
			prepare(0, 1)
			results := make([]*Result, len(cases))
			var wg sync.WaitGroup
			running := []int{0, 1}
			cl.counts()
			for round := 0; len(running) > 0; round++ {
				if round == 1 {
					prepare(2)
					if step, steps := jobs[2].Progress(); step != 0 || steps != cases[2].opt.Steps {
						t.Fatalf("joining job at step %d of %d", step, steps)
					}
					if step, _ := jobs[0].Progress(); step != 1 {
						t.Fatalf("job 0 at step %d when job 2 joins", step)
					}
					running = append(running, 2)
				}
				var step []*Job
				for _, i := range running {
					step = append(step, jobs[i])
				}
				if err := p.Step(ctx, step); err != nil {
					t.Fatal(err)
				}
				calls, rows := cl.counts()
				want := (len(step) + p.JobsPerCall() - 1) / p.JobsPerCall()
				if calls[engines.PaintUNet] != want {
					t.Errorf("round %d: %d paint_unet calls for %d jobs, want %d", round, calls[engines.PaintUNet], len(step), want)
				}
				if batch := p.batchOf(engines.PaintUNet); rows[engines.PaintUNet] > want*batch {
					t.Errorf("round %d: %d rows in %d calls of batch %d", round, rows[engines.PaintUNet], want, batch)
				}
				running = slices.DeleteFunc(running, func(i int) bool {
					if !jobs[i].Done() {
						return false
					}
					wg.Add(1)
					go func() { // Finish runs while the others step
						defer wg.Done()
						res, err := p.Finish(ctx, jobs[i])
						if err != nil {
							t.Error(err)
						}
						results[i] = res
					}()
					return true
				})
			}
			wg.Wait()
			for i := range cases {
				if results[i] == nil {
					t.Fatalf("job %d has no result", i)
				}
				sameResult(t, "job "+string(rune('0'+i)), results[i], alone[i])
			}
		})
	}
}

// A condition cache hit: a second job with the same picture key and seed
// (another mesh) makes no delight, paint_ref or dinov2 call and encodes no
// reference (only its 2N maps), is marked ConditionCached and equals the
// same job painted without the cache. A job with the same picture and
// another seed reuses what does not depend on the seed (2.1: the DINOv2
// tokens, the reference's encoding) and runs paint_ref again.
func TestConditionCacheSkipsThePictureGraphs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the paint graphs")
	}
	for _, tc := range []struct {
		set          string
		reusedOnSeed []string // graphs not called for a new seed
	}{
		{"tiny-paint-2.0", nil},
		{"tiny-paint-2.1", []string{engines.DINOv2}},
	} {
		t.Run(tc.set, func(t *testing.T) {
			ctx := context.Background()
			p, cl := newCountingPainter(t, tc.set, 64<<20)
			plain, _ := newCountingPainter(t, tc.set, 0)
			key := [32]byte{1, 2, 3}
			pic := quadrants(64)
			opt := Options{TextureSize: 64, Seed: 5, Steps: 2, PictureKey: key}
			first, err := p.Paint(ctx, sphere(8, 16), pic, opt)
			if err != nil {
				t.Fatal(err)
			}
			if first.ConditionCached {
				t.Error("the first job is marked cached")
			}
			cl.counts()
			second, err := p.Paint(ctx, sphere(6, 20), pic, opt)
			if err != nil {
				t.Fatal(err)
			}
			calls, rows := cl.counts()
			for _, g := range []string{engines.Delight, engines.PaintRef, engines.DINOv2} {
				if calls[g] != 0 {
					t.Errorf("cached job called %s %d times", g, calls[g])
				}
			}
			if n := 2 * p.Spec().Views; rows[engines.VAEEncoder] != n {
				t.Errorf("cached job encoded %d images, want its %d maps", rows[engines.VAEEncoder], n)
			}
			if !second.ConditionCached {
				t.Error("the second job is not marked cached")
			}
			if st := p.CacheStats(); st.Hits != 2 || st.Misses != 2 {
				t.Errorf("cache stats %+v, want 2 hits and 2 misses", st)
			}
			want, err := plain.Paint(ctx, sphere(6, 20), pic, Options{TextureSize: 64, Seed: 5, Steps: 2})
			if err != nil {
				t.Fatal(err)
			}
			sameResult(t, "cached job", second, want)

			opt.Seed = 6
			third, err := p.Paint(ctx, sphere(6, 20), pic, opt)
			if err != nil {
				t.Fatal(err)
			}
			calls, _ = cl.counts()
			if calls[engines.PaintRef] != 1 {
				t.Errorf("new seed: %d paint_ref calls, want 1", calls[engines.PaintRef])
			}
			for _, g := range tc.reusedOnSeed {
				if calls[g] != 0 {
					t.Errorf("new seed: %s called %d times, want its cached output", g, calls[g])
				}
			}
			if third.ConditionCached {
				t.Error("a job that ran paint_ref is marked cached")
			}
			opt.PictureKey = [32]byte{}
			want, err = plain.Paint(ctx, sphere(6, 20), pic, opt)
			if err != nil {
				t.Fatal(err)
			}
			sameResult(t, "new seed", third, want)
		})
	}
}

// A graph failing on one job's picture during a shared Condition ends that
// job alone: the others are conditioned, step together and give the
// results they give alone.
func TestConditionErrorEndsOnlyThatJob(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the paint graphs")
	}
	ctx := context.Background()
	p, cl := newCountingPainter(t, "tiny-paint-2.0-turbo", 0)
	// A black picture becomes an encoder row of −1 everywhere; no map does.
	cl.fail = func(graph string, in []tensor.Tensor) error {
		if graph != engines.VAEEncoder {
			return nil
		}
		per := len(in[0].Data) / int(in[0].Shape[0])
		for r := 0; r < int(in[0].Shape[0]); r++ {
			row := in[0].Data[r*per : (r+1)*per]
			if !slices.ContainsFunc(row, func(v float32) bool { return v != -1 }) {
				return errors.New("poisoned picture")
			}
		}
		return nil
	}
	cases := paintCases()[:2]
	bad := paintCase{sphere(8, 16), solid(32, color.NRGBA{0, 0, 0, 255}), Options{TextureSize: 64, Seed: 9, Steps: 2}}
	all := []paintCase{cases[0], bad, cases[1]}
	var jobs []*Job
	for _, c := range all {
		j, err := p.Prepare(ctx, c.m, c.pic, c.opt)
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	errs := p.Condition(ctx, jobs)
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("good jobs failed: %v, %v", errs[0], errs[2])
	}
	if errs[1] == nil {
		t.Fatal("the poisoned job was conditioned")
	}
	good := []*Job{jobs[0], jobs[2]}
	for !good[0].Done() || !good[1].Done() {
		if err := p.Step(ctx, good); err != nil {
			t.Fatal(err)
		}
	}
	for k, j := range good {
		got, err := p.Finish(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		want, err := p.Paint(ctx, cases[k].m, cases[k].pic, cases[k].opt)
		if err != nil {
			t.Fatal(err)
		}
		sameResult(t, "good job", got, want)
	}
	if err := p.Step(ctx, []*Job{jobs[1]}); err == nil {
		t.Error("a job that failed Condition was stepped")
	}
}
