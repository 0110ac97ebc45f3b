// Package testwait holds the one way hy3d's tests wait for an event from a
// channel: with a bound, after which the test fails naming what it waited
// for, so a lost event never hangs a test run.
package testwait

import (
	"testing"
	"time"
)

// Recv receives from ch, or fails the test after bound.
func Recv[T any](t testing.TB, ch <-chan T, what string, bound time.Duration) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(bound):
		t.Fatalf("timed out after %s waiting for %s", bound, what)
		panic("unreachable")
	}
}
