package repocheck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// selfDir is this package: its sources spell out the very references they
// look for, so they are the one place the scan leaves out.
const selfDir = "internal/repocheck/"

// TestRepositoryStandsOnItsOwn runs both checks over every file git tracks:
// no file refers to a document outside the repository, and every relative
// link of every Markdown page resolves inside it.
func TestRepositoryStandsOnItsOwn(t *testing.T) {
	root, err := repositoryRoot()
	if err != nil {
		t.Skipf("not a git work tree, nothing to list: %v", err)
	}
	tracked, err := TrackedFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	read := func(file string) ([]byte, error) { return os.ReadFile(filepath.Join(root, filepath.FromSlash(file))) }
	var present []string // tracked and not deleted in this work tree
	contents := map[string][]byte{}
	for _, f := range tracked {
		b, err := read(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		present = append(present, f)
		contents[f] = b
	}
	if !slices.Contains(present, "README.md") {
		t.Fatalf("git ls-files in %s does not list README.md: not hy3d's root", root)
	}
	tree := NewTree(present, read)
	var pages int
	for _, f := range present {
		if strings.HasPrefix(f, selfDir) {
			continue
		}
		for _, p := range OutsideReferences(f, contents[f]) {
			t.Error(p)
		}
		if strings.HasSuffix(f, ".md") {
			pages++
			for _, p := range tree.BrokenLinks(f, contents[f]) {
				t.Error(p)
			}
		}
	}
	t.Logf("%d tracked files, %d Markdown pages checked", len(present), pages)
}

func repositoryRoot() (string, error) {
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

func TestOutsideReferencesCatchesEveryForm(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []int // lines with a finding
	}{
		{"section citation in a Go comment", "package x\n\n// Graph names (DESIGN §3).\n", []int{3}},
		{"citation in a C comment", "/* float32 only (DESIGN §3). */", []int{1}},
		{"citation in a Python docstring", "\"\"\"The graphs of a model set (DESIGN §3).\"\"\"\n", []int{1}},
		{"bare citation with a section name", "// faces (DESIGN, \"Measured\": 24 edges)", []int{1}},
		{"relative path to the shared folder", "This page describes the tree; `../shared/DESIGN.md` is the target.", []int{1}},
		{"link into the shared folder", "see [style](../../shared/STYLE.md)", []int{1}},
		{"absolute path to the shared folder", "cat /work/shared/reference/trt.md", []int{1}},
		{"the file name alone", "as design.md says", []int{1}},
		{"one finding per line", "DESIGN §3 and ../shared/DESIGN.md\nclean\nDESIGN §4", []int{1, 3}},
		{"the contract page itself", "The contract is docs/engine-contract.md.", nil},
		{"a constant that merely starts with the word", "CONSTRUCTED_CHANNELS = 6\nDESIGNED = 6\nUNDESIGN = 1", nil},
		{"the word in lower case", "the design of the scheduler; designers", nil},
		{"another shared folder", "cp ../shared_cache/x .; ls shared/", nil},
		{"binary content", "\x00\x01DESIGN §3 ../shared", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var lines []int
			for _, f := range OutsideReferences("f", []byte(tc.text)) {
				lines = append(lines, f.Line)
			}
			if !slices.Equal(lines, tc.want) {
				t.Errorf("findings at lines %v, want %v", lines, tc.want)
			}
		})
	}
}

func TestBrokenLinksCatchesPlantedLinks(t *testing.T) {
	pages := map[string]string{
		"README.md": "# hy3d\n",
		"docs/engine-contract.md": "# The engine contract\n\n## Rules at every boundary\n\n## Sizes: the tiny sets and Hunyuan3D's families\n\n" +
			"## Plans\n\n## Plans\n\n<a name=\"custom\"></a>\n\n```sh\n# not a heading\n```\n",
		"docs/api.md":      "# API\n",
		"native/include/x": "",
	}
	var files []string
	for f := range pages {
		files = append(files, f)
	}
	tree := NewTree(files, func(f string) ([]byte, error) {
		s, ok := pages[f]
		if !ok {
			return nil, fs.ErrNotExist
		}
		return []byte(s), nil
	})
	tests := []struct {
		name   string
		doc    string
		text   string
		broken bool
	}{
		{"sibling page", "docs/architecture.md", "[contract](engine-contract.md)", false},
		{"page from the root", "README.md", "[contract](docs/engine-contract.md)", false},
		{"folder", "README.md", "[headers](native/include)", false},
		{"root-relative path", "docs/api.md", "[readme](/README.md)", false},
		{"heading anchor", "README.md", "[rules](docs/engine-contract.md#rules-at-every-boundary)", false},
		{"anchor with punctuation dropped", "README.md", "[sizes](docs/engine-contract.md#sizes-the-tiny-sets-and-hunyuan3ds-families)", false},
		{"second heading of the same name", "README.md", "[again](docs/engine-contract.md#plans-1)", false},
		{"explicit anchor", "README.md", "[c](docs/engine-contract.md#custom)", false},
		{"anchor in the same page", "docs/engine-contract.md", "[up](#the-engine-contract)", false},
		{"web link", "README.md", "[code](https://github.com/Tencent-Hunyuan/Hunyuan3D-2)", false},
		{"mail link", "README.md", "<a href=\"mailto:ops@example.com\">ops</a>", false},
		{"inside a code span", "README.md", "`[x](../shared/DESIGN.md)`", false},
		{"inside a fenced block", "README.md", "```\n[x](nowhere.md)\n```", false},

		{"the shared design notes", "docs/architecture.md", "[design](../../shared/DESIGN.md)", true},
		{"a file that is not there", "README.md", "[contract](docs/contract.md)", true},
		{"a path relative to the wrong folder", "docs/architecture.md", "[api](docs/api.md)", true},
		{"a heading that does not exist", "README.md", "[x](docs/engine-contract.md#design-3)", true},
		{"a missing anchor in the same page", "docs/api.md", "[x](#errors)", true},
		{"a heading inside code is no anchor", "README.md", "[x](docs/engine-contract.md#not-a-heading)", true},
		{"third heading of a name that appears twice", "README.md", "[x](docs/engine-contract.md#plans-2)", true},
		{"reference definition", "README.md", "[contract]: ../shared/DESIGN.md", true},
		{"image", "README.md", "![diagram](docs/pipeline.svg)", true},
		{"HTML link", "README.md", "<a href=\"docs/missing.md\">x</a>", true},
		{"link with a title", "README.md", "[x](docs/missing.md \"Missing\")", true},
		{"escaped path", "README.md", "[x](docs/engine%20contract.md)", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			found := tree.BrokenLinks(tc.doc, []byte(tc.text))
			if broken := len(found) > 0; broken != tc.broken {
				t.Errorf("%s: %q: findings %v, want broken=%v", tc.doc, tc.text, found, tc.broken)
			}
		})
	}
}

func TestSlugMatchesGitHubsAnchors(t *testing.T) {
	// Headings of this repository's docs and the anchors they link to.
	tests := map[string]string{
		"Progress events (SSE)":                 "progress-events-sse",
		"Models, stats, GPU":                    "models-stats-gpu",
		"Checked against Hunyuan3D's code":      "checked-against-hunyuan3ds-code",
		"Building plans: `tools/build-engines`": "building-plans-toolsbuild-engines",
		"5. Verify the plans":                   "5-verify-the-plans",
		"manifest.json":                         "manifestjson",
		"Measured (`make bench-pipeline`, i.e. `go run ./bench/pipeline`)": "measured-make-bench-pipeline-ie-go-run-benchpipeline",
		"The shape pipeline (`pipeline/`, `hy3d generate`)":                "the-shape-pipeline-pipeline-hy3d-generate",
		"A [linked](x.md) *emphasised* heading":                            "a-linked-emphasised-heading",
		"snake_case stays":                                                 "snake_case-stays",
		"Überblick — größer":                                               "überblick--größer",
	}
	for heading, want := range tests {
		if got := Slug(heading); got != want {
			t.Errorf("Slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

func TestFindingNamesFileAndLine(t *testing.T) {
	got := fmt.Sprint(OutsideReferences("pipeline/engine.go", []byte("a\nb // DESIGN §3\n")))
	if !strings.Contains(got, "pipeline/engine.go:2:") {
		t.Errorf("finding %s does not name pipeline/engine.go:2", got)
	}
}
