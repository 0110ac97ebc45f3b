// The TensorRT backend on a real GPU, through the C ABI only. The plan is a
// small network built here with the builder API, y = relu(2x + s) computed
// in half precision between float32 I/O like the real engines:
//   x [B, N, 8], s [B, 1, 1] -> y [B, N, 8], profile B 1..8, N 1..64,
// so every expected value is known on the host and the second dim can
// change shape within a bucket (which must re-capture the bucket's graph).
#include <NvInfer.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"
#include "hy3d.h"

namespace {

constexpr int kWidth = 8;
constexpr int kMaxBatch = 8;
constexpr int kMaxN = 64;

class QuietLogger final : public nvinfer1::ILogger {
 public:
  void log(Severity severity, const char *msg) noexcept override {
    if (severity <= Severity::kWARNING) std::fprintf(stderr, "builder: %s\n", msg);
  }
};

// TensorRT keeps the first logger it is given for the whole process, so the
// test's builder and runtime share one that lives as long as the process.
QuietLogger &quiet_logger() {
  static QuietLogger logger;
  return logger;
}

std::vector<unsigned char> build_plan() {
  using namespace nvinfer1;
  std::unique_ptr<IBuilder> builder(createInferBuilder(quiet_logger()));
  const auto flags = 1U << static_cast<uint32_t>(NetworkDefinitionCreationFlag::kSTRONGLY_TYPED);
  std::unique_ptr<INetworkDefinition> net(builder->createNetworkV2(flags));
  ITensor *x = net->addInput("x", DataType::kFLOAT, Dims3{-1, -1, kWidth});
  ITensor *s = net->addInput("s", DataType::kFLOAT, Dims3{-1, 1, 1});
  static const float two = 2.0f;
  ITensor *c = net->addConstant(Dims3{1, 1, 1}, Weights{DataType::kFLOAT, &two, 1})->getOutput(0);
  ITensor *xh = net->addCast(*x, DataType::kHALF)->getOutput(0);
  ITensor *sh = net->addCast(*s, DataType::kHALF)->getOutput(0);
  ITensor *ch = net->addCast(*c, DataType::kHALF)->getOutput(0);
  ITensor *prod = net->addElementWise(*xh, *ch, ElementWiseOperation::kPROD)->getOutput(0);
  ITensor *sum = net->addElementWise(*prod, *sh, ElementWiseOperation::kSUM)->getOutput(0);
  ITensor *relu = net->addActivation(*sum, ActivationType::kRELU)->getOutput(0);
  ITensor *y = net->addCast(*relu, DataType::kFLOAT)->getOutput(0);
  y->setName("y");
  net->markOutput(*y);

  std::unique_ptr<IBuilderConfig> config(builder->createBuilderConfig());
  IOptimizationProfile *profile = builder->createOptimizationProfile();
  profile->setDimensions("x", OptProfileSelector::kMIN, Dims3{1, 1, kWidth});
  profile->setDimensions("x", OptProfileSelector::kOPT, Dims3{4, 16, kWidth});
  profile->setDimensions("x", OptProfileSelector::kMAX, Dims3{kMaxBatch, kMaxN, kWidth});
  profile->setDimensions("s", OptProfileSelector::kMIN, Dims3{1, 1, 1});
  profile->setDimensions("s", OptProfileSelector::kOPT, Dims3{4, 1, 1});
  profile->setDimensions("s", OptProfileSelector::kMAX, Dims3{kMaxBatch, 1, 1});
  config->addOptimizationProfile(profile);
  std::unique_ptr<IHostMemory> plan(builder->buildSerializedNetwork(*net, *config));
  if (!plan) return {};
  const auto *bytes = static_cast<const unsigned char *>(plan->data());
  return std::vector<unsigned char>(bytes, bytes + plan->size());
}

struct EngineCloser {
  void operator()(hy3d_engine *e) const { hy3d_engine_destroy(e); }
};
using Engine = std::unique_ptr<hy3d_engine, EngineCloser>;

Engine load(const std::vector<unsigned char> &plan, bool graphs, std::vector<int32_t> buckets = {1, 2, 4}) {
  hy3d_engine_options opts{};
  opts.device = 0;
  opts.batch_buckets = buckets.data();
  opts.bucket_count = buckets.size();
  opts.use_cuda_graphs = graphs ? 1 : 0;
  hy3d_engine *e = nullptr;
  const hy3d_status st = hy3d_engine_load(plan.data(), plan.size(), &opts, &e);
  if (st != HY3D_OK) std::fprintf(stderr, "load: %d %s\n", st, hy3d_last_error());
  return Engine(e);
}

struct Case {
  int batch, n;
  std::vector<float> x, s, y;
};

Case make_case(int batch, int n, int seed) {
  Case c{batch, n, {}, {}, {}};
  uint32_t state = 0x9e3779b9u * static_cast<uint32_t>(seed + 1);
  auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return static_cast<float>(state >> 8) / static_cast<float>(1u << 24) * 2.0f - 1.0f;
  };
  c.x.resize(static_cast<size_t>(batch) * n * kWidth);
  c.s.resize(static_cast<size_t>(batch));
  for (float &v : c.x) v = next();
  for (float &v : c.s) v = next();
  c.y.assign(c.x.size(), -7.0f);
  return c;
}

hy3d_status run(hy3d_engine *e, Case &c) {
  hy3d_host_tensor in[2]{};
  in[0].name = "x";
  in[0].data = c.x.data();
  in[0].rank = 3;
  in[0].dims[0] = c.batch;
  in[0].dims[1] = c.n;
  in[0].dims[2] = kWidth;
  in[1].name = "s";
  in[1].data = c.s.data();
  in[1].rank = 3;
  in[1].dims[0] = c.batch;
  in[1].dims[1] = 1;
  in[1].dims[2] = 1;
  hy3d_host_tensor out{};
  out.name = "y";
  out.data = c.y.data();
  out.rank = 3;
  out.dims[0] = c.batch;
  out.dims[1] = c.n;
  out.dims[2] = kWidth;
  return hy3d_engine_run(e, in, 2, &out, 1);
}

// Half precision inside: relative error about 1e-3 on values up to 3.
bool matches_reference(const Case &c) {
  for (int b = 0; b < c.batch; ++b)
    for (int i = 0; i < c.n * kWidth; ++i) {
      const size_t k = static_cast<size_t>(b) * c.n * kWidth + i;
      const float want = std::max(0.0f, 2.0f * c.x[k] + c.s[b]);
      if (std::fabs(c.y[k] - want) > 5e-3f) {
        std::fprintf(stderr, "y[%zu] = %g, want %g\n", k, c.y[k], want);
        return false;
      }
    }
  return true;
}

hy3d_engine_stats stats(const hy3d_engine *e) {
  hy3d_engine_stats s{};
  CHECK(hy3d_engine_stats_get(e, &s) == HY3D_OK);
  return s;
}

void test_describes_tensors_and_profile(const std::vector<unsigned char> &plan) {
  Engine e = load(plan, false);
  CHECK(e != nullptr);
  if (!e) return;
  int32_t count = 0;
  CHECK(hy3d_engine_tensor_count(e.get(), &count) == HY3D_OK);
  CHECK(count == 3);
  bool saw_x = false, saw_y = false;
  for (int32_t i = 0; i < count; ++i) {
    hy3d_tensor_desc d{};
    CHECK(hy3d_engine_tensor_desc(e.get(), i, &d) == HY3D_OK);
    CHECK(d.dtype == HY3D_DTYPE_FLOAT32);
    CHECK(d.rank == 3);
    if (std::strcmp(d.name, "x") == 0) {
      saw_x = true;
      CHECK(d.is_input == 1);
      CHECK(d.dims[0] == -1 && d.dims[1] == -1 && d.dims[2] == kWidth);
      CHECK(d.min_dims[0] == 1 && d.min_dims[1] == 1);
      CHECK(d.opt_dims[0] == 4 && d.opt_dims[1] == 16);
      CHECK(d.max_dims[0] == kMaxBatch && d.max_dims[1] == kMaxN && d.max_dims[2] == kWidth);
    }
    if (std::strcmp(d.name, "y") == 0) {
      saw_y = true;
      CHECK(d.is_input == 0);
    }
  }
  CHECK(saw_x && saw_y);
  hy3d_tensor_desc d{};
  CHECK(hy3d_engine_tensor_desc(e.get(), 3, &d) == HY3D_ERR_INVALID_ARGUMENT);

  // The engine's maximum is always the last bucket.
  const hy3d_engine_stats s = stats(e.get());
  CHECK(s.bucket_count == 4);
  CHECK(s.buckets[0] == 1 && s.buckets[1] == 2 && s.buckets[2] == 4 && s.buckets[3] == kMaxBatch);
}

void test_output_shapes(const std::vector<unsigned char> &plan) {
  Engine e = load(plan, true);
  if (!e) {
    CHECK(false);
    return;
  }
  hy3d_host_tensor in[2]{};
  in[0].name = "x";
  in[0].rank = 3;
  in[0].dims[0] = 3;
  in[0].dims[1] = 10;
  in[0].dims[2] = kWidth;
  in[1].name = "s";
  in[1].rank = 3;
  in[1].dims[0] = 3;
  in[1].dims[1] = 1;
  in[1].dims[2] = 1;
  hy3d_host_tensor out{};
  out.name = "y";
  CHECK(hy3d_engine_output_shapes(e.get(), in, 2, &out, 1) == HY3D_OK);
  CHECK(out.rank == 3 && out.dims[0] == 3 && out.dims[1] == 10 && out.dims[2] == kWidth);
  // Shape inference never touches the buckets' graphs.
  const hy3d_engine_stats s = stats(e.get());
  CHECK(s.graph_captures == static_cast<uint64_t>(s.bucket_count));
}

void test_runs_match_the_reference_in_every_bucket(const std::vector<unsigned char> &plan) {
  Engine e = load(plan, true);
  if (!e) {
    CHECK(false);
    return;
  }
  for (int batch = 1; batch <= kMaxBatch; ++batch) {
    Case c = make_case(batch, 16, batch);
    CHECK(run(e.get(), c) == HY3D_OK);
    CHECK(matches_reference(c));
  }
  const hy3d_engine_stats s = stats(e.get());
  CHECK(s.runs == kMaxBatch);
  CHECK(s.capture_failures == 0);
  // Captured at load for N = 16 (the profile's optimum): every run replays.
  CHECK(s.graph_captures == static_cast<uint64_t>(s.bucket_count));
  CHECK(s.graph_launches == kMaxBatch);
  for (int32_t i = 0; i < s.bucket_count; ++i) CHECK(s.graph_ready[i] == 1);
}

void test_graph_replay_equals_plain_enqueue(const std::vector<unsigned char> &plan) {
  Engine graphs = load(plan, true);
  Engine plain = load(plan, false);
  if (!graphs || !plain) {
    CHECK(false);
    return;
  }
  for (int batch : {1, 3, 8}) {
    Case a = make_case(batch, 16, 100 + batch);
    Case b = a;
    CHECK(run(graphs.get(), a) == HY3D_OK);
    CHECK(run(plain.get(), b) == HY3D_OK);
    // The same kernels on the same data: bit for bit.
    CHECK(std::memcmp(a.y.data(), b.y.data(), a.y.size() * sizeof(float)) == 0);
  }
  CHECK(stats(graphs.get()).graph_launches == 3);
  const hy3d_engine_stats p = stats(plain.get());
  // One warm-up enqueue per bucket at load, then the three runs.
  CHECK(p.graph_launches == 0 && p.graph_captures == 0 &&
        p.plain_enqueues == 3 + static_cast<uint64_t>(p.bucket_count));
}

// Each shape of a bucket keeps its graph (I/O at the profile's maximum, so
// addresses never change): going back to a shape replays, never
// re-captures; past kGraphsPerBucket shapes a new one runs plain enqueueV3.
void test_shapes_keep_their_graphs(const std::vector<unsigned char> &plan) {
  Engine e = load(plan, true);
  if (!e) {
    CHECK(false);
    return;
  }
  const uint64_t at_load = stats(e.get()).graph_captures;
  auto run_checked = [&](int n, int seed) {
    Case c = make_case(2, n, seed);
    CHECK(run(e.get(), c) == HY3D_OK);
    CHECK(matches_reference(c));
    return stats(e.get());
  };
  hy3d_engine_stats s = run_checked(16, 1);  // the optimum, captured at load
  CHECK(s.graph_captures == at_load);
  const uint64_t launches = s.graph_launches;

  s = run_checked(48, 2);  // new shape: the warm-up answers, then a capture
  CHECK(s.graph_captures == at_load + 1);
  CHECK(s.graph_launches == launches);
  s = run_checked(48, 3);
  CHECK(s.graph_launches == launches + 1);
  s = run_checked(16, 4);  // back to the first shape: its graph is still there
  CHECK(s.graph_captures == at_load + 1);
  CHECK(s.graph_launches == launches + 2);
  s = run_checked(48, 5);
  CHECK(s.graph_captures == at_load + 1);
  CHECK(s.graph_launches == launches + 3);

  s = run_checked(5, 6);   // third shape of bucket 2
  s = run_checked(7, 7);   // fourth: the bucket is full
  CHECK(s.graph_captures == at_load + 3);
  const uint64_t enqueues = s.plain_enqueues;
  s = run_checked(9, 8);   // fifth: plain enqueueV3, no capture, nothing evicted
  s = run_checked(9, 9);
  CHECK(s.graph_captures == at_load + 3);
  CHECK(s.plain_enqueues == enqueues + 2);
  CHECK(s.capture_failures == 0);
  s = run_checked(5, 10);
  s = run_checked(16, 11);
  CHECK(s.graph_captures == at_load + 3);
  CHECK(s.graph_launches == launches + 5);
}

// A capture that fails (forced here by the test-only break_captures, which
// makes CUDA invalidate it) leaves every bucket on plain enqueueV3, with
// right answers, a warning per bucket, and no second attempt.
void test_capture_failure_falls_back(const std::vector<unsigned char> &plan) {
  std::vector<std::string> lines;
  hy3d_set_log_callback(
      [](int level, const char *message, void *user) {
        if (level >= 2) static_cast<std::vector<std::string> *>(user)->push_back(message);
      },
      &lines);
  hy3d_engine_options opts{};
  const int32_t buckets[] = {1, 2, 4};
  opts.batch_buckets = buckets;
  opts.bucket_count = 3;
  opts.use_cuda_graphs = 1;
  opts.break_captures = 1;
  hy3d_engine *raw = nullptr;
  CHECK(hy3d_engine_load(plan.data(), plan.size(), &opts, &raw) == HY3D_OK);
  hy3d_set_log_callback(nullptr, nullptr);
  Engine e(raw);
  if (!e) return;
  hy3d_engine_stats s = stats(e.get());
  CHECK(s.graph_captures == 0);
  CHECK(s.capture_failures == static_cast<uint64_t>(s.bucket_count));
  size_t warnings = 0;
  for (const auto &l : lines) warnings += l.find("falling back to enqueueV3") != std::string::npos ? 1 : 0;
  CHECK(warnings == static_cast<size_t>(s.bucket_count));
  for (int batch : {1, 2, 3, 8}) {
    Case c = make_case(batch, 16, 200 + batch);
    CHECK(run(e.get(), c) == HY3D_OK);
    CHECK(matches_reference(c));
  }
  s = stats(e.get());
  CHECK(s.graph_launches == 0);
  CHECK(s.capture_failures == static_cast<uint64_t>(s.bucket_count));
  for (int32_t i = 0; i < s.bucket_count; ++i) CHECK(s.graph_ready[i] == 0);
}

// Loads (each capturing its buckets) on two threads at once: thread-local
// capture mode keeps one thread's allocations and copies from breaking the
// other's capture.
void test_loads_while_another_captures(const std::vector<unsigned char> &plan) {
  std::vector<int> ok(2, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 4; ++i) {
        Engine e = load(plan, true, {1, 2, 3, 4, 5, 6, 7});
        if (!e) continue;
        Case c = make_case(1 + (t + i) % kMaxBatch, 16, 300 + 10 * t + i);
        const hy3d_engine_stats s = stats(e.get());
        if (s.capture_failures == 0 && s.graph_captures == static_cast<uint64_t>(s.bucket_count) &&
            run(e.get(), c) == HY3D_OK && matches_reference(c))
          ++ok[static_cast<size_t>(t)];
      }
    });
  for (auto &th : threads) th.join();
  for (int n : ok) CHECK(n == 4);
}

void test_rejects_bad_shapes(const std::vector<unsigned char> &plan) {
  Engine e = load(plan, true);
  if (!e) {
    CHECK(false);
    return;
  }
  Case big = make_case(kMaxBatch + 1, 4, 0);
  CHECK(run(e.get(), big) == HY3D_ERR_SHAPE);
  CHECK(std::strstr(hy3d_last_error(), "9") != nullptr);
  CHECK(std::strstr(hy3d_last_error(), "maximum batch 8") != nullptr);

  Case wide = make_case(1, kMaxN + 1, 0);
  CHECK(run(e.get(), wide) == HY3D_ERR_SHAPE);
  CHECK(std::strstr(hy3d_last_error(), "profile") != nullptr);

  // Output dims that disagree with what the run produces.
  Case c = make_case(2, 4, 0);
  hy3d_host_tensor in[2]{};
  in[0] = {"x", c.x.data(), 3, {2, 4, kWidth}};
  in[1] = {"s", c.s.data(), 3, {2, 1, 1}};
  hy3d_host_tensor out{"y", c.y.data(), 3, {2, 5, kWidth}};
  CHECK(hy3d_engine_run(e.get(), in, 2, &out, 1) == HY3D_ERR_SHAPE);
  CHECK(hy3d_engine_run(e.get(), in, 1, &out, 1) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(hy3d_last_error(), "missing input s") != nullptr);

  // The engine still works after the refusals.
  Case ok = make_case(2, 16, 9);
  CHECK(run(e.get(), ok) == HY3D_OK);
  CHECK(matches_reference(ok));
}

void test_rejects_bad_buckets_and_plans(const std::vector<unsigned char> &plan) {
  hy3d_engine_options opts{};
  hy3d_engine *e = reinterpret_cast<hy3d_engine *>(0x1);
  const int32_t descending[] = {4, 2};
  opts.batch_buckets = descending;
  opts.bucket_count = 2;
  CHECK(hy3d_engine_load(plan.data(), plan.size(), &opts, &e) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(e == nullptr);
  const int32_t too_big[] = {16};
  opts.batch_buckets = too_big;
  opts.bucket_count = 1;
  CHECK(hy3d_engine_load(plan.data(), plan.size(), &opts, &e) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(hy3d_last_error(), "16") != nullptr);

  opts.bucket_count = 0;
  opts.device = 999;
  CHECK(hy3d_engine_load(plan.data(), plan.size(), &opts, &e) == HY3D_ERR_UNAVAILABLE);
  opts.device = 0;

  const std::vector<unsigned char> garbage(4096, 'x');
  CHECK(hy3d_engine_load(garbage.data(), garbage.size(), &opts, &e) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(hy3d_last_error(), "not a TensorRT plan") != nullptr);

  // A plan stamped with another TensorRT major version (bytes 24..27 of the
  // header hold the version that wrote it).
  std::vector<unsigned char> other = plan;
  if (other.size() > 28) {
    other[24] = static_cast<unsigned char>(other[24] + 1);
    CHECK(hy3d_engine_load(other.data(), other.size(), &opts, &e) == HY3D_ERR_INCOMPATIBLE);
    CHECK(std::strstr(hy3d_last_error(), "this runtime is TensorRT") != nullptr);
    CHECK(e == nullptr);
  }
}

// With the device's memory taken, a load fails as out of memory, naming the
// sizes, and not as a plan built for another GPU or TensorRT (TensorRT's
// allocation failure messages talk of the device).
void test_out_of_memory_at_load(const std::vector<unsigned char> &plan) {
  std::vector<void *> hog;
  for (size_t chunk = size_t{1} << 30; chunk >= (size_t{64} << 10);) {
    void *p = nullptr;
    if (cudaMalloc(&p, chunk) == cudaSuccess) {
      hog.push_back(p);
    } else {
      (void)cudaGetLastError();
      chunk /= 2;
    }
  }
  hy3d_engine_options opts{};
  hy3d_engine *e = nullptr;
  const hy3d_status st = hy3d_engine_load(plan.data(), plan.size(), &opts, &e);
  const std::string message = st == HY3D_OK ? std::string() : hy3d_last_error();
  hy3d_engine_destroy(e);
  for (void *p : hog) (void)cudaFree(p);
  CHECK(st == HY3D_ERR_OUT_OF_MEMORY);
  CHECK(message.find("MiB") != std::string::npos);
  if (st != HY3D_ERR_OUT_OF_MEMORY) std::fprintf(stderr, "load with no device memory: %d %s\n", st, message.c_str());
  Engine after = load(plan, true);  // the device recovers once memory is free again
  CHECK(after != nullptr);
}

void test_concurrent_runs(const std::vector<unsigned char> &plan) {
  Engine e = load(plan, true);
  if (!e) {
    CHECK(false);
    return;
  }
  std::vector<int> ok(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        Case c = make_case(1 + (t + i) % kMaxBatch, t % 2 == 0 ? 16 : 8, t * 100 + i);
        if (run(e.get(), c) == HY3D_OK && matches_reference(c)) ++ok[static_cast<size_t>(t)];
      }
    });
  for (auto &th : threads) th.join();
  for (int n : ok) CHECK(n == 25);
  CHECK(stats(e.get()).runs == 100);
}

// A load registers TensorRT's standard plugins; nothing else in this test
// does (the builder API does not), so a creator in the registry is hy3d's.
void test_registers_the_standard_plugins(const std::vector<unsigned char> &plan) {
  std::unique_ptr<nvinfer1::IRuntime> runtime(nvinfer1::createInferRuntime(quiet_logger()));
  CHECK(runtime != nullptr);
  if (!runtime) return;
  CHECK(runtime->getPluginRegistry().getCreator("EfficientNMS_TRT", "1", "") == nullptr);
  Engine e = load(plan, false);
  CHECK(e != nullptr);
  CHECK(runtime->getPluginRegistry().getCreator("EfficientNMS_TRT", "1", "") != nullptr);
}

void test_logs_through_the_callback(const std::vector<unsigned char> &plan) {
  std::vector<std::string> lines;
  hy3d_set_log_callback(
      [](int level, const char *message, void *user) {
        if (level >= 1) static_cast<std::vector<std::string> *>(user)->push_back(message);
      },
      &lines);
  { Engine e = load(plan, true); }
  hy3d_set_log_callback(nullptr, nullptr);
  bool loaded = false;
  for (const auto &l : lines) loaded = loaded || l.find("TensorRT engine loaded") != std::string::npos;
  CHECK(loaded);
}

}  // namespace

int main() {
  CHECK(hy3d_tensorrt_available() == 1);
  hy3d_runtime_info info{};
  CHECK(hy3d_runtime_info_get(&info) == HY3D_OK);
  CHECK(info.tensorrt_version >= 100000);
  if (info.device_count < 1) {
    std::fprintf(stderr, "no CUDA device: the GPU tests need one\n");
    return 1;
  }
  hy3d_device_info dev{};
  CHECK(hy3d_device_info_get(0, &dev) == HY3D_OK);
  CHECK(dev.compute_major >= 5 && std::strlen(dev.name) > 0);
  CHECK(hy3d_device_info_get(info.device_count, &dev) == HY3D_ERR_INVALID_ARGUMENT);

  const std::vector<unsigned char> plan = build_plan();
  CHECK(!plan.empty());
  if (plan.empty()) return check_failures();

  test_registers_the_standard_plugins(plan);  // first: before any load registers them
  test_describes_tensors_and_profile(plan);
  test_output_shapes(plan);
  test_runs_match_the_reference_in_every_bucket(plan);
  test_graph_replay_equals_plain_enqueue(plan);
  test_shapes_keep_their_graphs(plan);
  test_capture_failure_falls_back(plan);
  test_loads_while_another_captures(plan);
  test_rejects_bad_shapes(plan);
  test_rejects_bad_buckets_and_plans(plan);
  test_out_of_memory_at_load(plan);
  test_concurrent_runs(plan);
  test_logs_through_the_callback(plan);
  return check_failures();
}
