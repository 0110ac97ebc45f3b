package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr finds the address a request really came from. Without trusted
// proxies that is the TCP peer and nothing else: X-Forwarded-For is written
// by the client and would let anyone pick their own rate-limit bucket. With
// trusted proxies, X-Forwarded-For is walked from the right, skipping hops
// that are themselves trusted proxies; the first untrusted hop is the client.
type clientAddr struct {
	trusted []netip.Prefix
}

func (c clientAddr) extract(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !c.isTrusted(peer) {
		return peer.String()
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			// A malformed hop breaks the chain of trust: the last proxy we
			// trust is the best we know.
			break
		}
		a = a.Unmap()
		if !c.isTrusted(a) {
			return a.String()
		}
		peer = a
	}
	return peer.String()
}

func (c clientAddr) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
