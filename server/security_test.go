package server

import (
	"bytes"
	"github.com/hy3d/hy3d/telemetry"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

func TestRateLimitIsKeyedOnThePeerAddressNotForwardedFor(t *testing.T) {
	s := newTestServer(t, nil, func(c *Config) { c.RateLimit = 0.001; c.RateBurst = 2 })
	img := testPNG(t, 16, 16, 90)
	post := func(xff string) *http.Response {
		return s.do(t, "POST", "/v1/generations", bytes.NewReader(img), "Content-Type", "image/png", "X-Forwarded-For", xff)
	}
	for i := range 2 {
		if resp := post("10.0.0." + strconv.Itoa(i)); resp.StatusCode >= 300 {
			t.Fatalf("request %d within the burst: %d", i, resp.StatusCode)
		}
	}
	resp := post("10.0.0.99") // a fresh forged address changes nothing
	p := readProblem(t, resp, http.StatusTooManyRequests)
	if p.Type != problemDocs+"rate-limited" {
		t.Errorf("type %s", p.Type)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	// Reads are not rate limited.
	if r := s.do(t, "GET", "/v1/models", nil); r.StatusCode != 200 {
		t.Errorf("GET limited: %d", r.StatusCode)
	}
	var stats telemetry.StatsView
	decodeJSON(t, s.do(t, "GET", "/v1/stats", nil), &stats)
	if stats.Shed["rate_limited"] != 1 {
		t.Errorf("shed %v", stats.Shed)
	}
}

func TestRateLimitTrustsForwardedForOnlyFromATrustedProxy(t *testing.T) {
	s := newTestServer(t, nil, func(c *Config) {
		c.RateLimit, c.RateBurst = 0.001, 1
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	img := testPNG(t, 16, 16, 91)
	for i := range 3 {
		resp := s.do(t, "POST", "/v1/generations", bytes.NewReader(img), "Content-Type", "image/png",
			"X-Forwarded-For", "203.0.113."+strconv.Itoa(i))
		if resp.StatusCode >= 300 {
			t.Fatalf("client %d behind the proxy: %d", i, resp.StatusCode)
		}
	}
	resp := s.do(t, "POST", "/v1/generations", bytes.NewReader(img), "Content-Type", "image/png", "X-Forwarded-For", "203.0.113.0")
	readProblem(t, resp, http.StatusTooManyRequests)
}

func TestClientAddress(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     []string
		want    string
	}{
		{"no proxy configured ignores XFF", nil, "198.51.100.7:5555", []string{"1.2.3.4"}, "198.51.100.7"},
		{"untrusted peer ignores XFF", trusted, "198.51.100.7:5555", []string{"1.2.3.4"}, "198.51.100.7"},
		{"trusted peer: rightmost untrusted hop", trusted, "10.1.1.1:80", []string{"6.6.6.6, 1.2.3.4, 10.2.2.2"}, "1.2.3.4"},
		{"several headers are one list", trusted, "10.1.1.1:80", []string{"6.6.6.6", "1.2.3.4"}, "1.2.3.4"},
		{"all hops trusted", trusted, "10.1.1.1:80", []string{"10.3.3.3"}, "10.3.3.3"},
		{"no header", trusted, "10.1.1.1:80", nil, "10.1.1.1"},
		{"garbage hop stops the walk", trusted, "10.1.1.1:80", []string{"1.2.3.4, nonsense"}, "10.1.1.1"},
		{"ipv6 peer", trusted, "[::1]:80", []string{"2001:db8::1"}, "2001:db8::1"},
		{"mapped ipv4", nil, "[::ffff:198.51.100.7]:1", nil, "198.51.100.7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.remote
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := (clientAddr{trusted: c.trusted}).extract(r); got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestTokenBucketRefillsAtItsRate(t *testing.T) {
	l := newRateLimiter(2, 2)
	now := time.Unix(1000, 0)
	for i := range 2 {
		if ok, _ := l.allow("a", now); !ok {
			t.Fatalf("burst request %d refused", i)
		}
	}
	ok, wait := l.allow("a", now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("empty bucket: %v %v", ok, wait)
	}
	if ok, _ := l.allow("b", now); !ok {
		t.Error("another client shares the bucket")
	}
	if ok, _ := l.allow("a", now.Add(500*time.Millisecond)); !ok {
		t.Error("no refill after 0.5 s at 2/s")
	}
}

func TestAPIKeyComparison(t *testing.T) {
	k := newAPIKeys([]string{"alpha-key", "", "beta-key-that-is-longer"})
	cases := []struct {
		key  string
		want bool
	}{
		{"alpha-key", true},
		{"beta-key-that-is-longer", true},
		{"", false},
		{"alpha-ke", false},
		{"alpha-key ", false},
		{"ALPHA-KEY", false},
		{"beta-key-that-is-longer-still", false},
	}
	for _, c := range cases {
		if got := k.valid(c.key); got != c.want {
			t.Errorf("valid(%q) = %v", c.key, got)
		}
	}
	if newAPIKeys(nil).enabled() || newAPIKeys([]string{""}).enabled() {
		t.Error("no keys must mean no authentication")
	}
	for _, c := range []struct{ auth, x, want string }{
		{"Bearer abc", "", "abc"}, {"bearer  abc ", "", "abc"}, {"Basic abc", "xyz", "xyz"}, {"", " xyz ", "xyz"},
	} {
		if got := presentedKey(c.auth, c.x); got != c.want {
			t.Errorf("presentedKey(%q, %q) = %q", c.auth, c.x, got)
		}
	}
}

func TestAPIKeyMiddleware(t *testing.T) {
	s := newTestServer(t, nil, func(c *Config) { c.APIKeys = []string{"s3cret"} })
	resp := s.do(t, "GET", "/v1/models", nil)
	readProblem(t, resp, http.StatusUnauthorized)
	if resp.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	readProblem(t, s.do(t, "GET", "/v1/models", nil, "Authorization", "Bearer wrong"), http.StatusUnauthorized)
	readProblem(t, s.do(t, "POST", "/generate", nil, "X-API-Key", "wrong"), http.StatusUnauthorized)
	for _, h := range [][]string{{"Authorization", "Bearer s3cret"}, {"X-API-Key", "s3cret"}} {
		if r := s.do(t, "GET", "/v1/models", nil, h...); r.StatusCode != 200 {
			t.Errorf("%v: %d", h, r.StatusCode)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := s.do(t, "GET", path, nil); r.StatusCode != 200 {
			t.Errorf("%s needs no key: %d", path, r.StatusCode)
		}
	}
}

func TestCORSAllowList(t *testing.T) {
	s := newTestServer(t, nil, func(c *Config) { c.CORSOrigins = []string{"https://app.example"} })
	pre := s.do(t, "OPTIONS", "/v1/generations", nil, "Origin", "https://app.example",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type")
	if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		pre.Header.Get("Access-Control-Allow-Methods") == "" {
		t.Fatalf("allowed preflight: %d %v", pre.StatusCode, pre.Header)
	}
	bad := s.do(t, "OPTIONS", "/v1/generations", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	readProblem(t, bad, http.StatusForbidden)
	if bad.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("disallowed origin got CORS headers")
	}
	get := s.do(t, "GET", "/v1/models", nil, "Origin", "https://app.example")
	if get.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || get.Header.Get("Access-Control-Expose-Headers") == "" {
		t.Errorf("simple request: %v", get.Header)
	}
	if other := s.do(t, "GET", "/v1/models", nil, "Origin", "https://evil.example"); other.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("disallowed origin got Access-Control-Allow-Origin")
	}
}

func TestHTTPServerHasEveryTimeout(t *testing.T) {
	s := newTestServer(t, nil)
	hs := s.HTTPServer("127.0.0.1:0")
	if hs.ReadHeaderTimeout <= 0 || hs.ReadTimeout <= 0 || hs.WriteTimeout <= 0 || hs.IdleTimeout <= 0 || hs.MaxHeaderBytes <= 0 {
		t.Errorf("%+v", hs)
	}
}
