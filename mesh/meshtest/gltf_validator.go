// Package meshtest holds test helpers for code that produces meshes: it runs
// the Khronos glTF validator (npm gltf-validator, installed by `make deps`)
// over exported GLB files through tools/validate-gltf.mjs, so that "valid
// glTF" in a test means what every glTF loader means by it. It never skips:
// a missing validator fails the test with the command that installs it.
package meshtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ValidatorEnv names the environment variable holding the directory of the
// gltf-validator npm package; the Makefile sets it.
const ValidatorEnv = "HY3D_GLTF_VALIDATOR"

// Where `make deps` installs the package and where the script lives,
// relative to the module root.
var (
	validatorRel = filepath.Join("build", "node", "node_modules", "gltf-validator")
	scriptRel    = filepath.Join("tools", "validate-gltf.mjs")
)

// Report is the summary tools/validate-gltf.mjs prints.
type Report struct {
	ValidatorVersion string    `json:"validatorVersion"`
	NumErrors        int       `json:"numErrors"`
	NumWarnings      int       `json:"numWarnings"`
	NumInfos         int       `json:"numInfos"`
	NumHints         int       `json:"numHints"`
	Truncated        bool      `json:"truncated"`
	Messages         []Message `json:"messages"`
}

// Message is one issue the validator reported.
type Message struct {
	Code     string `json:"code"`
	Severity string `json:"severity"` // error, warning, info or hint
	Message  string `json:"message"`
	Pointer  string `json:"pointer,omitempty"` // JSON pointer into the glTF document
	Offset   *int   `json:"offset,omitempty"`  // byte offset into the GLB
}

// Codes lists the codes of the messages of one severity, in report order.
func (r Report) Codes(severity string) []string {
	var codes []string
	for _, m := range r.Messages {
		if m.Severity == severity {
			codes = append(codes, m.Code)
		}
	}
	return codes
}

func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "glTF validator %s: %d errors, %d warnings, %d infos, %d hints",
		r.ValidatorVersion, r.NumErrors, r.NumWarnings, r.NumInfos, r.NumHints)
	for _, m := range r.Messages {
		fmt.Fprintf(&b, "\n  %s %s", m.Severity, m.Code)
		if m.Pointer != "" {
			fmt.Fprintf(&b, " at %s", m.Pointer)
		}
		if m.Offset != nil {
			fmt.Fprintf(&b, " (byte %d)", *m.Offset)
		}
		fmt.Fprintf(&b, ": %s", m.Message)
	}
	if r.Truncated {
		b.WriteString("\n  (more issues not listed)")
	}
	return b.String()
}

// RequireValidGLB fails the test when the validator reports an error in glb
// and logs any warnings, infos and hints. Errors are what make a file
// unreadable or wrong for a conforming loader; the lesser severities are
// for the caller to pin if it cares (see ValidateGLB).
func RequireValidGLB(t testing.TB, glb []byte) Report {
	t.Helper()
	r := ValidateGLB(t, glb)
	switch {
	case r.NumErrors > 0:
		t.Errorf("GLB is not valid glTF: %s", r)
	case len(r.Messages) > 0:
		t.Logf("GLB is valid glTF with notes: %s", r)
	}
	return r
}

// ValidateGLB runs the validator over glb and returns its report, whatever
// it found. The test fails at once when the validator cannot run.
func ValidateGLB(t testing.TB, glb []byte) Report {
	t.Helper()
	node, script, pkg, err := locate()
	if err != nil {
		t.Fatalf("glTF validator unavailable (run `make deps` to install it): %v", err)
	}
	file := filepath.Join(t.TempDir(), "mesh.glb")
	if err := os.WriteFile(file, glb, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), node, script, file)
	cmd.Env = append(os.Environ(), ValidatorEnv+"="+pkg)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	// Exit status 1 is the script's verdict "has errors", with a report;
	// anything else non-zero means it could not validate at all.
	var exit *exec.ExitError
	if runErr != nil && !(errors.As(runErr, &exit) && exit.ExitCode() == 1) {
		t.Fatalf("glTF validator %s %s: %v\n%s", node, script, runErr, stderr.Bytes())
	}
	var r Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("glTF validator report: %v\n%s%s", err, stdout.Bytes(), stderr.Bytes())
	}
	if (runErr != nil) != (r.NumErrors > 0) {
		t.Fatalf("glTF validator exit status %v disagrees with its report: %s", runErr, r)
	}
	return r
}

// locate finds node, the script (under the module root above the working
// directory) and the validator package ($HY3D_GLTF_VALIDATOR, else
// build/node under the module root).
func locate() (node, script, pkg string, err error) {
	node, err = exec.LookPath("node")
	if err != nil {
		return "", "", "", fmt.Errorf("node.js: %w", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", "", "", err
	}
	root, err := moduleRoot(wd)
	if err != nil {
		return "", "", "", err
	}
	script = filepath.Join(root, scriptRel)
	pkg = os.Getenv(ValidatorEnv)
	source := ValidatorEnv
	if pkg == "" {
		pkg, source = filepath.Join(root, validatorRel), "default location"
	}
	if _, err := os.Stat(filepath.Join(pkg, "package.json")); err != nil {
		return "", "", "", fmt.Errorf("gltf-validator package (%s): %w", source, err)
	}
	return node, script, pkg, nil
}

// moduleRoot is dir or its nearest parent holding go.mod.
func moduleRoot(dir string) (string, error) {
	for d := filepath.Clean(dir); ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		d = parent
	}
}
