package server

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzhttp"
	"github.com/labstack/echo/v4"

	"github.com/hy3d/hy3d/pipeline"
	"github.com/hy3d/hy3d/studio"
)

// studioPages are the browser pages; they carry no data, so they are served
// without an API key (the pages send the key the user gives them).
var studioPages = map[string]string{"/": "index.html", "/dashboard": "dashboard.html"}

// isStudioPage reports whether a route serves a page or its static assets.
func isStudioPage(route string) bool {
	_, page := studioPages[route]
	return page || route == "/assets/*"
}

// studioRoutes registers the pages, their assets and the preprocess-only
// endpoint the studio previews pictures with.
func (s *Server) studioRoutes(e *echo.Echo) {
	files := studio.Files()
	built := studio.Built()
	zip := echo.WrapMiddleware(func(h http.Handler) http.Handler { return gzhttp.GzipHandler(h) })
	serve := func(name string) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !built {
				return newProblem(http.StatusNotFound, "studio-not-built", "Studio not built",
					"this hy3d binary was built without its browser pages: run `make` (npm and esbuild bundle studio/ into studio/dist) and rebuild")
			}
			c.Response().Header().Set("Cache-Control", "no-cache")
			body, err := fs.ReadFile(files, name)
			if err != nil {
				return fmt.Errorf("reading the embedded %s: %w", name, err)
			}
			return c.Blob(http.StatusOK, contentType(name), body)
		}
	}
	for route, name := range studioPages {
		e.GET(route, serve(name), zip)
	}
	e.GET("/assets/*", func(c echo.Context) error {
		name := "assets/" + c.Param("*")
		if _, err := fs.Stat(files, name); err != nil || strings.Contains(name, "..") {
			return newProblem(http.StatusNotFound, "not-found", "Not found", "no such asset")
		}
		return serve(name)(c)
	}, zip)
	e.POST("/v1/preprocess", s.preprocessOnly, s.rateLimit)
}

// preprocessed is the answer of POST /v1/preprocess.
type preprocessed struct {
	Model    string   `json:"model"`
	Format   string   `json:"format"`
	Width    int      `json:"width"`
	Height   int      `json:"height"`
	SHA256   string   `json:"sha256"` // of the preprocessed pixels, as the result cache keys them
	Warnings []string `json:"warnings,omitempty"`
	// Preview is the picture the model sees, as a PNG data: URL, when the
	// preprocessor can draw it.
	Preview string `json:"preview,omitempty"`
}

// A PreviewRenderer draws the picture a model's conditioner receives from
// the preprocessor's output.
type PreviewRenderer interface {
	Preview(model string, p *Prepared) (image.Image, error)
}

// preprocessOnly runs preprocessing alone (decode, cut-out, recentre,
// resize) on a picture sent as a generation would be, and answers what the
// model would see, with no generation made.
func (s *Server) preprocessOnly(c echo.Context) error {
	req, err := decodeGeneration(c.Request(), s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	named := map[string]string{}
	if m, ok := req.raw["model"]; ok {
		named["model"] = m
	}
	params, errs := s.params.parse(named)
	if len(errs) > 0 {
		return invalidParams(errs)
	}
	if err := sniffImage(req.image); err != nil {
		return err
	}
	ctx := c.Request().Context()
	release, err := s.slots.acquire(ctx, params.Timeout)
	if err != nil {
		return err
	}
	prep, err := s.pre.Preprocess(ctx, params.Model, req.image)
	release()
	if err != nil {
		if ctx.Err() != nil {
			return clientGone(ctx.Err())
		}
		return imageProblem(err)
	}
	out := preprocessed{Model: params.Model, Format: prep.Format, Width: prep.Width, Height: prep.Height,
		SHA256: hex.EncodeToString(prep.Hash[:]), Warnings: prep.Warnings}
	if r, ok := s.pre.(PreviewRenderer); ok {
		img, err := r.Preview(params.Model, prep)
		if err != nil {
			return fmt.Errorf("drawing the preview: %w", err)
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			return fmt.Errorf("encoding the preview: %w", err)
		}
		out.Preview = "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
	}
	return c.JSON(http.StatusOK, out)
}

// Preview undoes the conditioner input's normalization: the picture drawn is
// exactly what the conditioner receives, at its input size.
func (g *Pipelines) Preview(model string, p *Prepared) (image.Image, error) {
	m := g.models[model]
	prep, ok := p.Input.(*pipeline.Prepared)
	if m == nil || !ok {
		return nil, fmt.Errorf("no preprocessed picture of model %q", model)
	}
	spec := m.man.Image
	shape := prep.Tensor.Shape
	if len(shape) != 4 || shape[1] != 3 || shape[2] != shape[3] {
		return nil, fmt.Errorf("conditioner input of shape %v is not [1,3,N,N]", shape)
	}
	n := int(shape[2])
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	level := func(ch, i int) uint8 {
		v := float64(prep.Tensor.Data[ch*n*n+i])*spec.Std[ch] + spec.Mean[ch]
		return uint8(min(max(v, 0), 1)*255 + 0.5)
	}
	for i := range n * n {
		img.SetNRGBA(i%n, i/n, color.NRGBA{R: level(0, i), G: level(1, i), B: level(2, i), A: 255})
	}
	return img, nil
}

// contentType names the media type of a bundled file by its extension.
func contentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".html"):
		return "text/html; charset=utf-8"
	case strings.HasSuffix(name, ".js"):
		return "text/javascript; charset=utf-8"
	case strings.HasSuffix(name, ".css"):
		return "text/css; charset=utf-8"
	}
	return "text/plain; charset=utf-8"
}
