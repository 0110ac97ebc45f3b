// The ABI basics: version, last-error plumbing, NULL handling, and the
// TensorRT entry points of a CPU-only build.
#include <cstdio>
#include <cstring>

#include "check.hpp"
#include "hy3d.h"

int main() {
  CHECK(hy3d_abi_version() == HY3D_ABI_VERSION);
  CHECK(std::strlen(hy3d_last_error()) == 0);

  CHECK(hy3d_mesh_view(nullptr, nullptr, nullptr, nullptr, nullptr) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(hy3d_last_error(), "NULL") != nullptr);
  hy3d_mesh_destroy(nullptr);

  if (!hy3d_tensorrt_available()) {
    hy3d_engine *engine = reinterpret_cast<hy3d_engine *>(0x1);
    CHECK(hy3d_engine_load("x", 1, nullptr, &engine) == HY3D_ERR_UNAVAILABLE);
    CHECK(engine == nullptr);
    CHECK(std::strstr(hy3d_last_error(), "TensorRT") != nullptr);
  }
  return check_failures();
}
