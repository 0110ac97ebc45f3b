package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/hy3d/hy3d/jobs"
	"github.com/labstack/echo/v4"
)

const (
	requestIDKey = "request_id"
	bodyWatchKey = "body_watch"
)

// bodyWatch notes whether the request body was read to its end.
type bodyWatch struct {
	io.ReadCloser
	ended bool
}

func (b *bodyWatch) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.ended = true
	}
	return n, err
}

// unreadBody reports whether the request carries a body that the handler
// has not read to its end.
func unreadBody(c echo.Context) bool {
	if c.Request().ContentLength == 0 {
		return false
	}
	w, ok := c.Get(bodyWatchKey).(*bodyWatch)
	return ok && !w.ended
}

// requestID returns the id accessLog gave the request.
func requestID(c echo.Context) string {
	id, _ := c.Get(requestIDKey).(string)
	return id
}

// validRequestID accepts a client's X-Request-Id only if it is short and
// plain, since it ends up in logs and headers.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// accessLog assigns the request id, lets the error handler write any error
// so that the final status is known, and writes one log line and one metric
// sample per request.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		req := c.Request()
		id := req.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = jobs.NewID()
		}
		c.Set(requestIDKey, id)
		c.Response().Header().Set("X-Request-Id", id)
		if req.ContentLength != 0 {
			w := &bodyWatch{ReadCloser: req.Body}
			req.Body = w
			c.Set(bodyWatchKey, w)
		}

		err := next(c)
		if err != nil {
			c.Error(err)
		}
		d := time.Since(start)
		status := c.Response().Status
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		s.met.Request(route, req.Method, status, d)

		ev := s.log.Info()
		if status >= 500 {
			ev = s.log.Error()
		}
		if err != nil {
			if p := problemFrom(err); p.cause != nil && status >= 500 {
				ev = ev.AnErr("cause", p.cause)
			}
			ev = ev.Str("error", err.Error())
		}
		ev.Str("method", req.Method).Str("path", req.URL.Path).Str("route", route).Int("status", status).
			Dur("duration", d).Int64("bytes_in", req.ContentLength).Int64("bytes_out", c.Response().Size).
			Str("request_id", id).Str("client", c.RealIP()).Msg("request")
		return nil
	}
}

// recoverPanics turns a handler panic into a 500 problem and a log line with
// the stack; http.ErrAbortHandler keeps its meaning (abort the response).
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.log.Error().Str("request_id", requestID(c)).Interface("panic", r).
				Bytes("stack", debug.Stack()).Msg("handler panicked")
			p := newProblem(http.StatusInternalServerError, "internal", "Internal error", "internal error")
			p.cause = fmt.Errorf("panic: %v", r)
			err = p
		}()
		return next(c)
	}
}

// limitBody refuses a declared body above limit at once and cuts off an
// undeclared one when it crosses the limit.
func limitBody(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > limit {
				return newProblem(http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large",
					fmt.Sprintf("the body may be at most %d bytes", limit))
			}
			req.Body = http.MaxBytesReader(c.Response(), req.Body, limit)
			return next(c)
		}
	}
}

// requireKey demands a configured API key on every route but the health checks
// and the browser pages.
func (s *Server) requireKey(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if route := c.Path(); route == "/healthz" || route == "/readyz" || isStudioPage(route) {
			return next(c)
		}
		req := c.Request()
		if !s.keys.valid(presentedKey(req.Header.Get("Authorization"), req.Header.Get("X-API-Key"))) {
			return newProblem(http.StatusUnauthorized, "unauthorized", "Unauthorized",
				"a valid API key is required (Authorization: Bearer <key> or X-API-Key)")
		}
		return next(c)
	}
}

// rateLimit applies the per-client token bucket to the routes that create work.
func (s *Server) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ok, wait := s.limiter.allow(c.RealIP(), time.Now())
		if !ok {
			s.met.Shed("rate_limited")
			return overloaded(http.StatusTooManyRequests, "rate-limited", "Too many requests",
				"this client is over its request rate", wait)
		}
		return next(c)
	}
}
