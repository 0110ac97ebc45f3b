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

	"github.com/klauspost/compress/gzip"
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
	bundle, err := loadBundle(studio.Files())
	if err != nil {
		s.log.Error().Err(err).Msg("the browser pages are not served")
	}
	serve := func(c echo.Context, name string) error {
		if !studio.Built() {
			return newProblem(http.StatusNotFound, "studio-not-built", "Studio not built",
				"this hy3d binary was built without its browser pages: run `make` (npm and esbuild bundle studio/ into studio/dist) and rebuild")
		}
		f, ok := bundle[name]
		if !ok {
			return newProblem(http.StatusNotFound, "not-found", "Not found", "no such page or asset")
		}
		h := c.Response().Header()
		h.Set("Cache-Control", "no-cache")
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(c.Request().Header.Get("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
			return c.Blob(http.StatusOK, contentType(name), f.gzipped)
		}
		return c.Blob(http.StatusOK, contentType(name), f.plain)
	}
	for route, name := range studioPages {
		e.GET(route, func(c echo.Context) error { return serve(c, name) })
	}
	e.GET("/assets/*", func(c echo.Context) error { return serve(c, "assets/"+c.Param("*")) })
	e.POST("/v1/preprocess", s.preprocessOnly, s.rateLimit)
}

// bundledFile is one file of the bundle, as sent and gzip-compressed once.
type bundledFile struct{ plain, gzipped []byte }

// loadBundle reads every file of the bundle and compresses it.
func loadBundle(files fs.FS) (map[string]bundledFile, error) {
	out := map[string]bundledFile{}
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		plain, err := fs.ReadFile(files, name)
		if err != nil {
			return fmt.Errorf("reading the embedded %s: %w", name, err)
		}
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return err
		}
		if _, err := zw.Write(plain); err != nil {
			return fmt.Errorf("compressing %s: %w", name, err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("compressing %s: %w", name, err)
		}
		out[name] = bundledFile{plain: plain, gzipped: buf.Bytes()}
		return nil
	})
	return out, err
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip (the
// only coding the bundle is kept in).
func acceptsGzip(acceptEncoding string) bool {
	for _, r := range parseQList(acceptEncoding) {
		if (r.value == "gzip" || r.value == "*") && r.q > 0 {
			return true
		}
	}
	return false
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
