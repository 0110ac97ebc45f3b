package server

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hy3d/hy3d/results"
	"github.com/labstack/echo/v4"
)

// mediaTypes is the Content-Type each format is served with.
var mediaTypes = map[string]string{
	"glb": "model/gltf-binary",
	"obj": "model/obj",
	"ply": "application/ply",
	"stl": "model/stl",
	"zip": "application/zip",
}

// acceptTypes maps every media type a client may ask for to a format; it
// includes the unofficial names that tools send.
var acceptTypes = map[string]string{
	"model/gltf-binary":          "glb",
	"model/obj":                  "obj",
	"text/plain":                 "obj",
	"application/ply":            "ply",
	"model/ply":                  "ply",
	"model/x-ply":                "ply",
	"model/stl":                  "stl",
	"model/x.stl-binary":         "stl",
	"model/x.stl-ascii":          "stl",
	"application/sla":            "stl",
	"application/vnd.ms-pki.stl": "stl",
	"application/zip":            "zip",
}

// minCompressBytes is the size below which compression costs more than it saves.
const minCompressBytes = 1024

// negotiateFormat picks the format to serve among those offered: the format
// query parameter if given, else the best match in Accept, else the format
// the generation asked for. An Accept header that rules every offered
// format out is a 406.
func negotiateFormat(query, accept, fallback string, offered []string) (string, error) {
	if query != "" {
		f := strings.ToLower(query)
		if !slices.Contains(offered, f) {
			return "", invalidParams([]FieldError{{Field: "format", Message: "must be one of " + strings.Join(offered, ", ")}})
		}
		return f, nil
	}
	if strings.TrimSpace(accept) == "" {
		return fallback, nil
	}
	ranges := parseQList(accept)
	// A format named only with q=0 is ruled out, even where a wildcard
	// would admit it.
	named := map[string]bool{}
	for _, r := range ranges {
		if f, ok := acceptTypes[r.value]; ok && r.q > 0 {
			named[f] = true
		}
	}
	excluded := func(f string) bool {
		for _, r := range ranges {
			if acceptTypes[r.value] == f && r.q == 0 {
				return !named[f]
			}
		}
		return false
	}
	for _, r := range ranges {
		if r.q <= 0 {
			continue
		}
		switch r.value {
		case "*/*", "model/*":
			// Every format but zip has a model/ name.
			admits := func(f string) bool { return !excluded(f) && (r.value == "*/*" || f != "zip") }
			if admits(fallback) {
				return fallback, nil
			}
			for _, f := range offered {
				if admits(f) {
					return f, nil
				}
			}
			continue
		}
		if f, ok := acceptTypes[r.value]; ok && slices.Contains(offered, f) {
			return f, nil
		}
	}
	names := make([]string, len(offered))
	for i, f := range offered {
		names[i] = mediaTypes[f]
	}
	return "", newProblem(http.StatusNotAcceptable, "not-acceptable", "Not acceptable",
		"no format matches Accept; offered: "+strings.Join(names, ", "))
}

type qValue struct {
	value string
	q     float64
}

// parseQList parses Accept and Accept-Encoding style lists, highest q first
// and, among equal q, in the client's order. An entry whose q is not a
// qvalue of RFC 9110 (0 to 1, at most three decimals; not NaN) is dropped.
func parseQList(h string) []qValue {
	var out []qValue
	for _, part := range strings.Split(h, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		v := qValue{q: 1}
		qs, hasQ := "", false
		if mt, params, err := mime.ParseMediaType(part); err == nil {
			v.value = mt
			qs, hasQ = params["q"]
		} else {
			name, rest, _ := strings.Cut(part, ";")
			v.value = strings.ToLower(strings.TrimSpace(name))
			if k, q, ok := strings.Cut(strings.TrimSpace(rest), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				qs, hasQ = strings.TrimSpace(q), true
			}
		}
		if hasQ {
			q, ok := parseQValue(qs)
			if !ok {
				continue
			}
			v.q = q
		}
		out = append(out, v)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].q > out[j].q })
	return out
}

// parseQValue reads a qvalue: "0", "1" or either with up to three decimals
// (1 only with zeros).
func parseQValue(s string) (float64, bool) {
	intPart, frac, _ := strings.Cut(s, ".")
	if (intPart != "0" && intPart != "1") || len(frac) > 3 {
		return 0, false
	}
	for _, c := range frac {
		if c < '0' || c > '9' || (intPart == "1" && c != '0') {
			return 0, false
		}
	}
	q, err := strconv.ParseFloat(s, 64)
	return q, err == nil
}

// chooseCoding picks zstd or gzip from Accept-Encoding, preferring zstd at
// equal weight; "" means send the bytes as they are.
func chooseCoding(acceptEncoding string) string {
	explicit := map[string]float64{}
	wildcard, hasWildcard := 0.0, false
	for _, r := range parseQList(acceptEncoding) {
		switch r.value {
		case "zstd", "gzip":
			if _, seen := explicit[r.value]; !seen {
				explicit[r.value] = r.q
			}
		case "*":
			if !hasWildcard {
				wildcard, hasWildcard = r.q, true
			}
		}
	}
	// A coding named in the list has its own weight; "*" weighs the others.
	weight := func(coding string) float64 {
		if q, ok := explicit[coding]; ok {
			return q
		}
		return wildcard
	}
	best, bestQ := "", 0.0
	for _, coding := range []string{"zstd", "gzip"} {
		if q := weight(coding); q > bestQ {
			best, bestQ = coding, q
		}
	}
	return best
}

// compressible says whether a mesh is text, the only kind that compresses well.
func compressible(format string, data []byte) bool {
	switch format {
	case "obj":
		return true
	case "ply":
		return bytes.HasPrefix(data, []byte("ply\nformat ascii")) || bytes.HasPrefix(data, []byte("ply\r\nformat ascii"))
	case "stl":
		head := data[:min(len(data), 512)]
		return bytes.HasPrefix(head, []byte("solid")) && bytes.Contains(head, []byte("facet"))
	}
	return false
}

// serveMesh writes one format of r, named after generation id (or, for a
// result answered with no generation, after its key). The bytes go out as
// they are kept, without a copy. A request whose If-None-Match names the
// representation gets 304, whatever its method: a repeated POST
// /v1/generate is a retrieval of the same mesh. Ranges and date conditions
// go through http.ServeContent; a compressed representation gets its own
// ETag, since its bytes differ.
func serveMesh(c echo.Context, r *results.Result, format, id string) error {
	m := r.Meshes[format]
	if m == nil {
		return newProblem(http.StatusNotFound, "format-missing", "Format not available",
			fmt.Sprintf("the result has no %s file", format))
	}
	req := c.Request()
	h := c.Response().Header()
	name := id
	if id == "" {
		name = r.Key.String()[:16]
	} else {
		h.Set("X-Generation-Id", id)
	}
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.%s"`, name, format))
	h.Set("Cache-Control", "private, max-age=86400, immutable")
	h.Add("Vary", "Accept, Accept-Encoding")
	data, etag := m.Data, m.ETag()
	if len(data) >= minCompressBytes && compressible(format, data) {
		if coding := chooseCoding(req.Header.Get("Accept-Encoding")); coding != "" {
			enc, err := m.Encoded(req.Context(), coding)
			if err != nil {
				return fmt.Errorf("compress %s: %w", format, err)
			}
			data = enc
			etag = strings.TrimSuffix(etag, `"`) + "-" + coding + `"`
			h.Set("Content-Encoding", coding)
		}
	}
	h.Set("ETag", etag)
	if inm := req.Header.Get("If-None-Match"); inm != "" && etagListed(inm, etag) {
		h.Del("Content-Encoding")
		return c.NoContent(http.StatusNotModified)
	}
	h.Set("Content-Type", mediaTypes[format])
	if req.Header.Get("Range") != "" || req.Header.Get("If-Modified-Since") != "" ||
		req.Header.Get("If-Unmodified-Since") != "" || req.Header.Get("If-Match") != "" {
		held := &heldError{ResponseWriter: c.Response()}
		http.ServeContent(held, req, "", r.Created, bytes.NewReader(data))
		return held.problem(len(data))
	}
	h.Set("Accept-Ranges", "bytes")
	h.Set("Last-Modified", r.Created.UTC().Format(http.TimeFormat))
	h.Set("Content-Length", strconv.Itoa(len(data)))
	c.Response().WriteHeader(http.StatusOK)
	if req.Method == http.MethodHead {
		return nil
	}
	_, err := c.Response().Write(data)
	return err
}

// etagListed reports whether an If-None-Match list names etag, by the weak
// comparison RFC 9110 prescribes for it ("*" names every representation).
func etagListed(list, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// heldError passes http.ServeContent's answers through, except an error
// answer (412, 416), which it writes as plain text: that one is held back
// so that it goes out as a problem.
type heldError struct {
	http.ResponseWriter
	status int
}

func (w *heldError) WriteHeader(code int) {
	if code >= 400 {
		w.status = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *heldError) Write(p []byte) (int, error) {
	if w.status != 0 {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// problem is the held-back error as a problem, or nil; size is the length
// of the representation the conditions and ranges were about.
func (w *heldError) problem(size int) error {
	switch w.status {
	case 0:
		return nil
	case http.StatusPreconditionFailed:
		return newProblem(w.status, "precondition-failed", "Precondition failed",
			"If-Match or If-Unmodified-Since does not hold for this result")
	case http.StatusRequestedRangeNotSatisfiable:
		return newProblem(w.status, "range-not-satisfiable", "Range not satisfiable",
			fmt.Sprintf("no range of the request lies within the %d bytes of this representation", size))
	}
	return newProblem(w.status, slugFor(w.status), http.StatusText(w.status), http.StatusText(w.status))
}
