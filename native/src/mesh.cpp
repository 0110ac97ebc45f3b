#include "mesh.hpp"

#include "status.hpp"

extern "C" {

hy3d_status hy3d_mesh_view(const hy3d_mesh *mesh, const float **vertices, size_t *vertex_count,
                           const uint32_t **indices, size_t *triangle_count) {
  return hy3d::guard([&] {
    if (mesh == nullptr || vertices == nullptr || vertex_count == nullptr || indices == nullptr ||
        triangle_count == nullptr) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "hy3d_mesh_view: NULL argument");
    }
    *vertices = mesh->vertices.data();
    *vertex_count = mesh->vertices.size() / 3;
    *indices = mesh->indices.data();
    *triangle_count = mesh->indices.size() / 3;
    return HY3D_OK;
  });
}

void hy3d_mesh_destroy(hy3d_mesh *mesh) { delete mesh; }

}  // extern "C"
