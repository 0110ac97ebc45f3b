package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// events streams a generation's status as Server-Sent Events: one "status"
// event at once and after every change (progress included), and the stream
// ends after a terminal status. Comment lines keep idle proxies from closing
// the connection while a job waits in the queue.
func (s *Server) events(c echo.Context) error {
	id := generationID(c, "id")
	snap, changed, err := s.engine.Watch(c.Request().Context(), id)
	if err != nil {
		return err
	}
	w := c.Response()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx would otherwise hold the events back
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	done := c.Request().Context().Done()

	for seq := 1; ; seq++ {
		body, err := json.Marshal(statusOf(snap))
		if err != nil {
			return fmt.Errorf("encode status: %w", err)
		}
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if _, err := fmt.Fprintf(w, "id: %d\nevent: status\ndata: %s\n\n", seq, body); err != nil {
			return nil // the client left
		}
		_ = rc.Flush()
		if snap.State.Terminal() {
			return nil
		}
	wait:
		for {
			select {
			case <-changed:
				break wait
			case <-done:
				return nil
			case <-heartbeat.C:
				_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
				if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
					return nil
				}
				_ = rc.Flush()
			}
		}
		snap, changed, err = s.engine.Watch(c.Request().Context(), id)
		if err != nil {
			return nil // forgotten by the sweeper mid-stream; nothing more to say
		}
	}
}
