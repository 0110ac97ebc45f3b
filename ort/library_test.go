package ort

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hy3d/hy3d/tensor"
)

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFindLibraryOrder(t *testing.T) {
	root := t.TempDir()
	module := filepath.Join(root, "module")
	nested := filepath.Join(module, "cmd", "hy3d")
	touch(t, filepath.Join(module, "go.mod"))
	touch(t, filepath.Join(module, libraryRel))
	touch(t, filepath.Join(nested, "placeholder"))
	explicit := filepath.Join(root, "explicit.so")
	touch(t, explicit)
	fromEnv := filepath.Join(root, "env.so")
	touch(t, fromEnv)

	tests := []struct {
		name            string
		explicit, env   string
		starts          []string
		want            string
		notFoundMention string
	}{
		{"option wins over env and search", explicit, fromEnv, []string{nested}, explicit, ""},
		{"env wins over search", "", fromEnv, []string{nested}, fromEnv, ""},
		{"search walks up to the module root", "", "", []string{nested}, filepath.Join(module, libraryRel), ""},
		{"search tries every start", "", "", []string{root, nested}, filepath.Join(module, libraryRel), ""},
		{"missing option is not replaced by the search", filepath.Join(root, "nope.so"), "", []string{nested}, "", "nope.so"},
		{"missing env file is not replaced by the search", "", filepath.Join(root, "gone.so"), []string{nested}, "", "gone.so"},
		{"search outside any module", "", "", []string{root}, "", filepath.Join(root, libraryRel)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := findLibrary(tc.explicit, tc.env, tc.starts)
			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Fatalf("findLibrary = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, tensor.ErrUnavailable) {
				t.Fatalf("findLibrary = %q, %v; want ErrUnavailable", got, err)
			}
			for _, s := range []string{tc.notFoundMention, "make deps"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestSearchStopsAtTheModuleRoot(t *testing.T) {
	root := t.TempDir()
	module := filepath.Join(root, "module")
	touch(t, filepath.Join(module, "go.mod"))
	touch(t, filepath.Join(root, libraryRel)) // above the module: never looked at
	_, err := findLibrary("", "", []string{filepath.Join(module)})
	if !errors.Is(err, tensor.ErrUnavailable) {
		t.Fatalf("found a library above the module root: %v", err)
	}
}

func TestNewRuntimeWithoutLibraryIsUnavailable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "libonnxruntime.so.1.24.1")
	rt, err := NewRuntime(Options{LibraryPath: missing})
	if !errors.Is(err, tensor.ErrUnavailable) {
		t.Fatalf("NewRuntime = %v, %v; want ErrUnavailable", rt, err)
	}
	if !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "make deps") {
		t.Errorf("error %q should name %s and say to run make deps", err, missing)
	}

	t.Setenv(LibraryEnv, missing)
	if _, err := NewRuntime(Options{}); !errors.Is(err, tensor.ErrUnavailable) || !strings.Contains(err.Error(), LibraryEnv) {
		t.Fatalf("NewRuntime with a wrong %s = %v; want ErrUnavailable naming the variable", LibraryEnv, err)
	}
}

func TestNewRuntimeRejectsAFileThatIsNotTheLibrary(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "libonnxruntime.so")
	if err := os.WriteFile(fake, []byte("not a shared object"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRuntime(Options{LibraryPath: fake}); !errors.Is(err, tensor.ErrUnavailable) {
		t.Fatalf("NewRuntime = %v; want ErrUnavailable", err)
	}
}

func TestNewRuntimeRejectsNegativeThreads(t *testing.T) {
	if _, err := NewRuntime(Options{IntraOpThreads: -1}); err == nil {
		t.Fatal("accepted -1 intra-op threads")
	}
}
