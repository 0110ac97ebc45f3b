#include "trt_plan.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <regex>

namespace hy3d {
namespace trt {
namespace {

constexpr uint32_t kPlanTag = 0x74727466u;  // "ftrt"

uint32_t read_u32le(const unsigned char *p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool contains_any(const std::string &text, std::initializer_list<const char *> needles) {
  return std::any_of(needles.begin(), needles.end(),
                     [&](const char *n) { return text.find(n) != std::string::npos; });
}

std::string mib(size_t bytes) { return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB"; }

std::string version_string(int32_t v) {
  return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

}  // namespace

std::string PlanHeader::version() const {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

PlanHeader read_plan_header(const void *plan, size_t size) {
  PlanHeader h;
  const auto *bytes = static_cast<const unsigned char *>(plan);
  if (bytes == nullptr || size < 8 || read_u32le(bytes) != kPlanTag) return h;
  h.is_plan = true;
  if (read_u32le(bytes + 4) != 0 || size < 28) return h;
  h.has_version = true;
  h.major = bytes[24];
  h.minor = bytes[25];
  h.patch = bytes[26];
  return h;
}

Error plan_refusal(const TrtMessages &said, const void *plan, size_t size, int32_t runtime_version,
                   const std::string &gpu, const DeviceMemory &memory) {
  const PlanHeader header = read_plan_header(plan, size);
  const std::string plan_version = header.has_version ? header.version() : std::string("unknown");
  std::string message = "TensorRT refused the plan";
  message += said.errors.empty() ? std::string(" without a message") : ": " + said.errors;

  // TensorRT's complaint about a foreign file also talks of versions, so
  // the tag is looked at first.
  if (!header.is_plan)
    return Error(HY3D_ERR_INVALID_ARGUMENT, "not a TensorRT plan: " + message + " (this runtime is TensorRT " +
                                                version_string(runtime_version) + " on " + gpu + ")");

  // An allocation that failed while deserializing: TensorRT says "out of
  // memory" (a CUDA error) or "OutOfMemory" (its own code), and warns with
  // the size it asked for. Rebuilding the plan would not help.
  const std::string errors = lower(said.errors), warnings = lower(said.warnings);
  if (contains_any(errors, {"out of memory", "outofmemory", "could not be allocated", "failed to allocate"}) ||
      contains_any(warnings, {"could not be allocated"})) {
    std::string sizes = "plan " + mib(size);
    std::smatch m;
    static const std::regex requested(R"(GPU memory \((\d+) bytes\))");
    if (std::regex_search(said.warnings, m, requested))
      sizes += ", requested " + mib(static_cast<size_t>(std::stoull(m[1].str())));
    if (memory.known)
      sizes += ", " + mib(memory.free_bytes) + " free of " + mib(memory.total_bytes) + " on " + gpu;
    else
      sizes += ", on " + gpu;
    return Error(HY3D_ERR_OUT_OF_MEMORY, "out of device memory loading the plan (" + sizes + "): " + message +
                                             "; free GPU memory (other engines or processes) or build with a "
                                             "smaller max_batch");
  }

  message += " (plan built with TensorRT " + plan_version + "; this runtime is TensorRT " +
             version_string(runtime_version) + " on " + gpu + ")";
  const bool version_differs = header.has_version && (header.major != runtime_version / 10000 ||
                                                      header.minor != runtime_version / 100 % 100 ||
                                                      header.patch != runtime_version % 100);
  if (version_differs || contains_any(errors, {"version", "compatib", "compute capability", "kernel image"}))
    return Error(HY3D_ERR_INCOMPATIBLE, message);
  return Error(HY3D_ERR_INVALID_ARGUMENT, message);
}

}  // namespace trt
}  // namespace hy3d
