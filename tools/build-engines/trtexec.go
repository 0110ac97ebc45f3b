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

// packagedTrtexecDir is where NVIDIA's Debian and Ubuntu packages
// (libnvinfer-bin) install trtexec; it is not on PATH.
const packagedTrtexecDir = "/usr/src/tensorrt/bin"

// trtexecDirs are the folders searched for trtexec when it is not on PATH:
// $TENSORRT_ROOT/bin (a tarball install), then the packages' folder.
func trtexecDirs(tensorRTRoot string) []string {
	var dirs []string
	if tensorRTRoot != "" {
		dirs = append(dirs, filepath.Join(tensorRTRoot, "bin"))
	}
	return append(dirs, packagedTrtexecDir)
}

// tools are the external programs a build needs.
type tools struct {
	trtexec   string
	nvidiaSMI string
	// trtexecEnv is trtexec's environment: this process's, with the lib/
	// next to a tarball's bin/ first on LD_LIBRARY_PATH, since libnvinfer
	// opens libnvinfer_builder_resource.so.10.* from there by name.
	trtexecEnv []string
}

// findTools locates trtexec and nvidia-smi, reporting every missing one.
// trtexec is looked up as given (a path, or a name on PATH), then in dirs.
func findTools(trtexec, nvidiaSMI string, dirs []string) (tools, error) {
	var t tools
	var errs []error
	if p, err := exec.LookPath(trtexec); err == nil {
		t.trtexec = p
	} else {
		for _, d := range dirs {
			if alt := filepath.Join(d, "trtexec"); isExecutable(alt) {
				t.trtexec = alt
				break
			}
		}
	}
	if t.trtexec == "" {
		errs = append(errs, fmt.Errorf("trtexec not found (%q on PATH or in %s): install TensorRT 10 and put its bin/ on PATH, "+
			"set TENSORRT_ROOT, or pass --trtexec", trtexec, strings.Join(dirs, ", ")))
	} else {
		t.trtexecEnv = withLibraryPath(os.Environ(), tensorRTLibDir(t.trtexec))
	}
	if p, err := exec.LookPath(nvidiaSMI); err == nil {
		t.nvidiaSMI = p
	} else {
		errs = append(errs, fmt.Errorf("nvidia-smi not found (%q on PATH): building TensorRT plans needs an NVIDIA GPU "+
			"and its driver on this machine, the one the plans will run on", nvidiaSMI))
	}
	return t, errors.Join(errs...)
}

// tensorRTLibDir is the lib/ beside trtexec's bin/ when it holds libnvinfer
// (a tarball install), else "".
func tensorRTLibDir(trtexec string) string {
	lib := filepath.Join(filepath.Dir(filepath.Dir(trtexec)), "lib")
	if m, _ := filepath.Glob(filepath.Join(lib, "libnvinfer.so*")); len(m) > 0 {
		return lib
	}
	return ""
}

// withLibraryPath returns env with dir first on LD_LIBRARY_PATH.
func withLibraryPath(env []string, dir string) []string {
	if dir == "" {
		return env
	}
	out := make([]string, 0, len(env)+1)
	value := dir
	for _, kv := range env {
		if old, ok := strings.CutPrefix(kv, "LD_LIBRARY_PATH="); ok {
			if old != "" {
				value += string(os.PathListSeparator) + old
			}
			continue
		}
		out = append(out, kv)
	}
	return append(out, "LD_LIBRARY_PATH="+value)
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
