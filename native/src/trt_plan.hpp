// What a TensorRT plan's header says, and which error a plan TensorRT
// refused to deserialize deserves. Neither needs TensorRT or CUDA, so the
// CPU build compiles and tests them (native/tests/trt_plan_test.cpp); the
// TensorRT backend (trt_engine.cpp) calls them with what TensorRT said.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "status.hpp"

namespace hy3d {
namespace trt {

// A plan's header: a tag, the serialization version, and (for
// serialization 0) the TensorRT version that wrote it at bytes 24..26, as
// trtexec --getPlanVersionOnly reads it.
struct PlanHeader {
  bool is_plan = false;      // starts with the plan tag
  bool has_version = false;  // serialization 0 and at least 28 bytes
  int major = 0, minor = 0, patch = 0;

  std::string version() const;
};

PlanHeader read_plan_header(const void *plan, size_t size);

// What TensorRT logged while refusing a plan: its errors, and its warnings,
// where it names the size of an allocation that failed.
struct TrtMessages {
  std::string errors;
  std::string warnings;
};

// The device's memory at the time of the failure, when it could be asked.
struct DeviceMemory {
  bool known = false;
  size_t free_bytes = 0;
  size_t total_bytes = 0;
};

// The error for a plan TensorRT refused: HY3D_ERR_INVALID_ARGUMENT for bytes
// that are not a plan; HY3D_ERR_OUT_OF_MEMORY when TensorRT ran out of
// device memory (with the sizes: requested, free, total, the plan's); else
// HY3D_ERR_INCOMPATIBLE when the plan's version differs from the runtime's
// or TensorRT talks of versions, compatibility, compute capability or kernel
// images; else HY3D_ERR_INVALID_ARGUMENT. TensorRT's message is kept whole.
Error plan_refusal(const TrtMessages &said, const void *plan, size_t size, int32_t runtime_version,
                   const std::string &gpu, const DeviceMemory &memory);

}  // namespace trt
}  // namespace hy3d
