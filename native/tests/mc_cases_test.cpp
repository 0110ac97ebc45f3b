// Exhaustive checks of the generated case table through the C ABI: every
// one of the 256 corner configurations, and every configuration of two cubes
// sharing a face (along each axis), embedded in outside padding, must give a
// watertight, consistently wound surface. The pairs are what catches a face
// that two neighbouring cases triangulate differently.
#include <cstdint>
#include <cstdio>

#include "check.hpp"
#include "hy3d.h"
#include "mc_test_util.hpp"

namespace {

// Distinct magnitudes per corner so that vertices do not all sit at edge
// midpoints.
float inside_value(int corner) { return 0.3f + 0.11f * static_cast<float>(corner); }
float outside_value(int corner) { return -0.2f - 0.07f * static_cast<float>(corner); }

void test_single_cubes() {
  int failures = 0;
  for (int config = 0; config < 256; ++config) {
    Grid g = sample(4, 4, 4, [](double, double, double) { return -1.0; });
    for (int c = 0; c < 8; ++c) {
      g.at(1 + (c & 1), 1 + (c >> 1 & 1), 1 + (c >> 2 & 1)) = (config >> c & 1) ? inside_value(c) : outside_value(c);
    }
    const Mesh m = extract(g, 0.0f, 1);
    const Topology t = analyze(m);
    // Each inside region is a contractible set of corners: one genus-0
    // surface per region.
    const bool ok = m.status == HY3D_OK && t.watertight() && t.euler() == 2 * t.components &&
                    (config == 0) == (t.faces == 0) && t.vertices == static_cast<long>(m.vertex_count());
    if (!ok && ++failures <= 5) {
      std::fprintf(stderr, "config 0x%02x: ", config);
      print_topology("", t);
    }
  }
  CHECK(failures == 0);
}

void test_face_sharing_pairs() {
  int failures = 0;
  for (int axis = 0; axis < 3; ++axis) {
    int64_t dims[3] = {4, 4, 4};
    dims[axis] = 5;
    for (int config = 0; config < 4096; ++config) {
      Grid g = sample(dims[0], dims[1], dims[2], [](double, double, double) { return -1.0; });
      for (int c = 0; c < 12; ++c) {
        // Corners of the 2x1x1 block of cubes: two offsets in the other
        // axes, three along `axis`.
        int64_t p[3];
        const int a1 = (axis + 1) % 3, a2 = (axis + 2) % 3;
        p[axis] = 1 + c / 4;
        p[a1] = 1 + (c & 1);
        p[a2] = 1 + (c >> 1 & 1);
        g.at(p[0], p[1], p[2]) = (config >> c & 1) ? inside_value(c % 8) : outside_value(c % 8);
      }
      const Mesh m = extract(g, 0.0f, 1);
      const Topology t = analyze(m);
      if (!(m.status == HY3D_OK && t.watertight()) && ++failures <= 5) {
        std::fprintf(stderr, "axis %d config 0x%03x: ", axis, config);
        print_topology("", t);
      }
    }
  }
  CHECK(failures == 0);
}

}  // namespace

int main() {
  test_single_cubes();
  test_face_sharing_pairs();
  return check_failures();
}
