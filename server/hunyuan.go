package server

import (
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/hy3d/hy3d/jobs"
	"github.com/labstack/echo/v4"
)

// Hunyuan3D's api_server.py takes a JSON body with these fields and applies
// these defaults; the drop-in routes translate them to ours.
var hunyuanFields = map[string]string{
	"seed":                "seed",
	"octree_resolution":   "resolution",
	"num_inference_steps": "steps",
	"guidance_scale":      "guidance",
	"type":                "format",
	"face_count":          "faces",
	"model":               "model",
}

var hunyuanDefaults = map[string]string{
	"resolution": "128",
	"steps":      "5",
	"guidance":   "5.0",
}

// maxLoggedFields is how many ignored field names a log line names.
const maxLoggedFields = 5

// hunyuanRequest decodes an api_server.py request body. Inputs it cannot
// serve (text prompts, multi-view images) are refused by name. texture=true
// paints the mesh with the default paint model, as api_server.py does with
// its texture pipeline; a mesh field with it paints that mesh instead of
// generating one. A server without a paint model ignores texture=true with
// a warning, because the shape alone is still what such a client gets
// first.
func (s *Server) hunyuanRequest(c echo.Context) (*decodedRequest, error) {
	fields, err := decodeJSONFields(c.Request().Body)
	if err != nil {
		return nil, err
	}
	req := &decodedRequest{raw: map[string]string{}}
	img := fields["image"]
	if img == "" {
		img = fields["image_front"]
	}
	var errs []FieldError
	var ignored []string
	for name, v := range fields {
		switch {
		case name == "image" || name == "image_front":
		case name == "image_left" || name == "image_back" || name == "image_right":
			errs = append(errs, FieldError{Field: name, Message: "multi-view input is not supported; send one image"})
		case name == "text":
			errs = append(errs, FieldError{Field: name, Message: "text-to-3D is not supported; send an image"})
		case name == "mesh":
			if req.mesh, err = decodeBase64("mesh", v); err != nil {
				return nil, err
			}
		case name == "texture":
			switch {
			case v != "true":
			case s.params.defaultPaint == "":
				s.log.Warn().Str("request_id", requestID(c)).Msg("texture=true ignored: no paint model is served")
				c.Response().Header().Add("Warning", `299 hy3d "texture ignored: no paint model"`)
			default:
				req.raw["texture"] = "true"
			}
		case hunyuanFields[name] != "":
			req.raw[hunyuanFields[name]] = v
		default:
			// api_server.py passes unknown fields on to its pipeline, which
			// ignores most of them; failing here would break its clients.
			ignored = append(ignored, name)
		}
	}
	if len(ignored) > 0 {
		// One line per request, however many fields it carries.
		slices.Sort(ignored)
		s.log.Info().Str("request_id", requestID(c)).Int("count", len(ignored)).
			Strs("fields", ignored[:min(len(ignored), maxLoggedFields)]).Msg("unknown api_server.py fields ignored")
	}
	if req.mesh != nil && req.raw["texture"] != "true" {
		errs = append(errs, FieldError{Field: "mesh", Message: "a mesh is only taken to be textured: send texture=true with it"})
	}
	if len(errs) > 0 {
		return nil, invalidParams(errs)
	}
	if img == "" {
		return nil, invalidParams([]FieldError{{Field: "image", Message: "an image is required"}})
	}
	if req.image, err = decodeBase64("image", img); err != nil {
		return nil, err
	}
	if req.mesh != nil {
		// Texturing an uploaded mesh: only the fields that paint apply.
		for name := range req.raw {
			if name != "seed" && name != "format" {
				delete(req.raw, name)
			}
		}
		return req, nil
	}
	for k, v := range hunyuanDefaults {
		if _, ok := req.raw[k]; !ok {
			req.raw[k] = v
		}
	}
	return req, nil
}

// hunyuanProblem adds api_server.py's error fields to a problem.
func hunyuanProblem(err error) error {
	p := problemFrom(err)
	p.Text = p.Detail
	if p.Text == "" {
		p.Text = p.Title
	}
	p.ErrorCode = 1
	return p
}

// hunyuanAdmit decodes an api_server.py request and admits its generation.
func (s *Server) hunyuanAdmit(c echo.Context, sync bool) (admitted, error) {
	req, err := s.hunyuanRequest(c)
	if err != nil {
		return admitted{}, err
	}
	if req.mesh == nil {
		return s.admit(c, req.image, req.raw, sync)
	}
	return s.admitTexturing(c, req, sync)
}

// hunyuanGenerate is POST /generate: the mesh file in one round trip.
func (s *Server) hunyuanGenerate(c echo.Context) error {
	a, err := s.hunyuanAdmit(c, true)
	if err != nil {
		return hunyuanProblem(err)
	}
	if a.hit != nil {
		return serveHit(c, a, a.params.Format)
	}
	r, err := s.waitResult(c, a)
	if err != nil {
		return hunyuanProblem(err)
	}
	return serveMesh(c, r, a.params.Format, a.id)
}

// hunyuanSend is POST /send: start a job and return its uid.
func (s *Server) hunyuanSend(c echo.Context) error {
	a, err := s.hunyuanAdmit(c, false)
	if err != nil {
		return hunyuanProblem(err)
	}
	return c.JSON(http.StatusOK, map[string]string{"uid": a.id})
}

// hunyuanStatus is GET /status/{uid}: "processing" until the job ends, then
// "completed" with the mesh in base64. api_server.py never reports failure
// (its clients poll on); here a failed or cancelled job says so.
func (s *Server) hunyuanStatus(c echo.Context) error {
	id := generationID(c, "uid")
	snap, _, err := s.engine.Watch(c.Request().Context(), id)
	if err != nil {
		return hunyuanProblem(err)
	}
	st := statusOf(snap)
	switch st.Status {
	case jobs.StateQueued, jobs.StateRunning:
		return c.JSON(http.StatusOK, map[string]string{"status": "processing"})
	case jobs.StateSucceeded:
		r, _, err := s.engine.Result(c.Request().Context(), id)
		if err != nil {
			return hunyuanProblem(err)
		}
		m := r.Meshes[st.Params.Format]
		if m == nil {
			return hunyuanProblem(errors.New("result lacks its format"))
		}
		return c.JSON(http.StatusOK, map[string]string{
			"status":       "completed",
			"model_base64": base64.StdEncoding.EncodeToString(m.Data),
		})
	default:
		detail := string(st.Status)
		if st.Error != nil {
			detail = strings.TrimSpace(st.Error.Title + ": " + st.Error.Detail)
		}
		return c.JSON(http.StatusOK, map[string]string{"status": string(st.Status), "detail": detail})
	}
}
