package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestDefaultDataDir(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"explicit", map[string]string{dataDirEnv: "/srv/hy3d", "XDG_STATE_HOME": "/x", "HOME": "/home/u"}, "/srv/hy3d"},
		{"xdg state home", map[string]string{"XDG_STATE_HOME": "/x/state", "HOME": "/home/u"}, "/x/state/hy3d"},
		{"relative xdg is ignored", map[string]string{"XDG_STATE_HOME": "state", "HOME": "/home/u"}, "/home/u/.local/state/hy3d"},
		{"home", map[string]string{"HOME": "/home/u"}, "/home/u/.local/state/hy3d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := defaultDataDir(func(k string) string { return tc.env[k] })
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestServeFlagsChooseTheDataDir(t *testing.T) {
	home := t.TempDir()
	env := func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}
	for _, tc := range []struct {
		name      string
		args      []string
		want      string // "" for a temporary directory
		ephemeral bool
	}{
		{"default", nil, filepath.Join(home, ".local", "state", "hy3d"), false},
		{"given", []string{"--data-dir", filepath.Join(home, "d")}, filepath.Join(home, "d"), false},
		{"empty means temporary", []string{"--data-dir", ""}, "", true},
		{"ephemeral", []string{"--ephemeral"}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parseServeFlags(io.Discard, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			d, err := f.openDataDir(env)
			if err != nil {
				t.Fatal(err)
			}
			if d.Ephemeral != tc.ephemeral || (tc.want != "" && d.Path != tc.want) {
				t.Errorf("data dir %+v, want %q (ephemeral %v)", d, tc.want, tc.ephemeral)
			}
			if fi, err := os.Stat(d.Path); err != nil || !fi.IsDir() {
				t.Fatalf("data dir not created: %v", err)
			}
			if err := d.remove(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(d.Path); os.IsNotExist(err) != tc.ephemeral {
				t.Errorf("after remove: %v (ephemeral %v)", err, tc.ephemeral)
			}
		})
	}
}

func TestUnwritableDataDirIsRefused(t *testing.T) {
	if os.Geteuid() == 0 {
		// root writes through permission bits: a file in the way stands in.
		dir := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(dir, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := openDataDir(dir, false); err == nil {
			t.Fatal("a file as data directory was accepted")
		}
		return
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	if _, err := openDataDir(dir, false); err == nil {
		t.Fatal("a read-only data directory was accepted")
	}
}
