package texture

import "math"

// Camera is one of Hunyuan3D-Paint's orthographic views: elevation and
// azimuth in degrees (azimuth 0 looks at the front, +Z of the input glTF;
// elevation +90 looks down from the top) and the weight of the view in the
// bake.
type Camera struct {
	Elev, Azim, Weight float64
}

// Hunyuan3D-Paint's fixed camera parameters: the views cover
// [-OrthoScale/2, OrthoScale/2]² of the normalized mesh from CameraDistance.
const (
	OrthoScale     = 1.2
	CameraDistance = 1.45
	// NormalizedDiameter is the diameter of the sphere around the bounding
	// box centre that the normalized mesh fills (set_mesh's scale_factor).
	NormalizedDiameter = 1.15
)

// Cameras20 are Hunyuan3D-2.0's six views: front, right, back, left, top,
// bottom, weighted 1, 0.1, 0.5, 0.1, 0.05, 0.05.
func Cameras20() []Camera {
	return []Camera{{0, 0, 1}, {0, 90, 0.1}, {0, 180, 0.5}, {0, 270, 0.1}, {90, 0, 0.05}, {-90, 180, 0.05}}
}

// Candidates21 are Hunyuan3D-2.1's 30 candidate views: the six of 2.0, then
// for every 30° of azimuth one view at elevation +20 and one at -20, each
// weighted 0.01. SelectViews always keeps the first six.
func Candidates21() []Camera {
	cams := Cameras20()
	for azim := 0.0; azim < 360; azim += 30 {
		cams = append(cams, Camera{20, azim, 0.01}, Camera{-20, azim, 0.01})
	}
	return cams
}

// WorldToCamera is the row-major 3x4 view matrix of Hunyuan3D's
// get_mv_matrix in the normalized frame (Z up): the camera sits at
// CameraDistance at elevation -Elev and azimuth Azim + 90°, looks at the
// origin with +Z as up, and looks down its own -z axis. At elevation ±90
// the right vector comes from cos(90°) ≈ 6e-17 exactly as there, which
// fixes how the top and bottom images are turned.
func (c Camera) WorldToCamera() [12]float32 {
	elev := -c.Elev * math.Pi / 180
	azim := (c.Azim + 90) * math.Pi / 180
	pos := [3]float64{
		CameraDistance * math.Cos(elev) * math.Cos(azim),
		CameraDistance * math.Cos(elev) * math.Sin(azim),
		CameraDistance * math.Sin(elev),
	}
	lookat := norm3([3]float64{-pos[0], -pos[1], -pos[2]})
	right := norm3(cross3(lookat, [3]float64{0, 0, 1}))
	up := norm3(cross3(right, lookat))
	back := [3]float64{-lookat[0], -lookat[1], -lookat[2]}
	var m [12]float32
	for r, axis := range [3][3]float64{right, up, back} {
		t := 0.0
		for k := 0; k < 3; k++ {
			m[4*r+k] = float32(axis[k])
			t -= axis[k] * pos[k]
		}
		m[4*r+3] = float32(t)
	}
	return m
}

// ToCamera is the unit direction from the origin toward the camera.
func (c Camera) ToCamera() [3]float32 {
	m := c.WorldToCamera()
	return [3]float32{m[8], m[9], m[10]}
}

func cross3(a, b [3]float64) [3]float64 {
	return [3]float64{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
}

func norm3(a [3]float64) [3]float64 {
	l := math.Sqrt(a[0]*a[0] + a[1]*a[1] + a[2]*a[2])
	if l == 0 {
		return a
	}
	return [3]float64{a[0] / l, a[1] / l, a[2] / l}
}
