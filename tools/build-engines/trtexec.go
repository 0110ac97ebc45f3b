package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// trtexecArgs is the command line that builds one plan: FP16, the graph's
// single optimization profile, the shared timing cache (it makes rebuilds
// and the graphs after the first much faster), no inference afterwards.
func trtexecArgs(trtexec, onnx, plan, timingCache string, device int, p graphProfile) []string {
	return []string{
		trtexec,
		"--onnx=" + onnx,
		"--saveEngine=" + plan,
		"--fp16",
		"--minShapes=" + p.shapes(func(in inputProfile) []int64 { return in.min }),
		"--optShapes=" + p.shapes(func(in inputProfile) []int64 { return in.opt }),
		"--maxShapes=" + p.shapes(func(in inputProfile) []int64 { return in.max }),
		"--timingCacheFile=" + timingCache,
		"--device=" + strconv.Itoa(device),
		"--skipInference",
	}
}

// shellQuote renders args as one line a POSIX shell runs unchanged.
func shellQuote(args []string) string {
	safe := regexp.MustCompile(`^[A-Za-z0-9_./:=,+@%-]+$`)
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && safe.MatchString(a) {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

// tools are the external programs a build needs.
type tools struct {
	trtexec   string
	nvidiaSMI string
}

// findTools locates trtexec and nvidia-smi, reporting every missing one.
// trtexec is looked up as given (a path, or a name on PATH), then in
// $TENSORRT_ROOT/bin.
func findTools(trtexec, nvidiaSMI, tensorRTRoot string) (tools, error) {
	var t tools
	var errs []error
	if p, err := exec.LookPath(trtexec); err == nil {
		t.trtexec = p
	} else if alt := filepath.Join(tensorRTRoot, "bin", "trtexec"); tensorRTRoot != "" && isExecutable(alt) {
		t.trtexec = alt
	} else {
		where := "on PATH"
		if tensorRTRoot != "" {
			where += " or in $TENSORRT_ROOT/bin (" + tensorRTRoot + ")"
		}
		errs = append(errs, fmt.Errorf("trtexec not found (%q %s): install TensorRT 10 and put its bin/ on PATH, "+
			"set TENSORRT_ROOT, or pass --trtexec", trtexec, where))
	}
	if p, err := exec.LookPath(nvidiaSMI); err == nil {
		t.nvidiaSMI = p
	} else {
		errs = append(errs, fmt.Errorf("nvidia-smi not found (%q on PATH): building TensorRT plans needs an NVIDIA GPU "+
			"and its driver on this machine, the one the plans will run on", nvidiaSMI))
	}
	return t, errors.Join(errs...)
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0
}

// gpu is the device a plan is built on, as nvidia-smi names it.
type gpu struct {
	name              string
	computeCapability string
}

// queryGPU asks nvidia-smi for a device's name and compute capability.
func queryGPU(ctx context.Context, nvidiaSMI string, device int) (gpu, error) {
	cmd := exec.CommandContext(ctx, nvidiaSMI, "--query-gpu=name,compute_cap", "--format=csv,noheader", "-i", strconv.Itoa(device))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return gpu{}, fmt.Errorf("nvidia-smi could not describe device %d: %w: %s", device, err, strings.TrimSpace(string(out)))
	}
	return parseGPU(string(out))
}

var computeCapability = regexp.MustCompile(`^\d+\.\d+$`)

func parseGPU(out string) (gpu, error) {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	i := strings.LastIndex(line, ",")
	if i < 0 {
		return gpu{}, fmt.Errorf("nvidia-smi answered %q, want \"name, compute_cap\"", line)
	}
	g := gpu{name: strings.TrimSpace(line[:i]), computeCapability: strings.TrimSpace(line[i+1:])}
	if g.name == "" || !computeCapability.MatchString(g.computeCapability) {
		return gpu{}, fmt.Errorf("nvidia-smi answered %q: no device name and compute capability (a driver older than 510 "+
			"cannot report compute_cap)", line)
	}
	return g, nil
}

var (
	versionLine  = regexp.MustCompile(`TensorRT version: (\d+)\.(\d+)\.(\d+)`)
	versionStamp = regexp.MustCompile(`\[TensorRT v(\d+)\]`)
)

// tensorRTVersion reads the TensorRT version trtexec reports: its
// "TensorRT version: X.Y.Z" line, or else the "[TensorRT vXXYYZZ]" stamp of
// its RUNNING/PASSED lines.
func tensorRTVersion(output []byte) (string, error) {
	if m := versionLine.FindSubmatch(output); m != nil {
		return fmt.Sprintf("%s.%s.%s", m[1], m[2], m[3]), nil
	}
	if m := versionStamp.FindSubmatch(output); m != nil {
		v, err := strconv.Atoi(string(m[1]))
		if err == nil {
			return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100), nil
		}
	}
	return "", errors.New("trtexec's output names no TensorRT version")
}

// tail returns the last n lines of output, for error messages.
func tail(output []byte, n int) string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(output))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
