// Command load drives a running hy3d server the way API consumers do and
// reports what they and the operator see: end-to-end latency of requests,
// synchronous (the mesh in the answer) or asynchronous (create, follow the
// SSE events, fetch the result), with cache hits and coalesced requests
// apart, the queue wait and run time and every stage's
// duration the server recorded for each job, throughput, the back-pressure
// answers (429/503, honoured through Retry-After), and the GPU telemetry the
// server samples, polled while the load runs. Pictures are synthetic and
// distinct, except a chosen share that repeats an earlier one.
//
// It writes requests.csv (one row per request), gpu.csv (one row per device
// and sample) and summary.json into -out, for plotting, and prints a
// Markdown summary.
//
//	go run ./bench/load -url http://127.0.0.1:8080 -requests 64 -concurrency 8 -param steps=30
//	go run ./bench/load -mode async -requests 64 -concurrency 8
//	go run ./bench/load -mode repeat -requests 1000000 -concurrency 256 -duration 8s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	cfg, err := parseConfig(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/load: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if cfg.mode == modeRepeat {
		sum, err := runRepeat(ctx, cfg)
		if err == nil {
			err = sum.write(cfg.out)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench/load: %v\n", err)
			os.Exit(1)
		}
		sum.markdown(os.Stdout)
		fmt.Printf("\nrepeat.json is in %s\n", cfg.out)
		return
	}
	rep, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/load: %v\n", err)
		os.Exit(1)
	}
	if err := rep.write(cfg.out); err != nil {
		fmt.Fprintf(os.Stderr, "bench/load: %v\n", err)
		os.Exit(1)
	}
	rep.summary.markdown(os.Stdout)
	fmt.Printf("\nrequests.csv, gpu.csv and summary.json are in %s\n", cfg.out)
}

// Modes of requesting a mesh.
const (
	modeSync  = "sync"  // POST /v1/generate: the mesh in the answer
	modeAsync = "async" // POST /v1/generations, its SSE events, then /result
	// modeRepeat sends one request over and over, then the same to a plain
	// static server started here, for -duration each (repeat.go).
	modeRepeat = "repeat"
)

type config struct {
	url         string
	mode        string
	requests    int
	concurrency int
	repeat      float64 // share of requests that send an earlier picture again
	params      map[string]string
	out         string
	gpuInterval time.Duration
	maxAttempts int           // per request, counting retries after 429/503
	maxBackoff  time.Duration // cap on a Retry-After wait
	seed        int64
	duration    time.Duration // per target, in repeat mode
}

type paramFlag map[string]string

func (p paramFlag) String() string { return fmt.Sprint(map[string]string(p)) }

func (p paramFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want name=value", v)
	}
	p[k] = val
	return nil
}

func parseConfig(args []string) (config, error) {
	cfg := config{params: map[string]string{}}
	fs := flag.NewFlagSet("bench/load", flag.ContinueOnError)
	fs.StringVar(&cfg.url, "url", "http://127.0.0.1:8080", "the server")
	fs.StringVar(&cfg.mode, "mode", modeSync, "sync (POST /v1/generate), async (create, follow the events, fetch the result) or repeat (one request over and over, against hy3d and a static server)")
	fs.IntVar(&cfg.requests, "requests", 32, "requests to send (in repeat mode: at most, per target)")
	fs.DurationVar(&cfg.duration, "duration", 8*time.Second, "repeat mode: how long each target is loaded")
	fs.IntVar(&cfg.concurrency, "concurrency", 4, "requests in flight at once")
	fs.Float64Var(&cfg.repeat, "repeat", 0.25, "share of requests that repeat an earlier picture (cache hits)")
	fs.Var(paramFlag(cfg.params), "param", "generation parameter name=value, sent with every request (repeatable)")
	fs.StringVar(&cfg.out, "out", "bench/out/load", "folder for requests.csv, gpu.csv and summary.json")
	fs.DurationVar(&cfg.gpuInterval, "gpu-interval", time.Second, "how often /v1/gpu is read")
	fs.IntVar(&cfg.maxAttempts, "attempts", 20, "attempts per request when the server sheds load")
	fs.DurationVar(&cfg.maxBackoff, "max-backoff", 30*time.Second, "longest Retry-After honoured")
	fs.Int64Var(&cfg.seed, "seed", 1, "seed of the choice of repeated pictures")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	case cfg.requests < 1 || cfg.concurrency < 1 || cfg.maxAttempts < 1:
		return cfg, errors.New("-requests, -concurrency and -attempts must be at least 1")
	case cfg.repeat < 0 || cfg.repeat >= 1:
		return cfg, errors.New("-repeat must be in [0, 1)")
	case cfg.mode != modeSync && cfg.mode != modeAsync && cfg.mode != modeRepeat:
		return cfg, fmt.Errorf("-mode %q: want sync, async or repeat", cfg.mode)
	case cfg.duration <= 0:
		return cfg, errors.New("-duration must be positive")
	case cfg.gpuInterval <= 0:
		return cfg, errors.New("-gpu-interval must be positive")
	}
	cfg.url = strings.TrimRight(cfg.url, "/")
	return cfg, nil
}
