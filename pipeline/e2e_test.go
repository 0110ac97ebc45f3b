package pipeline

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/qmuntal/gltf"
	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/mesh"
	"github.com/hy3d/hy3d/mesh/meshtest"
	"github.com/hy3d/hy3d/tensor"
)

// The end-to-end tests run the reference engines (engines/tiny, engines/
// tiny-turbo, and the embedded default engines/silhouette) on ONNX Runtime. Pipelines are shared between tests: loading
// them is the slow part.
var tinyPipelines struct {
	sync.Mutex
	loaded map[string]*Pipeline
}

func tinyPipeline(t *testing.T, name string) *Pipeline {
	t.Helper()
	tinyPipelines.Lock()
	defer tinyPipelines.Unlock()
	if p := tinyPipelines.loaded[name]; p != nil {
		return p
	}
	var set *engines.Set
	var err error
	switch name {
	case "tiny":
		set, err = engines.Tiny()
	case "silhouette":
		set, err = engines.Default()
	default:
		set, err = engines.Open("../engines/" + name)
	}
	if err != nil {
		t.Fatal(err)
	}
	// The tests decode small grids (R ≤ 64) to stay fast; a coarse level of
	// 16 gives them the two or three levels a full-size grid has.
	set.Volume.CoarseResolution = 16
	ctx := context.Background()
	l, err := OpenBackend(ctx, set, BackendOptions{Kind: BackendORT, Logger: zerolog.Nop()})
	if errors.Is(err, tensor.ErrUnavailable) {
		t.Skipf("ONNX Runtime not installed (make deps): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(ctx, Config{Set: set, Loader: l, Logger: zerolog.Nop(), Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if tinyPipelines.loaded == nil {
		tinyPipelines.loaded = map[string]*Pipeline{}
	}
	tinyPipelines.loaded[name] = p
	return p
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// blob draws an object: a disc with a bar through it, so the silhouette has
// a thin part.
func blob(img *image.NRGBA, cx, cy, r int, c color.NRGBA) {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			dx, dy := x-cx, y-cy
			if dx*dx+dy*dy < r*r || (dx > -2*r && dx < 2*r && dy > -r/5 && dy < r/5) {
				img.SetNRGBA(x, y, c)
			}
		}
	}
}

func testPictures(t *testing.T) map[string][]byte {
	t.Helper()
	pics := map[string][]byte{}

	alpha := image.NewNRGBA(image.Rect(0, 0, 301, 217)) // odd size, transparent background
	blob(alpha, 150, 108, 60, color.NRGBA{200, 60, 40, 255})
	pics["alpha, odd size"] = encodePNG(t, alpha)

	rgb := image.NewRGBA(image.Rect(0, 0, 256, 320)) // opaque, white background
	for i := range rgb.Pix {
		rgb.Pix[i] = 255
	}
	onWhite := image.NewNRGBA(rgb.Rect)
	blob(onWhite, 128, 170, 50, color.NRGBA{30, 90, 180, 255})
	for i := 0; i < len(onWhite.Pix); i += 4 {
		if onWhite.Pix[i+3] != 0 {
			copy(rgb.Pix[i:i+4], onWhite.Pix[i:i+4])
		}
	}
	var jb bytes.Buffer
	if err := jpeg.Encode(&jb, rgb, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	pics["jpeg without alpha"] = jb.Bytes()

	corner := image.NewNRGBA(image.Rect(0, 0, 640, 480)) // small object in a corner
	blob(corner, 600, 445, 18, color.NRGBA{20, 160, 60, 255})
	pics["small object in a corner"] = encodePNG(t, corner)
	return pics
}

// signedVolume is the volume enclosed by a closed mesh; positive when its
// faces are counter-clockwise seen from outside.
func signedVolume(m *mesh.Mesh) float64 {
	v := m.Vertices
	var vol float64
	for f := 0; f < len(m.Indices); f += 3 {
		a, b, c := m.Indices[f]*3, m.Indices[f+1]*3, m.Indices[f+2]*3
		ax, ay, az := float64(v[a]), float64(v[a+1]), float64(v[a+2])
		bx, by, bz := float64(v[b]), float64(v[b+1]), float64(v[b+2])
		cx, cy, cz := float64(v[c]), float64(v[c+1]), float64(v[c+2])
		vol += ax*(by*cz-bz*cy) - ay*(bx*cz-bz*cx) + az*(bx*cy-by*cx)
	}
	return vol / 6
}

func checkMesh(t *testing.T, m *mesh.Mesh, bounds float64) {
	t.Helper()
	if m.TriangleCount() == 0 {
		t.Fatal("empty mesh")
	}
	for i, x := range m.Vertices {
		if math.IsNaN(float64(x)) || math.Abs(float64(x)) > bounds {
			t.Fatalf("coordinate %d = %v outside [−%v, %v]", i, x, bounds, bounds)
		}
	}
	topo := mesh.Analyze(m)
	if !topo.Watertight() {
		t.Errorf("not watertight: %+v", topo)
	}
	if vol := signedVolume(m); vol <= 0 {
		t.Errorf("signed volume %v: normals point inward", vol)
	}
}

// checkOutputs parses every exported file back and compares its size to
// the mesh; the GLB must also pass the Khronos glTF validator.
func checkOutputs(t *testing.T, res *Result) {
	t.Helper()
	faces := res.Mesh.TriangleCount()
	for f, data := range res.Outputs {
		var n int
		var err error
		switch f {
		case mesh.FormatGLB:
			var doc gltf.Document
			if err = gltf.NewDecoder(bytes.NewReader(data)).Decode(&doc); err == nil {
				prim := doc.Meshes[0].Primitives[0]
				n = int(doc.Accessors[*prim.Indices].Count) / 3
				if pos := doc.Accessors[prim.Attributes[gltf.POSITION]]; len(pos.Min) != 3 || len(pos.Max) != 3 {
					t.Errorf("GLB positions lack min/max")
				}
				if _, ok := prim.Attributes[gltf.NORMAL]; !ok {
					t.Errorf("GLB has no normals")
				}
			}
			meshtest.RequireValidGLB(t, data)
		case mesh.FormatSTL, mesh.FormatOBJ, mesh.FormatPLY:
			parse := map[mesh.Format]func(io.Reader) (*mesh.Mesh, error){
				mesh.FormatSTL: mesh.ParseSTL, mesh.FormatOBJ: mesh.ParseOBJ, mesh.FormatPLY: mesh.ParsePLY}[f]
			var m *mesh.Mesh
			if m, err = parse(bytes.NewReader(data)); err == nil {
				n = m.TriangleCount()
			}
		}
		if err != nil {
			t.Errorf("%s does not parse: %v", f, err)
		} else if n != faces {
			t.Errorf("%s has %d faces, the mesh %d", f, n, faces)
		}
	}
	if len(res.Outputs) != 4 {
		t.Errorf("%d outputs, want 4", len(res.Outputs))
	}
}

func TestGenerateTurnsPicturesIntoClosedOutwardMeshes(t *testing.T) {
	for _, set := range []string{"tiny", "silhouette"} {
		t.Run(set, func(t *testing.T) { testClosedOutwardMeshes(t, tinyPipeline(t, set)) })
	}
}

func testClosedOutwardMeshes(t *testing.T, p *Pipeline) {
	for name, pic := range testPictures(t) {
		t.Run(name, func(t *testing.T) {
			var stages []Stage
			res, err := p.Generate(context.Background(), Request{
				ID: name, Image: pic,
				Params:   Params{Steps: 3, Resolution: 64, Seed: 5},
				Formats:  []mesh.Format{mesh.FormatGLB, mesh.FormatSTL, mesh.FormatOBJ, mesh.FormatPLY},
				Progress: func(pr Progress) { stages = append(stages, pr.Stage) },
			})
			if err != nil {
				t.Fatal(err)
			}
			checkMesh(t, res.Mesh, p.Manifest().Volume.Bounds)
			checkOutputs(t, res)
			c := res.Counts
			if c.Steps != 3 || c.PointsDense != 65*65*65 || c.PointsDecoded <= 0 || c.PointsDecoded >= c.PointsDense ||
				c.Faces != res.Mesh.TriangleCount() || c.SurfaceFaces == 0 {
				t.Errorf("counts %+v", c)
			}
			if res.Timings.Total <= 0 || res.Timings.Decode <= 0 || res.Timings.Sample <= 0 {
				t.Errorf("timings %+v", res.Timings)
			}
			want := []Stage{StagePreprocess, StageCondition, StageSample, StageSample, StageSample, StageSample,
				StageDecode, StageSurface, StageClean, StageExport}
			if !slices.Equal(stages, want) {
				t.Errorf("progress %v, want %v", stages, want)
			}
			if name == "jpeg without alpha" && len(res.Warnings) == 0 {
				t.Error("no warning about the estimated background")
			}
		})
	}
}

func TestGenerateIsDeterministicPerSeed(t *testing.T) {
	p := tinyPipeline(t, "tiny")
	pic := testPictures(t)["alpha, odd size"]
	gen := func(seed uint64) *mesh.Mesh {
		res, err := p.Generate(context.Background(), Request{Image: pic, Params: Params{Steps: 2, Resolution: 32, Seed: seed}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Mesh
	}
	a, b, c := gen(11), gen(11), gen(12)
	if !slices.Equal(a.Vertices, b.Vertices) || !slices.Equal(a.Indices, b.Indices) {
		t.Error("seed 11 gave two different meshes")
	}
	if slices.Equal(a.Vertices, c.Vertices) {
		t.Error("seeds 11 and 12 gave the same mesh")
	}
}

func TestGenerateReusesACachedCond(t *testing.T) {
	p := tinyPipeline(t, "tiny")
	pic := testPictures(t)["alpha, odd size"]
	params := Params{Steps: 2, Resolution: 32, Seed: 3}
	first, err := p.Generate(context.Background(), Request{Image: pic, Params: params})
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Generate(context.Background(), Request{Cond: first.Cond, Params: params})
	if err != nil {
		t.Fatal(err)
	}
	if again.Timings.Condition != 0 || again.Timings.Preprocess != 0 {
		t.Errorf("cached cond still ran the conditioner: %+v", again.Timings)
	}
	if !slices.Equal(first.Mesh.Vertices, again.Mesh.Vertices) {
		t.Error("the cached cond gave another mesh")
	}
}

func TestGenerateWithTurboUsesEmbeddedGuidance(t *testing.T) {
	for _, set := range []string{"tiny-turbo", "silhouette"} {
		t.Run(set, func(t *testing.T) { testEmbeddedGuidance(t, tinyPipeline(t, set)) })
	}
}

func testEmbeddedGuidance(t *testing.T, p *Pipeline) {
	if m := p.Manifest(); m.Sampler.Guidance != GuidanceEmbedded || m.Sampler.Kind != KindConsistency {
		t.Fatalf("%s sampler %+v", m.Name, m.Sampler)
	}
	pic := testPictures(t)["alpha, odd size"]
	var meshes []*mesh.Mesh
	for _, g := range []float64{5, 1} {
		res, err := p.Generate(context.Background(), Request{Image: pic, Params: Params{Guidance: g, Resolution: 32, Seed: 1}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Counts.Steps != 5 {
			t.Errorf("steps %d, want the manifest's 5", res.Counts.Steps)
		}
		checkMesh(t, res.Mesh, p.Manifest().Volume.Bounds)
		meshes = append(meshes, res.Mesh)
	}
	if slices.Equal(meshes[0].Vertices, meshes[1].Vertices) {
		t.Error("guidance 5 and 1 gave the same mesh: the guidance input is ignored")
	}
}

func TestGenerateRejectsBadInputs(t *testing.T) {
	p := tinyPipeline(t, "tiny")
	empty := encodePNG(t, image.NewNRGBA(image.Rect(0, 0, 40, 30)))
	// Each case pins the error it must give: a sentinel, or a *FieldError on
	// one parameter (checked before the picture, which is fully transparent
	// in those cases and would otherwise fail with ErrNoObject).
	tests := []struct {
		name  string
		req   Request
		want  error
		field string
	}{
		{name: "not a picture", req: Request{Image: []byte("GIF89a nope")}, want: ErrUnsupportedFormat},
		{name: "truncated png", req: Request{Image: encodePNG(t, image.NewNRGBA(image.Rect(0, 0, 9, 9)))[:40]}, want: ErrCorruptImage},
		{name: "fully transparent", req: Request{Image: empty}, want: ErrNoObject},
		{name: "resolution too high", req: Request{Image: empty, Params: Params{Resolution: 4096}}, field: "resolution"},
		{name: "negative guidance", req: Request{Image: empty, Params: Params{Guidance: -1}}, field: "guidance"},
		{name: "too many steps", req: Request{Image: empty, Params: Params{Steps: MaxSteps + 1}}, field: "steps"},
		{name: "face budget too small", req: Request{Image: empty, Params: Params{Faces: 3}}, field: "faces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Generate(context.Background(), tt.req)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			var fe *FieldError
			if tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field) {
				t.Fatalf("error %v, want a *FieldError on %q", err, tt.field)
			}
		})
	}
}

// nearest returns, for every vertex of a, the distance to the closest vertex
// of b (brute force over a spatial hash of cell size h).
func maxNearest(a, b []float32, h float64) float64 {
	type key [3]int
	cells := map[key][]int{}
	k := func(x, y, z float32) key {
		return key{int(math.Floor(float64(x) / h)), int(math.Floor(float64(y) / h)), int(math.Floor(float64(z) / h))}
	}
	for i := 0; i < len(b); i += 3 {
		c := k(b[i], b[i+1], b[i+2])
		cells[c] = append(cells[c], i)
	}
	worst := 0.0
	for i := 0; i < len(a); i += 3 {
		c := k(a[i], a[i+1], a[i+2])
		best := math.Inf(1)
		for dx := -1; dx <= 1; dx++ {
			for dy := -1; dy <= 1; dy++ {
				for dz := -1; dz <= 1; dz++ {
					for _, j := range cells[key{c[0] + dx, c[1] + dy, c[2] + dz}] {
						d := math.Hypot(math.Hypot(float64(a[i]-b[j]), float64(a[i+1]-b[j+1])), float64(a[i+2]-b[j+2]))
						best = min(best, d)
					}
				}
			}
		}
		worst = max(worst, best)
	}
	return worst
}

func TestCoarseToFineGivesTheDenseSurfaceOnTinyEngines(t *testing.T) {
	for _, set := range []string{"tiny", "silhouette"} {
		t.Run(set, func(t *testing.T) { testCoarseToFineGivesTheDenseSurface(t, tinyPipeline(t, set)) })
	}
}

func testCoarseToFineGivesTheDenseSurface(t *testing.T, p *Pipeline) {
	ctx := context.Background()
	for _, name := range []string{"alpha, odd size", "small object in a corner"} {
		t.Run(name, func(t *testing.T) {
			prep, err := p.Preprocess(ctx, testPictures(t)[name])
			if err != nil {
				t.Fatal(err)
			}
			conds, err := p.Condition(ctx, []*Prepared{prep})
			if err != nil {
				t.Fatal(err)
			}
			st, err := p.Sampler().NewState(conds[0], SampleParams{Steps: 3, Guidance: 5, Seed: 2})
			if err != nil {
				t.Fatal(err)
			}
			for !st.Done() {
				if err := p.Sampler().Step(ctx, []*SampleState{st}); err != nil {
					t.Fatal(err)
				}
			}
			const r = 64
			vols, err := p.Decode(ctx, [][]float32{st.Latents(), st.Latents()},
				[]DecodeParams{{Resolution: r, Mode: DecodeDense}, {Resolution: r, Mode: DecodeCoarseToFine}})
			if err != nil {
				t.Fatal(err)
			}
			dense, c2f := vols[0], vols[1]
			worst := 0.0
			for i, v := range dense.Values {
				if c2f.Evaluated(i) {
					worst = max(worst, math.Abs(float64(v-c2f.Values[i])))
				}
			}
			if worst > 1e-4 {
				t.Errorf("logits at points both modes evaluate differ by up to %v", worst)
			}
			md, err := p.Surface(ctx, dense)
			if err != nil {
				t.Fatal(err)
			}
			mc, err := p.Surface(ctx, c2f)
			if err != nil {
				t.Fatal(err)
			}
			// docs/pipeline.md promises the same mesh, so the test asks for
			// the same vertices in the same order and the same faces.
			t.Logf("R=%d: %d vertices, %d faces; c2f evaluated %.1f%% of the points",
				r, md.VertexCount(), md.TriangleCount(), 100*float64(c2f.Points)/float64(dense.Points))
			if !slices.Equal(md.Vertices, mc.Vertices) || !slices.Equal(md.Indices, mc.Indices) {
				voxel := 2 * dense.Bounds / r
				dist := max(maxNearest(md.Vertices, mc.Vertices, voxel), maxNearest(mc.Vertices, md.Vertices, voxel))
				t.Errorf("surfaces differ: dense %d vertices / %d faces, coarse-to-fine %d / %d, vertices up to %.3g voxels apart",
					md.VertexCount(), md.TriangleCount(), mc.VertexCount(), mc.TriangleCount(), dist/voxel)
			}
		})
	}
}

func TestGenerateBatchMatchesSingleRunsOnTinyEngines(t *testing.T) {
	p := tinyPipeline(t, "tiny")
	pics := testPictures(t)
	reqs := []Request{
		{Image: pics["alpha, odd size"], Params: Params{Steps: 4, Guidance: 5, Seed: 1, Resolution: 24}},
		{Image: pics["small object in a corner"], Params: Params{Steps: 2, Guidance: 3, Seed: 2, Resolution: 32, Decode: DecodeDense}},
		{Image: pics["alpha, odd size"], Params: Params{Steps: 3, Guidance: 7.5, Seed: 3, Resolution: 64}},
	}
	batch, errs := p.GenerateBatch(context.Background(), reqs)
	for k, r := range reqs {
		if errs[k] != nil {
			t.Fatal(errs[k])
		}
		one, err := p.Generate(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		a, b := batch[k].Mesh, one.Mesh
		if len(a.Vertices) != len(b.Vertices) || !slices.Equal(a.Indices, b.Indices) {
			t.Errorf("job %d: batched mesh has %d vertices, single run %d", k, a.VertexCount(), b.VertexCount())
			continue
		}
		worst := 0.0
		for i := range a.Vertices {
			worst = max(worst, math.Abs(float64(a.Vertices[i]-b.Vertices[i])))
		}
		if worst > 1e-5 {
			t.Errorf("job %d: vertices differ by up to %v", k, worst)
		}
	}
}

func TestSamplerBatchMatchesSingleRunsOnTinyDiT(t *testing.T) {
	p := tinyPipeline(t, "tiny")
	ctx := context.Background()
	s := p.Sampler()
	m := p.Manifest()
	conds := make([][]float32, 4)
	for k := range conds {
		conds[k] = make([]float32, m.Tokens.CondTokens*m.Tokens.CondDim)
		Noise(conds[k], uint64(100+k))
	}
	params := []SampleParams{{Steps: 4, Guidance: 5, Seed: 1}, {Steps: 2, Guidance: 2, Seed: 2},
		{Steps: 5, Guidance: 9, Seed: 3}, {Steps: 3, Guidance: 0.5, Seed: 4}}
	states := make([]*SampleState, len(params))
	var active []*SampleState
	for round := 0; len(active) > 0 || round < len(params); round++ {
		if round < len(params) {
			st, err := s.NewState(conds[round], params[round])
			if err != nil {
				t.Fatal(err)
			}
			states[round] = st
			active = append(active, st)
		}
		if err := s.Step(ctx, active); err != nil {
			t.Fatal(err)
		}
		active = slices.DeleteFunc(active, (*SampleState).Done)
	}
	for k, prm := range params {
		st, err := s.NewState(conds[k], prm)
		if err != nil {
			t.Fatal(err)
		}
		for !st.Done() {
			if err := s.Step(ctx, []*SampleState{st}); err != nil {
				t.Fatal(err)
			}
		}
		worst := 0.0
		for i, v := range st.Latents() {
			worst = max(worst, math.Abs(float64(v-states[k].Latents()[i])))
		}
		t.Logf("job %d: batched vs single max difference %v", k, worst)
		if worst > 1e-5 {
			t.Errorf("job %d: batched latents differ from the single run by %v", k, worst)
		}
	}
}

func TestGenerateDecimatesToTheFaceBudgetAndStaysClosed(t *testing.T) {
	p := tinyPipeline(t, "tiny")
	res, err := p.Generate(context.Background(), Request{
		Image: testPictures(t)["alpha, odd size"], Params: Params{Steps: 2, Resolution: 64, Faces: 1500},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts.SurfaceFaces <= 1500 || res.Counts.Faces > 1500 {
		t.Fatalf("%d faces from marching cubes, %d after cleanup with a budget of 1500", res.Counts.SurfaceFaces, res.Counts.Faces)
	}
	checkMesh(t, res.Mesh, p.Manifest().Volume.Bounds)
	if len(res.Mesh.Normals) != len(res.Mesh.Vertices) {
		t.Errorf("%d normals for %d vertices", len(res.Mesh.Normals)/3, res.Mesh.VertexCount())
	}
}

// The picture a paint model gets back from a preprocessed upload is the
// cut-out on white: the object's colour in the middle, white where the
// upload was transparent.
func TestPictureIsTheCutOutOnWhite(t *testing.T) {
	p := tinyPipeline(t, "tiny")
	img := image.NewNRGBA(image.Rect(0, 0, 96, 96))
	for y := 24; y < 72; y++ {
		for x := 24; x < 72; x++ {
			img.SetNRGBA(x, y, color.NRGBA{R: 200, G: 40, B: 10, A: 255})
		}
	}
	prep, err := p.Preprocess(context.Background(), encodePNG(t, img))
	if err != nil {
		t.Fatal(err)
	}
	pic := p.Picture(prep)
	n := p.Manifest().Image.Size
	if pic.Bounds().Dx() != n || pic.Bounds().Dy() != n {
		t.Fatalf("picture %v, want %d²", pic.Bounds(), n)
	}
	for _, c := range []struct {
		x, y int
		want color.NRGBA
	}{
		{n / 2, n / 2, color.NRGBA{R: 200, G: 40, B: 10, A: 255}},
		{2, 2, color.NRGBA{R: 255, G: 255, B: 255, A: 255}},
		{n - 3, n - 3, color.NRGBA{R: 255, G: 255, B: 255, A: 255}},
	} {
		got := pic.NRGBAAt(c.x, c.y)
		for ch, d := range []int{int(got.R) - int(c.want.R), int(got.G) - int(c.want.G), int(got.B) - int(c.want.B)} {
			if d < -2 || d > 2 {
				t.Errorf("(%d, %d) channel %d = %v, want %v", c.x, c.y, ch, got, c.want)
			}
		}
	}
}
