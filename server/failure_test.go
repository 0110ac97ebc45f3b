package server

import (
	"errors"
	"net/http"
	"testing"

	"github.com/hy3d/hy3d/jobs"
)

func TestFailureProblemStatus(t *testing.T) {
	cause := errors.New("dit: boom")
	cases := []struct {
		kind   jobs.FailureKind
		status int
	}{
		{jobs.FailCancelled, http.StatusConflict},
		{jobs.FailDeadline, http.StatusGatewayTimeout},
		{jobs.FailShutdown, http.StatusServiceUnavailable},
		{jobs.FailGenerator, http.StatusInternalServerError},
		{jobs.FailBackend, http.StatusServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(string(tc.kind), func(t *testing.T) {
			p := failureProblem(&jobs.Failure{Kind: tc.kind, Detail: "why", Err: cause})
			if p.Status != tc.status || p.Type != problemDocs+string(tc.kind) || p.Detail != "why" || !errors.Is(p.cause, cause) {
				t.Errorf("failureProblem(%s) = %d %q (%q), want %d %s", tc.kind, p.Status, p.Type, p.Detail, tc.status, problemDocs+string(tc.kind))
			}
		})
	}
}
