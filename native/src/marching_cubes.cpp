// PLACEHOLDER — replaced by the marching cubes implementation.
#include "status.hpp"
extern "C" {
hy3d_status hy3d_marching_cubes(const float *, int64_t, int64_t, int64_t, float, int, hy3d_mesh **) {
  return hy3d::fail(HY3D_ERR_UNAVAILABLE, "marching cubes not implemented yet");
}
hy3d_status hy3d_marching_cubes_blocks(const float *, int64_t, int64_t, int64_t, float, int32_t, const int32_t *,
                                       size_t, int, hy3d_mesh **) {
  return hy3d::fail(HY3D_ERR_UNAVAILABLE, "marching cubes not implemented yet");
}
}
