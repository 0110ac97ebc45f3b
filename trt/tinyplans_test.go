package trt

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hy3d/hy3d/engines"
)

// tinySetNames are the model sets whose plans the GPU tests build.
var tinySetNames = []string{"tiny", "tiny-turbo"}

// BuildTestPlans copies the model sets named from engines/ under root and
// builds their plans with tools/build-engines. The sets share one timing
// cache (root/timing.cache): their graphs have layers of the same shapes,
// so each set reuses most of the previous ones' tactic timings. Exported
// for the external test package's paint GPU tests.
func BuildTestPlans(ctx context.Context, root string, names []string) (map[string]*engines.Set, error) {
	sets := map[string]*engines.Set{}
	cache := filepath.Join(root, "timing.cache")
	for _, name := range names {
		dir := filepath.Join(root, name)
		if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "engines", name))); err != nil {
			return nil, err
		}
		cmd := exec.CommandContext(ctx, "go", "run", "../tools/build-engines", "--timing-cache", cache, dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("build-engines %s: %w\n%s", name, err, out)
		}
		set, err := engines.Open(dir)
		if err != nil {
			return nil, err
		}
		sets[name] = set
	}
	return sets, nil
}

// The GPU tests' plan build, run here against a stand-in trtexec that logs
// its arguments and writes a placeholder plan.
func TestTinyPlansShareOneTimingCache(t *testing.T) {
	bin := t.TempDir()
	for name, body := range map[string]string{
		"trtexec": `for a in "$@"; do case "$a" in --saveEngine=*) plan="${a#--saveEngine=}" ;; esac; done
printf 'ftrt\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\012\003\000\000' > "$plan"
echo "$@" >> "$(dirname "$0")/calls.log"
echo "[I] Selected Device: NVIDIA Fake GPU"
echo "[I] Compute Capability: 8.9"
`,
		"nvidia-smi": "echo 'GPU 0: NVIDIA Fake GPU (UUID: GPU-0)'\n",
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	root := t.TempDir()

	sets, err := BuildTestPlans(context.Background(), root, tinySetNames)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(bin, "calls.log"))
	if err != nil {
		t.Fatal(err)
	}
	calls := strings.Split(strings.TrimSpace(string(raw)), "\n")
	graphs := 0
	for _, name := range tinySetNames {
		for g, graph := range sets[name].Graphs {
			graphs++
			if graph.Plan == nil {
				t.Errorf("%s/%s: no plan recorded", name, g)
			}
		}
	}
	if len(calls) != graphs {
		t.Fatalf("trtexec ran %d times for %d graphs:\n%s", len(calls), graphs, raw)
	}
	want := "--timingCacheFile=" + filepath.Join(root, "timing.cache") + " "
	for _, c := range calls {
		if !strings.Contains(c, want) {
			t.Errorf("trtexec %s\ndoes not use the shared cache %s", c, want)
		}
	}
}
