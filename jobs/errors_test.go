package jobs

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hy3d/hy3d/tensor"
)

func TestGeneratorFailureKind(t *testing.T) {
	cases := []struct {
		err  error
		want FailureKind
	}{
		{errors.New("decode: boom"), FailGenerator},
		{fmt.Errorf("dit: trt: dit: cudaMemcpyAsync (input) failed: cudaErrorIllegalAddress: the CUDA context of this "+
			"process is lost: %w", tensor.ErrUnavailable), FailBackend},
	}
	for _, tc := range cases {
		f := failureGenerator(tc.err)
		if f.Kind != tc.want || f.Detail != tc.err.Error() || !errors.Is(f.Err, tc.err) {
			t.Errorf("failureGenerator(%v) = %s %q, want %s", tc.err, f.Kind, f.Detail, tc.want)
		}
	}
}
