package main

import (
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// BenchmarkServeStartToReady: from starting `hy3d serve` (on the embedded
// default model set, with the embedded NATS server on a data directory
// kept from one start to the next) to its first 200 from /readyz.
func BenchmarkServeStartToReady(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		addr := freeAddr(b)
		cmd := exec.Command(os.Args[0], "serve", "--addr", addr, "--data-dir", dir, "--threads", "1", "--log-level", "error")
		cmd.Env = append(os.Environ(), runAsHy3d+"=1")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(safetyWait)
		for {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				b.Fatal("not ready")
			}
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		b.StartTimer()
	}
}
