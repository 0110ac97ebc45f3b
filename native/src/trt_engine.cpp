// The TensorRT 10 backend behind the hy3d_engine_* entry points.
//
// One engine owns a deserialized plan and one execution context per batch
// bucket. The contexts are created with user-managed device memory and share
// a single activation block sized for profile 0's largest shapes (the most
// any context of the engine can need), so an engine costs one activation
// block however many buckets it has. Sharing means two contexts must never
// run at once: runs take the engine's lock. That costs nothing on one GPU,
// where the kernels of two contexts would compete for the same SMs anyway,
// and the pipeline batches work across jobs instead (step-level batching).
//
// Each bucket has fixed, 256-byte aligned device I/O buffers laid out for
// the profile's largest shapes and a pinned host staging block of the same
// layout, so the addresses baked into its CUDA graphs stay valid between
// replays whatever the shapes. A graph is captured at load for the profile's
// optimum after a warm-up enqueue (TensorRT allocates and sets up lazily on
// the first enqueue, which must not be recorded), in thread-local capture
// mode so that CUDA calls of other threads cannot invalidate it. A run with
// other shapes re-binds the context's shapes and runs its own warm-up, then
// captures a graph for those shapes, up to kGraphsPerBucket per bucket;
// graphs are kept, never replaced, as Triton's TensorRT backend keeps one per
// shape. When capture fails (an engine may contain work that cannot be
// captured) the capture error is cleared, those shapes fall back to plain
// enqueueV3 and the fallback is logged; trtexec and Triton behave the same.
#include <NvInferPlugin.h>
#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "status.hpp"
#include "trt_cuda.hpp"
#include "trt_plan.hpp"

// TensorRT 10.1 replaced the size_t device-memory calls with int64_t "V2"
// ones and deprecated the old ones; 10.0 only has the old ones.
#if NV_TENSORRT_MAJOR > 10 || (NV_TENSORRT_MAJOR == 10 && NV_TENSORRT_MINOR >= 1)
#define HY3D_TRT_DEVICE_MEMORY_V2 1
#else
#define HY3D_TRT_DEVICE_MEMORY_V2 0
#endif

namespace hy3d {
namespace trt {
namespace {

constexpr size_t kAlignment = 256;

size_t align_up(size_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

// Collects TensorRT's error and warning messages on the calling thread
// while alive, so that a failed deserialize or enqueue can report what
// TensorRT said (an allocation failure's size comes as a warning).
thread_local TrtMessages *t_captured = nullptr;

class ErrorCapture {
 public:
  ErrorCapture() : previous_(t_captured) { t_captured = &said_; }
  ~ErrorCapture() { t_captured = previous_; }
  ErrorCapture(const ErrorCapture &) = delete;
  ErrorCapture &operator=(const ErrorCapture &) = delete;
  const std::string &text() const { return said_.errors; }
  const TrtMessages &said() const { return said_; }

 private:
  TrtMessages said_;
  TrtMessages *previous_;
};

void append_message(std::string &to, const char *msg) {
  if (!to.empty()) to.append("; ");
  to.append(msg);
}

// Forwards TensorRT's log to hy3d's log callback. TensorRT's info level is
// chatty (every load prints sizes and tactics), so it lands at debug, and
// verbose is dropped.
class Logger final : public nvinfer1::ILogger {
 public:
  void log(Severity severity, const char *msg) noexcept override {
    try {
      LogLevel level = LogLevel::Debug;
      switch (severity) {
        case Severity::kINTERNAL_ERROR:
        case Severity::kERROR:
          level = LogLevel::Error;
          if (t_captured != nullptr) append_message(t_captured->errors, msg);
          break;
        case Severity::kWARNING:
          level = LogLevel::Warn;
          if (t_captured != nullptr) append_message(t_captured->warnings, msg);
          break;
        case Severity::kINFO:
          level = LogLevel::Debug;
          break;
        case Severity::kVERBOSE:
          return;
      }
      hy3d::log(level, std::string("TensorRT: ") + msg);
    } catch (...) {
      // Logging must never throw into TensorRT.
    }
  }
};

// TensorRT requires the logger to outlive every runtime created with it.
Logger &logger() {
  static Logger instance;
  return instance;
}

// Registers TensorRT's standard plugins (libnvinfer_plugin) in the process's
// plugin registry, once: a plan whose network uses one (exporters map some
// ONNX ops to them) cannot be deserialized without its creator, and
// TensorRT's complaint then names neither the plugin library nor the fix.
void register_standard_plugins() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (!initLibNvInferPlugins(&logger(), ""))
      log(LogLevel::Warn, "initLibNvInferPlugins failed: plans that use TensorRT's standard plugins will not load");
  });
}

std::string dims_string(const nvinfer1::Dims &d) {
  std::ostringstream out;
  out << '[';
  for (int32_t i = 0; i < d.nbDims; ++i) out << (i ? "," : "") << d.d[i];
  out << ']';
  return out.str();
}

std::string dims_string(const int64_t *dims, int32_t rank) {
  nvinfer1::Dims d{};
  d.nbDims = std::min<int32_t>(std::max<int32_t>(rank, 0), nvinfer1::Dims::MAX_DIMS);
  for (int32_t i = 0; i < d.nbDims; ++i) d.d[i] = dims[i];
  return dims_string(d);
}

int64_t volume(const nvinfer1::Dims &d) {
  int64_t n = 1;
  for (int32_t i = 0; i < d.nbDims; ++i) n *= d.d[i];
  return n;
}

bool same_dims(const nvinfer1::Dims &a, const nvinfer1::Dims &b) {
  if (a.nbDims != b.nbDims) return false;
  for (int32_t i = 0; i < a.nbDims; ++i)
    if (a.d[i] != b.d[i]) return false;
  return true;
}

hy3d_dtype to_dtype(nvinfer1::DataType t) {
  switch (t) {
    case nvinfer1::DataType::kFLOAT:
      return HY3D_DTYPE_FLOAT32;
    case nvinfer1::DataType::kHALF:
      return HY3D_DTYPE_FLOAT16;
    case nvinfer1::DataType::kINT32:
      return HY3D_DTYPE_INT32;
    case nvinfer1::DataType::kINT64:
      return HY3D_DTYPE_INT64;
    case nvinfer1::DataType::kINT8:
      return HY3D_DTYPE_INT8;
    case nvinfer1::DataType::kBOOL:
      return HY3D_DTYPE_BOOL;
    default:
      return HY3D_DTYPE_OTHER;
  }
}

// Bytes per element; 0 for the sub-byte types, which hy3d never binds.
size_t element_size(nvinfer1::DataType t) {
  switch (t) {
    case nvinfer1::DataType::kFLOAT:
    case nvinfer1::DataType::kINT32:
      return 4;
    case nvinfer1::DataType::kHALF:
    case nvinfer1::DataType::kBF16:
      return 2;
    case nvinfer1::DataType::kINT64:
      return 8;
    case nvinfer1::DataType::kINT8:
    case nvinfer1::DataType::kUINT8:
    case nvinfer1::DataType::kBOOL:
    case nvinfer1::DataType::kFP8:
      return 1;
    default:
      return 0;
  }
}

struct TensorMeta {
  std::string name;
  bool input = false;
  nvinfer1::DataType type = nvinfer1::DataType::kFLOAT;
  size_t element_size = 0;
  nvinfer1::Dims dims{};
  nvinfer1::Dims min{}, opt{}, max{};  // profile 0, inputs only
};

// Where one tensor lives in a bucket's I/O block (device and staging alike).
// The offset is fixed at load, from the tensor's size at the profile's
// maximum; bytes and shape follow the bucket's current shapes.
struct Binding {
  size_t offset = 0;
  size_t bytes = 0;  // at the bucket's batch
  nvinfer1::Dims shape{};
};

// A graph captured for one set of input shapes of a bucket. An entry whose
// exec is not ready records a failed capture: those shapes run plain
// enqueueV3 and are not captured again.
struct ShapeGraph {
  std::vector<nvinfer1::Dims> inputs;  // indexed like hy3d_engine::tensors; outputs unset
  cuda::GraphExec exec;
};

// Graphs kept per bucket. The shape at the profile's optimum is captured at
// load; a run with other shapes captures its own graph while there is room,
// and plain enqueueV3 serves shapes beyond it. No graph is ever dropped for
// another, so shapes that alternate (a decode's full chunks and its last,
// shorter one) each replay their own graph.
constexpr size_t kGraphsPerBucket = 4;

// One batch bucket: its context, stream, buffers and graphs. Members are
// destroyed in reverse order, so the graphs go before the buffers they
// point into and the context before the engine (which the engine's own
// member order guarantees).
struct Slot {
  int32_t batch = 0;
  // TensorRT's auxiliary streams, made here so that they are non-blocking:
  // the ones it would create itself could synchronize with the legacy
  // default stream, which breaks a capture when another thread uses it.
  // Declared before the context, which uses them, so they outlive it.
  std::vector<std::unique_ptr<cuda::Stream>> aux_streams;
  std::unique_ptr<nvinfer1::IExecutionContext> context;
  cuda::Stream stream;
  cuda::BlockingEvent done;
  cuda::DeviceBuffer io;       // laid out at the profile's maximum: addresses never change
  cuda::PinnedBuffer staging;  // same layout
  std::vector<Binding> bindings;  // indexed like hy3d_engine::tensors
  bool configured = false;
  std::vector<std::unique_ptr<ShapeGraph>> graphs;
  ShapeGraph *current = nullptr;  // the graph for the current shapes, if one was tried
};

struct Stats {
  uint64_t runs = 0, graph_launches = 0, plain_enqueues = 0, graph_captures = 0, capture_failures = 0;
};

}  // namespace
}  // namespace trt
}  // namespace hy3d

struct hy3d_engine {
  int32_t device = 0;
  bool use_graphs = false;
  bool break_captures = false;  // hy3d_engine_options::break_captures
  std::string gpu;  // "NAME (compute M.m)", for messages
  std::unique_ptr<nvinfer1::IRuntime> runtime;
  std::unique_ptr<nvinfer1::ICudaEngine> engine;
  std::vector<hy3d::trt::TensorMeta> tensors;
  int32_t min_batch = 1;
  int32_t max_batch = 1;
  hy3d::cuda::DeviceBuffer activations;  // shared by every slot's context

  // Shape inference for hy3d_engine_output_shapes runs on its own context
  // (no device memory needed) so that it never disturbs a captured graph.
  std::unique_ptr<nvinfer1::IExecutionContext> shape_context;
  mutable std::mutex shape_mutex;

  std::vector<std::unique_ptr<hy3d::trt::Slot>> slots;  // ascending batch
  mutable std::mutex run_mutex;                          // guards slots, stats and lost
  hy3d::trt::Stats stats;
  // Set when a run met a sticky CUDA error: the context is gone, so every
  // later run fails at once with this message instead of queueing work.
  std::string lost;
};

namespace hy3d {
namespace trt {
namespace {

std::string describe_device(int32_t device) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    (void)cudaGetLastError();
    return "device " + std::to_string(device);
  }
  return std::string(prop.name) + " (compute " + std::to_string(prop.major) + "." + std::to_string(prop.minor) + ")";
}

int32_t device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    // No driver or no device: a fact to report, not an error.
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

// Reads the I/O tensors and profile 0, and refuses what hy3d cannot bind:
// host (shape) tensors, non-linear formats, sub-byte types, and tensors
// whose first dim is not a dynamic batch.
void describe_tensors(hy3d_engine &e) {
  const nvinfer1::ICudaEngine &engine = *e.engine;
  if (engine.getNbOptimizationProfiles() < 1) throw Error(HY3D_ERR_INVALID_ARGUMENT, "plan has no optimization profile");
  const int32_t count = engine.getNbIOTensors();
  int32_t min_batch = 1, max_batch = INT32_MAX;
  bool any_input = false;
  for (int32_t i = 0; i < count; ++i) {
    TensorMeta m;
    m.name = engine.getIOTensorName(i);
    const char *name = m.name.c_str();
    m.input = engine.getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT;
    m.type = engine.getTensorDataType(name);
    m.element_size = element_size(m.type);
    m.dims = engine.getTensorShape(name);
    if (m.element_size == 0) throw Error(HY3D_ERR_INVALID_ARGUMENT, "tensor " + m.name + ": unsupported data type");
    if (engine.getTensorLocation(name) != nvinfer1::TensorLocation::kDEVICE || engine.isShapeInferenceIO(name))
      throw Error(HY3D_ERR_INVALID_ARGUMENT, "tensor " + m.name + ": host/shape tensors are not supported");
    if (engine.getTensorFormat(name) != nvinfer1::TensorFormat::kLINEAR)
      throw Error(HY3D_ERR_INVALID_ARGUMENT, "tensor " + m.name + ": only linear (row-major) I/O is supported");
    if (m.dims.nbDims < 1 || m.dims.nbDims > HY3D_MAX_DIMS || m.dims.d[0] != -1)
      throw Error(HY3D_ERR_INVALID_ARGUMENT,
                  "tensor " + m.name + " " + dims_string(m.dims) + ": hy3d needs a dynamic batch as the first dim");
    if (m.input) {
      any_input = true;
      m.min = engine.getProfileShape(name, 0, nvinfer1::OptProfileSelector::kMIN);
      m.opt = engine.getProfileShape(name, 0, nvinfer1::OptProfileSelector::kOPT);
      m.max = engine.getProfileShape(name, 0, nvinfer1::OptProfileSelector::kMAX);
      min_batch = std::max<int32_t>(min_batch, static_cast<int32_t>(m.min.d[0]));
      max_batch = std::min<int32_t>(max_batch, static_cast<int32_t>(m.max.d[0]));
    }
    e.tensors.push_back(std::move(m));
  }
  if (!any_input) throw Error(HY3D_ERR_INVALID_ARGUMENT, "plan has no inputs");
  if (max_batch < min_batch)
    throw Error(HY3D_ERR_INVALID_ARGUMENT, "the inputs' profile batch ranges do not overlap (min " +
                                               std::to_string(min_batch) + ", max " + std::to_string(max_batch) + ")");
  e.min_batch = min_batch;
  e.max_batch = max_batch;
}

std::vector<int32_t> bucket_list(const hy3d_engine &e, const hy3d_engine_options &options) {
  if (options.bucket_count > 0 && options.batch_buckets == nullptr)
    throw Error(HY3D_ERR_INVALID_ARGUMENT, "batch_buckets is NULL with bucket_count > 0");
  std::vector<int32_t> buckets(options.batch_buckets, options.batch_buckets + options.bucket_count);
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (buckets[i] < e.min_batch || buckets[i] > e.max_batch)
      throw Error(HY3D_ERR_INVALID_ARGUMENT, "batch bucket " + std::to_string(buckets[i]) +
                                                 " is outside the plan's profile batch range " +
                                                 std::to_string(e.min_batch) + ".." + std::to_string(e.max_batch));
    if (i > 0 && buckets[i] <= buckets[i - 1])
      throw Error(HY3D_ERR_INVALID_ARGUMENT, "batch buckets must be strictly ascending");
  }
  if (buckets.empty() || buckets.back() < e.max_batch) buckets.push_back(e.max_batch);
  if (buckets.size() > HY3D_MAX_BUCKETS)
    throw Error(HY3D_ERR_INVALID_ARGUMENT, std::to_string(buckets.size()) + " batch buckets (with the engine's maximum " +
                                               std::to_string(e.max_batch) + "), at most " +
                                               std::to_string(HY3D_MAX_BUCKETS));
  return buckets;
}

std::unique_ptr<nvinfer1::IExecutionContext> new_context(nvinfer1::ICudaEngine &engine) {
  std::unique_ptr<nvinfer1::IExecutionContext> context(
      engine.createExecutionContext(nvinfer1::ExecutionContextAllocationStrategy::kUSER_MANAGED));
  if (!context) throw Error(HY3D_ERR_OUT_OF_MEMORY, "createExecutionContext failed");
  return context;
}

// Applies input shapes to a context (profile 0) and returns the output
// shapes TensorRT infers, indexed like e.tensors (inputs keep their shape).
std::vector<nvinfer1::Dims> apply_shapes(const hy3d_engine &e, nvinfer1::IExecutionContext &context,
                                         const std::vector<nvinfer1::Dims> &input_shapes) {
  std::vector<nvinfer1::Dims> shapes(e.tensors.size());
  int64_t batch = 0;
  for (size_t i = 0; i < e.tensors.size(); ++i) {
    const TensorMeta &m = e.tensors[i];
    if (!m.input) continue;
    shapes[i] = input_shapes[i];
    batch = shapes[i].d[0];
    if (!context.setInputShape(m.name.c_str(), shapes[i]))
      throw Error(HY3D_ERR_SHAPE, "input " + m.name + " shape " + dims_string(shapes[i]) + " is outside profile 0 " +
                                      dims_string(m.min) + ".." + dims_string(m.max));
  }
  for (size_t i = 0; i < e.tensors.size(); ++i) {
    const TensorMeta &m = e.tensors[i];
    if (m.input) continue;
    shapes[i] = context.getTensorShape(m.name.c_str());
    if (shapes[i].nbDims < 1 || volume(shapes[i]) < 0)
      throw Error(HY3D_ERR_SHAPE, "TensorRT cannot infer the shape of output " + m.name + " from the inputs");
    if (shapes[i].d[0] != batch)
      throw Error(HY3D_ERR_INVALID_ARGUMENT, "output " + m.name + " " + dims_string(shapes[i]) +
                                                 " does not have the batch as its first dim");
  }
  return shapes;
}

bool same_inputs(const hy3d_engine &e, const std::vector<nvinfer1::Dims> &a, const std::vector<nvinfer1::Dims> &b) {
  for (size_t i = 0; i < e.tensors.size(); ++i)
    if (e.tensors[i].input && !same_dims(a[i], b[i])) return false;
  return true;
}

// Lays out a slot's I/O block for the largest shapes its bucket can see
// (every input at the profile's maximum, batch = the bucket; outputs as
// TensorRT infers them from those), allocates it and its staging twin once,
// and points the context at it. Fixed addresses are what lets graphs of
// different shapes live side by side.
void allocate_io(hy3d_engine &e, Slot &slot) {
  std::vector<nvinfer1::Dims> max_inputs(e.tensors.size());
  for (size_t i = 0; i < e.tensors.size(); ++i) {
    if (!e.tensors[i].input) continue;
    max_inputs[i] = e.tensors[i].max;
    max_inputs[i].d[0] = slot.batch;
  }
  const std::vector<nvinfer1::Dims> max_shapes = apply_shapes(e, *slot.context, max_inputs);
  slot.bindings.assign(e.tensors.size(), Binding{});
  size_t total = 0;
  for (size_t i = 0; i < e.tensors.size(); ++i) {
    slot.bindings[i].offset = total;
    total += align_up(static_cast<size_t>(volume(max_shapes[i])) * e.tensors[i].element_size);
  }
  slot.io = cuda::DeviceBuffer(total);
  slot.staging = cuda::PinnedBuffer(total);
  auto *base = static_cast<unsigned char *>(slot.io.get());
  for (size_t i = 0; i < e.tensors.size(); ++i)
    if (!slot.context->setTensorAddress(e.tensors[i].name.c_str(), base + slot.bindings[i].offset))
      throw Error(HY3D_ERR_RUNTIME, "setTensorAddress failed for " + e.tensors[i].name);
}

// Binds a slot to input shapes: sets them on its context, sizes its
// bindings and finds the graph captured for them, if any. Until it
// completes, the slot counts as unconfigured, so that after any failure
// half way the next run starts over instead of trusting stale state.
void configure(hy3d_engine &e, Slot &slot, const std::vector<nvinfer1::Dims> &input_shapes) {
  if (slot.configured) {
    std::vector<nvinfer1::Dims> current(e.tensors.size());
    for (size_t i = 0; i < e.tensors.size(); ++i) current[i] = slot.bindings[i].shape;
    if (same_inputs(e, current, input_shapes)) return;
  }
  slot.configured = false;
  slot.current = nullptr;
  const std::vector<nvinfer1::Dims> shapes = apply_shapes(e, *slot.context, input_shapes);
  for (size_t i = 0; i < e.tensors.size(); ++i) {
    slot.bindings[i].shape = shapes[i];
    slot.bindings[i].bytes = static_cast<size_t>(volume(shapes[i])) * e.tensors[i].element_size;
  }
  for (auto &g : slot.graphs)
    if (same_inputs(e, g->inputs, input_shapes)) slot.current = g.get();
  slot.configured = true;
}

void enqueue(hy3d_engine &e, Slot &slot) {
  ErrorCapture capture;
  if (!slot.context->enqueueV3(slot.stream.get()))
    throw Error(HY3D_ERR_RUNTIME, "enqueueV3 failed for batch " + std::to_string(slot.batch) + ": " +
                                      (capture.text().empty() ? std::string("no message") : capture.text()));
  ++e.stats.plain_enqueues;
}

void capture_failed(hy3d_engine &e, Slot &slot, ShapeGraph &g, const std::string &why) {
  // Capture errors are sticky for the thread until read; clear them so the
  // fallback enqueue (and every later call) does not inherit them.
  (void)cudaGetLastError();
  g.exec.reset();
  ++e.stats.capture_failures;
  log(LogLevel::Warn, "CUDA graph capture failed for batch bucket " + std::to_string(slot.batch) + " (" + why +
                          "); falling back to enqueueV3 for these shapes");
}

// Records the slot's enqueue for its current shapes as a new graph. The
// caller has just run one plain enqueue with these shapes (the warm-up) and
// waited for it.
void capture(hy3d_engine &e, Slot &slot) {
  auto entry = std::make_unique<ShapeGraph>();
  entry->inputs.resize(e.tensors.size());
  for (size_t i = 0; i < e.tensors.size(); ++i)
    if (e.tensors[i].input) entry->inputs[i] = slot.bindings[i].shape;
  ShapeGraph &g = *entry;
  slot.graphs.push_back(std::move(entry));
  slot.current = &g;

  cudaError_t err = cudaStreamBeginCapture(slot.stream.get(), cudaStreamCaptureModeThreadLocal);
  if (err != cudaSuccess) return capture_failed(e, slot, g, "cudaStreamBeginCapture: " + cuda::describe(err));
  // Synchronizing a capturing stream is not allowed: CUDA refuses and
  // invalidates the capture, the failure the option asks for.
  if (e.break_captures) (void)cudaStreamSynchronize(slot.stream.get());
  ErrorCapture trt_errors;
  const bool enqueued = slot.context->enqueueV3(slot.stream.get());
  cuda::Graph graph;
  err = cudaStreamEndCapture(slot.stream.get(), graph.out());
  if (!enqueued)
    return capture_failed(e, slot, g, "enqueueV3 under capture: " +
                                          (trt_errors.text().empty() ? std::string("no message") : trt_errors.text()));
  if (err != cudaSuccess || graph.get() == nullptr)
    return capture_failed(e, slot, g, "cudaStreamEndCapture: " + cuda::describe(err));
  err = g.exec.instantiate(graph.get());
  if (err != cudaSuccess) return capture_failed(e, slot, g, "cudaGraphInstantiateWithFlags: " + cuda::describe(err));
  err = g.exec.upload(slot.stream.get());
  if (err != cudaSuccess) return capture_failed(e, slot, g, "cudaGraphUpload: " + cuda::describe(err));
  ++e.stats.graph_captures;
}

// Runs the slot's network on what is in its device buffers.
void execute(hy3d_engine &e, Slot &slot) {
  if (slot.current != nullptr && slot.current->exec.ready()) {
    slot.current->exec.launch(slot.stream.get());
    ++e.stats.graph_launches;
    return;
  }
  enqueue(e, slot);
  if (e.use_graphs && slot.current == nullptr && slot.graphs.size() < kGraphsPerBucket) {
    // This enqueue was the warm-up: its outputs are this run's, and the
    // graph recorded next serves the runs with these shapes after it.
    slot.stream.synchronize("warm-up enqueue");
    capture(e, slot);
  }
}

Slot &slot_for(hy3d_engine &e, int64_t batch) {
  for (auto &slot : e.slots)
    if (slot->batch >= batch) return *slot;
  throw Error(HY3D_ERR_INTERNAL, "no batch bucket for batch " + std::to_string(batch));
}

// Matches host tensors to the engine's inputs and checks names, ranks and
// the batch; returns the batch and, per engine tensor, the host tensor given
// for it (NULL for outputs).
int64_t match_inputs(const hy3d_engine &e, const hy3d_host_tensor *inputs, size_t input_count, bool need_data,
                     std::vector<const hy3d_host_tensor *> &given) {
  if (input_count > 0 && inputs == nullptr) throw Error(HY3D_ERR_INVALID_ARGUMENT, "inputs is NULL");
  given.assign(e.tensors.size(), nullptr);
  for (size_t k = 0; k < input_count; ++k) {
    const hy3d_host_tensor &t = inputs[k];
    if (t.name == nullptr) throw Error(HY3D_ERR_INVALID_ARGUMENT, "input " + std::to_string(k) + " has a NULL name");
    size_t i = 0;
    while (i < e.tensors.size() && !(e.tensors[i].input && e.tensors[i].name == t.name)) ++i;
    if (i == e.tensors.size()) throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string("unknown input ") + t.name);
    if (given[i] != nullptr) throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string("input ") + t.name + " given twice");
    if (need_data && t.data == nullptr)
      throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string("input ") + t.name + " has NULL data");
    if (t.rank != e.tensors[i].dims.nbDims)
      throw Error(HY3D_ERR_SHAPE, std::string("input ") + t.name + " has rank " + std::to_string(t.rank) +
                                      ", the engine expects " + dims_string(e.tensors[i].dims));
    given[i] = &t;
  }
  int64_t batch = -1;
  for (size_t i = 0; i < e.tensors.size(); ++i) {
    if (!e.tensors[i].input) continue;
    if (given[i] == nullptr) throw Error(HY3D_ERR_INVALID_ARGUMENT, "missing input " + e.tensors[i].name);
    const int64_t b = given[i]->dims[0];
    if (batch >= 0 && b != batch)
      throw Error(HY3D_ERR_SHAPE, "inputs disagree on the batch (" + std::to_string(batch) + " and " +
                                      std::to_string(b) + " for " + e.tensors[i].name + ")");
    batch = b;
  }
  if (batch < 1) throw Error(HY3D_ERR_SHAPE, "batch " + std::to_string(batch) + " < 1");
  if (batch > e.max_batch)
    throw Error(HY3D_ERR_SHAPE, "batch " + std::to_string(batch) + " is above the engine's maximum batch " +
                                    std::to_string(e.max_batch));
  return batch;
}

// The input shapes of a run at batch b, moved up to the batch of its bucket.
std::vector<nvinfer1::Dims> bucket_shapes(const hy3d_engine &e, const std::vector<const hy3d_host_tensor *> &given,
                                          int32_t bucket) {
  std::vector<nvinfer1::Dims> shapes(e.tensors.size());
  for (size_t i = 0; i < e.tensors.size(); ++i) {
    if (!e.tensors[i].input) continue;
    const hy3d_host_tensor &t = *given[i];
    shapes[i].nbDims = t.rank;
    const TensorMeta &m = e.tensors[i];
    for (int32_t d = 0; d < t.rank; ++d) {
      if (t.dims[d] < 1)
        throw Error(HY3D_ERR_SHAPE, std::string("input ") + t.name + " has shape " + dims_string(t.dims, t.rank));
      // The batch is checked by the caller: below the profile it is padded.
      if (d > 0 && (t.dims[d] < m.min.d[d] || t.dims[d] > m.max.d[d]))
        throw Error(HY3D_ERR_SHAPE, std::string("input ") + t.name + " shape " + dims_string(t.dims, t.rank) +
                                        " is outside profile 0 " + dims_string(m.min) + ".." + dims_string(m.max));
      shapes[i].d[d] = t.dims[d];
    }
    shapes[i].d[0] = bucket;
  }
  return shapes;
}

size_t output_index(const hy3d_engine &e, const char *name) {
  if (name == nullptr) throw Error(HY3D_ERR_INVALID_ARGUMENT, "an output has a NULL name");
  for (size_t i = 0; i < e.tensors.size(); ++i)
    if (!e.tensors[i].input && e.tensors[i].name == name) return i;
  throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string("unknown output ") + name);
}

void check_engine(const hy3d_engine *engine) {
  if (engine == nullptr) throw Error(HY3D_ERR_INVALID_ARGUMENT, "engine is NULL");
}

void load(const void *plan, size_t plan_size, const hy3d_engine_options &options, hy3d_engine &e) {
  const int32_t devices = device_count();
  if (options.device < 0 || options.device >= devices)
    throw Error(HY3D_ERR_UNAVAILABLE,
                "CUDA device " + std::to_string(options.device) + " does not exist (" + std::to_string(devices) +
                    " device(s) visible)");
  e.device = options.device;
  e.use_graphs = options.use_cuda_graphs != 0;
  e.break_captures = options.break_captures != 0;
  cuda::DeviceScope scope(e.device);
  e.gpu = describe_device(e.device);

  register_standard_plugins();
  e.runtime.reset(nvinfer1::createInferRuntime(logger()));
  if (!e.runtime) throw Error(HY3D_ERR_RUNTIME, "createInferRuntime failed");
  {
    ErrorCapture capture;
    e.engine.reset(e.runtime->deserializeCudaEngine(plan, plan_size));
    if (!e.engine) {
      const cudaError_t state = cudaPeekAtLastError();
      if (cuda::is_sticky(state)) throw cuda::ContextLost(state, "deserializeCudaEngine");
      DeviceMemory memory;
      memory.known = cudaMemGetInfo(&memory.free_bytes, &memory.total_bytes) == cudaSuccess;
      (void)cudaGetLastError();
      throw plan_refusal(capture.said(), plan, plan_size, getInferLibVersion(), e.gpu, memory);
    }
  }
  describe_tensors(e);
  const std::vector<int32_t> buckets = bucket_list(e, options);

#if HY3D_TRT_DEVICE_MEMORY_V2
  const int64_t activation_bytes = e.engine->getDeviceMemorySizeForProfileV2(0);
#else
  const int64_t activation_bytes = static_cast<int64_t>(e.engine->getDeviceMemorySizeForProfile(0));
#endif
  e.activations = cuda::DeviceBuffer(static_cast<size_t>(std::max<int64_t>(activation_bytes, 0)));
  e.shape_context = new_context(*e.engine);

  for (int32_t batch : buckets) {
    auto slot = std::make_unique<Slot>();
    slot->batch = batch;
    slot->context = new_context(*e.engine);
    const int32_t aux = e.engine->getNbAuxStreams();
    if (aux > 0) {
      std::vector<cudaStream_t> handles;
      for (int32_t i = 0; i < aux; ++i) {
        slot->aux_streams.push_back(std::make_unique<cuda::Stream>());
        handles.push_back(slot->aux_streams.back()->get());
      }
      slot->context->setAuxStreams(handles.data(), aux);
    }
#if HY3D_TRT_DEVICE_MEMORY_V2
    slot->context->setDeviceMemoryV2(e.activations.get(), activation_bytes);
#else
    slot->context->setDeviceMemory(e.activations.get());
#endif
    allocate_io(e, *slot);
    // Non-batch dims start at the profile's optimum, the shapes captured at
    // load; a run with other dims re-binds the slot.
    std::vector<nvinfer1::Dims> shapes(e.tensors.size());
    for (size_t i = 0; i < e.tensors.size(); ++i) {
      if (!e.tensors[i].input) continue;
      shapes[i] = e.tensors[i].opt;
      shapes[i].d[0] = batch;
    }
    configure(e, *slot, shapes);
    e.slots.push_back(std::move(slot));
  }

  // Every bucket runs once here: TensorRT sets a context up lazily on its
  // first enqueue, which with graphs is the warm-up before the capture and
  // without them would otherwise fall on the first request.
  for (auto &slot : e.slots) {
    // The warm-up computes on zeros rather than on whatever the fresh
    // allocation holds.
    cuda::check(cudaMemsetAsync(slot->io.get(), 0, slot->io.size(), slot->stream.get()), "cudaMemsetAsync");
    execute(e, *slot);
    slot->stream.synchronize(e.use_graphs ? "graph capture at load" : "warm-up at load");
  }

  std::ostringstream summary;
  summary << "TensorRT engine loaded on " << e.gpu << ": " << e.tensors.size() << " I/O tensors, batch buckets [";
  size_t captured = 0;
  for (size_t i = 0; i < e.slots.size(); ++i) {
    summary << (i ? "," : "") << e.slots[i]->batch;
    captured += e.slots[i]->current != nullptr && e.slots[i]->current->exec.ready() ? 1 : 0;
  }
  summary << "], " << (e.activations.size() >> 20) << " MiB shared activation memory, CUDA graphs "
          << (e.use_graphs ? std::to_string(captured) + "/" + std::to_string(e.slots.size()) + " captured" : "off");
  log(LogLevel::Info, summary.str());
}

void run_locked(hy3d_engine &e, const std::vector<const hy3d_host_tensor *> &given, int64_t batch,
                hy3d_host_tensor *outputs, size_t output_count) {
  cuda::DeviceScope scope(e.device);
  Slot &slot = slot_for(e, batch);
  configure(e, slot, bucket_shapes(e, given, slot.batch));

  // Outputs are checked before any work is queued.
  std::vector<size_t> out_index(output_count);
  for (size_t k = 0; k < output_count; ++k) {
    hy3d_host_tensor &t = outputs[k];
    out_index[k] = output_index(e, t.name);
    nvinfer1::Dims want = slot.bindings[out_index[k]].shape;
    want.d[0] = batch;
    bool ok = t.rank == want.nbDims && t.data != nullptr;
    for (int32_t d = 0; ok && d < want.nbDims; ++d) ok = t.dims[d] == want.d[d];
    if (!ok)
      throw Error(HY3D_ERR_SHAPE, std::string("output ") + t.name + " given as " + dims_string(t.dims, t.rank) +
                                      (t.data == nullptr ? " with NULL data" : "") + ", the run produces " +
                                      dims_string(want));
  }

  unsigned char *staging = slot.staging.get();
  auto *device = static_cast<unsigned char *>(slot.io.get());
  const cudaStream_t stream = slot.stream.get();
  try {
    for (size_t i = 0; i < e.tensors.size(); ++i) {
      if (!e.tensors[i].input) continue;
      const Binding &b = slot.bindings[i];
      const size_t used = b.bytes / static_cast<size_t>(slot.batch) * static_cast<size_t>(batch);
      std::memcpy(staging + b.offset, given[i]->data, used);
      std::memset(staging + b.offset + used, 0, b.bytes - used);  // padding rows up to the bucket
      cuda::check(cudaMemcpyAsync(device + b.offset, staging + b.offset, b.bytes, cudaMemcpyHostToDevice, stream),
                  "cudaMemcpyAsync (input)");
    }
    execute(e, slot);
    for (size_t k = 0; k < output_count; ++k) {
      const Binding &b = slot.bindings[out_index[k]];
      const size_t used = b.bytes / static_cast<size_t>(slot.batch) * static_cast<size_t>(batch);
      cuda::check(cudaMemcpyAsync(staging + b.offset, device + b.offset, used, cudaMemcpyDeviceToHost, stream),
                  "cudaMemcpyAsync (output)");
    }
    slot.done.wait_for(stream, "cudaEventSynchronize (run)");
  } catch (...) {
    // Copies may still be reading the staging block; the next run must not
    // overwrite it under them.
    (void)cudaStreamSynchronize(stream);
    (void)cudaGetLastError();
    throw;
  }
  for (size_t k = 0; k < output_count; ++k) {
    const Binding &b = slot.bindings[out_index[k]];
    std::memcpy(outputs[k].data, staging + b.offset, b.bytes / static_cast<size_t>(slot.batch) * batch);
  }
  ++e.stats.runs;
}

void run(hy3d_engine &e, const hy3d_host_tensor *inputs, size_t input_count, hy3d_host_tensor *outputs,
         size_t output_count) {
  if (output_count > 0 && outputs == nullptr) throw Error(HY3D_ERR_INVALID_ARGUMENT, "outputs is NULL");
  std::vector<const hy3d_host_tensor *> given;
  const int64_t batch = match_inputs(e, inputs, input_count, true, given);
  for (size_t i = 0; i < e.tensors.size(); ++i)
    if (e.tensors[i].type != nvinfer1::DataType::kFLOAT)
      throw Error(HY3D_ERR_INVALID_ARGUMENT, "tensor " + e.tensors[i].name + " is not float32; hy3d binds float32 only");

  std::lock_guard<std::mutex> lock(e.run_mutex);
  if (!e.lost.empty()) throw Error(HY3D_ERR_UNAVAILABLE, e.lost);
  try {
    run_locked(e, given, batch, outputs, output_count);
    return;
  } catch (const cuda::ContextLost &lost) {
    e.lost = lost.what();
  } catch (const Error &err) {
    // A failed enqueueV3 says nothing of CUDA's state, so it is asked.
    const cudaError_t state = cudaPeekAtLastError();
    if (!cuda::is_sticky(state)) throw;
    e.lost = cuda::context_lost(state, std::string("a run (") + err.what() + ")");
  }
  log(LogLevel::Error, "TensorRT engine lost: " + e.lost);
  throw Error(HY3D_ERR_UNAVAILABLE, e.lost);
}

void output_shapes(const hy3d_engine &e, const hy3d_host_tensor *inputs, size_t input_count, hy3d_host_tensor *outputs,
                   size_t output_count) {
  if (output_count > 0 && outputs == nullptr) throw Error(HY3D_ERR_INVALID_ARGUMENT, "outputs is NULL");
  std::vector<const hy3d_host_tensor *> given;
  const int64_t batch = match_inputs(e, inputs, input_count, false, given);
  int32_t bucket = e.max_batch;
  for (const auto &slot : e.slots)
    if (slot->batch >= batch) {
      bucket = slot->batch;
      break;
    }
  std::lock_guard<std::mutex> lock(e.shape_mutex);
  cuda::DeviceScope scope(e.device);
  const std::vector<nvinfer1::Dims> shapes = apply_shapes(e, *e.shape_context, bucket_shapes(e, given, bucket));
  for (size_t k = 0; k < output_count; ++k) {
    const nvinfer1::Dims &s = shapes[output_index(e, outputs[k].name)];
    outputs[k].rank = s.nbDims;
    for (int32_t d = 0; d < s.nbDims; ++d) outputs[k].dims[d] = s.d[d];
    outputs[k].dims[0] = batch;
  }
}

void copy_dims(const nvinfer1::Dims &from, int64_t *to) {
  for (int32_t d = 0; d < HY3D_MAX_DIMS; ++d) to[d] = d < from.nbDims ? from.d[d] : 0;
}

}  // namespace
}  // namespace trt
}  // namespace hy3d

extern "C" {

int hy3d_tensorrt_available(void) { return 1; }

hy3d_status hy3d_runtime_info_get(hy3d_runtime_info *out) {
  return hy3d::guard([&] {
    if (out == nullptr) return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = hy3d_runtime_info{};
    out->tensorrt_version = getInferLibVersion();
    int v = 0;
    if (cudaRuntimeGetVersion(&v) == cudaSuccess) out->cuda_runtime_version = v;
    v = 0;
    if (cudaDriverGetVersion(&v) == cudaSuccess) out->cuda_driver_version = v;
    (void)cudaGetLastError();
    out->device_count = hy3d::trt::device_count();
    return HY3D_OK;
  });
}

hy3d_status hy3d_device_info_get(int32_t device, hy3d_device_info *out) {
  return hy3d::guard([&] {
    if (out == nullptr) return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "out is NULL");
    const int32_t count = hy3d::trt::device_count();
    if (device < 0 || device >= count)
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "device " + std::to_string(device) + " out of range (" +
                                                       std::to_string(count) + " device(s))");
    cudaDeviceProp prop{};
    hy3d::cuda::check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    *out = hy3d_device_info{};
    std::memcpy(out->name, prop.name, strnlen(prop.name, std::min(sizeof(prop.name), sizeof(out->name) - 1)));
    out->compute_major = prop.major;
    out->compute_minor = prop.minor;
    out->total_memory = prop.totalGlobalMem;
    return HY3D_OK;
  });
}

hy3d_status hy3d_engine_load(const void *plan, size_t plan_size, const hy3d_engine_options *options,
                             hy3d_engine **out) {
  if (out != nullptr) *out = nullptr;
  return hy3d::guard([&] {
    if (plan == nullptr || plan_size == 0) return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "plan is empty");
    if (options == nullptr || out == nullptr) return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "options or out is NULL");
    auto engine = std::make_unique<hy3d_engine>();
    try {
      hy3d::trt::load(plan, plan_size, *options, *engine);
    } catch (...) {
      // Tear down with the engine's device current, as destroy does.
      if (engine->runtime) {
        hy3d::cuda::DeviceScope scope(engine->device);
        engine.reset();
      }
      throw;
    }
    *out = engine.release();
    return HY3D_OK;
  });
}

void hy3d_engine_destroy(hy3d_engine *engine) {
  if (engine == nullptr) return;
  std::unique_ptr<hy3d_engine> owned(engine);
  try {
    hy3d::cuda::DeviceScope scope(owned->device);
    owned.reset();
  } catch (...) {
    // Without the device current the frees still go to the primary context
    // of the current device; nothing better is possible in a destructor.
  }
}

hy3d_status hy3d_engine_tensor_count(const hy3d_engine *engine, int32_t *count) {
  return hy3d::guard([&] {
    hy3d::trt::check_engine(engine);
    if (count == nullptr) return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "count is NULL");
    *count = static_cast<int32_t>(engine->tensors.size());
    return HY3D_OK;
  });
}

hy3d_status hy3d_engine_tensor_desc(const hy3d_engine *engine, int32_t index, hy3d_tensor_desc *out) {
  return hy3d::guard([&] {
    hy3d::trt::check_engine(engine);
    if (out == nullptr) return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "out is NULL");
    if (index < 0 || static_cast<size_t>(index) >= engine->tensors.size())
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "tensor index " + std::to_string(index) + " out of range");
    const hy3d::trt::TensorMeta &m = engine->tensors[static_cast<size_t>(index)];
    *out = hy3d_tensor_desc{};
    out->name = m.name.c_str();
    out->is_input = m.input ? 1 : 0;
    out->dtype = hy3d::trt::to_dtype(m.type);
    out->rank = m.dims.nbDims;
    hy3d::trt::copy_dims(m.dims, out->dims);
    if (m.input) {
      hy3d::trt::copy_dims(m.min, out->min_dims);
      hy3d::trt::copy_dims(m.opt, out->opt_dims);
      hy3d::trt::copy_dims(m.max, out->max_dims);
    }
    return HY3D_OK;
  });
}

hy3d_status hy3d_engine_output_shapes(const hy3d_engine *engine, const hy3d_host_tensor *inputs,
                                      size_t input_count, hy3d_host_tensor *outputs, size_t output_count) {
  return hy3d::guard([&] {
    hy3d::trt::check_engine(engine);
    hy3d::trt::output_shapes(*engine, inputs, input_count, outputs, output_count);
    return HY3D_OK;
  });
}

hy3d_status hy3d_engine_run(hy3d_engine *engine, const hy3d_host_tensor *inputs, size_t input_count,
                            hy3d_host_tensor *outputs, size_t output_count) {
  return hy3d::guard([&] {
    hy3d::trt::check_engine(engine);
    hy3d::trt::run(*engine, inputs, input_count, outputs, output_count);
    return HY3D_OK;
  });
}

hy3d_status hy3d_engine_stats_get(const hy3d_engine *engine, hy3d_engine_stats *out) {
  return hy3d::guard([&] {
    hy3d::trt::check_engine(engine);
    if (out == nullptr) return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "out is NULL");
    std::lock_guard<std::mutex> lock(engine->run_mutex);
    *out = hy3d_engine_stats{};
    out->runs = engine->stats.runs;
    out->graph_launches = engine->stats.graph_launches;
    out->plain_enqueues = engine->stats.plain_enqueues;
    out->graph_captures = engine->stats.graph_captures;
    out->capture_failures = engine->stats.capture_failures;
    out->bucket_count = static_cast<int32_t>(engine->slots.size());
    for (size_t i = 0; i < engine->slots.size() && i < HY3D_MAX_BUCKETS; ++i) {
      out->buckets[i] = engine->slots[i]->batch;
      const hy3d::trt::ShapeGraph *g = engine->slots[i]->current;
      out->graph_ready[i] = g != nullptr && g->exec.ready() ? 1 : 0;
    }
    out->device_memory = engine->activations.size();
    return HY3D_OK;
  });
}

}  // extern "C"
