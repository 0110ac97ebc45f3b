// The block-restricted entry point: with blocks covering the surface it must
// reproduce the dense result exactly (so it is watertight and shares vertices
// across block borders), it must never read a sample outside the selected
// cells (checked with NaN there and with unreadable pages), and it must
// reject blocks outside the grid.
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <set>
#include <tuple>
#include <vector>

#include "check.hpp"
#include "hy3d.h"
#include "mc_test_util.hpp"

namespace {

double length(double x, double y, double z) { return std::sqrt(x * x + y * y + z * z); }

// Blocks holding at least one cell with corners on both sides of the level.
std::vector<int32_t> surface_blocks(Grid &g, int64_t block_size) {
  std::set<std::tuple<int32_t, int32_t, int32_t>> set;
  for (int64_t i = 0; i + 1 < g.nx; ++i)
    for (int64_t j = 0; j + 1 < g.ny; ++j)
      for (int64_t k = 0; k + 1 < g.nz; ++k) {
        int in = 0;
        for (int c = 0; c < 8; ++c) in += g.at(i + (c & 1), j + (c >> 1 & 1), k + (c >> 2 & 1)) > 0.0f;
        if (in != 0 && in != 8) {
          set.emplace(int32_t(i / block_size), int32_t(j / block_size), int32_t(k / block_size));
        }
      }
  std::vector<int32_t> blocks;
  for (const auto &b : set) blocks.insert(blocks.end(), {std::get<0>(b), std::get<1>(b), std::get<2>(b)});
  return blocks;
}

// Sets every sample that is not a corner of a selected cell to NaN.
void poison_outside(Grid &g, int64_t block_size, const std::vector<int32_t> &blocks) {
  std::vector<bool> keep(g.values.size());
  for (size_t b = 0; b < blocks.size(); b += 3) {
    for (int64_t i = blocks[b] * block_size; i <= std::min(g.nx - 1, (blocks[b] + 1) * block_size); ++i)
      for (int64_t j = blocks[b + 1] * block_size; j <= std::min(g.ny - 1, (blocks[b + 1] + 1) * block_size); ++j)
        for (int64_t k = blocks[b + 2] * block_size; k <= std::min(g.nz - 1, (blocks[b + 2] + 1) * block_size); ++k)
          keep[static_cast<size_t>((i * g.ny + j) * g.nz + k)] = true;
  }
  for (size_t s = 0; s < keep.size(); ++s) {
    if (!keep[s]) g.values[s] = std::nanf("");
  }
}

auto torus = [](double x, double y, double z) {
  const double q = std::hypot(x - 20.3, y - 21.1) - 11.0;
  return 4.6 - std::hypot(q, z - 22.4);
};

void test_blocks_covering_surface_equal_dense() {
  for (int64_t block_size : {1, 4, 7, 16}) {
    Grid g = sample(41, 43, 45, torus);
    const Mesh dense = extract(g);
    const std::vector<int32_t> blocks = surface_blocks(g, block_size);
    const Mesh blocked = extract_blocks(g, static_cast<int32_t>(block_size), blocks);
    CHECK(blocked.status == HY3D_OK);
    CHECK(blocked == dense);
    poison_outside(g, block_size, blocks);
    CHECK(extract_blocks(g, static_cast<int32_t>(block_size), blocks) == dense);
    CHECK(extract_blocks(g, static_cast<int32_t>(block_size), blocks, 0.0f, 1) == dense);
  }
  const Topology t = analyze(extract(sample(41, 43, 45, torus)));
  CHECK(t.watertight() && t.euler() == 0);
}

// Rows longer than a 64-bit word, blocks straddling word boundaries.
void test_blocks_across_words() {
  auto capsule = [](double x, double y, double z) {
    const double t = std::min(std::max(z, 40.0), 150.0);
    return 6.2 - length(x - 12.3, y - 10.6, z - t);
  };
  for (int64_t block_size : {7, 64}) {
    Grid g = sample(25, 22, 200, capsule);
    const Mesh dense = extract(g);
    const std::vector<int32_t> blocks = surface_blocks(g, block_size);
    poison_outside(g, block_size, blocks);
    const Mesh blocked = extract_blocks(g, static_cast<int32_t>(block_size), blocks, 0.0f, 3);
    CHECK(blocked == dense);
    const Topology t = analyze(blocked);
    CHECK(t.watertight() && t.euler() == 2 && t.components == 1);
  }
}

// Duplicated blocks and blocks that overhang the grid's last cells are fine.
void test_duplicate_and_clipped_blocks() {
  Grid g = sample(30, 30, 30, torus);
  std::vector<int32_t> all;
  for (int32_t i = 0; i < 2; ++i)
    for (int32_t j = 0; j < 2; ++j)
      for (int32_t k = 0; k < 2; ++k) all.insert(all.end(), {i, j, k, i, j, k});
  CHECK(extract_blocks(g, 16, all) == extract(g));
}

// A selection that cuts the surface yields part of it: a subset of the dense
// triangles, with open borders only where the selection ends.
void test_partial_selection() {
  Grid g = sample(41, 43, 45, torus);
  std::vector<int32_t> blocks = surface_blocks(g, 8);
  const size_t all = blocks.size() / 3;
  blocks.resize(3 * (all / 2));
  const Mesh part = extract_blocks(g, 8, blocks), dense = extract(g);
  CHECK(part.status == HY3D_OK);
  CHECK(part.triangle_count() > 0 && part.triangle_count() < dense.triangle_count());
  const Topology t = analyze(part);
  CHECK(t.boundary > 0 && t.non_manifold == 0 && t.flipped == 0);
  CHECK(finite_vertices(part));
}

// Samples outside the selected blocks live on pages that cannot be read: a
// stray read would crash the test.
void test_never_reads_outside_blocks() {
  const long page = sysconf(_SC_PAGESIZE);
  const int64_t ny = 32, nz = page / int64_t(sizeof(float)) / ny, nx = 32;
  const size_t plane = static_cast<size_t>(ny * nz) * sizeof(float);
  void *mem = mmap(nullptr, plane * nx, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(mem != MAP_FAILED);
  if (mem == MAP_FAILED) return;
  auto sphere = [](double x, double y, double z) { return 5.3 - length(x - 16.2, y - 15.7, z - 16.4); };
  const Grid g = sample(nx, ny, nz, sphere);
  std::memcpy(mem, g.values.data(), plane * nx);
  // Blocks of 8 along i = 1 and 2 read planes 8..24 only.
  std::vector<int32_t> blocks;
  for (int32_t i = 1; i <= 2; ++i)
    for (int32_t j = 0; j < 4; ++j)
      for (int32_t k = 0; k < int32_t((nz - 2) / 8 + 1); ++k) blocks.insert(blocks.end(), {i, j, k});
  char *bytes = static_cast<char *>(mem);
  CHECK(mprotect(bytes, plane * 8, PROT_NONE) == 0);
  CHECK(mprotect(bytes + plane * 25, plane * (nx - 25), PROT_NONE) == 0);
  hy3d_mesh *handle = nullptr;
  const hy3d_status status = hy3d_marching_cubes_blocks(static_cast<const float *>(mem), nx, ny, nz, 0.0f, 8,
                                                        blocks.data(), blocks.size() / 3, 2, &handle);
  const Mesh m = take(status, handle);
  CHECK(m.status == HY3D_OK);
  CHECK(m == extract(g));
  munmap(mem, plane * nx);
}

void test_invalid_blocks() {
  const Grid g = sample(9, 9, 9, torus);  // 8 cells per axis
  hy3d_mesh *m = nullptr;
  const int32_t inside[3] = {1, 1, 1}, beyond[3] = {0, 2, 0}, negative[3] = {0, -1, 0};
  CHECK(hy3d_marching_cubes_blocks(g.values.data(), 9, 9, 9, 0.0f, 4, beyond, 1, 1, &m) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(hy3d_last_error(), "outside") != nullptr);
  CHECK(hy3d_marching_cubes_blocks(g.values.data(), 9, 9, 9, 0.0f, 4, negative, 1, 1, &m) ==
        HY3D_ERR_INVALID_ARGUMENT);
  CHECK(hy3d_marching_cubes_blocks(g.values.data(), 9, 9, 9, 0.0f, 0, inside, 1, 1, &m) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(hy3d_marching_cubes_blocks(g.values.data(), 9, 9, 9, 0.0f, 4, nullptr, 1, 1, &m) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(hy3d_marching_cubes_blocks(g.values.data(), 9, 9, 9, 0.0f, 4, nullptr, 0, 1, &m) == HY3D_OK);
  const Mesh empty = take(HY3D_OK, m);
  CHECK(empty.triangle_count() == 0);
}

}  // namespace

int main() {
  test_blocks_covering_surface_equal_dense();
  test_blocks_across_words();
  test_duplicate_and_clipped_blocks();
  test_partial_selection();
  test_never_reads_outside_blocks();
  test_invalid_blocks();
  return check_failures();
}
