// The TensorRT entry points of a build without CUDA/TensorRT: each one says
// so, so that callers can fall back to ONNX Runtime.
#include "status.hpp"

namespace {
hy3d_status unavailable() {
  return hy3d::fail(HY3D_ERR_UNAVAILABLE,
                    "this hy3d library was built without TensorRT (configure with CUDA and TensorRT 10 "
                    "present, or -DHY3D_WITH_TENSORRT=ON -DTENSORRT_ROOT=...)");
}
}  // namespace

extern "C" {

int hy3d_tensorrt_available(void) { return 0; }
hy3d_status hy3d_runtime_info_get(hy3d_runtime_info *) { return unavailable(); }
hy3d_status hy3d_device_info_get(int32_t, hy3d_device_info *) { return unavailable(); }
hy3d_status hy3d_engine_load(const void *, size_t, const hy3d_engine_options *, hy3d_engine **out) {
  if (out != nullptr) *out = nullptr;
  return unavailable();
}
void hy3d_engine_destroy(hy3d_engine *) {}
hy3d_status hy3d_engine_tensor_count(const hy3d_engine *, int32_t *) { return unavailable(); }
hy3d_status hy3d_engine_tensor_desc(const hy3d_engine *, int32_t, hy3d_tensor_desc *) { return unavailable(); }
hy3d_status hy3d_engine_output_shapes(const hy3d_engine *, const hy3d_host_tensor *, size_t, hy3d_host_tensor *,
                                      size_t) {
  return unavailable();
}
hy3d_status hy3d_engine_run(hy3d_engine *, const hy3d_host_tensor *, size_t, hy3d_host_tensor *, size_t) {
  return unavailable();
}
hy3d_status hy3d_engine_stats_get(const hy3d_engine *, hy3d_engine_stats *) { return unavailable(); }

}  // extern "C"
