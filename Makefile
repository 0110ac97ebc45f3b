# hy3d — build, test and run. `make deps` installs everything a fresh Debian
# machine needs; `make test` and `make run` call it first.
SHELL := /bin/bash
.DEFAULT_GOAL := build

BUILD        ?= build
ORT_VERSION  := 1.24.1
ORT_DIR      := $(BUILD)/onnxruntime
ORT_LIB      := $(ORT_DIR)/libonnxruntime.so.$(ORT_VERSION)
GO           ?= go
GOFLAGS_TEST ?= -race -count=1
APT_PACKAGES := chromium cmake g++ make libjpeg62-turbo-dev libmeshoptimizer-dev nodejs npm pkg-config
APT_PACKAGES += python3-torch python3-onnx python3-numpy python3-scipy python3-skimage
BIN          := bin/hy3d
STUDIO_MODULES := studio/node_modules/.package-lock.json
STUDIO_BUNDLE  := studio/dist/index.html
ADDR         ?= 127.0.0.1:8080

# Go caches cgo links without looking at build/libhy3d.a, so a changed native
# library could be linked stale; stamping the link flags with its hash keys the cache on it.
NATIVE_LDFLAGS = -ldflags "-X main.nativeLibrarySHA256=$$(sha256sum $(BUILD)/libhy3d.a | cut -c1-16)"

export HY3D_ORT_LIB := $(abspath $(ORT_LIB))
export CGO_ENABLED  := 1

.PHONY: deps build studio native test test-native test-go test-asan native-gpu test-gpu build-tensorrt check-trt-compile run bench-mc bench-decimate tiny-engines vet fmt clean
.PHONY: check-deps print-deps

## deps: system packages (apt), the ONNX Runtime library (npm onnxruntime-node, pinned) and the
## browser pages' npm packages (studio/package-lock.json).
deps: $(BUILD)/.apt-deps $(ORT_LIB) $(STUDIO_MODULES)

## studio: the browser pages, bundled by esbuild from studio/src into studio/dist (embedded by package studio).
studio: $(STUDIO_BUNDLE)

$(STUDIO_MODULES): studio/package-lock.json | $(BUILD)/.apt-deps
	cd studio && npm ci --no-audit --no-fund --loglevel=error

$(STUDIO_BUNDLE): $(STUDIO_MODULES) studio/bundle.mjs $(wildcard studio/src/*)
	cd studio && node bundle.mjs

# A package whose command is already on PATH counts as installed: NodeSource's
# nodejs bundles npm and conflicts with Debian's npm package. The stamp is remade
# when the Makefile (and so the package lists) changes.
$(BUILD)/.apt-deps: Makefile
	@mkdir -p $(BUILD)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@touch $@

$(ORT_LIB): | $(BUILD)/.apt-deps
	@mkdir -p $(ORT_DIR)/npm
	cd $(ORT_DIR)/npm && npm install --no-save --ignore-scripts --no-audit --no-fund --loglevel=error onnxruntime-node@$(ORT_VERSION)
	cp $(ORT_DIR)/npm/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1 $@
	ln -sf $(notdir $@) $(ORT_DIR)/libonnxruntime.so
	rm -rf $(ORT_DIR)/npm

## native: the C++ shim (libhy3d.a) and its tests. flock keeps parallel builds from colliding.
native: $(BUILD)/.apt-deps
	@mkdir -p $(BUILD)
	flock $(BUILD)/.lock sh -c 'cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build $(BUILD) -j$$(nproc)'

## build: the hy3d binary.
build: deps native studio
	$(GO) build $(NATIVE_LDFLAGS) -o $(BIN) ./cmd/hy3d

## test: every test — the dependency check, native (CTest), native under ASan/UBSan, Go with -race, tools.
test: deps check-deps native test-native test-asan test-go test-tools test-fuzz

## check-deps: every Python module imported under tools/ and bench/ and every command the tests and
## benchmarks call comes from a package make deps (bench/: or make bench-deps) installs, from the base
## system, or from a provider tools/deps.toml declares (tools/check-deps).
check-deps: $(BUILD)/.apt-deps
	$(PYTHON) tools/check-deps

## print-deps: the install steps' package lists, one `target: packages` line each (read by tools/check-deps).
print-deps:
	@echo "deps: $(APT_PACKAGES)"
	@echo "bench-deps: $(BENCH_APT_PACKAGES)"

test-native: native
	ctest --test-dir $(BUILD) --output-on-failure

test-asan: $(BUILD)/.apt-deps
	flock $(BUILD)-asan.lock sh -c 'cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DHY3D_SANITIZE=ON >/dev/null && cmake --build $(BUILD)-asan -j$$(nproc)'
	ctest --test-dir $(BUILD)-asan --output-on-failure

test-go: deps native studio
	$(GO) mod tidy -diff
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) test $(GOFLAGS_TEST) $(NATIVE_LDFLAGS) ./...

## test-gpu: the TensorRT backend's tests, for an operator on a machine with an NVIDIA GPU, CUDA and
## TensorRT 10: `TENSORRT_ROOT=/opt/TensorRT-10.x make test-gpu` (docs/tensorrt.md). They build plans
## for the tiny shape sets (trt/gpu_test.go) and the tiny paint sets (trt/paint_gpu_test.go: every
## paint graph against ONNX Runtime within FP16 bounds, a whole paint of the oracle set). The native
## library is built with TensorRT into build-gpu/ (trt/cgo.go links it under -tags hy3d_tensorrt);
## CGO_LDFLAGS puts build-gpu first so that every package of the test binary links that library.
## CMake and Go see the same CUDA (CUDA_ROOT, when it exists) and TensorRT (TENSORRT_ROOT). Every
## step runs with their lib/ on LD_LIBRARY_PATH: libnvinfer opens libnvinfer_builder_resource.so.10.*
## itself when it builds a plan, which a RUNPATH does not cover.
TENSORRT_ROOT    ?=
CUDA_ROOT        ?= /usr/local/cuda
GPU_BUILD        := build-gpu
GPU_TEST_TIMEOUT ?= 60m
GPU_CUDA_ROOT    := $(wildcard $(CUDA_ROOT))
GPU_LIB_DIRS     := $(strip $(if $(TENSORRT_ROOT),$(TENSORRT_ROOT)/lib) $(wildcard $(CUDA_ROOT)/lib64))
GPU_ENV          := $(if $(GPU_LIB_DIRS),LD_LIBRARY_PATH="$(subst $(eval) ,:,$(GPU_LIB_DIRS))$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}")
GPU_CMAKE_FLAGS  := -DHY3D_WITH_TENSORRT=ON $(if $(TENSORRT_ROOT),-DTENSORRT_ROOT=$(TENSORRT_ROOT)) \
                    $(if $(GPU_CUDA_ROOT),-DCUDAToolkit_ROOT=$(GPU_CUDA_ROOT))
## The -tags hy3d_tensorrt link: build-gpu first, then TensorRT's and CUDA's lib/, also recorded as the
## binary's RPATH (not RUNPATH, which a library's own dlopen ignores) so that it runs without LD_LIBRARY_PATH.
comma            := ,
GPU_CGO_LDFLAGS  := -L$(abspath $(GPU_BUILD)) $(addprefix -L,$(GPU_LIB_DIRS)) \
                    $(if $(GPU_LIB_DIRS),-Wl$(comma)--disable-new-dtags $(addprefix -Wl$(comma)-rpath$(comma),$(GPU_LIB_DIRS)))
# As NATIVE_LDFLAGS: keys Go's cached links on build-gpu/libhy3d.a.
GPU_NATIVE_LDFLAGS = -ldflags "-X main.nativeLibrarySHA256=$$(sha256sum $(GPU_BUILD)/libhy3d.a | cut -c1-16)"

native-gpu: deps
	@mkdir -p $(GPU_BUILD)
	flock $(GPU_BUILD)/.lock sh -c 'cmake -S . -B $(GPU_BUILD) -DCMAKE_BUILD_TYPE=Release $(GPU_CMAKE_FLAGS) >/dev/null && cmake --build $(GPU_BUILD) -j$$(nproc)'

test-gpu: native-gpu
	$(GPU_ENV) ctest --test-dir $(GPU_BUILD) --output-on-failure
	PATH="$(if $(TENSORRT_ROOT),$(TENSORRT_ROOT)/bin:)$$PATH" \
	$(GPU_ENV) \
	CGO_LDFLAGS="$(GPU_CGO_LDFLAGS)" \
	$(GO) test $(GOFLAGS_TEST) $(GPU_NATIVE_LDFLAGS) -timeout $(GPU_TEST_TIMEOUT) -tags hy3d_tensorrt ./trt/... ./tools/build-engines/...

## build-tensorrt: the hy3d binary with the TensorRT backend (bin/hy3d), linked as test-gpu links its tests.
build-tensorrt: native-gpu
	CGO_LDFLAGS="$(GPU_CGO_LDFLAGS)" $(GO) build -tags hy3d_tensorrt $(GPU_NATIVE_LDFLAGS) -o $(BIN) ./cmd/hy3d

## check-trt-compile: on a machine without a GPU, compile the TensorRT backend and its GPU tests against real
## TensorRT 10 headers and CUDA, and vet the Go side under -tags hy3d_tensorrt (docs/tensorrt.md, "Checking
## the backend without a GPU"). Local only, not part of `make test`:
## `TENSORRT_INCLUDE=/tmp/trt/tensorrt-v10.16/include make check-trt-compile` (or TENSORRT_ROOT, the folder
## holding include/). Without CUDA it installs Debian's nvidia-cuda-toolkit, adding contrib and non-free.
TENSORRT_INCLUDE  ?=
TRT_CHECK_BUILD   := build-trt-check
TRT_CHECK_ROOT     = $(if $(TENSORRT_INCLUDE),$(abspath $(TENSORRT_INCLUDE)/..),$(TENSORRT_ROOT))
CUDA_APT_PACKAGES := nvidia-cuda-toolkit

check-trt-compile: $(BUILD)/.cuda-toolkit
	@test -n "$(TRT_CHECK_ROOT)" && test -f "$(TRT_CHECK_ROOT)/include/NvInfer.h" || \
	  { echo "check-trt-compile: set TENSORRT_INCLUDE to a folder holding TensorRT 10's NvInfer.h" >&2; exit 1; }
	@mkdir -p $(TRT_CHECK_BUILD)
	flock $(TRT_CHECK_BUILD)/.lock sh -c 'cmake -S . -B $(TRT_CHECK_BUILD) -DHY3D_WITH_TENSORRT=ON -DHY3D_TENSORRT_COMPILE_ONLY=ON \
	  -DTENSORRT_ROOT=$(TRT_CHECK_ROOT) $(if $(GPU_CUDA_ROOT),-DCUDAToolkit_ROOT=$(GPU_CUDA_ROOT)) >/dev/null && \
	  cmake --build $(TRT_CHECK_BUILD) --target hy3d_trt_compile_check -j$$(nproc)'
	$(GO) vet -tags hy3d_tensorrt ./trt ./tools/build-engines

# CUDA counts as present when nvcc is on PATH or CUDA_ROOT holds its runtime header.
$(BUILD)/.cuda-toolkit:
	@mkdir -p $(BUILD)
	@if ! command -v nvcc >/dev/null 2>&1 && [ ! -f "$(CUDA_ROOT)/include/cuda_runtime.h" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  if [ -z "$$(apt-cache policy $(CUDA_APT_PACKAGES) 2>/dev/null | grep 'Candidate: [0-9]')" ]; then \
	    . /etc/os-release; \
	    echo "adding contrib non-free to apt's sources ($$VERSION_CODENAME) for $(CUDA_APT_PACKAGES)"; \
	    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s %s-updates\nComponents: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
	      "$$VERSION_CODENAME" "$$VERSION_CODENAME" | $$SUDO tee /etc/apt/sources.list.d/hy3d-cuda.sources >/dev/null; \
	  fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends \
	    -o DPkg::Lock::Timeout=600 $(CUDA_APT_PACKAGES); \
	fi
	@touch $@

## run: start the server on the embedded default engines (engines/silhouette).
run: build
	$(BIN) serve --addr $(ADDR)

## fuzz: every Go fuzz target for FUZZTIME each (default 30s); the inputs a run finds interesting are
## kept under <package>/testdata/fuzz/<target>/, where every go test replays them (tools/fuzz).
.PHONY: fuzz test-fuzz
fuzz: deps native
	GO=$(GO) tools/fuzz

## test-fuzz: the short fuzz pass of make test: every target for 2 s, nothing written to the tree.
test-fuzz: deps native
	GO=$(GO) FUZZTIME=2s KEEP=0 tools/fuzz

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(GPU_BUILD) $(TRT_CHECK_BUILD) bin

## ---- reference models and ONNX export (tools/hy3d_export) ----
## Debian's python3-torch/python3-onnx; the python3 first on PATH may not see them.
PYTHON ?= /usr/bin/python3

.PHONY: test-tools

## tiny-engines: regenerate engines/tiny, engines/tiny-turbo and engines/silhouette (deterministic, byte-identical).
tiny-engines: $(BUILD)/.apt-deps
	$(PYTHON) tools/make-tiny-engines --report

## test-tools: unit tests of the exporter, the tiny models, the Hunyuan3D wrappers and the export check
## (whose ONNX Runtime half is Go: tools/compare-outputs).
test-tools: deps
	GO=$(GO) PYTHONDONTWRITEBYTECODE=1 $(PYTHON) -m unittest discover -s tools/tests

## ---- pipeline benchmark (bench/pipeline) ----
.PHONY: bench-pipeline

## bench-pipeline: per-stage timings of whole generations at R=128/256/384, dense and coarse-to-fine.
bench-pipeline: deps native
	$(GO) run $(NATIVE_LDFLAGS) ./bench/pipeline

## ---- the cut-out and the README's gallery ----
.PHONY: bench-cutout gallery

## bench-cutout: IoU of the no-alpha cut-out against known masks, border colour (before) vs graph cut.
bench-cutout:
	$(GO) run ./bench/cutout

## gallery: regenerate docs/gallery and print the README's picture → mesh table (embedded default set).
gallery: deps native
	$(GO) run $(NATIVE_LDFLAGS) ./bench/gallery -out docs/gallery

## ---- load benchmark (bench/load) ----
.PHONY: bench-load

## bench-load: a server under concurrent requests (MODE=sync, async or repeat): latency, queue wait, stages,
## throughput, shedding and GPU telemetry into bench/out/load (CSV + JSON). URL=... measures a running server.
bench-load: deps
	bench/load/run.sh

## ---- marching cubes benchmark (bench/marching_cubes) ----

## bench-deps: the peers the benchmarks compare against (Debian packages).
## Everything bench/ imports or calls beyond make deps is named here, even what a named package pulls in.
BENCH_APT_PACKAGES := python3-numpy python3-scipy python3-skimage python3-vtk9 meshlab xvfb xauth python3-opencv
XATLASJS_VERSION := 0.2.0
XATLASJS_DIR     := $(BUILD)/node-bench/node_modules/xatlasjs
.PHONY: bench-deps
bench-deps: $(XATLASJS_DIR)/package.json
	@missing=""; for p in $(BENCH_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

# xatlas compiled to WebAssembly (npm xatlasjs, pinned), the atlas peer of bench-texture.
$(XATLASJS_DIR)/package.json: | $(BUILD)/.apt-deps
	@mkdir -p $(BUILD)/node-bench
	cd $(BUILD)/node-bench && npm install --no-save --ignore-scripts --no-audit --no-fund --loglevel=error xatlasjs@$(XATLASJS_VERSION)

## bench-mc: hy3d marching cubes vs scikit-image (Lewiner) and VTK Flying Edges at 256^3 and 384^3.
bench-mc: deps native bench-deps
	bench/marching_cubes/run.sh

## ---- decimation benchmark (bench/decimate) ----

## bench-decimate: hy3d decimation vs MeshLab's quadric edge collapse (Hunyuan3D's FaceReducer) at 256^3 -> 40k faces.
bench-decimate: deps native bench-deps
	bench/decimate/run.sh

## ---- engine verification (verify/, hy3d engines) ----
.PHONY: tiny-reference

## tiny-reference: regenerate engines/tiny/reference, the stored ONNX Runtime outputs that
## `hy3d engines verify` compares against (run it after make tiny-engines changes a graph).
tiny-reference: deps native
	$(GO) run $(NATIVE_LDFLAGS) ./cmd/hy3d engines verify --engines engines/tiny --write-reference --batch 1

## ---- glTF validator (tools/validate-gltf.mjs, mesh/meshtest) ----
## The Khronos glTF validator (npm gltf-validator, pinned) checks every exported GLB in `make test`;
## the tests fail, not skip, without it. The stamp names the version, so bumping it reinstalls.
GLTF_VALIDATOR_VERSION := 2.0.0-dev.3.10
NODE_DIR               := $(BUILD)/node
GLTF_VALIDATOR_STAMP   := $(NODE_DIR)/.gltf-validator-$(GLTF_VALIDATOR_VERSION)

export HY3D_GLTF_VALIDATOR := $(abspath $(NODE_DIR)/node_modules/gltf-validator)

deps: $(GLTF_VALIDATOR_STAMP)

$(GLTF_VALIDATOR_STAMP): | $(BUILD)/.apt-deps
	@mkdir -p $(NODE_DIR)
	npm install --prefix $(NODE_DIR) --no-save --ignore-scripts --no-audit --no-fund --loglevel=error gltf-validator@$(GLTF_VALIDATOR_VERSION)
	@touch $@

## ---- texture geometry benchmark (bench/texture) ----
.PHONY: bench-texture

## bench-texture: atlas, six views, bake, fill and GLB export per stage at 40k and 1M faces, textures 2048 and
## 4096, views 2048; the fill against OpenCV's Navier-Stokes inpainting (python3-opencv from bench-deps).
bench-texture: deps native bench-deps
	bench/texture/run.sh
