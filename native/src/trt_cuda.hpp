// RAII owners for the CUDA runtime resources the TensorRT backend uses, and
// the one place CUDA error codes become hy3d::Error. Only the calls that
// exist unchanged in CUDA 11.8 and 12.x are used (the backend must build
// against either).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <utility>

#include "status.hpp"

namespace hy3d {
namespace cuda {

inline std::string describe(cudaError_t err) {
  return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
}

// The errors CUDA documents as leaving the process's context unusable: every
// later CUDA call of the process fails the same way, and only a new process
// gets a working context.
inline bool is_sticky(cudaError_t err) {
  switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchTimeout:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchFailure:
    case cudaErrorECCUncorrectable:
      return true;
    default:
      return false;
  }
}

// The message for a sticky error, saying what it means for the operator.
inline std::string context_lost(cudaError_t err, const std::string &what) {
  return what + " failed: " + describe(err) +
         ": the CUDA context of this process is lost (the error is sticky: every later CUDA call fails the same "
         "way); the TensorRT backend is unusable until the process restarts";
}

// Thrown for a sticky error: HY3D_ERR_UNAVAILABLE, since nothing on this
// device can work any more, and a type of its own so that callers can tell
// it from one failed call.
class ContextLost : public Error {
 public:
  ContextLost(cudaError_t err, const std::string &what) : Error(HY3D_ERR_UNAVAILABLE, context_lost(err, what)) {}
};

// Throws for a failed CUDA call; what names the call for the message.
inline void check(cudaError_t err, const char *what) {
  if (err == cudaSuccess) return;
  if (is_sticky(err)) throw ContextLost(err, what);
  // A non-sticky error stays readable until read; reading it here keeps a
  // later, unrelated call from reporting it again.
  (void)cudaGetLastError();
  const hy3d_status status =
      err == cudaErrorMemoryAllocation ? HY3D_ERR_OUT_OF_MEMORY
      : (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver || err == cudaErrorInvalidDevice)
          ? HY3D_ERR_UNAVAILABLE
          : HY3D_ERR_RUNTIME;
  std::string message = std::string(what) + " failed: " + describe(err);
  if (status == HY3D_ERR_OUT_OF_MEMORY) {
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess)
      message += " (" + std::to_string(free_bytes >> 20) + " MiB free of " + std::to_string(total_bytes >> 20) + " MiB)";
    else
      (void)cudaGetLastError();
  }
  throw Error(status, message);
}

// Makes a device current for a scope and restores the previous one: entry
// points run on whatever thread Go happens to use, and other code on that
// thread may rely on its own current device.
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device) check(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceScope() {
    int current = -1;
    if (cudaGetDevice(&current) == cudaSuccess && current != previous_) (void)cudaSetDevice(previous_);
  }
  DeviceScope(const DeviceScope &) = delete;
  DeviceScope &operator=(const DeviceScope &) = delete;

 private:
  int previous_ = 0;
};

// A cudaMalloc block. cudaMalloc aligns to at least 256 bytes, which is what
// TensorRT asks of I/O and activation memory.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes > 0) check(cudaMalloc(&ptr_, bytes), ("cudaMalloc of " + std::to_string(bytes) + " bytes").c_str());
  }
  ~DeviceBuffer() {
    if (ptr_ != nullptr) (void)cudaFree(ptr_);
  }
  DeviceBuffer(DeviceBuffer &&other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  DeviceBuffer &operator=(DeviceBuffer &&other) noexcept {
    if (this != &other) {
      if (ptr_ != nullptr) (void)cudaFree(ptr_);
      ptr_ = std::exchange(other.ptr_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;

  void *get() const { return ptr_; }
  size_t size() const { return bytes_; }

 private:
  void *ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Page-locked host memory: async copies from pageable memory are staged
// synchronously by the driver, so the staging buffers are pinned.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes > 0)
      check(cudaHostAlloc(&ptr_, bytes, cudaHostAllocDefault),
            ("cudaHostAlloc of " + std::to_string(bytes) + " bytes").c_str());
  }
  ~PinnedBuffer() {
    if (ptr_ != nullptr) (void)cudaFreeHost(ptr_);
  }
  PinnedBuffer(PinnedBuffer &&other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  PinnedBuffer &operator=(PinnedBuffer &&other) noexcept {
    if (this != &other) {
      if (ptr_ != nullptr) (void)cudaFreeHost(ptr_);
      ptr_ = std::exchange(other.ptr_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  PinnedBuffer(const PinnedBuffer &) = delete;
  PinnedBuffer &operator=(const PinnedBuffer &) = delete;

  unsigned char *get() const { return static_cast<unsigned char *>(ptr_); }
  size_t size() const { return bytes_; }

 private:
  void *ptr_ = nullptr;
  size_t bytes_ = 0;
};

// A non-blocking stream: it must not synchronize with the legacy default
// stream, which other libraries in the process may use.
class Stream {
 public:
  Stream() { check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags"); }
  ~Stream() {
    if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
  }
  Stream(const Stream &) = delete;
  Stream &operator=(const Stream &) = delete;

  cudaStream_t get() const { return stream_; }
  void synchronize(const char *what) const { check(cudaStreamSynchronize(stream_), what); }

 private:
  cudaStream_t stream_ = nullptr;
};

// An event that a host thread waits on by sleeping, not spinning: a run's
// wait for its outputs then leaves the CPU to the rest of the process.
class BlockingEvent {
 public:
  BlockingEvent() {
    check(cudaEventCreateWithFlags(&event_, cudaEventBlockingSync | cudaEventDisableTiming), "cudaEventCreateWithFlags");
  }
  ~BlockingEvent() {
    if (event_ != nullptr) (void)cudaEventDestroy(event_);
  }
  BlockingEvent(const BlockingEvent &) = delete;
  BlockingEvent &operator=(const BlockingEvent &) = delete;

  // Waits until the work queued on stream so far has finished.
  void wait_for(cudaStream_t stream, const char *what) const {
    check(cudaEventRecord(event_, stream), "cudaEventRecord");
    check(cudaEventSynchronize(event_), what);
  }

 private:
  cudaEvent_t event_ = nullptr;
};

// A captured graph between cudaStreamEndCapture and instantiation.
class Graph {
 public:
  Graph() = default;
  ~Graph() {
    if (graph_ != nullptr) (void)cudaGraphDestroy(graph_);
  }
  Graph(const Graph &) = delete;
  Graph &operator=(const Graph &) = delete;

  cudaGraph_t *out() { return &graph_; }
  cudaGraph_t get() const { return graph_; }

 private:
  cudaGraph_t graph_ = nullptr;
};

// An instantiated graph, ready to launch.
class GraphExec {
 public:
  GraphExec() = default;
  ~GraphExec() { reset(); }
  GraphExec(const GraphExec &) = delete;
  GraphExec &operator=(const GraphExec &) = delete;

  // cudaGraphInstantiateWithFlags has the same signature in CUDA 11.4+ and
  // 12.x, unlike cudaGraphInstantiate whose parameters changed in 12.0.
  cudaError_t instantiate(cudaGraph_t graph) {
    reset();
    cudaGraphExec_t exec = nullptr;
    const cudaError_t err = cudaGraphInstantiateWithFlags(&exec, graph, 0);
    if (err == cudaSuccess) exec_ = exec;
    return err;
  }
  // Moves the graph's resources to the device now, so that the first
  // launch costs what every later one does.
  cudaError_t upload(cudaStream_t stream) const { return cudaGraphUpload(exec_, stream); }
  void reset() {
    if (exec_ != nullptr) (void)cudaGraphExecDestroy(exec_);
    exec_ = nullptr;
  }
  bool ready() const { return exec_ != nullptr; }
  void launch(cudaStream_t stream) const { check(cudaGraphLaunch(exec_, stream), "cudaGraphLaunch"); }

 private:
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace cuda
}  // namespace hy3d
