package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
)

// plainErrorHeaders is how net/http ends the headers of the answers it
// writes itself, before any handler runs, to a request it cannot parse (a
// header block over the limit, a bad escape in the path, …): plain text and
// a closed connection. Handler answers never look like this: their headers
// are written in sorted order with a Date, so Connection comes first.
var plainErrorHeaders = []byte("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")

// problemListener hands out connections that turn net/http's own plain-text
// error answers into problems, as every other error of the server is.
type problemListener struct{ net.Listener }

func (l problemListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return problemConn{c}, nil
}

type problemConn struct{ net.Conn }

// Write recognises such an answer, which net/http writes in one call
// straight to the connection, and writes a problem in its place.
func (c problemConn) Write(p []byte) (int, error) {
	if answer := problemForPlainError(p); answer != nil {
		if _, err := c.Conn.Write(answer); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// problemForPlainError returns the problem answer that replaces p, or nil
// when p is not one of net/http's plain error answers.
func problemForPlainError(p []byte) []byte {
	const prefix = "HTTP/1.1 "
	if !bytes.HasPrefix(p, []byte(prefix)) || len(p) < len(prefix)+3 {
		return nil
	}
	statusLine, body, ok := bytes.Cut(p[len(prefix):], plainErrorHeaders)
	if !ok || bytes.Contains(statusLine, []byte("\r\n")) {
		return nil
	}
	code, err := strconv.Atoi(string(statusLine[:3]))
	if err != nil || code < 400 || code > 599 {
		return nil
	}
	title := http.StatusText(code)
	// The body is "431 Request Header Fields Too Large" or "400 Bad Request:
	// why"; the part after the status is the detail.
	detail := string(bytes.TrimPrefix(bytes.TrimPrefix(body, []byte(strconv.Itoa(code)+" "+title)), []byte(": ")))
	if detail == "" {
		detail = title
	}
	problem := newProblem(code, slugFor(code), title, detail)
	js, err := json.Marshal(problem)
	if err != nil {
		return nil
	}
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		code, title, len(js), js)
}
