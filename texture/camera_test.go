package texture

import (
	"context"
	"math"
	"testing"
)

// Each fixed view looks at the side of the input mesh Hunyuan3D names:
// azimuth 0 from +Z (the glTF front), 90 from +X, 180 from -Z, 270 from
// -X, elevation 90 from +Y (top), -90 from -Y.
func TestCameras20Directions(t *testing.T) {
	want := [][3]float64{{0, 0, 1}, {1, 0, 0}, {0, 0, -1}, {-1, 0, 0}, {0, 1, 0}, {0, -1, 0}}
	for i, cam := range Cameras20() {
		d := cam.ToCamera()
		// Back from the normalized frame: (x, y, z) = (-X, Z, -Y).
		input := [3]float64{-float64(d[0]), -float64(d[2]), float64(d[1])}
		for k := 0; k < 3; k++ {
			if math.Abs(input[k]-want[i][k]) > 1e-6 {
				t.Errorf("camera %d (elev %v, azim %v) looks from %v, want %v", i, cam.Elev, cam.Azim, input, want[i])
				break
			}
		}
		m := cam.WorldToCamera()
		// The camera sits at CameraDistance: the origin is at camera depth -1.45.
		if math.Abs(float64(m[11])+CameraDistance) > 1e-6 {
			t.Errorf("camera %d: origin at camera z %v, want %v", i, m[11], -CameraDistance)
		}
	}
}

func TestRenderNormalsAndSelection(t *testing.T) {
	o := newOracle(t, 256)
	ctx := context.Background()
	for _, mode := range []NormalMode{VertexNormals, FaceNormals} {
		v, err := o.scene.Render(ctx, Cameras20()[0], 256, mode)
		if err != nil {
			t.Fatal(err)
		}
		covered, facing := 0, 0
		to := v.Camera.ToCamera()
		for p, f := range v.FaceIDs {
			if f < 0 {
				continue
			}
			covered++
			n := v.Normals[3*p : 3*p+3]
			if l := math.Sqrt(float64(n[0]*n[0] + n[1]*n[1] + n[2]*n[2])); math.Abs(l-1) > 1e-4 {
				t.Fatalf("mode %d: normal of length %v", mode, l)
			}
			if n[0]*to[0]+n[1]*to[1]+n[2]*to[2] > 0 {
				facing++
			}
		}
		// The nearest surface of a closed mesh faces the camera (outward normals).
		if covered == 0 || facing < covered*95/100 {
			t.Errorf("mode %d: %d of %d covered pixels face the camera", mode, facing, covered)
		}
	}
	views, err := o.scene.SelectViews(ctx, Candidates21(), 8, 128)
	if err != nil {
		t.Fatal(err)
	}
	if len(views) < 6 || len(views) > 8 {
		t.Fatalf("%d views selected", len(views))
	}
	for i, cam := range Cameras20() {
		if views[i] != cam {
			t.Errorf("view %d is %v, want the fixed %v", i, views[i], cam)
		}
	}
}
