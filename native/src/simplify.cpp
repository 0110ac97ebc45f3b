// PLACEHOLDER — replaced by the simplifier.
#include "status.hpp"
extern "C" {
hy3d_status hy3d_simplify(const float *, size_t, const uint32_t *, size_t, size_t, float, hy3d_mesh **) {
  return hy3d::fail(HY3D_ERR_UNAVAILABLE, "simplify not implemented yet");
}
}
