// hy3d_simplify: budgets, topology (manifold, closed stays closed, genus
// kept, no duplicate faces) on ordinary and thin shapes, fixed boundaries,
// the error bound, and argument checking.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "check.hpp"
#include "hy3d.h"

namespace {

struct Mesh {
  std::vector<float> v;
  std::vector<uint32_t> f;
  size_t faces() const { return f.size() / 3; }
  uint32_t add(double x, double y, double z) {
    v.push_back(float(x));
    v.push_back(float(y));
    v.push_back(float(z));
    return uint32_t(v.size() / 3 - 1);
  }
  void tri(uint32_t a, uint32_t b, uint32_t c) { f.insert(f.end(), {a, b, c}); }
  void append(const Mesh &o) {
    const uint32_t base = uint32_t(v.size() / 3);
    v.insert(v.end(), o.v.begin(), o.v.end());
    for (uint32_t i : o.f) f.push_back(base + i);
  }
};

// Subdivided icosahedron projected on a sphere.
Mesh icosphere(int levels, double radius, double cx) {
  const double t = (1 + std::sqrt(5.0)) / 2;
  std::vector<std::array<double, 3>> p = {{-1, t, 0}, {1, t, 0}, {-1, -t, 0}, {1, -t, 0}, {0, -1, t}, {0, 1, t},
                                          {0, -1, -t}, {0, 1, -t}, {t, 0, -1}, {t, 0, 1}, {-t, 0, -1}, {-t, 0, 1}};
  std::vector<std::array<uint32_t, 3>> faces = {{0, 11, 5}, {0, 5, 1},  {0, 1, 7},   {0, 7, 10}, {0, 10, 11},
                                                {1, 5, 9},  {5, 11, 4}, {11, 10, 2}, {10, 7, 6}, {7, 1, 8},
                                                {3, 9, 4},  {3, 4, 2},  {3, 2, 6},   {3, 6, 8},  {3, 8, 9},
                                                {4, 9, 5},  {2, 4, 11}, {6, 2, 10},  {8, 6, 7},  {9, 8, 1}};
  for (int l = 0; l < levels; ++l) {
    std::map<std::pair<uint32_t, uint32_t>, uint32_t> mid;
    auto midpoint = [&](uint32_t a, uint32_t b) {
      auto key = std::minmax(a, b);
      auto it = mid.find(key);
      if (it != mid.end()) return it->second;
      p.push_back({(p[a][0] + p[b][0]) / 2, (p[a][1] + p[b][1]) / 2, (p[a][2] + p[b][2]) / 2});
      return mid[key] = uint32_t(p.size() - 1);
    };
    std::vector<std::array<uint32_t, 3>> next;
    for (auto &f : faces) {
      uint32_t a = midpoint(f[0], f[1]), b = midpoint(f[1], f[2]), c = midpoint(f[2], f[0]);
      next.insert(next.end(), {{f[0], a, c}, {f[1], b, a}, {f[2], c, b}, {a, b, c}});
    }
    faces.swap(next);
  }
  Mesh m;
  for (auto &q : p) {
    double n = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2]);
    m.add(cx + radius * q[0] / n, radius * q[1] / n, radius * q[2] / n);
  }
  for (auto &f : faces) m.tri(f[0], f[1], f[2]);
  return m;
}

// Torus around z, n×m quads split in two, outward winding.
Mesh torus(int n, int m, double big, double small) {
  Mesh out;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < m; ++j) {
      double a = 2 * M_PI * i / n, b = 2 * M_PI * j / m;
      out.add((big + small * std::cos(b)) * std::cos(a), (big + small * std::cos(b)) * std::sin(a),
              small * std::sin(b));
    }
  auto id = [&](int i, int j) { return uint32_t(((i + n) % n) * m + (j + m) % m); };
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < m; ++j) {
      out.tri(id(i, j), id(i + 1, j), id(i + 1, j + 1));
      out.tri(id(i, j), id(i + 1, j + 1), id(i, j + 1));
    }
  return out;
}

// A closed box [0,sx]×[0,sy]×[0,sz] with every face cut into a fine grid of
// (nearly) square cells; with a tiny sz it is a thin plate whose two sides
// are joined only by one row of cells along the rim.
Mesh box(double sx, double sy, double sz, int nx, int ny, int nz) {
  Mesh m;
  std::map<std::array<int, 3>, uint32_t> ids;
  auto vertex = [&](int i, int j, int k) {
    auto it = ids.find({i, j, k});
    if (it != ids.end()) return it->second;
    return ids[{i, j, k}] = m.add(sx * i / nx, sy * j / ny, sz * k / nz);
  };
  // One side of the box: the grid spanned by axes a and b at c = fixed.
  auto side = [&](int axis_a, int axis_b, int na, int nb, int fixed_axis, int fixed, bool flip) {
    for (int i = 0; i < na; ++i)
      for (int j = 0; j < nb; ++j) {
        std::array<uint32_t, 4> q;
        const int di[4] = {0, 1, 1, 0}, dj[4] = {0, 0, 1, 1};
        for (int c = 0; c < 4; ++c) {
          int idx[3];
          idx[axis_a] = i + di[c];
          idx[axis_b] = j + dj[c];
          idx[fixed_axis] = fixed;
          q[c] = vertex(idx[0], idx[1], idx[2]);
        }
        if (flip) {
          m.tri(q[0], q[2], q[1]);
          m.tri(q[0], q[3], q[2]);
        } else {
          m.tri(q[0], q[1], q[2]);
          m.tri(q[0], q[2], q[3]);
        }
      }
  };
  side(0, 1, nx, ny, 2, nz, false);
  side(0, 1, nx, ny, 2, 0, true);
  side(1, 2, ny, nz, 0, nx, false);
  side(1, 2, ny, nz, 0, 0, true);
  side(2, 0, nz, nx, 1, ny, false);
  side(2, 0, nz, nx, 1, 0, true);
  return m;
}

// A thin closed tube along x whose cross-section is a triangle: any
// collapse across it would fold the tube flat.
Mesh thin_tube(int segments, double length, double radius) {
  Mesh m;
  for (int i = 0; i <= segments; ++i)
    for (int k = 0; k < 3; ++k) {
      double a = 2 * M_PI * k / 3;
      m.add(length * i / segments, radius * std::cos(a), radius * std::sin(a));
    }
  for (int i = 0; i < segments; ++i)
    for (int k = 0; k < 3; ++k) {
      uint32_t a = uint32_t(3 * i + k), b = uint32_t(3 * i + (k + 1) % 3);
      m.tri(a, a + 3, b + 3);
      m.tri(a, b + 3, b);
    }
  m.tri(0, 1, 2);
  uint32_t e = uint32_t(3 * segments);
  m.tri(e, e + 2, e + 1);
  return m;
}

// Open height field on [0,1]² (a boundary all around).
Mesh bumpy_sheet(int n) {
  Mesh m;
  for (int i = 0; i <= n; ++i)
    for (int j = 0; j <= n; ++j) {
      double x = double(i) / n, y = double(j) / n;
      m.add(x, y, 0.05 * std::sin(6 * x) * std::cos(5 * y));
    }
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      uint32_t a = uint32_t(i * (n + 1) + j);
      m.tri(a, a + uint32_t(n + 1), a + uint32_t(n + 2));
      m.tri(a, a + uint32_t(n + 2), a + 1);
    }
  return m;
}

struct Topo {
  size_t boundary = 0, non_manifold = 0, flipped = 0, degenerate = 0, duplicates = 0;
  long euler = 0;
};

Topo topology(const Mesh &m) {
  Topo t;
  std::map<std::pair<uint32_t, uint32_t>, std::pair<int, int>> edges;  // faces, forward uses
  std::set<std::array<uint32_t, 3>> face_sets;
  std::set<uint32_t> used;
  for (size_t i = 0; i < m.faces(); ++i) {
    const uint32_t *f = &m.f[3 * i];
    if (f[0] == f[1] || f[1] == f[2] || f[0] == f[2]) ++t.degenerate;
    std::array<uint32_t, 3> s = {f[0], f[1], f[2]};
    std::sort(s.begin(), s.end());
    if (!face_sets.insert(s).second) ++t.duplicates;
    for (int k = 0; k < 3; ++k) {
      used.insert(f[k]);
      uint32_t a = f[k], b = f[(k + 1) % 3];
      auto &e = edges[std::minmax(a, b)];
      ++e.first;
      if (a < b) ++e.second;
    }
  }
  for (auto &[key, e] : edges) {
    if (e.first == 1) ++t.boundary;
    if (e.first > 2) ++t.non_manifold;
    if (e.first == 2 && e.second != 1) ++t.flipped;
  }
  t.euler = long(used.size()) - long(edges.size()) + long(m.faces());
  return t;
}

Mesh simplify(const Mesh &in, size_t target, float max_error = 0, int threads = 2) {
  hy3d_mesh *out = nullptr;
  hy3d_status st = hy3d_simplify(in.v.data(), in.v.size() / 3, in.f.data(), in.faces(), target, max_error, threads, &out);
  CHECK(st == HY3D_OK);
  Mesh m;
  if (st != HY3D_OK) {
    std::fprintf(stderr, "hy3d_simplify: %s\n", hy3d_last_error());
    return m;
  }
  const float *v;
  const uint32_t *f;
  size_t nv, nf;
  CHECK(hy3d_mesh_view(out, &v, &nv, &f, &nf) == HY3D_OK);
  m.v.assign(v, v + 3 * nv);
  m.f.assign(f, f + 3 * nf);
  hy3d_mesh_destroy(out);
  for (uint32_t i : m.f) CHECK(i < nv);
  return m;
}

// Largest distance from a vertex of `m` to the sphere of radius r at (cx,0,0).
double sphere_deviation(const Mesh &m, double r, double cx) {
  double worst = 0;
  for (size_t i = 0; i < m.v.size(); i += 3) {
    double x = m.v[i] - cx, y = m.v[i + 1], z = m.v[i + 2];
    worst = std::max(worst, std::abs(std::sqrt(x * x + y * y + z * z) - r));
  }
  return worst;
}

void check_closed_manifold(const char *name, const Mesh &in, size_t target, long euler) {
  Topo before = topology(in);
  CHECK(before.boundary == 0 && before.non_manifold == 0 && before.flipped == 0);
  CHECK(before.euler == euler);
  Mesh out = simplify(in, target);
  Topo after = topology(out);
  std::printf("%s: %zu -> %zu faces (target %zu), boundary %zu, non-manifold %zu, flipped %zu, dup %zu, euler %ld\n",
              name, in.faces(), out.faces(), target, after.boundary, after.non_manifold, after.flipped,
              after.duplicates, after.euler);
  CHECK(out.faces() <= target);
  CHECK(out.faces() + 2 >= target);
  CHECK(after.boundary == 0);
  CHECK(after.non_manifold == 0);
  CHECK(after.flipped == 0);
  CHECK(after.degenerate == 0);
  CHECK(after.duplicates == 0);
  CHECK(after.euler == euler);
}

void test_budgets_and_topology() {
  check_closed_manifold("icosphere", icosphere(5, 1.0, 0), 1000, 2);
  check_closed_manifold("torus", torus(120, 60, 1.0, 0.3), 2000, 0);
  check_closed_manifold("thin plate", box(1.0, 1.0, 0.002, 60, 60, 1), 500, 2);
  check_closed_manifold("thin tube", thin_tube(400, 1.0, 0.001), 200, 2);
  Mesh pair = icosphere(4, 0.5, -0.5001);
  pair.append(icosphere(4, 0.5, 0.5001));
  check_closed_manifold("nearly touching spheres", pair, 800, 4);
}

void test_shape_is_kept() {
  Mesh in = icosphere(5, 1.0, 0);
  Mesh out = simplify(in, 2000);
  // A 2000-face sphere has edges of ~0.08; its vertices sit on the surface.
  CHECK(sphere_deviation(out, 1.0, 0) < 0.01);
}

// The tetrahedron is as far as a closed sphere can go: asking for less
// must not fold it into duplicate faces.
void test_stops_at_tetrahedron() {
  Mesh in = icosphere(2, 1.0, 0);
  Mesh out = simplify(in, 1);
  Topo t = topology(out);
  CHECK(out.faces() >= 4);
  CHECK(t.boundary == 0 && t.non_manifold == 0 && t.duplicates == 0 && t.euler == 2);
}

void test_boundary_is_fixed() {
  Mesh in = bumpy_sheet(40);
  Topo before = topology(in);
  Mesh out = simplify(in, 600);
  Topo after = topology(out);
  CHECK(out.faces() < in.faces());
  CHECK(after.non_manifold == 0 && after.duplicates == 0 && after.flipped == 0);
  CHECK(after.boundary == before.boundary);
  // Every boundary vertex of the input is still there, unmoved.
  std::set<std::array<float, 3>> positions;
  for (size_t i = 0; i < out.v.size(); i += 3) positions.insert({out.v[i], out.v[i + 1], out.v[i + 2]});
  for (size_t i = 0; i < in.v.size(); i += 3) {
    float x = in.v[i], y = in.v[i + 1];
    if (x == 0 || y == 0 || x == 1 || y == 1) CHECK(positions.count({x, y, in.v[i + 2]}) == 1);
  }
}

void test_under_budget_is_unchanged() {
  Mesh in = torus(20, 10, 1.0, 0.3);
  Mesh out = simplify(in, in.faces());
  CHECK(out.faces() == in.faces());
  CHECK(out.v.size() == in.v.size());
}

void test_error_bound_stops_early() {
  Mesh in = icosphere(4, 1.0, 0);
  Mesh bounded = simplify(in, 100, 1e-5f);
  Mesh free = simplify(in, 100, 0);
  CHECK(free.faces() <= 100);
  CHECK(bounded.faces() > 1000);
}

void test_repeated_index_faces_are_dropped() {
  Mesh in = icosphere(3, 1.0, 0);
  in.tri(0, 0, 1);
  Mesh out = simplify(in, in.faces());
  CHECK(topology(out).degenerate == 0);
  CHECK(out.faces() == in.faces() - 1);
}

// Ranking is split over threads by vertex range; the result must not depend
// on how many (the mesh is large enough for several).
void test_threads_do_not_change_the_result() {
  Mesh in = icosphere(6, 1.0, 0);
  Mesh one = simplify(in, 5000, 0, 1);
  Mesh four = simplify(in, 5000, 0, 4);
  CHECK(one.v == four.v);
  CHECK(one.f == four.f);
}

void test_invalid_arguments() {
  Mesh in = icosphere(1, 1.0, 0);
  hy3d_mesh *out = reinterpret_cast<hy3d_mesh *>(0x1);
  CHECK(hy3d_simplify(in.v.data(), in.v.size() / 3, in.f.data(), in.faces(), 10, 0, 1, nullptr) ==
        HY3D_ERR_INVALID_ARGUMENT);
  CHECK(hy3d_simplify(nullptr, 3, in.f.data(), in.faces(), 10, 0, 1, &out) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(out == nullptr);

  Mesh bad = in;
  bad.f[7] = uint32_t(bad.v.size() / 3);
  CHECK(hy3d_simplify(bad.v.data(), bad.v.size() / 3, bad.f.data(), bad.faces(), 10, 0, 1, &out) ==
        HY3D_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(hy3d_last_error(), "index") != nullptr);

  bad = in;
  bad.v[4] = std::nanf("");
  CHECK(hy3d_simplify(bad.v.data(), bad.v.size() / 3, bad.f.data(), bad.faces(), 10, 0, 1, &out) ==
        HY3D_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(hy3d_last_error(), "non-finite") != nullptr);

  CHECK(hy3d_simplify(in.v.data(), in.v.size() / 3, in.f.data(), in.faces(), 10, -1.0f, 1, &out) ==
        HY3D_ERR_INVALID_ARGUMENT);

  // An empty mesh is not an error.
  CHECK(hy3d_simplify(nullptr, 0, nullptr, 0, 10, 0, 0, &out) == HY3D_OK);
  const float *v;
  const uint32_t *f;
  size_t nv = 1, nf = 1;
  CHECK(hy3d_mesh_view(out, &v, &nv, &f, &nf) == HY3D_OK);
  CHECK(nv == 0 && nf == 0);
  hy3d_mesh_destroy(out);
}

}  // namespace

int main() {
  test_budgets_and_topology();
  test_shape_is_kept();
  test_stops_at_tetrahedron();
  test_boundary_is_fixed();
  test_under_budget_is_unchanged();
  test_error_bound_stops_early();
  test_repeated_index_faces_are_dropped();
  test_threads_do_not_change_the_result();
  test_invalid_arguments();
  return check_failures();
}
