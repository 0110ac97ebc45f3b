package main

import (
	"bufio"
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
	"slices"
	"strings"
	"sync"
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
	t.Cleanup(func() {
		p.kill()
		if t.Failed() && os.Getenv("HY3D_DEBUG_LOGS") != "" {
			b, _ := os.ReadFile(p.log)
			_ = os.WriteFile(filepath.Join(os.Getenv("HY3D_DEBUG_LOGS"), name+".log"), b, 0o644)
		}
	})
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
func freeAddr(t testing.TB) string {
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
			var open []string
			for _, id := range ids {
				if _, ok := out[id]; !ok {
					_, st, err := getStatus(base, id)
					open = append(open, fmt.Sprintf("%s %s %v", id, st.Status, err))
				}
			}
			t.Fatalf("%d of %d accepted jobs ended in time; still open: %v", len(out), len(ids), open)
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

// load submits a job every interval, to the first of the gateways that
// answers (as a load balancer would), until stop is closed or max jobs are
// accepted. An answer that is neither an acceptance nor an explained
// refusal (a problem with a type, and Retry-After when the client should
// retry) fails the test.
type load struct {
	t        *testing.T
	picture  []byte
	mu       sync.Mutex
	accepted []string
	refused  map[string]int // problem type → count
	seed     int
}

func (l *load) submit(gateways []string) {
	l.mu.Lock()
	l.seed++
	seed := l.seed
	l.mu.Unlock()
	for _, g := range gateways {
		code, st, err := postJob(g, l.picture, map[string]string{"seed": fmt.Sprint(seed), "steps": "30", "resolution": "32"})
		if code == 0 {
			continue // the gateway is gone: the next one
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		switch {
		case (code == http.StatusAccepted || code == http.StatusOK) && st.ID != "":
			// 200: a retry, on another gateway, of a job the dead one had
			// stored, whose result is known by now.
			l.accepted = append(l.accepted, st.ID)
		case code == http.StatusServiceUnavailable && err != nil && strings.Contains(err.Error(), `"type"`):
			l.refused[problemType(err.Error())]++
		default:
			l.t.Errorf("gateway %s answered %d: %v", g, code, err)
		}
		return
	}
	l.t.Errorf("no gateway answered job %d", seed)
}

func problemType(body string) string {
	var p struct{ Type string }
	_ = json.Unmarshal([]byte(body[strings.Index(body, "{"):]), &p)
	return p.Type[strings.LastIndex(p.Type, "#")+1:]
}

func (l *load) ids() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.accepted...)
}

// runLoad submits a job every interval until stop closes.
func (l *load) run(gateways func() []string, interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			l.submit(gateways())
		}
	}
}

// workerRunning reports whether the worker at base runs a job now.
func workerRunning(base string) bool {
	resp, err := http.Get(base + "/v1/stats")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var st struct {
		Queue struct {
			Running int `json:"running"`
		} `json:"queue"`
	}
	return json.NewDecoder(resp.Body).Decode(&st) == nil && st.Queue.Running > 0
}

// TestClusterSurvivesAWorkerANATSNodeAndAGatewayKilled: three NATS nodes,
// two workers and two gateways as separate processes on loopback. Under a
// steady trickle of jobs, kill -9 a worker in the middle of a job, then a
// NATS node, then a gateway: every accepted job finishes, its status and
// result come from the surviving gateway, and every refusal said why.
func TestClusterSurvivesAWorkerANATSNodeAndAGatewayKilled(t *testing.T) {
	needORT(t)
	if testing.Short() {
		t.Skip("starts seven processes")
	}
	dir := t.TempDir()
	var clusterAddrs, clientURLs []string
	for range 3 {
		clusterAddrs = append(clusterAddrs, freeAddr(t))
	}
	var routes []string
	for _, a := range clusterAddrs {
		routes = append(routes, "nats://"+a)
	}
	var nodes []*proc
	for i, a := range clusterAddrs {
		listen := freeAddr(t)
		clientURLs = append(clientURLs, "nats://"+listen)
		nodes = append(nodes, startProc(t, fmt.Sprintf("nats%d", i+1), "", "nats", "--name", fmt.Sprintf("n%d", i+1),
			"--listen", listen, "--cluster", a, "--routes", strings.Join(routes, ","), "--data-dir", dir))
	}
	natsURL := strings.Join(clientURLs, ",")
	serve := func(name, role string) *proc {
		addr := freeAddr(t)
		return startProc(t, name, addr, "serve", "--role", role, "--nats-url", natsURL, "--addr", addr,
			"--data-dir", filepath.Join(dir, name), "--engines", tinyDir, "--threads", "1", "--max-batch", "2",
			"--rate-limit", "0", "--ack-wait", "3s", "--drain-timeout", "1s")
	}
	workers := []*proc{serve("worker1", "worker"), serve("worker2", "worker")}
	gateways := []*proc{serve("gateway1", "gateway"), serve("gateway2", "gateway")}
	for _, p := range append(append([]*proc(nil), workers...), gateways...) {
		p.waitReady()
	}

	// Every worker reports to every gateway.
	for deadline := time.Now().Add(safetyWait); len(fleet(t, gateways[1].url)) < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gateway 2 sees workers %v", fleet(t, gateways[1].url))
		}
	}
	if m := metricsText(t, gateways[1].url); !strings.Contains(m, `hy3d_worker_jobs_running{worker=`) {
		t.Errorf("/metrics lacks the workers:\n%s", m)
	}

	l := &load{t: t, picture: readPicture(t), refused: map[string]int{}}
	var gwMu sync.Mutex
	live := []string{gateways[0].url, gateways[1].url}
	current := func() []string {
		gwMu.Lock()
		defer gwMu.Unlock()
		return append([]string(nil), live...)
	}
	for range 4 {
		l.submit(current()) // a first batch, on the first gateway
	}
	// A client of the second gateway follows a job the first accepted.
	events := make(chan []string, 1)
	go func() { events <- followEvents(gateways[1].url, l.ids()[3]) }()
	stop, done := make(chan struct{}), make(chan struct{})
	go l.run(current, 400*time.Millisecond, stop, done)
	stopLoad := sync.OnceFunc(func() {
		close(stop)
		<-done
	})
	defer stopLoad() // when the test fails early too

	faults := 0
	deadline := time.Now().Add(safetyWait)
	for !workerRunning(workers[0].url) {
		if time.Now().After(deadline) {
			t.Fatal("worker 1 never ran a job")
		}
		time.Sleep(20 * time.Millisecond)
	}
	workers[0].kill()
	faults++
	time.Sleep(time.Second)
	nodes[2].kill()
	faults++
	time.Sleep(2 * time.Second)
	gwMu.Lock()
	live = live[1:]
	gwMu.Unlock()
	gateways[0].kill()
	faults++
	time.Sleep(2 * time.Second)
	stopLoad()
	// The cluster, down a worker, a node and a gateway, still takes jobs.
	before := len(l.ids())
	for range 2 {
		l.submit(current())
	}
	if len(l.ids()) != before+2 {
		t.Errorf("the surviving gateway refused jobs after the faults: %v", l.refused)
	}

	ids := l.ids()
	ended := waitAllEnd(t, gateways[1].url, ids)
	succeeded, failed := checkEnded(t, gateways[1].url, ended)
	t.Logf("accepted %d jobs, %d faults (kill -9 of a worker mid-job, a NATS node, a gateway), %d succeeded, %d failed with a reason, %d lost; refused with a reason: %v",
		len(ids), faults, succeeded, failed, len(ids)-succeeded-failed, l.refused)
	if succeeded+failed != len(ids) {
		t.Errorf("%d accepted, %d ended", len(ids), succeeded+failed)
	}
	select {
	case seen := <-events:
		if len(seen) == 0 || !terminal(seen[len(seen)-1]) || !slices.Contains(seen, "running") {
			t.Errorf("the other gateway's progress events: %v", seen)
		}
	case <-time.After(safetyWait):
		t.Error("the progress events did not end")
	}
	if failed > 0 {
		for _, p := range append(workers[1:], gateways[1]) {
			t.Logf("%s:\n%s", p.name, p.logText())
		}
	}
}

// fleet is the names of the workers a gateway's /v1/stats lists.
func fleet(t *testing.T, base string) []string {
	resp, err := http.Get(base + "/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Workers []struct{ Name string } `json:"workers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, w := range st.Workers {
		names = append(names, w.Name)
	}
	return names
}

func metricsText(t *testing.T, base string) string {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// followEvents reads a generation's progress events until the stream ends
// and returns the statuses they carried, in order.
func followEvents(base, id string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), safetyWait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/generations/"+id+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var seen []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var st status
		if json.Unmarshal([]byte(data), &st) == nil && (len(seen) == 0 || seen[len(seen)-1] != st.Status) {
			seen = append(seen, st.Status)
		}
	}
	return seen
}
