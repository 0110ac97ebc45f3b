package studio_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDashboardFillsWithData opens the dashboard after one generation: every
// chart gathers points from the once-a-second refresh, the stage latency and
// batch tables list what ran, and the GPU panel states what it knows. The
// page passes an accessibility scan and logs no error.
func TestDashboardFillsWithData(t *testing.T) {
	base := serveTiny(t)
	picture, err := os.ReadFile(objectPicture(t))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/v1/generate?steps=2", "image/png", bytes.NewReader(picture))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("generating before the dashboard: status %d", resp.StatusCode)
	}

	ctx, pageErrors := newBrowser(t, t.TempDir(), noErrors)
	step(t, ctx, "opening the dashboard and waiting for three refreshes",
		chromedp.Navigate(base+"/dashboard"),
		until(`[...document.querySelectorAll(".chart")].every((c) => Number(c.dataset.points || 0) >= 3)`, 30*time.Second),
	)
	recordPageWeight(t, ctx, "dashboard")
	stages := read(t, ctx, "reading the stage table", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("#stages tbody tr")].map((r) => r.cells[0].textContent)`))
	for _, want := range []string{"preprocess", "sample", "export"} {
		if !slices.Contains(stages, want) {
			t.Errorf("stage table lists %v, want %s among them", stages, want)
		}
	}
	batches := read(t, ctx, "reading the batch table", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("#batches tbody tr")].map((r) => r.cells[0].textContent)`))
	if !slices.Contains(batches, "dit") {
		t.Errorf("batch table lists %v, want dit", batches)
	}
	if gpu := read(t, ctx, "reading the GPU state", chromedp.Text(chromedp.ID("gpu-state"))); gpu == "" {
		t.Error("the GPU panel says nothing")
	}
	if n := read(t, ctx, "counting drawn charts", chromedp.Evaluate[int](`document.querySelectorAll(".chart canvas").length`)); n != 4 {
		t.Errorf("%d charts drawn, want 4", n)
	}
	screenshot(t, ctx, "dashboard")
	requireAccessible(t, ctx, "dashboard")
	requirePageClean(t, pageErrors)
}
