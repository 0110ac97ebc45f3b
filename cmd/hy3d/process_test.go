package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The fault tests run hy3d as separate processes, the way an operator
// does, so that kill -9 means what it means: the test binary itself plays
// hy3d when runAsHy3d is set in its environment.
const runAsHy3d = "HY3D_TEST_RUN_AS_HY3D"

func TestMain(m *testing.M) {
	if os.Getenv(runAsHy3d) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, stdio{os.Stdin, os.Stdout, os.Stderr}, os.Args[1:])
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// proc is one hy3d process started by a test.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	log  string // its stderr
	url  string // http://addr of serve, "" for other commands
	done chan error
}

// startProc runs `hy3d args...` with its log in the test's directory; addr
// (when not "") is the address it serves HTTP on.
func startProc(t *testing.T, name, addr string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runAsHy3d+"=1")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logFile.Close()
	p := &proc{t: t, name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	if addr != "" {
		p.url = "http://" + addr
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill ends the process with SIGKILL: no drain, no flush, nothing.
func (p *proc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(safetyWait):
		p.t.Errorf("%s did not die", p.name)
	}
}

// logText is the process's log so far.
func (p *proc) logText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// safetyWait bounds every wait of the fault tests; it is a guard against
// hangs, never a measurement.
const safetyWait = 90 * time.Second

// waitReady waits until the process answers /readyz.
func (p *proc) waitReady() {
	p.t.Helper()
	deadline := time.Now().Add(safetyWait)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.t.Fatalf("%s exited (%v):\n%s", p.name, err, p.logText())
		default:
		}
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("%s not ready:\n%s", p.name, p.logText())
}

// freeAddr is a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// status is the part of a generation's status the fault tests read.
type status struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Progress *struct {
		Stage string `json:"stage"`
		Step  int    `json:"step"`
	} `json:"progress"`
	Error *struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
	} `json:"error"`
}

func terminal(s string) bool { return s == "succeeded" || s == "failed" || s == "cancelled" }

// postJob submits picture with the given fields to base and returns the
// HTTP status and the generation's status.
func postJob(base string, picture []byte, fields map[string]string) (int, status, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("image", "picture.png")
	fw.Write(picture)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	mw.Close()
	resp, err := http.Post(base+"/v1/generations", mw.FormDataContentType(), &body)
	if err != nil {
		return 0, status{}, err
	}
	defer resp.Body.Close()
	var st status
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &st)
	if resp.StatusCode >= 300 {
		return resp.StatusCode, st, fmt.Errorf("%d: %s", resp.StatusCode, b)
	}
	return resp.StatusCode, st, nil
}

func getStatus(base, id string) (int, status, error) {
	resp, err := http.Get(base + "/v1/generations/" + id)
	if err != nil {
		return 0, status{}, err
	}
	defer resp.Body.Close()
	var st status
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &st); err != nil {
		return resp.StatusCode, st, fmt.Errorf("%d: %s", resp.StatusCode, b)
	}
	return resp.StatusCode, st, nil
}

// fetchResult downloads a generation's GLB and checks it is one.
func fetchResult(base, id string) error {
	resp, err := http.Get(base + "/v1/generations/" + id + "/result?format=glb")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(b, []byte("glTF")) {
		return fmt.Errorf("result %s: %d %.200s", id, resp.StatusCode, b)
	}
	return nil
}

// waitAllEnd polls every id at base until each is terminal and returns
// their statuses. A 404 is never acceptable: every id was accepted.
func waitAllEnd(t *testing.T, base string, ids []string) map[string]status {
	t.Helper()
	out := map[string]status{}
	deadline := time.Now().Add(safetyWait)
	for len(out) < len(ids) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d accepted jobs ended in time", len(out), len(ids))
		}
		for _, id := range ids {
			if _, ok := out[id]; ok {
				continue
			}
			code, st, err := getStatus(base, id)
			if code == http.StatusNotFound {
				t.Fatalf("accepted job %s is unknown: %v", id, err)
			}
			if err == nil && terminal(st.Status) {
				out[id] = st
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return out
}

// waitRunning waits until one of ids is running past its first sampling step.
func waitRunning(t *testing.T, base string, ids []string) {
	t.Helper()
	deadline := time.Now().Add(safetyWait)
	for time.Now().Before(deadline) {
		for _, id := range ids {
			if _, st, err := getStatus(base, id); err == nil && st.Status == "running" && st.Progress != nil && st.Progress.Step >= 1 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no job started sampling")
}

// checkEnded fails the test for a job that did not succeed without a
// stated reason, and counts the losses: an id that did not succeed.
func checkEnded(t *testing.T, base string, ended map[string]status) (succeeded, failed int) {
	t.Helper()
	for id, st := range ended {
		switch {
		case st.Status == "succeeded":
			if err := fetchResult(base, id); err != nil {
				t.Errorf("%s succeeded but its result is not there: %v", id, err)
			}
			succeeded++
		case st.Error == nil || st.Error.Detail == "":
			t.Errorf("%s ended %s without a reason", id, st.Status)
		default:
			t.Logf("%s ended %s: %s (%s)", id, st.Status, st.Error.Type, st.Error.Detail)
			failed++
		}
	}
	return succeeded, failed
}

func readPicture(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(writePicture(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKill9MidJobLosesNoAcceptedJob: hy3d serve accepts jobs, is killed
// with SIGKILL while one runs, and starts again on the same data
// directory: every accepted job ends (succeeded, with its result), and no
// id is unknown.
func TestKill9MidJobLosesNoAcceptedJob(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	serveArgs := func(addr string) []string {
		return []string{"serve", "--addr", addr, "--data-dir", dir, "--engines", tinyDir, "--threads", "1",
			"--max-batch", "2", "--rate-limit", "0"}
	}
	addr := freeAddr(t)
	first := startProc(t, "first", addr, serveArgs(addr)...)
	first.waitReady()

	picture := readPicture(t)
	const jobs = 6
	var ids []string
	for i := range jobs {
		code, st, err := postJob(first.url, picture, map[string]string{"seed": fmt.Sprint(i), "steps": "30", "resolution": "32"})
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("job %d: %d %v", i, code, err)
		}
		ids = append(ids, st.ID)
	}
	waitRunning(t, first.url, ids)
	first.kill()

	addr = freeAddr(t)
	second := startProc(t, "second", addr, serveArgs(addr)...)
	second.waitReady()
	ended := waitAllEnd(t, second.url, ids)
	succeeded, failed := checkEnded(t, second.url, ended)
	t.Logf("accepted %d jobs, 1 fault (kill -9 mid-job), %d succeeded, %d failed with a reason, %d lost",
		jobs, succeeded, failed, jobs-succeeded-failed)
	if succeeded != jobs {
		t.Errorf("%d of %d jobs succeeded after the restart:\n%s", succeeded, jobs, second.logText())
	}
	if !strings.Contains(second.logText(), "go back to the queue") {
		t.Errorf("the restart did not hand back the killed process's jobs:\n%s", second.logText())
	}
}
