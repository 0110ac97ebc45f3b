package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hy3d/hy3d/pipeline"
)

// Limits of the request decoders that do not depend on configuration.
const (
	maxFormFieldBytes = 1 << 10
	maxParts          = 32
	// maxJSONFields bounds the keys of a JSON request body: a dozen are
	// meaningful, and every key costs memory while the object is read.
	maxJSONFields = 64
)

// controlParams are query parameters that steer the handler rather than the
// generation, so they are kept out of the parameter map.
var controlParams = map[string]bool{"wait": true}

// decodedRequest is the untrusted content of a generation request, before
// validation.
type decodedRequest struct {
	image []byte
	mesh  []byte // POST /v1/textures only
	raw   map[string]string
}

// decodeGeneration reads a generation request in any of its three shapes:
// multipart/form-data with an "image" file, a raw image body with parameters
// in the query, or JSON with a base64 "image". Query parameters apply to all
// three; a field given twice is an error rather than a silent choice.
func decodeGeneration(r *http.Request, maxImage int64) (*decodedRequest, error) {
	req := &decodedRequest{raw: map[string]string{}}
	if err := addQuery(req.raw, r.URL.Query()); err != nil {
		return nil, err
	}
	ct := r.Header.Get("Content-Type")
	mt, mp, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return nil, unsupportedBody(ct)
	}
	switch mt {
	case "multipart/form-data":
		err = decodeMultipart(r.Body, mp["boundary"], maxImage, req, false)
	case "application/json":
		var fields map[string]string
		fields, err = decodeJSONFields(r.Body)
		if err == nil {
			err = takeJSON(fields, req, false)
		}
	case "image/png", "image/jpeg", "image/webp", "application/octet-stream":
		req.image, err = readFile("image", r.Body, maxImage)
	default:
		return nil, unsupportedBody(ct)
	}
	if err != nil {
		return nil, err
	}
	if len(req.image) == 0 {
		return nil, badRequest("image", "an image is required")
	}
	return req, nil
}

// decodeTexturing reads a POST /v1/textures request: multipart/form-data
// with "image" and "mesh" files, or JSON with both in base64; parameters as
// for a generation. Both files are required.
func decodeTexturing(r *http.Request, maxBody int64) (*decodedRequest, error) {
	req := &decodedRequest{raw: map[string]string{}}
	if err := addQuery(req.raw, r.URL.Query()); err != nil {
		return nil, err
	}
	ct := r.Header.Get("Content-Type")
	mt, mp, err := mime.ParseMediaType(ct)
	switch {
	case ct == "" || err != nil:
		return nil, unsupportedTexturingBody(ct)
	case mt == "multipart/form-data":
		err = decodeMultipart(r.Body, mp["boundary"], maxBody, req, true)
	case mt == "application/json":
		var fields map[string]string
		if fields, err = decodeJSONFields(r.Body); err == nil {
			err = takeJSON(fields, req, true)
		}
	default:
		return nil, unsupportedTexturingBody(ct)
	}
	if err != nil {
		return nil, err
	}
	var missing []FieldError
	if len(req.image) == 0 {
		missing = append(missing, FieldError{Field: "image", Message: "the picture to paint from is required"})
	}
	if len(req.mesh) == 0 {
		missing = append(missing, FieldError{Field: "mesh", Message: "the mesh to paint (GLB, OBJ, PLY or STL) is required"})
	}
	if len(missing) > 0 {
		return nil, invalidParams(missing)
	}
	return req, nil
}

func unsupportedTexturingBody(ct string) *Problem {
	return newProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
		fmt.Sprintf("content type %q: send multipart/form-data with image and mesh files, or application/json with both in base64", ct))
}

func unsupportedBody(ct string) *Problem {
	return newProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
		fmt.Sprintf("content type %q: send multipart/form-data with an image field, application/json with a base64 image, or the raw image (image/png, image/jpeg, image/webp)", ct))
}

func addQuery(raw map[string]string, q url.Values) error {
	for name, vs := range q {
		if controlParams[name] {
			continue
		}
		if len(vs) != 1 {
			return badRequest(name, "given more than once")
		}
		raw[name] = vs[0]
	}
	return nil
}

func setField(raw map[string]string, name, value string) error {
	if _, dup := raw[name]; dup {
		return badRequest(name, "given more than once")
	}
	raw[name] = value
	return nil
}

// readFile reads the file of one field, up to maxBytes.
func readFile(field string, r io.Reader, maxBytes int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, bodyError(err)
	}
	if int64(len(b)) > maxBytes {
		p := tooLarge(maxBytes)
		p.Detail = fmt.Sprintf("the %s may be at most %d bytes", field, maxBytes)
		p.Errors = []FieldError{{Field: field, Message: p.Detail}}
		return nil, p
	}
	return b, nil
}

func tooLarge(limit int64) *Problem {
	p := newProblem(http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large",
		fmt.Sprintf("the image may be at most %d bytes", limit))
	p.Errors = []FieldError{{Field: "image", Message: p.Detail}}
	return p
}

// transportError maps a failure to receive the body (the body limit, a read
// timeout, a broken connection) to its answer, or returns nil when the body
// arrived and is malformed. Its details never carry socket addresses.
func transportError(err error) error {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return err
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(mbe.Limit)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return newProblem(http.StatusRequestTimeout, "request-timeout", "Request timeout",
			"the request body did not arrive in time")
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return badRequest("", "the connection failed while the request body was read")
	}
	return nil
}

// bodyError answers a failure to read the body: its transport's answer, or
// a malformed request.
func bodyError(err error) error {
	if t := transportError(err); t != nil {
		return t
	}
	return badRequest("", fmt.Sprintf("reading the request body: %v", err))
}

// decodeMultipart reads the form's fields and its image file, and its mesh
// file when withMesh.
func decodeMultipart(body io.Reader, boundary string, maxImage int64, req *decodedRequest, withMesh bool) error {
	if boundary == "" {
		return badRequest("", "multipart/form-data without a boundary")
	}
	mr := multipart.NewReader(body, boundary)
	for n := 0; ; n++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return bodyError(err)
		}
		if n >= maxParts {
			return badRequest("", fmt.Sprintf("more than %d form parts", maxParts))
		}
		name := part.FormName()
		switch {
		case name == "":
			return badRequest("", "form part without a name")
		case name == "image":
			if err := readFileOnce(&req.image, name, part, maxImage); err != nil {
				return err
			}
		case name == "mesh" && withMesh:
			if err := readFileOnce(&req.mesh, name, part, maxImage); err != nil {
				return err
			}
		case part.FileName() != "":
			if withMesh {
				return badRequest(name, "unexpected file; the picture goes in the image field, the mesh in the mesh field")
			}
			return badRequest(name, "unexpected file; the picture goes in the image field")
		default:
			v, err := io.ReadAll(io.LimitReader(part, maxFormFieldBytes+1))
			if err != nil {
				return bodyError(err)
			}
			if len(v) > maxFormFieldBytes {
				return badRequest(name, "value too long")
			}
			if err := setField(req.raw, name, string(v)); err != nil {
				return err
			}
		}
	}
}

// readFileOnce reads the file part of field into *dst, which must still be
// empty: a field given twice is refused.
func readFileOnce(dst *[]byte, field string, part io.Reader, limit int64) error {
	if *dst != nil {
		return badRequest(field, "given more than once")
	}
	b, err := readFile(field, part, limit)
	if err != nil {
		return err
	}
	*dst = b
	return nil
}

// decodeJSONFields reads one JSON object whose values are strings, numbers,
// booleans or null and returns each non-null value as text: a number keeps
// its literal spelling so that the parameter parser alone decides its range.
// The object is read key by key, so that a body of millions of keys is
// refused after maxJSONFields of them instead of being held in memory, and a
// key given twice is refused like a repeated form field.
func decodeJSONFields(body io.Reader) (map[string]string, error) {
	dec := json.NewDecoder(body)
	malformed := func(err error) error {
		if t := transportError(err); t != nil {
			return t
		}
		return badRequest("", fmt.Sprintf("invalid JSON: %v", err))
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, malformed(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, badRequest("", "the body must be a JSON object")
	}
	out := map[string]string{}
	seen := map[string]bool{}
	var errs []FieldError
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed(err)
		}
		name, _ := tok.(string)
		if len(seen) == maxJSONFields {
			return nil, badRequest("", fmt.Sprintf("more than %d fields in the JSON object", maxJSONFields))
		}
		if seen[name] {
			return nil, badRequest(name, "given more than once")
		}
		seen[name] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, malformed(err)
		}
		switch {
		case string(v) == "null":
		case v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				errs = append(errs, FieldError{Field: name, Message: "invalid string"})
				continue
			}
			out[name] = s
		case v[0] == '{' || v[0] == '[':
			errs = append(errs, FieldError{Field: name, Message: "must be a string, number or boolean"})
		default:
			out[name] = string(v)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, malformed(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest("", "trailing data after the JSON object")
	}
	if len(errs) > 0 {
		return nil, invalidParams(errs)
	}
	return out, nil
}

func takeJSON(fields map[string]string, req *decodedRequest, withMesh bool) error {
	for name, v := range fields {
		if name == "image" || (name == "mesh" && withMesh) {
			b, err := decodeBase64(name, v)
			if err != nil {
				return err
			}
			if name == "image" {
				req.image = b
			} else {
				req.mesh = b
			}
			continue
		}
		if err := setField(req.raw, name, v); err != nil {
			return err
		}
	}
	return nil
}

// decodeBase64 reads the file in a base64 field: standard or URL-safe,
// padded or not, with or without a data: URL prefix, since clients produce
// all of them.
func decodeBase64(field, s string) ([]byte, error) {
	if strings.HasPrefix(s, "data:") {
		i := strings.Index(s, ",")
		if i < 0 || !strings.HasSuffix(s[:i], ";base64") {
			return nil, badRequest(field, "data URL must be base64-encoded")
		}
		s = s[i+1:]
	}
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, badRequest(field, "must be base64-encoded")
}

// sniffImage rejects bodies that are plainly not an allowed picture before
// they take a preprocessing slot; the preprocessor checks again in depth.
func sniffImage(b []byte) error {
	switch http.DetectContentType(b) {
	case "image/png", "image/jpeg", "image/webp":
		return nil
	}
	return imageProblem(pipeline.ErrUnsupportedFormat)
}
