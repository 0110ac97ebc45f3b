package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/durable"
	"github.com/hy3d/hy3d/jobs"
)

// queueFlags say where a server keeps its queue: an embedded NATS server
// by default, or a NATS cluster.
type queueFlags struct {
	natsURL     string
	natsListen  string
	role        string
	ackWait     time.Duration
	maxAttempts int
	replicas    int
	storeBytes  bytesFlag
	syncAlways  bool
}

func (q *queueFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&q.natsURL, "nats-url", "", "NATS cluster holding the queue, comma-separated nats://host:port (default: an embedded server, files under the data directory)")
	fs.StringVar(&q.natsListen, "nats-listen", "", "host:port where the embedded NATS server takes clients (default: none; only this process uses it)")
	fs.StringVar(&q.role, "role", string(jobs.RoleAll), "all (answer the API and run jobs), gateway (answer the API) or worker (run jobs)")
	fs.DurationVar(&q.ackWait, "ack-wait", 30*time.Second, "how long a worker may stay silent before its job goes to another")
	fs.IntVar(&q.maxAttempts, "max-attempts", 3, "times workers may take one job before it fails")
	fs.IntVar(&q.replicas, "replicas", 0, "copies of the queue and records in a NATS cluster (0: 3, or 1 when NATS is not a cluster)")
	fs.Var(&q.storeBytes, "store-bytes", "bound of the embedded NATS server's files; new jobs are refused past three quarters of it (0: most of the disk)")
	fs.BoolVar(&q.syncAlways, "sync-always", false, "make the embedded NATS server flush every write to disk (survives power loss, not only crashes)")
}

func (q *queueFlags) check() error {
	switch jobs.Role(q.role) {
	case jobs.RoleAll, jobs.RoleGateway, jobs.RoleWorker:
	default:
		return usageError{fmt.Errorf("--role %q: want all, gateway or worker", q.role)}
	}
	if q.maxAttempts < 1 || q.ackWait < time.Second || q.replicas < 0 || q.replicas > 5 {
		return usageError{errors.New("--max-attempts must be at least 1, --ack-wait at least 1s, --replicas 0 to 5")}
	}
	if q.natsURL != "" && (q.natsListen != "" || q.storeBytes != 0 || q.syncAlways) {
		return usageError{errors.New("--nats-listen, --store-bytes and --sync-always configure the embedded NATS server, not one given by --nats-url")}
	}
	if q.natsURL == "" && jobs.Role(q.role) != jobs.RoleAll && q.natsListen == "" {
		return usageError{fmt.Errorf("--role %s needs a queue other processes reach: --nats-url, or --nats-listen", q.role)}
	}
	return nil
}

// queue is an open broker and what it runs on.
type queue struct {
	name   string // this process among the workers
	broker *durable.Broker
	fleet  *durable.Fleet
	nc     *nats.Conn
	ns     *server.Server // the embedded server, if any
}

// openQueue starts the embedded NATS server (or connects to the cluster)
// and opens the broker for the served models.
func (q *queueFlags) open(ctx context.Context, data *dataDir, models []jobs.Model, prepare func(context.Context, string, []byte) (*jobs.Prepared, error), retain time.Duration, log zerolog.Logger) (*queue, error) {
	name := processName()
	out := &queue{name: name}
	var err error
	if q.natsURL == "" {
		out.ns, err = durable.StartNode(durable.NodeConfig{
			Name: name, StoreDir: data.sub("jetstream"), Listen: q.natsListen, MaxStore: int64(q.storeBytes),
			SyncAlways: q.syncAlways, Logger: log,
		})
		if err != nil {
			return nil, err
		}
		out.nc, err = durable.ConnectInProcess(out.ns, "hy3d "+name)
	} else {
		out.nc, err = durable.Connect(q.natsURL, "hy3d "+name, log)
	}
	if err != nil {
		out.close()
		return nil, err
	}
	replicas := q.replicas
	if q.natsURL == "" {
		replicas = 1 // one server
	}
	var ms []durable.Model
	for _, m := range models {
		ms = append(ms, durable.Model{Name: m.Name, Fingerprint: m.Fingerprint})
	}
	shared := q.natsURL != "" || q.natsListen != ""
	out.broker, err = durable.Open(ctx, durable.Config{
		Conn: out.nc, Name: name, Models: ms, Replicas: replicas, AckWait: q.ackWait, MaxAttempts: q.maxAttempts,
		SharedResults: shared, Prepare: prepare, Retain: retain,
		// New jobs stop at three quarters of the bound, so that the jobs
		// already accepted can still record how they ended.
		QueueBytes: int64(q.storeBytes) * 3 / 4,
		// Only this process reaches an embedded server without a listener:
		// whatever was taken and not finished belongs to a dead process.
		Reset:  q.natsURL == "" && q.natsListen == "",
		Logger: log,
	})
	if err != nil {
		out.close()
		return nil, fmt.Errorf("queue: %w", err)
	}
	out.fleet = out.broker.OpenFleet()
	log.Info().Str("nats", q.where()).Str("role", q.role).Int("replicas", out.broker.Replicas()).Bool("shared_results", shared).
		Dur("ack_wait", q.ackWait).Msg("queue open")
	return out, nil
}

func (q *queueFlags) where() string {
	switch {
	case q.natsURL != "":
		return q.natsURL
	case q.natsListen != "":
		return "embedded, listening on " + q.natsListen
	}
	return "embedded"
}

// close stops the broker, the connection and the embedded server, in that
// order.
func (q *queue) close() {
	if q.fleet != nil {
		q.fleet.Close()
	}
	if q.broker != nil {
		q.broker.Close()
	}
	if q.nc != nil {
		_ = q.nc.FlushTimeout(time.Second)
		q.nc.Close()
	}
	if q.ns != nil {
		q.ns.Shutdown()
		q.ns.WaitForShutdown()
	}
}

// processName names this process in the queue's records and logs.
func processName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "hy3d"
	}
	host, _, _ = strings.Cut(host, ".")
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}
