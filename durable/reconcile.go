package durable

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hy3d/hy3d/jobs"
)

// lostDetail is the reason a job whose queue entry was lost fails with.
const lostDetail = "the job's entry in the queue was lost (the queue's files were damaged; the log at start says how): submit it again"

// reconcile fails, with a reason, every unfinished task whose job message
// is no longer in the stream: what a damaged file took (NATS drops what it
// cannot read back when it starts), or a job a crash interrupted between
// its record and its message (whose client never had an answer). Without
// it such a job would wait forever. Only a process that is the queue's
// sole user may run it: another's job may be between record and message.
func (b *Broker) reconcile(ctx context.Context) error {
	queued := map[string]bool{}
	info, err := b.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("reading the job stream: %w", err)
	}
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := b.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // acknowledged
		}
		if err != nil {
			return fmt.Errorf("reading job %d of the stream: %w", seq, err)
		}
		if spec, _, _, err := decodeJob(m.Data); err == nil {
			queued[spec.ID] = true
		}
	}
	keys, err := b.tasks.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("listing task records: %w", err)
	}
	lost := 0
	for k := range keys.Keys() {
		key, err := parseKey(k)
		if err != nil {
			continue
		}
		_, err = b.casTask(ctx, key, func(r *jobs.TaskRecord, exists bool) (bool, error) {
			if !exists || r.State.Terminal() || queued[r.ID] {
				return false, nil
			}
			r.State, r.Finished = jobs.StateFailed, time.Now()
			r.Failure = &jobs.Failure{Kind: jobs.FailGenerator, Detail: lostDetail}
			lost++
			return true, nil
		})
		if err != nil {
			return err
		}
	}
	if lost > 0 {
		b.log.Error().Int("jobs", lost).Msg("jobs whose queue entry was lost fail with that reason")
	}
	return nil
}
