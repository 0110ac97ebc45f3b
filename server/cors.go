package server

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// CORS settings: what browsers may send and read across origins.
const (
	corsMethods = "GET, HEAD, POST, DELETE"
	corsHeaders = "Content-Type, Authorization, X-API-Key, X-Request-Id, Range, If-None-Match, If-Range, Last-Event-ID"
	corsExpose  = "Location, ETag, Retry-After, X-Request-Id, X-Generation-Id, Content-Disposition, Content-Range, Accept-Ranges"
)

// cors answers cross-origin requests from the allow-list ("*" allows any
// origin). A request from another origin gets no CORS headers, so the
// browser keeps the response from the page; a preflight from it is refused.
func cors(origins []string) echo.MiddlewareFunc {
	allowed := map[string]bool{}
	for _, o := range origins {
		allowed[strings.TrimSuffix(o, "/")] = true
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			h := c.Response().Header()
			h.Add("Vary", "Origin")
			origin := req.Header.Get("Origin")
			if origin == "" {
				return next(c)
			}
			preflight := req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != ""
			if !allowed[origin] && !allowed["*"] {
				if preflight {
					return newProblem(http.StatusForbidden, "origin-not-allowed", "Origin not allowed",
						"this origin is not in the server's CORS allow-list")
				}
				return next(c)
			}
			h.Set("Access-Control-Allow-Origin", origin)
			if preflight {
				h.Add("Vary", "Access-Control-Request-Method")
				h.Add("Vary", "Access-Control-Request-Headers")
				h.Set("Access-Control-Allow-Methods", corsMethods)
				h.Set("Access-Control-Allow-Headers", corsHeaders)
				h.Set("Access-Control-Max-Age", "600")
				return c.NoContent(http.StatusNoContent)
			}
			h.Set("Access-Control-Expose-Headers", corsExpose)
			return next(c)
		}
	}
}
