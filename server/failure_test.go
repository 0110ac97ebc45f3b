package server

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/hy3d/hy3d/tensor"
)

func TestGeneratorFailureStatus(t *testing.T) {
	cases := []struct {
		err    error
		status int
		slug   string
	}{
		{errors.New("decode: boom"), http.StatusInternalServerError, "generation-failed"},
		{fmt.Errorf("dit: trt: dit: cudaMemcpyAsync (input) failed: cudaErrorIllegalAddress: the CUDA context of this "+
			"process is lost: %w", tensor.ErrUnavailable), http.StatusServiceUnavailable, "backend-unavailable"},
	}
	for _, tc := range cases {
		p := failureGenerator(tc.err)
		if p.Status != tc.status || !errors.Is(p.cause, tc.err) || p.Detail != tc.err.Error() {
			t.Errorf("failureGenerator(%v) = %d %q (%q), want %d", tc.err, p.Status, p.Type, p.Detail, tc.status)
		}
		if p.Type != problemDocs+tc.slug {
			t.Errorf("failureGenerator(%v) type %q, want %s", tc.err, p.Type, problemDocs+tc.slug)
		}
	}
}
