// Helpers shared by the marching cubes tests: sampling analytic fields,
// running the C ABI, and the combinatorial checks (edge use, winding, Euler
// characteristic, components) that decide whether a mesh is watertight.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <tuple>
#include <vector>

#include "hy3d.h"

struct Grid {
  int64_t nx = 0, ny = 0, nz = 0;
  std::vector<float> values;
  float &at(int64_t i, int64_t j, int64_t k) { return values[static_cast<size_t>((i * ny + j) * nz + k)]; }
};

template <typename Field>
Grid sample(int64_t nx, int64_t ny, int64_t nz, const Field &f) {
  Grid g{nx, ny, nz, std::vector<float>(static_cast<size_t>(nx * ny * nz))};
  for (int64_t i = 0; i < nx; ++i)
    for (int64_t j = 0; j < ny; ++j)
      for (int64_t k = 0; k < nz; ++k) g.at(i, j, k) = f(double(i), double(j), double(k));
  return g;
}

struct Mesh {
  hy3d_status status = HY3D_OK;
  std::vector<float> vertices;
  std::vector<uint32_t> indices;
  size_t vertex_count() const { return vertices.size() / 3; }
  size_t triangle_count() const { return indices.size() / 3; }
  bool operator==(const Mesh &o) const { return vertices == o.vertices && indices == o.indices; }
};

// Copies the mesh out of handle (which it destroys).
inline Mesh take(hy3d_status status, hy3d_mesh *handle) {
  Mesh m;
  m.status = status;
  if (status != HY3D_OK) {
    std::fprintf(stderr, "marching cubes failed: %s\n", hy3d_last_error());
    return m;
  }
  const float *v = nullptr;
  const uint32_t *idx = nullptr;
  size_t nv = 0, nt = 0;
  if (hy3d_mesh_view(handle, &v, &nv, &idx, &nt) == HY3D_OK) {
    m.vertices.assign(v, v + 3 * nv);
    m.indices.assign(idx, idx + 3 * nt);
  }
  hy3d_mesh_destroy(handle);
  return m;
}

inline Mesh extract(const Grid &g, float level = 0.0f, int threads = 2) {
  hy3d_mesh *handle = nullptr;
  const hy3d_status status = hy3d_marching_cubes(g.values.data(), g.nx, g.ny, g.nz, level, threads, &handle);
  return take(status, handle);
}

inline Mesh extract_blocks(const Grid &g, int32_t block_size, const std::vector<int32_t> &blocks, float level = 0.0f,
                           int threads = 2) {
  hy3d_mesh *handle = nullptr;
  const hy3d_status status = hy3d_marching_cubes_blocks(g.values.data(), g.nx, g.ny, g.nz, level, block_size,
                                                        blocks.data(), blocks.size() / 3, threads, &handle);
  return take(status, handle);
}

struct Topology {
  long vertices = 0, edges = 0, faces = 0;
  long boundary = 0, non_manifold = 0, flipped = 0, degenerate = 0, components = 0;
  long euler() const { return vertices - edges + faces; }
  bool watertight() const { return boundary == 0 && non_manifold == 0 && flipped == 0 && degenerate == 0; }
};

inline Topology analyze(const Mesh &m) {
  Topology t;
  t.faces = static_cast<long>(m.triangle_count());
  std::vector<std::tuple<uint32_t, uint32_t, bool>> edges;
  std::vector<uint32_t> parent(m.vertex_count());
  std::iota(parent.begin(), parent.end(), 0u);
  auto find = [&](uint32_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  std::vector<bool> used(m.vertex_count());
  for (size_t f = 0; f < m.triangle_count(); ++f) {
    const uint32_t *v = &m.indices[3 * f];
    if (v[0] == v[1] || v[1] == v[2] || v[0] == v[2]) ++t.degenerate;
    for (int e = 0; e < 3; ++e) {
      const uint32_t a = v[e], b = v[(e + 1) % 3];
      edges.emplace_back(std::min(a, b), std::max(a, b), a < b);
      used[a] = true;
      parent[find(a)] = find(b);
    }
  }
  for (uint32_t v = 0; v < used.size(); ++v) {
    if (!used[v]) continue;
    ++t.vertices;
    if (find(v) == v) ++t.components;
  }
  std::sort(edges.begin(), edges.end());
  for (size_t i = 0; i < edges.size();) {
    size_t j = i + 1;
    while (j < edges.size() && std::get<0>(edges[j]) == std::get<0>(edges[i]) &&
           std::get<1>(edges[j]) == std::get<1>(edges[i]))
      ++j;
    ++t.edges;
    if (j - i == 1) ++t.boundary;
    if (j - i > 2) ++t.non_manifold;
    if (j - i == 2 && std::get<2>(edges[i]) == std::get<2>(edges[i + 1])) ++t.flipped;
    i = j;
  }
  return t;
}

inline bool finite_vertices(const Mesh &m) {
  return std::all_of(m.vertices.begin(), m.vertices.end(), [](float x) { return std::isfinite(x); });
}

// Largest |f(v)| over the vertices where skip(v) is false, for f a distance
// in voxels.
template <typename Field, typename Skip>
double max_surface_error(const Mesh &m, const Field &f, const Skip &skip) {
  double worst = 0;
  for (size_t v = 0; v < m.vertex_count(); ++v) {
    const double p[3] = {m.vertices[3 * v], m.vertices[3 * v + 1], m.vertices[3 * v + 2]};
    if (!skip(p[0], p[1], p[2])) worst = std::max(worst, std::fabs(f(p[0], p[1], p[2])));
  }
  return worst;
}

template <typename Field>
double max_surface_error(const Mesh &m, const Field &f) {
  return max_surface_error(m, f, [](double, double, double) { return false; });
}

// Triangle normal (not normalized) of face f.
inline void face_normal(const Mesh &m, size_t f, double n[3], double centroid[3]) {
  const float *p[3];
  for (int c = 0; c < 3; ++c) p[c] = &m.vertices[3 * m.indices[3 * f + c]];
  double u[3], w[3];
  for (int a = 0; a < 3; ++a) {
    u[a] = double(p[1][a]) - p[0][a];
    w[a] = double(p[2][a]) - p[0][a];
    centroid[a] = (double(p[0][a]) + p[1][a] + p[2][a]) / 3;
  }
  n[0] = u[1] * w[2] - u[2] * w[1];
  n[1] = u[2] * w[0] - u[0] * w[2];
  n[2] = u[0] * w[1] - u[1] * w[0];
}

inline void print_topology(const char *name, const Topology &t) {
  std::fprintf(stderr, "%s: V=%ld E=%ld F=%ld boundary=%ld non-manifold=%ld flipped=%ld degenerate=%ld components=%ld\n",
               name, t.vertices, t.edges, t.faces, t.boundary, t.non_manifold, t.flipped, t.degenerate, t.components);
}
