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
APT_PACKAGES := cmake g++ make libmeshoptimizer-dev nodejs npm pkg-config
APT_PACKAGES += python3-torch python3-onnx python3-numpy
BIN          := bin/hy3d
ADDR         ?= 127.0.0.1:8080

# Go caches cgo links without looking at build/libhy3d.a, so a changed native
# library could be linked stale; stamping the link flags with its hash keys the cache on it.
NATIVE_LDFLAGS = -ldflags "-X main.nativeLibrarySHA256=$$(sha256sum $(BUILD)/libhy3d.a | cut -c1-16)"

export HY3D_ORT_LIB := $(abspath $(ORT_LIB))
export CGO_ENABLED  := 1

.PHONY: deps build native test test-native test-go test-asan test-gpu run bench-mc bench-decimate tiny-engines vet fmt clean

## deps: system packages (apt) and the ONNX Runtime library (npm onnxruntime-node, pinned).
deps: $(BUILD)/.apt-deps $(ORT_LIB)

# A package whose command is already on PATH counts as installed: NodeSource's
# nodejs bundles npm and conflicts with Debian's npm package.
$(BUILD)/.apt-deps:
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
build: deps native
	$(GO) build $(NATIVE_LDFLAGS) -o $(BIN) ./cmd/hy3d

## test: every test — native (CTest), native under ASan/UBSan, Go with -race.
test: deps native test-native test-asan test-go test-tools

test-native: native
	ctest --test-dir $(BUILD) --output-on-failure

test-asan: $(BUILD)/.apt-deps
	flock $(BUILD)-asan.lock sh -c 'cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DHY3D_SANITIZE=ON >/dev/null && cmake --build $(BUILD)-asan -j$$(nproc)'
	ctest --test-dir $(BUILD)-asan --output-on-failure

test-go: deps native
	$(GO) mod tidy -diff
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) test $(GOFLAGS_TEST) $(NATIVE_LDFLAGS) ./...

## test-gpu: the TensorRT backend's tests, for an operator on a machine with an NVIDIA GPU, CUDA and
## TensorRT 10: `TENSORRT_ROOT=/opt/TensorRT-10.x make test-gpu` (docs/tensorrt.md). The native
## library is built with TensorRT into build-gpu/ (trt/cgo.go links it under -tags hy3d_tensorrt);
## CGO_LDFLAGS puts build-gpu first so that every package of the test binary links that library.
TENSORRT_ROOT ?=
CUDA_ROOT     ?= /usr/local/cuda
GPU_BUILD     := build-gpu
GPU_LIB_DIRS  := $(strip $(if $(TENSORRT_ROOT),$(TENSORRT_ROOT)/lib) $(wildcard $(CUDA_ROOT)/lib64))
GPU_LD_PATH   := $(if $(GPU_LIB_DIRS),LD_LIBRARY_PATH="$(subst $(eval) ,:,$(GPU_LIB_DIRS))$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}")
test-gpu: deps
	@mkdir -p $(GPU_BUILD)
	flock $(GPU_BUILD)/.lock sh -c 'cmake -S . -B $(GPU_BUILD) -DCMAKE_BUILD_TYPE=Release -DHY3D_WITH_TENSORRT=ON $(if $(TENSORRT_ROOT),-DTENSORRT_ROOT=$(TENSORRT_ROOT)) >/dev/null && cmake --build $(GPU_BUILD) -j$$(nproc)'
	ctest --test-dir $(GPU_BUILD) --output-on-failure
	PATH="$(if $(TENSORRT_ROOT),$(TENSORRT_ROOT)/bin:)$$PATH" \
	$(GPU_LD_PATH) \
	CGO_LDFLAGS="-L$(abspath $(GPU_BUILD)) $(addprefix -L,$(GPU_LIB_DIRS))" \
	$(GO) test -count=1 -tags hy3d_tensorrt ./trt/... ./tools/build-engines/...

## run: start the server on the embedded reference engines (engines/tiny).
run: build
	$(BIN) serve --addr $(ADDR)

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-gpu bin

## ---- reference models and ONNX export (tools/hy3d_export) ----
## Debian's python3-torch/python3-onnx; the python3 first on PATH may not see them.
PYTHON ?= /usr/bin/python3

.PHONY: test-tools

## tiny-engines: regenerate engines/tiny and engines/tiny-turbo (deterministic, byte-identical).
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

## ---- load benchmark (bench/load) ----
.PHONY: bench-load

## bench-load: a server under concurrent requests (MODE=sync or async): latency, queue wait, stages,
## throughput, shedding and GPU telemetry into bench/out/load (CSV + JSON). URL=... measures a running server.
bench-load: deps
	bench/load/run.sh

## ---- marching cubes benchmark (bench/marching_cubes) ----

## bench-deps: the peers the benchmarks compare against (Debian packages).
BENCH_APT_PACKAGES := python3-skimage python3-vtk9 meshlab xvfb xauth python3-opencv
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
