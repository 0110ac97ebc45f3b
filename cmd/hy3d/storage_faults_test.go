package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// noisyPicture is a PNG of n×n random pixels around a disc: it does not
// compress, so each upload weighs about 4n² bytes in the queue.
func noisyPicture(t *testing.T, n int, seed uint64) []byte {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	for y := range n {
		for x := range n {
			a := uint8(0)
			if (x-n/2)*(x-n/2)+(y-n/2)*(y-n/2) < n*n/9 {
				a = 255
			}
			img.SetNRGBA(x, y, color.NRGBA{uint8(r.Uint32()), uint8(r.Uint32()), uint8(r.Uint32()), a | uint8(r.Uint32()&1)})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func serveArgs(addr, dir string, extra ...string) []string {
	return append([]string{"serve", "--addr", addr, "--data-dir", dir, "--engines", tinyDir, "--threads", "1",
		"--max-batch", "1", "--rate-limit", "0"}, extra...)
}

// TestAFullQueueRefusesWithAReasonAndKeepsWhatItAccepted: with the
// embedded server's files bounded, jobs past the bound are refused with
// 503 storage-unavailable, and every job accepted before still succeeds.
// A gateway alone fills the queue (nothing runs); the server started
// again on the same data directory runs what it accepted.
func TestAFullQueueRefusesWithAReasonAndKeepsWhatItAccepted(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	p := startProc(t, "full", addr, serveArgs(addr, dir, "--store-bytes", "2MiB", "--role", "gateway", "--nats-listen", freeAddr(t))...)
	p.waitReady()
	var ids []string
	refused := 0
	for i := range 12 {
		code, st, err := postJob(p.url, noisyPicture(t, 200, uint64(i)), map[string]string{"steps": "2", "resolution": "16"})
		switch {
		case code == http.StatusAccepted:
			ids = append(ids, st.ID)
		case code == http.StatusServiceUnavailable && strings.Contains(err.Error(), "storage-unavailable"):
			refused++
		default:
			t.Fatalf("job %d: %d %v", i, code, err)
		}
	}
	if refused == 0 || len(ids) == 0 {
		t.Fatalf("%d accepted, %d refused: the bound did not bite", len(ids), refused)
	}
	p.kill()
	addr = freeAddr(t)
	q := startProc(t, "full-restarted", addr, serveArgs(addr, dir, "--store-bytes", "2MiB")...)
	q.waitReady()
	succeeded, failed := checkEnded(t, q.url, waitAllEnd(t, q.url, ids))
	t.Logf("accepted %d, refused %d with a reason (queue full), %d succeeded, %d failed with a reason, %d lost",
		len(ids), refused, succeeded, failed, len(ids)-succeeded-failed)
	if succeeded != len(ids) {
		t.Errorf("%d of %d accepted jobs succeeded", succeeded, len(ids))
	}
}

// TestAnUnwritableResultStoreFailsTheJobWithAReason: a job whose result
// cannot be written ends failed, saying so; nothing is silently dropped.
func TestAnUnwritableResultStoreFailsTheJobWithAReason(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	p := startProc(t, "unwritable", addr, serveArgs(addr, dir)...)
	p.waitReady()
	// The result directory becomes a file: every write into it fails, as
	// on a disk that is full or gone read-only (permissions do not stop
	// root, who runs the tests in CI).
	results := filepath.Join(dir, "results")
	if err := os.Rename(results, results+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(results, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, st, err := postJob(p.url, readPicture(t), map[string]string{"steps": "2", "resolution": "16"})
	if code != http.StatusAccepted {
		t.Fatalf("%d %v", code, err)
	}
	ended := waitAllEnd(t, p.url, []string{st.ID})[st.ID]
	if ended.Status != "failed" || ended.Error == nil || !strings.Contains(ended.Error.Detail, "could not be stored") {
		t.Fatalf("want failed with the reason, got %+v %+v", ended, ended.Error)
	}
}

// TestACorruptResultIsGoneWithAReasonAndRunsAgain: a result file damaged
// on disk is detected when read, answered 410 result-gone (not a broken
// mesh), and the same request runs the job again.
func TestACorruptResultIsGoneWithAReasonAndRunsAgain(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	p := startProc(t, "corrupt", addr, serveArgs(addr, dir)...)
	p.waitReady()
	picture := readPicture(t)
	fields := map[string]string{"steps": "2", "resolution": "16"}
	_, st, err := postJob(p.url, picture, fields)
	if err != nil {
		t.Fatal(err)
	}
	if ended := waitAllEnd(t, p.url, []string{st.ID})[st.ID]; ended.Status != "succeeded" {
		t.Fatalf("%+v", ended)
	}
	p.kill()
	meshes, _ := filepath.Glob(filepath.Join(dir, "results", "*", "*", "mesh.glb"))
	if len(meshes) != 1 {
		t.Fatalf("result files: %v", meshes)
	}
	if err := os.WriteFile(meshes[0], []byte("glTF but not the mesh that was stored"), 0o644); err != nil {
		t.Fatal(err)
	}

	addr = freeAddr(t)
	q := startProc(t, "corrupt-restarted", addr, serveArgs(addr, dir)...)
	q.waitReady()
	resp, err := http.Get(q.url + "/v1/generations/" + st.ID + "/result")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone {
		t.Fatalf("a corrupt result: %d, want 410", resp.StatusCode)
	}
	code, again, err := postJob(q.url, picture, fields)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("the same request again: %d %v", code, err)
	}
	if ended := waitAllEnd(t, q.url, []string{again.ID})[again.ID]; ended.Status != "succeeded" {
		t.Fatalf("%+v", ended)
	}
	if err := fetchResult(q.url, again.ID); err != nil {
		t.Fatal(err)
	}
}

// TestATruncatedQueueFileStartsAndFailsTheLostJobsWithAReason: the job
// stream's file cut short while hy3d was down. hy3d starts (NATS drops
// what it cannot read back), and every accepted job ends: the ones still
// in the file succeed, the lost ones fail saying so.
func TestATruncatedQueueFileStartsAndFailsTheLostJobsWithAReason(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	// A worker that never takes a job: the queue keeps all of them.
	p := startProc(t, "truncated", addr, serveArgs(addr, dir, "--role", "gateway", "--nats-listen", freeAddr(t))...)
	p.waitReady()
	var ids []string
	for i := range 6 {
		code, st, err := postJob(p.url, noisyPicture(t, 64, uint64(i)), map[string]string{"steps": "2", "resolution": "16"})
		if code != http.StatusAccepted {
			t.Fatalf("job %d: %d %v", i, code, err)
		}
		ids = append(ids, st.ID)
	}
	p.kill()
	blocks, _ := filepath.Glob(filepath.Join(dir, "jetstream", "jetstream", "*", "streams", "HY3D_JOBS", "msgs", "*.blk"))
	if len(blocks) == 0 {
		t.Fatal("no block file of the job stream")
	}
	fi, err := os.Stat(blocks[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(blocks[0], fi.Size()/2); err != nil {
		t.Fatal(err)
	}

	addr = freeAddr(t)
	q := startProc(t, "truncated-restarted", addr, serveArgs(addr, dir)...)
	q.waitReady()
	succeeded, failed := checkEnded(t, q.url, waitAllEnd(t, q.url, ids))
	t.Logf("accepted %d, 1 fault (queue file cut in half), %d succeeded, %d failed with a reason, %d lost",
		len(ids), succeeded, failed, len(ids)-succeeded-failed)
	if succeeded+failed != len(ids) || failed == 0 {
		t.Errorf("%d succeeded and %d failed of %d:\n%s", succeeded, failed, len(ids), q.logText())
	}
}
