package trt

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// makeDryRun prints the commands `make target vars...` would run in the
// repository root (make -n; deps is taken as done), one per line with
// continuation lines joined.
func makeDryRun(t *testing.T, target string, vars ...string) []string {
	t.Helper()
	args := append([]string{"-C", "..", "-n", "-o", "deps", target}, vars...)
	cmd := exec.Command("make", args...)
	// A parent make (make test) must not pass its flags and variables down.
	cmd.Env = append(os.Environ(), "MAKEFLAGS=", "MFLAGS=", "MAKELEVEL=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	joined := strings.ReplaceAll(string(out), "\\\n", " ")
	var lines []string
	for _, l := range strings.Split(joined, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" && !strings.HasPrefix(l, "make") {
			lines = append(lines, l)
		}
	}
	return lines
}

// command returns the first line that contains every one of parts.
func command(t *testing.T, lines []string, parts ...string) string {
	t.Helper()
	for _, l := range lines {
		found := true
		for _, p := range parts {
			found = found && strings.Contains(l, p)
		}
		if found {
			return l
		}
	}
	t.Fatalf("no command with %q among\n%s", parts, strings.Join(lines, "\n"))
	return ""
}

// The commands of `make test-gpu` and `make build-tensorrt` for a tarball
// TensorRT and an NVIDIA CUDA (a stand-in folder with lib64/).
func TestMakeTestGPUUsesOneTensorRTAndCUDA(t *testing.T) {
	cuda := t.TempDir()
	if err := os.Mkdir(filepath.Join(cuda, "lib64"), 0o755); err != nil {
		t.Fatal(err)
	}
	const trtRoot = "/opt/TensorRT-10.8.0.43"
	vars := []string{"TENSORRT_ROOT=" + trtRoot, "CUDA_ROOT=" + cuda}
	libPath := `LD_LIBRARY_PATH="` + trtRoot + "/lib:" + cuda + "/lib64"
	rpath := "-Wl,--disable-new-dtags -Wl,-rpath," + trtRoot + "/lib -Wl,-rpath," + cuda + "/lib64"
	lines := makeDryRun(t, "test-gpu", vars...)

	// CMake sees the CUDA that Go links.
	command(t, lines, "cmake -S . -B build-gpu", "-DHY3D_WITH_TENSORRT=ON", "-DTENSORRT_ROOT="+trtRoot, "-DCUDAToolkit_ROOT="+cuda+" ")
	// libnvinfer opens its builder resource library by name: the native
	// tests, which build plans, need TensorRT's lib/ on the library path.
	ctest := command(t, lines, "ctest --test-dir build-gpu")
	if !strings.HasPrefix(ctest, libPath) {
		t.Errorf("ctest runs without TensorRT's and CUDA's lib/ on LD_LIBRARY_PATH:\n%s", ctest)
	}
	goTest := command(t, lines, "go test", "-tags hy3d_tensorrt")
	for _, want := range []string{libPath, "PATH=\"" + trtRoot + "/bin:", "-L" + trtRoot + "/lib", rpath, " -timeout ", " -race "} {
		if !strings.Contains(goTest, want) {
			t.Errorf("the Go GPU tests' command lacks %q:\n%s", want, goTest)
		}
	}

	build := command(t, makeDryRun(t, "build-tensorrt", vars...), "go build", "-tags hy3d_tensorrt")
	if !strings.Contains(build, rpath) {
		t.Errorf("the TensorRT binary is linked without an RPATH to %s and %s:\n%s", trtRoot, cuda, build)
	}
}

// TensorRT and CUDA from packages (system library folders): nothing to add.
func TestMakeTestGPUForPackageInstalls(t *testing.T) {
	lines := makeDryRun(t, "test-gpu", "CUDA_ROOT="+filepath.Join(t.TempDir(), "none"))
	for _, l := range lines {
		for _, unwanted := range []string{"CUDAToolkit_ROOT", "TENSORRT_ROOT", "LD_LIBRARY_PATH", "-rpath"} {
			if strings.Contains(l, unwanted) {
				t.Errorf("package installs: %s in\n%s", unwanted, l)
			}
		}
	}
	command(t, lines, "go test", "-tags hy3d_tensorrt", " -timeout ")
}

// check-trt-compile is the compile check of docs/tensorrt.md: CUDA from
// Debian's nvidia-cuda-toolkit, TensorRT's headers from TENSORRT_INCLUDE.
func TestMakeCheckTRTCompile(t *testing.T) {
	lines := makeDryRun(t, "check-trt-compile", "TENSORRT_INCLUDE=/tmp/trt/tensorrt-v10.16/include", "BUILD="+t.TempDir())
	command(t, lines, "apt-get install", "nvidia-cuda-toolkit")
	command(t, lines, "-DHY3D_TENSORRT_COMPILE_ONLY=ON", "-DTENSORRT_ROOT=/tmp/trt/tensorrt-v10.16 ", "--target hy3d_trt_compile_check")
	command(t, lines, "go vet -tags hy3d_tensorrt ./trt ./tools/build-engines")
}
