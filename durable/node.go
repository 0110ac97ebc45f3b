package durable

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// NodeConfig configures a NATS server run inside this process: the
// embedded server of a single machine (no listener at all), or one node of
// a cluster (hy3d nats).
type NodeConfig struct {
	Name     string // unique in a cluster
	StoreDir string // JetStream's files
	// Listen is the client address (host:port); "" opens no listener, and
	// only this process connects (in-process).
	Listen string
	// ClusterListen is the address other nodes route to; "" runs alone.
	ClusterListen string
	ClusterName   string
	Routes        []string // nats://host:port of the other nodes
	// MaxStore bounds JetStream's files (0: NATS's default, most of the
	// disk); writes past it are refused.
	MaxStore int64
	// SyncAlways makes JetStream fsync every write, so that accepted jobs
	// survive a power loss and not only a crash of the process.
	SyncAlways bool
	Logger     zerolog.Logger
}

// startTimeout bounds how long a node may take to be ready.
const startTimeout = 30 * time.Second

// StartNode starts a NATS server with JetStream and waits until it takes
// connections. A store it cannot open (unwritable, damaged beyond what
// NATS repairs) is refused with NATS's own reason.
func StartNode(cfg NodeConfig) (*server.Server, error) {
	opts := &server.Options{
		ServerName:             cfg.Name,
		JetStream:              true,
		StoreDir:               cfg.StoreDir,
		JetStreamMaxStore:      cfg.MaxStore,
		SyncAlways:             cfg.SyncAlways,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
		MaxPayload:             maxPayload,
	}
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := splitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address: %w", err)
		}
		opts.Host, opts.Port = host, port
	}
	if cfg.ClusterListen != "" {
		host, port, err := splitHostPort(cfg.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("nats cluster address: %w", err)
		}
		opts.Cluster = server.ClusterOpts{Name: cfg.ClusterName, Host: host, Port: port}
		for _, r := range cfg.Routes {
			u, err := url.Parse(r)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("nats route %q: want nats://host:port", r)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	logs := &natsLog{log: cfg.Logger.With().Str("source", "nats").Logger()}
	ns.SetLoggerV2(logs, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(startTimeout) || !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		if err := logs.fatal(); err != nil {
			return nil, fmt.Errorf("nats did not start: %w", err)
		}
		return nil, fmt.Errorf("nats did not start within %s", startTimeout)
	}
	return ns, nil
}

// maxPayload is the largest message a node takes: a job message carries
// uploads up to inlineUpload, larger ones go to an object store.
const maxPayload = 2 << 20

func splitHostPort(hp string) (string, int, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q", p)
	}
	return host, port, nil
}

// natsLog routes the server's log lines into zerolog and keeps the fatal
// ones, which say why a node did not start.
type natsLog struct {
	log    zerolog.Logger
	mu     sync.Mutex
	fatals []string
}

func (l *natsLog) Noticef(format string, v ...any) { l.log.Debug().Msgf(format, v...) }
func (l *natsLog) Warnf(format string, v ...any)   { l.log.Warn().Msgf(format, v...) }
func (l *natsLog) Errorf(format string, v ...any)  { l.log.Error().Msgf(format, v...) }
func (l *natsLog) Debugf(format string, v ...any)  {}
func (l *natsLog) Tracef(format string, v ...any)  {}

func (l *natsLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error().Msg(msg)
	l.mu.Lock()
	l.fatals = append(l.fatals, msg)
	l.mu.Unlock()
}

func (l *natsLog) fatal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fatals) == 0 {
		return nil
	}
	return errors.New(strings.Join(l.fatals, "; "))
}

// ConnectInProcess connects to a node of this process without a socket.
func ConnectInProcess(ns *server.Server, name string) (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	return nc, nil
}

// Connect connects to a NATS cluster (a comma-separated list of URLs) and
// keeps reconnecting to whichever node answers, for as long as the
// process runs.
func Connect(urls, name string, log zerolog.Logger) (*nats.Conn, error) {
	nc, err := nats.Connect(urls, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn().Err(err).Msg("nats: disconnected; reconnecting")
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info().Str("url", c.ConnectedUrlRedacted()).Msg("nats: reconnected")
		}))
	if err != nil {
		return nil, fmt.Errorf("nats %s: %w", urls, err)
	}
	return nc, nil
}
