// The marching cubes kernel is compiled once per instruction set and picked
// at run time; only one of them runs on any machine. This test compiles the
// kernel again with the default flags, i.e. the baseline that CPUs without
// AVX2 or POPCNT run, and checks that it produces exactly what the
// dispatched kernel does, dense and with blocks.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "../src/mc_common.hpp"
#include "../src/mc_table.hpp"
#include "../src/mesh.hpp"
#include "check.hpp"
#include "hy3d.h"
#include "mc_test_util.hpp"

namespace hy3d {
namespace mc {
namespace plain {
#include "../src/mc_kernel.hpp"
}  // namespace plain
}  // namespace mc
}  // namespace hy3d

namespace {

Mesh extract_plain(const Grid &g, int threads, const hy3d::mc::BlockCells *blocks) {
  hy3d_mesh mesh;
  hy3d::mc::plain::extract(hy3d::mc::Field{g.values.data(), g.nx, g.ny, g.nz, 0.0f}, blocks, threads, mesh);
  Mesh m;
  m.vertices = mesh.vertices;
  m.indices = mesh.indices;
  return m;
}

Grid gyroid_with_nan() {
  Grid g = sample(37, 45, 150, [](double x, double y, double z) {
    const double s = 2 * M_PI / 11.0;
    const double gyroid =
        std::sin(s * x) * std::cos(s * y) + std::sin(s * y) * std::cos(s * z) + std::sin(s * z) * std::cos(s * x);
    const double ball = 17.0 - std::sqrt((x - 18) * (x - 18) + (y - 22) * (y - 22) + (z - 70) * (z - 70));
    return std::min(0.4 - std::fabs(gyroid), ball);
  });
  for (size_t s = 0; s < g.values.size(); s += 13) {
    if (g.values[s] < 0) g.values[s] = std::nanf("");
  }
  return g;
}

void test_dense_matches_dispatched() {
  const Grid g = gyroid_with_nan();
  const Mesh dispatched = extract(g, 0.0f, 2);
  CHECK(dispatched.triangle_count() > 1000);
  for (int threads : {1, 3}) CHECK(extract_plain(g, threads, nullptr) == dispatched);
}

void test_blocks_match_dispatched() {
  const Grid g = gyroid_with_nan();
  std::vector<int32_t> blocks;
  for (int32_t i = 0; i < 5; ++i)
    for (int32_t j = 0; j < 6; ++j)
      for (int32_t k = 0; k < 19; ++k) {
        if ((i + 2 * j + k) % 3 != 0) blocks.insert(blocks.end(), {i, j, k});
      }
  const Mesh dispatched = extract_blocks(g, 8, blocks, 0.0f, 2);
  CHECK(dispatched.triangle_count() > 100);
  const hy3d::mc::Field field{g.values.data(), g.nx, g.ny, g.nz, 0.0f};
  const hy3d::mc::BlockCells cells(field, 8, blocks.data(), blocks.size() / 3);
  CHECK(extract_plain(g, 2, &cells) == dispatched);
}

}  // namespace

int main() {
  test_dense_matches_dispatched();
  test_blocks_match_dispatched();
  return check_failures();
}
