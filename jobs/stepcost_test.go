package jobs

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestStepCostsRoom(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		measured map[int]time.Duration
		active   int
		want     int
	}{
		{"idle, nothing measured: one job, then learn batch 2", nil, 0, 2},
		{"one sampling, batch 2 never measured: try it", map[int]time.Duration{1: 40 * ms}, 1, 1},
		{"rows as dear as alone: nobody joins", map[int]time.Duration{1: 40 * ms, 2: 80 * ms, 3: 120 * ms}, 1, 0},
		{"rows as dear as alone, idle: one job", map[int]time.Duration{1: 40 * ms, 2: 80 * ms}, 0, 1},
		{"rows nearly free: fill the batch", map[int]time.Duration{1: 40 * ms, 2: 42 * ms, 3: 44 * ms, 4: 46 * ms}, 1, 3},
		{"cheap up to 3, then unmeasured 4: try it", map[int]time.Duration{1: 40 * ms, 2: 42 * ms, 3: 44 * ms}, 1, 3},
		{"cheap to 2, dear past it", map[int]time.Duration{1: 40 * ms, 2: 50 * ms, 3: 90 * ms, 4: 130 * ms}, 0, 2},
		{"full batch: no room", map[int]time.Duration{1: 40 * ms, 2: 41 * ms, 3: 42 * ms, 4: 43 * ms}, 4, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newStepCosts()
			for n, d := range tc.measured {
				c.observe(n, d)
			}
			if got := c.room(tc.active, 4); got != tc.want {
				t.Errorf("room(%d, 4) = %d, want %d", tc.active, got, tc.want)
			}
		})
	}
}

func TestStepCostsIgnoreContentionAndFollowASlowerDevice(t *testing.T) {
	ms := time.Millisecond
	c := newStepCosts()
	for range 20 {
		c.observe(1, 40*ms)
	}
	// A step that met a decode on the same GPU is no dearer a step.
	for _, d := range []time.Duration{400 * ms, 140 * ms, 90 * ms} {
		c.observe(1, d)
	}
	if got, _ := c.cost(1); got != 40*ms {
		t.Errorf("after three slowed steps the cost is %v, want 40ms", got)
	}
	// So rows as dear as a job alone do not look cheap beside slowed lone steps.
	c.observe(2, 80*ms)
	if got := c.room(1, 4); got != 0 {
		t.Errorf("room(1, 4) = %d beside lone steps slowed by contention, want 0", got)
	}
	// A device that became slower is followed once the window has seen only that.
	for range stepCostWindow {
		c.observe(1, 60*ms)
	}
	if got, _ := c.cost(1); got != 60*ms {
		t.Errorf("after %d steps of 60ms the cost is %v", stepCostWindow, got)
	}
}

// adaptiveSteps runs job A (6 steps) with job B (6 steps) arriving during
// A's second step and C (2 steps) during the fourth, under the adaptive
// policy with the given step cost, for the given number of steps, and
// returns the jobs of every DiT step as "size:jobs".
func adaptiveSteps(t *testing.T, steps int, cost func(int) time.Duration) []string {
	gen := &fakeGen{clock: &fakeClock{}, stepCost: cost, stepping: make(chan []string, 64), stepGate: make(chan struct{})}
	e := newTestEngine(t, gen, Config{MaxBatch: 4, Policy: PolicyAdaptive})
	ids := []string{e.submit(t, 1, 6, PriorityNormal)}
	for step := 1; step <= steps; step++ {
		recv(t, gen.stepping, "a step")
		switch step {
		case 2:
			ids = append(ids, e.submit(t, 2, 6, PriorityNormal))
		case 4:
			ids = append(ids, e.submit(t, 3, 2, PriorityNormal))
		}
		gen.stepGate <- struct{}{}
	}
	for _, id := range ids {
		if snap := e.wait(t, id); snap.State != StateSucceeded {
			t.Fatalf("%s: %+v", id, snap)
		}
	}
	name := map[string]string{}
	for k, id := range ids {
		name[e.jobID(id)] = string(rune('A' + k))
	}
	var out []string
	for _, call := range gen.stepCalls() {
		var named []string
		for _, jobID := range call {
			named = append(named, name[jobID])
		}
		slices.Sort(named)
		out = append(out, fmt.Sprintf("%d:%s", len(named), strings.Join(named, "")))
	}
	return out
}

func TestAdaptivePolicyJoinsOnlyWhenBatchingPays(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name string
		cost func(int) time.Duration
		want []string
	}{
		{
			// B tries batch 2, never measured, and stays; batch 2 is then
			// known dear, so C waits until A and B have ended.
			"rows as dear as a job alone", func(n int) time.Duration { return time.Duration(n) * 40 * ms },
			[]string{"1:A", "1:A", "2:AB", "2:AB", "2:AB", "2:AB", "1:B", "1:B", "1:C", "1:C"},
		},
		{
			"rows nearly free", func(n int) time.Duration { return 40*ms + time.Duration(n)*ms },
			[]string{"1:A", "1:A", "2:AB", "2:AB", "3:ABC", "3:ABC", "1:B", "1:B"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := adaptiveSteps(t, len(tc.want), tc.cost); !slices.Equal(got, tc.want) {
				t.Errorf("steps %v, want %v", got, tc.want)
			}
		})
	}
}
