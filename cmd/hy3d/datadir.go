package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// dataDirEnv names the data directory when --data-dir is not given.
const dataDirEnv = "HY3D_DATA_DIR"

// dataDir is where a server keeps everything that outlives it: results,
// the job stream and the job records.
type dataDir struct {
	Path      string
	Ephemeral bool // a temporary directory, removed by remove
}

// defaultDataDir is $HY3D_DATA_DIR, else $XDG_STATE_HOME/hy3d, else
// ~/.local/state/hy3d (the XDG base directory specification's default for
// state that should persist between restarts but is not user data).
func defaultDataDir(env func(string) string) (string, error) {
	if d := env(dataDirEnv); d != "" {
		return d, nil
	}
	if d := env("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "hy3d"), nil
	}
	home := env("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no data directory: set --data-dir or $%s (%w)", dataDirEnv, err)
		}
		home = h
	}
	return filepath.Join(home, ".local", "state", "hy3d"), nil
}

// openDataDir creates the data directory (path "" or ephemeral: a new
// temporary one) and checks that it is writable, so that a server that
// cannot keep what it accepts refuses to start instead of failing its
// first job.
func openDataDir(path string, ephemeral bool) (*dataDir, error) {
	if path == "" || ephemeral {
		tmp, err := os.MkdirTemp("", "hy3d-data-")
		if err != nil {
			return nil, fmt.Errorf("temporary data directory: %w", err)
		}
		return &dataDir{Path: tmp, Ephemeral: true}, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", path, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	probe, err := os.CreateTemp(abs, ".write-probe-")
	if err != nil {
		return nil, fmt.Errorf("data directory %s is not writable: %w", abs, err)
	}
	name := probe.Name()
	err = errors.Join(probe.Close(), os.Remove(name))
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", abs, err)
	}
	return &dataDir{Path: abs}, nil
}

// sub is the path of one part of the data directory.
func (d *dataDir) sub(name string) string { return filepath.Join(d.Path, name) }

// remove deletes an ephemeral data directory; a persistent one stays.
func (d *dataDir) remove() error {
	if !d.Ephemeral {
		return nil
	}
	if err := os.RemoveAll(d.Path); err != nil {
		return fmt.Errorf("removing the temporary data directory: %w", err)
	}
	return nil
}

// lock takes the data directory for this process alone: the embedded NATS
// server's files cannot be shared, and a second server would hand out the
// first one's running jobs again. It fails when another process holds it.
func (d *dataDir) lock() (unlock func(), err error) {
	f, err := os.OpenFile(d.sub("lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data directory lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(d.sub("lock"))
		f.Close()
		return nil, fmt.Errorf("data directory %s is in use by another hy3d (pid %s): %w", d.Path, strings.TrimSpace(string(holder)), err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
