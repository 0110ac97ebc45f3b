package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
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
// and the graphs after the first much faster), no inference afterwards; for
// the paint UNets, the engine's layers in the log.
func trtexecArgs(trtexec, onnx, plan, timingCache string, device int, p graphProfile) []string {
	args := []string{
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
	if p.layerInfo {
		args = append(args, "--profilingVerbosity=detailed", "--dumpLayerInfo")
	}
	return args
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

// checkGPU fails unless nvidia-smi lists at least one GPU: without a driver
// and a device no plan can be built, and saying so before the first trtexec
// run is clearer than trtexec's own failure.
func checkGPU(ctx context.Context, nvidiaSMI string) error {
	out, err := exec.CommandContext(ctx, nvidiaSMI, "-L").CombinedOutput()
	if err != nil {
		return fmt.Errorf("nvidia-smi -L failed: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if !strings.Contains(string(out), "GPU") {
		return fmt.Errorf("nvidia-smi -L lists no GPU: %s", strings.TrimSpace(string(out)))
	}
	return nil
}

// gpu is the device a plan was built on, as trtexec describes it.
type gpu struct {
	name              string
	uuid              string
	computeCapability string
}

var (
	deviceName = regexp.MustCompile(`(?m)Selected Device: (.+?)\s*$`)
	deviceUUID = regexp.MustCompile(`(?m)Selected Device UUID: (\S+)`)
	deviceCC   = regexp.MustCompile(`(?m)Compute Capability: (\d+\.\d+)\s*$`)
)

// builtOn reads the device trtexec built on from its "=== Device
// Information ===" lines. They name the device by CUDA's numbering, the one
// --device and the runtime use (it follows CUDA_VISIBLE_DEVICES and
// CUDA_DEVICE_ORDER); nvidia-smi -i counts in PCI order over every GPU, so
// asking it about the same index may describe another card.
func builtOn(output []byte) (gpu, error) {
	var g gpu
	if m := deviceName.FindSubmatch(output); m != nil {
		g.name = string(m[1])
	}
	if m := deviceUUID.FindSubmatch(output); m != nil {
		g.uuid = string(m[1])
	}
	if m := deviceCC.FindSubmatch(output); m != nil {
		g.computeCapability = string(m[1])
	}
	if g.name == "" || g.computeCapability == "" {
		return gpu{}, errors.New(`trtexec's output has no "Selected Device:" and "Compute Capability:" lines`)
	}
	return g, nil
}

// planFileTag starts every TensorRT plan ("ftrt" little-endian).
const planFileTag = 0x74727466

// planVersion reads the TensorRT version that wrote a plan from its header,
// as trtexec --getPlanVersionOnly does: the tag, serialization version 0,
// then major, minor, patch at bytes 24..26. It is the version the runtime
// compares, which may differ from the one trtexec was compiled with.
func planVersion(plan []byte) (string, error) {
	if len(plan) < 28 || binary.LittleEndian.Uint32(plan) != planFileTag {
		return "", errors.New("not a TensorRT plan (no plan tag)")
	}
	if v := binary.LittleEndian.Uint32(plan[4:]); v != 0 {
		return "", fmt.Errorf("plan serialization version %d, which this tool cannot read", v)
	}
	return fmt.Sprintf("%d.%d.%d", plan[24], plan[25], plan[26]), nil
}

var (
	versionLine  = regexp.MustCompile(`TensorRT version: (\d+)\.(\d+)\.(\d+)`)
	versionStamp = regexp.MustCompile(`\[TensorRT v(\d+)\]`)
)

// trtexecVersion reads the TensorRT version trtexec was compiled with: its
// "TensorRT version: X.Y.Z" line, or else the "[TensorRT vXXYYZZ]" stamp of
// its RUNNING/PASSED lines.
func trtexecVersion(output []byte) (string, error) {
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
