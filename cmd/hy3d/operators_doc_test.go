package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestOperatorsDoc keeps docs/operators.md honest: the shell block marked
// "operators-doc-test: run" runs as written (bash, repository root, a fresh
// hy3d on PATH), and every command of every other shell block must name a
// program, subcommand, flags, make target, CMake option and HTTP route that
// exist. Commands that need a GPU, Tencent's code or the weights cannot run
// here; the check that they exist is what keeps them from rotting.
func TestOperatorsDoc(t *testing.T) {
	needORT(t)
	if testing.Short() {
		t.Skip("builds hy3d and runs the tiny walkthrough")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import torch, onnx").Run(); err != nil {
		t.Skipf("Debian's python3-torch and python3-onnx are needed (make deps): %v", err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	blocks := shellBlocks(t, filepath.Join(root, "docs", "operators.md"))
	var run []string
	for _, b := range blocks {
		if b.run {
			run = append(run, b.text)
		}
	}
	if len(run) != 1 {
		t.Fatalf("%d blocks marked to run, want 1", len(run))
	}

	t.Run("every command exists", func(t *testing.T) {
		l := &docLinter{root: root, help: map[string]string{}}
		for _, b := range blocks {
			for _, cmd := range shellCommands(b.text) {
				if err := l.check(t, cmd); err != "" {
					t.Errorf("docs/operators.md line %d: %q: %s", b.line, strings.Join(cmd, " "), err)
				}
			}
		}
		// The GPU build of hy3d that §2 links cannot link here (no
		// libnvinfer), but it must compile.
		vet := exec.Command("go", "vet", "-tags", "hy3d_tensorrt", "./cmd/hy3d")
		vet.Dir = root
		if out, err := vet.CombinedOutput(); err != nil {
			t.Errorf("go vet -tags hy3d_tensorrt ./cmd/hy3d: %v\n%s", err, out)
		}
	})

	t.Run("the tiny walkthrough runs", func(t *testing.T) {
		bin := t.TempDir()
		build := exec.Command("go", "build", "-o", filepath.Join(bin, "hy3d"), "./cmd/hy3d")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		sh := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", run[0])
		sh.Dir = root
		// Python must not write bytecode into the tree others work in.
		sh.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "PYTHONDONTWRITEBYTECODE=1")
		out, err := sh.CombinedOutput()
		if err != nil {
			t.Fatalf("the block failed: %v\n%s", err, out)
		}
		for _, want := range []string{
			"trtexec --onnx=",                   // build-engines --dry-run
			"no plan (ONNX only)",               // engines info
			"ort (2 threads) vs ort (1 thread)", // verify --against ort-threads
			"ort vs reference",                  // verify on engines/tiny
			"overall: PASS",
			"  total ", // generate's per-stage breakdown
		} {
			if !strings.Contains(string(out), want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
}

type docBlock struct {
	line int
	text string
	run  bool
}

// shellBlocks returns the ```sh blocks of a Markdown file; a block right
// after the line <!-- operators-doc-test: run --> is marked to run.
func shellBlocks(t *testing.T, path string) []docBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks       []docBlock
		cur          *docBlock
		prev         string
		n            int
		inOtherFence bool
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		case inOtherFence:
			inOtherFence = strings.TrimSpace(line) != "```"
		case strings.TrimSpace(line) == "```sh":
			cur = &docBlock{line: n + 1, run: strings.TrimSpace(prev) == "<!-- operators-doc-test: run -->"}
		case strings.HasPrefix(strings.TrimSpace(line), "```"):
			inOtherFence = true
		}
		prev = line
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// shellCommands splits a shell block into simple commands: continuation lines
// joined, comments dropped, split at pipes, && and ;, redirections and
// leading VAR=value assignments removed, words unquoted.
func shellCommands(block string) [][]string {
	block = strings.ReplaceAll(block, "\\\n", " ")
	var out [][]string
	for _, line := range strings.Split(block, "\n") {
		var (
			words []string
			word  strings.Builder
			quote rune
			has   bool
		)
		flush := func() {
			if has {
				words = append(words, word.String())
			}
			word.Reset()
			has = false
		}
		end := func() {
			flush()
			// Drop redirections and what they redirect to.
			var cmd []string
			for i := 0; i < len(words); i++ {
				if w := words[i]; w == ">" || w == ">>" || w == "<" || w == "2>" {
					i++
					continue
				}
				cmd = append(cmd, words[i])
			}
			for len(cmd) > 0 && regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(cmd[0]) {
				cmd = cmd[1:]
			}
			if len(cmd) > 0 && cmd[len(cmd)-1] == "&" {
				cmd = cmd[:len(cmd)-1]
			}
			if len(cmd) > 0 {
				out = append(out, cmd)
			}
			words = nil
		}
		rs := []rune(line)
		for i := 0; i < len(rs); i++ {
			r := rs[i]
			switch {
			case quote != 0:
				if r == quote {
					quote = 0
				} else {
					word.WriteRune(r)
				}
			case r == '\'' || r == '"':
				quote, has = r, true
			case r == '$' && i+1 < len(rs) && rs[i+1] == '(':
				// A command substitution stays inside its word.
				depth := 0
				for ; i < len(rs); i++ {
					word.WriteRune(rs[i])
					if rs[i] == '(' {
						depth++
					} else if rs[i] == ')' {
						if depth--; depth == 0 {
							break
						}
					}
				}
				has = true
			case r == '#' && !has:
				i = len(rs)
			case r == ' ' || r == '\t':
				flush()
			case r == '|' || r == ';':
				if r == '|' && i+1 < len(rs) && rs[i+1] == '|' {
					i++
				}
				end()
			case r == '&' && i+1 < len(rs) && rs[i+1] == '&':
				i++
				end()
			default:
				word.WriteRune(r)
				has = true
			}
		}
		end()
	}
	return out
}

// docLinter checks that a command names things that exist.
type docLinter struct {
	root string
	help map[string]string // cached help texts by command
}

// external programs the page uses as they are; they are not ours to check.
var externalPrograms = []string{"nvidia-smi", "trtexec", "git", "huggingface-cli", "python", "watch", "head", "rm", "mktemp", "export", "cd"}

func (l *docLinter) check(t *testing.T, cmd []string) string {
	prog, args := cmd[0], cmd[1:]
	switch {
	case slices.Contains(externalPrograms, prog):
		return ""
	case prog == "hy3d":
		return l.checkHy3d(t, args)
	case slices.Contains([]string{"tools/export-hunyuan3d", "tools/make-tiny-engines", "tools/check-hunyuan3d-export", "tools/add-matting"}, prog):
		help := l.helpOf(prog, "/usr/bin/python3", filepath.Join(l.root, prog), "--help")
		return missingFlags(args, help, `--`)
	case prog == "go":
		return l.checkGo(args)
	case prog == "make":
		raw, _ := os.ReadFile(filepath.Join(l.root, "Makefile"))
		for _, target := range args {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `:`).Match(raw) {
				return "no make target " + target
			}
		}
		return ""
	case prog == "cmake":
		return l.checkCMake(args)
	case prog == "curl":
		return l.checkCurl(args)
	}
	return "unknown program " + prog
}

func (l *docLinter) checkHy3d(t *testing.T, args []string) string {
	if len(args) == 0 {
		return "no subcommand"
	}
	c, ok := commands[args[0]]
	if !ok {
		return "no hy3d subcommand " + args[0]
	}
	helpArgs := []string{c.name, "-h"}
	rest := args[1:]
	if c.name == "engines" {
		if len(rest) == 0 || (rest[0] != "info" && rest[0] != "verify") {
			return "hy3d engines needs info or verify"
		}
		helpArgs = []string{"engines", rest[0], "-h"}
		rest = rest[1:]
	}
	key := strings.Join(helpArgs, " ")
	if _, ok := l.help[key]; !ok {
		code, stdout, _ := runCLI(t, helpArgs...)
		if code != exitOK {
			return key + " fails"
		}
		l.help[key] = stdout
	}
	return missingFlags(rest, l.help[key], `-`)
}

func (l *docLinter) checkGo(args []string) string {
	if len(args) == 0 {
		return "no go subcommand"
	}
	sub, rest := args[0], args[1:]
	if !slices.Contains([]string{"build", "run", "vet", "test"}, sub) {
		return "unexpected go " + sub
	}
	// Skip go's own flags; the first other word is the package.
	for len(rest) > 0 && strings.HasPrefix(rest[0], "-") {
		if rest[0] == "-tags" || rest[0] == "-o" {
			rest = rest[1:]
		}
		rest = rest[1:]
	}
	if len(rest) == 0 || !strings.HasPrefix(rest[0], "./") {
		return "no package path"
	}
	pkg := rest[0]
	if gofiles, _ := filepath.Glob(filepath.Join(l.root, pkg, "*.go")); len(gofiles) == 0 {
		return "no Go package " + pkg
	}
	if sub != "run" {
		return ""
	}
	help := l.helpOf("go run "+pkg, "go", "run", pkg, "-h")
	return missingFlags(rest[1:], help, `-`)
}

func (l *docLinter) checkCMake(args []string) string {
	var sources []byte
	files, _ := filepath.Glob(filepath.Join(l.root, "native", "cmake", "*.cmake"))
	for _, f := range append(files, filepath.Join(l.root, "CMakeLists.txt")) {
		b, _ := os.ReadFile(f)
		sources = append(sources, b...)
	}
	for _, a := range args {
		name, ok := strings.CutPrefix(a, "-D")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "=")
		if !strings.HasPrefix(name, "CMAKE_") && !strings.Contains(string(sources), name) {
			return "no CMake option " + name
		}
	}
	return ""
}

// checkCurl checks that the URL's path is a route the server registers.
func (l *docLinter) checkCurl(args []string) string {
	raw, err := os.ReadFile(filepath.Join(l.root, "server", "handlers.go"))
	if err != nil {
		return err.Error()
	}
	routes := map[string]bool{}
	for _, m := range regexp.MustCompile(`(\w+)\.(?:GET|POST|DELETE)\("([^"]+)"`).FindAllStringSubmatch(string(raw), -1) {
		prefix := ""
		if m[1] == "v1" {
			prefix = "/v1"
		}
		routes[prefix+m[2]] = true
	}
	for _, a := range args {
		host, path, ok := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "http://"), "https://"), "/")
		if !ok || !strings.Contains(host, ":") || strings.HasPrefix(a, "-") {
			continue
		}
		path, _, _ = strings.Cut("/"+path, "?")
		if !routes[path] {
			return "the server has no route " + path
		}
		return ""
	}
	return "no URL"
}

// helpOf runs a command for its usage text, once.
func (l *docLinter) helpOf(key string, name string, args ...string) string {
	if h, ok := l.help[key]; ok {
		return h
	}
	c := exec.Command(name, args...)
	c.Dir = l.root
	c.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, _ := c.CombinedOutput() // -h exits non-zero for some flag packages
	l.help[key] = string(out)
	return l.help[key]
}

// missingFlags names the first flag of args the help text does not list.
func missingFlags(args []string, help, dash string) string {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") || a == "-" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if len(name) == 1 && dash == `--` {
			// argparse lists short options as -x
			if !regexp.MustCompile(`(?m)(^|\s)-` + regexp.QuoteMeta(name) + `\b`).MatchString(help) {
				return "no flag " + a
			}
			continue
		}
		if !regexp.MustCompile(`(?m)(^|\s)` + dash + regexp.QuoteMeta(name) + `\b`).MatchString(help) {
			return "no flag " + a
		}
	}
	return ""
}

func TestShellCommandsSplitsLikeTheShell(t *testing.T) {
	block := "OUT=$(mktemp -d)   # a comment\n" +
		"CGO_LDFLAGS=\"-L a -L b\" \\\n  go build -tags x -o bin/hy3d ./cmd/hy3d\n" +
		"trtexec --help | head -1\n" +
		"git clone https://example.org/r && cd r; make deps\n" +
		"hy3d engines verify --json > out.json\n" +
		"nvidia-smi -lms 100 > gpu.csv &\n" +
		"watch -n 1 'curl -s localhost:8080/v1/gpu'\n"
	want := [][]string{
		{"go", "build", "-tags", "x", "-o", "bin/hy3d", "./cmd/hy3d"},
		{"trtexec", "--help"}, {"head", "-1"},
		{"git", "clone", "https://example.org/r"}, {"cd", "r"}, {"make", "deps"},
		{"hy3d", "engines", "verify", "--json"},
		{"nvidia-smi", "-lms", "100"},
		{"watch", "-n", "1", "curl -s localhost:8080/v1/gpu"},
	}
	got := shellCommands(block)
	if !slices.EqualFunc(got, want, slices.Equal[[]string]) {
		t.Errorf("shellCommands =\n%q\nwant\n%q", got, want)
	}
}

func TestDocLinterCatchesWhatDoesNotExist(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	l := &docLinter{root: root, help: map[string]string{}}
	tests := []struct {
		cmd  string
		want string // "" for a command that exists
	}{
		{"hy3d engines verify --engines x --against trt --json", ""},
		{"hy3d engines verify --no-such-flag", "no flag --no-such-flag"},
		{"hy3d engines build", "info or verify"},
		{"hy3d frobnicate", "no hy3d subcommand"},
		{"hy3d generate -i a.png -o a.glb --backend trt", ""},
		{"make test-gpu", ""},
		{"make no-such-target", "no make target"},
		{"go build -tags hy3d_tensorrt -o bin/hy3d ./cmd/hy3d", ""},
		{"go build ./cmd/nothing", "no Go package"},
		{"go run ./tools/build-engines --dry-run x", ""},
		{"go run ./tools/build-engines --no-such-flag x", "no flag"},
		{"curl -s localhost:8080/v1/gpu", ""},
		{"curl -s localhost:8080/v1/nothing", "no route /v1/nothing"},
		{"cmake -S . -B b -DHY3D_WITH_TENSORRT=ON -DCMAKE_BUILD_TYPE=Release", ""},
		{"cmake -S . -B b -DHY3D_NO_SUCH_OPTION=ON", "no CMake option"},
		{"frobnicate --now", "unknown program"},
	}
	for _, tc := range tests {
		t.Run(tc.cmd, func(t *testing.T) {
			got := l.check(t, shellCommands(tc.cmd)[0])
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("check = %q, want %q", got, tc.want)
			}
		})
	}
}
