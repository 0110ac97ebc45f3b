package jobs

import (
	"slices"
	"time"
)

// joinCostShare is how cheap a joining job's rows must be for the adaptive
// policy to let it into a running batch: the step must grow by at most this
// share of what a step of one job alone takes. Where batching saves little
// (a compute-bound DiT, whose time grows with every row), jobs then run one
// after another, first come first served, which keeps the tail latency near
// what one GPU can give; where rows are cheap (a memory-bound DiT, reading
// its weights once for the whole batch), they join as under
// PolicyContinuous.
const joinCostShare = 0.5

// stepCostWindow is how many of a batch size's latest step times its
// cost is taken from.
const stepCostWindow = 16

// stepCosts is what one model's DiT step took, per batch size, as the step
// loop measured it. A step's cost is the least of its latest
// stepCostWindow measurements: whatever else shares the device (a
// finisher's decode on the same GPU, the host's other work) only ever adds
// to a step's time, and an average would charge that to the batch size
// that happened to meet it, so that dear rows could look cheap; the window
// lets the cost follow a device that has become slower. Only that loop's
// goroutine uses it.
type stepCosts struct {
	recent map[int][]time.Duration
}

func newStepCosts() *stepCosts { return &stepCosts{recent: map[int][]time.Duration{}} }

func (c *stepCosts) observe(batch int, d time.Duration) {
	r := append(c.recent[batch], d)
	if len(r) > stepCostWindow {
		r = r[len(r)-stepCostWindow:]
	}
	c.recent[batch] = r
}

// cost is a step of batch jobs' cost, and whether one was measured.
func (c *stepCosts) cost(batch int) (time.Duration, bool) {
	r := c.recent[batch]
	if len(r) == 0 {
		return 0, false
	}
	return slices.Min(r), true
}

// room is how many queued jobs may join a batch of active jobs, at most
// limit in all. An idle model always takes one. The batch grows while each
// added job makes the step longer by at most joinCostShare of a lone step;
// one batch size past those measured is tried (and so measured) when the
// way up to it was cheap.
func (c *stepCosts) room(active, limit int) int {
	k := 0
	for n := active; n < limit; n++ {
		if n == 0 {
			k++
			continue
		}
		if _, measured := c.cost(n + 1); !measured {
			if n == 1 || c.cheap(n) {
				k++
			}
			break
		}
		if !c.cheap(n + 1) {
			break
		}
		k++
	}
	return k
}

// cheap reports whether growing the batch from n-1 to n jobs was measured
// to cost at most joinCostShare of a lone step.
func (c *stepCosts) cheap(n int) bool {
	alone, ok1 := c.cost(1)
	before, okBefore := c.cost(n - 1)
	after, okAfter := c.cost(n)
	return ok1 && okBefore && okAfter && float64(after-before) <= joinCostShare*float64(alone)
}
