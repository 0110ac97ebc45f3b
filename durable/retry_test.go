package durable

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestTransientErrorsAreThoseARecoveringClusterGives(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nats.ErrNoResponders, true},
		{fmt.Errorf("sharing result: %w", nats.ErrDisconnected), true},
		{nats.ErrConnectionReconnecting, true},
		{context.DeadlineExceeded, true},
		// what an object store read that timed out on its pipe returns
		{&fs.PathError{Op: "read", Path: "pipe", Err: os.ErrDeadlineExceeded}, true},
		{jetstream.ErrObjectNotFound, false},
		{jetstream.ErrDigestMismatch, false},
		{errors.New("corrupt record"), false},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
