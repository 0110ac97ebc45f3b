// The TensorRT backend's plan-header reading and refusal classification
// (native/src/trt_plan.cpp), with the messages TensorRT 10 logs, on the CPU.
#include <cstring>
#include <string>
#include <vector>

#include "../src/trt_plan.hpp"
#include "check.hpp"

namespace {

using hy3d::trt::DeviceMemory;
using hy3d::trt::plan_refusal;
using hy3d::trt::TrtMessages;

constexpr int32_t kRuntime = 100800;  // TensorRT 10.8.0
const std::string kGPU = "NVIDIA GeForce RTX 3090 (compute 8.6)";

// A plan header: "ftrt", serialization, 16 bytes, then the version and a
// build number, followed by some body.
std::vector<unsigned char> plan_bytes(unsigned char major, unsigned char minor, unsigned char patch,
                                      unsigned char serialization = 0) {
  std::vector<unsigned char> p = {'f', 't', 'r', 't', serialization, 0, 0, 0};
  p.resize(24, 0);
  for (unsigned char b : {major, minor, patch, static_cast<unsigned char>(43)}) p.push_back(b);
  p.resize(4096, 0x5a);
  return p;
}

bool has(const std::string &text, const std::string &part) { return text.find(part) != std::string::npos; }

void test_header() {
  auto p = plan_bytes(10, 16, 1);
  auto h = hy3d::trt::read_plan_header(p.data(), p.size());
  CHECK(h.is_plan && h.has_version && h.version() == "10.16.1");
  h = hy3d::trt::read_plan_header(p.data(), 27);
  CHECK(h.is_plan && !h.has_version);
  p = plan_bytes(10, 8, 0, 1);
  h = hy3d::trt::read_plan_header(p.data(), p.size());
  CHECK(h.is_plan && !h.has_version);
  const char onnx[] = "\x08\x07\x12\x07pytorch-and-more-bytes-here-to-be-long-enough";
  CHECK(!hy3d::trt::read_plan_header(onnx, sizeof onnx).is_plan);
  CHECK(!hy3d::trt::read_plan_header(nullptr, 0).is_plan);
}

void test_out_of_memory_is_not_a_mismatch() {
  // What TensorRT 10 logs when deserializing runs out of device memory.
  const TrtMessages said{
      "[defaultAllocator.cpp::allocate::19] Error Code 1: Cuda Runtime (out of memory); "
      "[safeDeserialize.cpp::load::269] Error Code 2: OutOfMemory (no further information)",
      "Requested amount of GPU memory (1180463648 bytes) could not be allocated. There may not be enough free "
      "memory for allocation to succeed."};
  const auto plan = plan_bytes(10, 8, 0);
  const DeviceMemory memory{true, size_t{512} << 20, size_t{24} << 30};
  const hy3d::Error e = plan_refusal(said, plan.data(), plan.size(), kRuntime, kGPU, memory);
  CHECK(e.status() == HY3D_ERR_OUT_OF_MEMORY);
  const std::string msg = e.what();
  CHECK(has(msg, "requested 1126 MiB"));
  CHECK(has(msg, "512 MiB free of 24576 MiB on " + kGPU));
  CHECK(has(msg, "plan 1 MiB"));
  CHECK(has(msg, "Error Code 2: OutOfMemory"));
  CHECK(!has(msg, "rebuild"));

  // A message that talks of the device but is an allocation failure, from
  // a plan of another version: memory still comes first.
  const auto old_plan = plan_bytes(10, 3, 0);
  const hy3d::Error e2 = plan_refusal({"Cuda Runtime (out of memory) on device 0", ""}, old_plan.data(),
                                      old_plan.size(), kRuntime, kGPU, DeviceMemory{});
  CHECK(e2.status() == HY3D_ERR_OUT_OF_MEMORY);
  CHECK(has(e2.what(), "on " + kGPU));
}

void test_mismatches() {
  const auto same = plan_bytes(10, 8, 0);
  const auto older = plan_bytes(10, 3, 0);
  struct Case {
    const char *errors;
    const std::vector<unsigned char> *plan;
    hy3d_status want;
  } cases[] = {
      // The plan's header names another release.
      {"", &older, HY3D_ERR_INCOMPATIBLE},
      {"IRuntime::deserializeCudaEngine: Error Code 6: API Usage Error (The engine plan file is not compatible "
       "with this version of TensorRT, expecting library version 10.8.0.43 got 10.3.0.26)",
       &older, HY3D_ERR_INCOMPATIBLE},
      // Same release, another GPU.
      {"IRuntime::deserializeCudaEngine: Error Code 1: Internal Error (The engine plan file is generated on an "
       "incompatible device, expecting compute 8.9 got compute 8.6, please rebuild.)",
       &same, HY3D_ERR_INCOMPATIBLE},
      {"no kernel image is available for execution on the device", &same, HY3D_ERR_INCOMPATIBLE},
      // A truncated or corrupt plan of the right release is not a mismatch,
      // even when the message mentions the device.
      {"Error Code 3: Internal Error (failed to read the engine from the device blob)", &same,
       HY3D_ERR_INVALID_ARGUMENT},
      {"", &same, HY3D_ERR_INVALID_ARGUMENT},
  };
  for (const Case &c : cases) {
    const hy3d::Error e = plan_refusal({c.errors, ""}, c.plan->data(), c.plan->size(), kRuntime, kGPU, DeviceMemory{});
    CHECK(e.status() == c.want);
    if (e.status() != c.want) std::fprintf(stderr, "  for %s: %s\n", c.errors, e.what());
    CHECK(has(e.what(), "this runtime is TensorRT 10.8.0 on " + kGPU));
  }
  const hy3d::Error e = plan_refusal({"", ""}, older.data(), older.size(), kRuntime, kGPU, DeviceMemory{});
  CHECK(has(e.what(), "plan built with TensorRT 10.3.0"));
  CHECK(has(e.what(), "without a message"));
}

void test_not_a_plan() {
  const char onnx[] = "\x08\x07\x12\x07pytorch-and-more-bytes-here-to-be-long-enough";
  const hy3d::Error e =
      plan_refusal({"Error Code 1: Serialization (Serialization assertion magicTagRead == kMAGIC_TAG failed.Magic "
                    "tag does not match; version)",
                    ""},
                   onnx, sizeof onnx, kRuntime, kGPU, DeviceMemory{});
  CHECK(e.status() == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(has(e.what(), "not a TensorRT plan"));
}

}  // namespace

int main() {
  test_header();
  test_out_of_memory_is_not_a_mismatch();
  test_mismatches();
  test_not_a_plan();
  return check_failures();
}
