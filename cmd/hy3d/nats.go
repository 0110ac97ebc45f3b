package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/durable"
)

func init() {
	register(command{
		name:    "nats",
		summary: "run one node of a NATS JetStream cluster holding the queue of many hy3d servers",
		run:     natsNode,
	})
}

func natsNode(ctx context.Context, io stdio, args []string) int {
	return exitCode(io.stderr, "hy3d nats", runNATS(ctx, io, args))
}

func runNATS(ctx context.Context, io stdio, args []string) (err error) {
	var (
		name, listen, cluster, clusterName, routes, dataDirFlag, logFormat string
		storeBytes                                                         bytesFlag
		syncAlways                                                         bool
	)
	fs := newFlagSet("hy3d nats")
	fs.StringVar(&name, "name", "", "this node's name, unique in the cluster (required)")
	fs.StringVar(&listen, "listen", "127.0.0.1:4222", "host:port where hy3d servers connect")
	fs.StringVar(&cluster, "cluster", "", "host:port where the other nodes route to this one (default: a single node)")
	fs.StringVar(&clusterName, "cluster-name", "hy3d", "the cluster's name, the same on every node")
	fs.StringVar(&routes, "routes", "", "the other nodes' cluster addresses, comma-separated nats://host:port")
	fs.StringVar(&dataDirFlag, "data-dir", "", "where the node keeps its files (default: $"+dataDirEnv+", else $XDG_STATE_HOME/hy3d, else ~/.local/state/hy3d; a nats-NAME folder inside)")
	fs.Var(&storeBytes, "store-bytes", "bound of the node's files; writes past it are refused (0: most of the disk)")
	fs.BoolVar(&syncAlways, "sync-always", false, "flush every write to disk (survives power loss, not only crashes)")
	fs.StringVar(&logFormat, "log-format", "json", "json (one object per line) or console")
	if err := parseFlags(fs, io.stdout, "usage: hy3d nats --name NAME [flags]   (docs/deploy.md)", args); err != nil {
		return err
	}
	if name == "" || subjectSafe(name) != name {
		return usageError{fmt.Errorf("--name %q: want letters, digits, - or _", name)}
	}
	if (cluster == "") != (routes == "") {
		return usageError{errors.New("--cluster and --routes go together: a cluster node routes to the others")}
	}
	if logFormat != "json" && logFormat != "console" {
		return usageError{fmt.Errorf("--log-format %q: want json or console", logFormat)}
	}
	w := io.stderr
	if logFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	log := zerolog.New(w).With().Timestamp().Str("node", name).Logger()

	path := dataDirFlag
	if path == "" {
		if path, err = defaultDataDir(os.Getenv); err != nil {
			return err
		}
	}
	data, err := openDataDir(filepath.Join(path, "nats-"+name), false)
	if err != nil {
		return err
	}
	unlock, err := data.lock()
	if err != nil {
		return err
	}
	defer unlock()

	var routeList []string
	for _, r := range strings.Split(routes, ",") {
		if r = strings.TrimSpace(r); r != "" {
			routeList = append(routeList, r)
		}
	}
	ns, err := durable.StartNode(durable.NodeConfig{
		Name: name, StoreDir: data.sub("jetstream"), Listen: listen, ClusterListen: cluster, ClusterName: clusterName,
		Routes: routeList, MaxStore: int64(storeBytes), SyncAlways: syncAlways, Logger: log,
	})
	if err != nil {
		return err
	}
	log.Info().Str("listen", listen).Str("cluster", cluster).Strs("routes", routeList).Str("data_dir", data.Path).
		Msg("nats node ready")
	<-ctx.Done()
	log.Info().Msg("nats node stopping")
	ns.Shutdown()
	ns.WaitForShutdown()
	return nil
}

// subjectSafe keeps the characters a node name may hold.
func subjectSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return -1
	}, s)
}
