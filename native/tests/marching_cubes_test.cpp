// Marching cubes on analytic fields: vertices on the surface, outward
// winding, watertight output with the expected Euler characteristic, NaN
// samples treated as outside, thread-count independence, and argument checks.
#include <cmath>
#include <cstring>
#include <vector>

#include "check.hpp"
#include "hy3d.h"
#include "mc_test_util.hpp"

namespace {

double length(double x, double y, double z) { return std::sqrt(x * x + y * y + z * z); }

// Signed distances in voxels, positive inside.
struct Sphere {
  double cx, cy, cz, r;
  double operator()(double x, double y, double z) const { return r - length(x - cx, y - cy, z - cz); }
};

struct Torus {  // around the k axis
  double cx, cy, cz, major, minor;
  double operator()(double x, double y, double z) const {
    const double q = std::hypot(x - cx, y - cy) - major;
    return minor - std::hypot(q, z - cz);
  }
};

template <typename A, typename B>
struct Union {
  A a;
  B b;
  double operator()(double x, double y, double z) const { return std::max(a(x, y, z), b(x, y, z)); }
  // Near the crease where the surfaces meet, linear interpolation of the
  // union is not accurate and the gradient is undefined.
  bool rough(double x, double y, double z) const { return std::fabs(a(x, y, z) - b(x, y, z)) < 1.5; }
};

struct Smooth {
  bool rough(double, double, double) const { return false; }
};

template <typename F>
struct Everywhere : F, Smooth {};

// A gyroid sheet `thickness` thick (in units of the gyroid function), cut to
// a ball so that it is closed.
struct GyroidShell {
  double c, r, period, thickness;
  double operator()(double x, double y, double z) const {
    const double s = 2 * M_PI / period;
    const double g = std::sin(s * x) * std::cos(s * y) + std::sin(s * y) * std::cos(s * z) +
                     std::sin(s * z) * std::cos(s * x);
    return std::min(thickness - std::fabs(g), r - length(x - c, y - c, z - c));
  }
};

// Counts triangles whose normal points up the gradient of f (inward).
template <typename Field>
long inward_faces(const Mesh &m, const Field &f) {
  long inward = 0;
  for (size_t t = 0; t < m.triangle_count(); ++t) {
    double n[3], c[3];
    face_normal(m, t, n, c);
    if (length(n[0], n[1], n[2]) < 1e-9 || f.rough(c[0], c[1], c[2])) continue;
    const double h = 1e-4;
    const double g[3] = {f(c[0] + h, c[1], c[2]) - f(c[0] - h, c[1], c[2]),
                         f(c[0], c[1] + h, c[2]) - f(c[0], c[1] - h, c[2]),
                         f(c[0], c[1], c[2] + h) - f(c[0], c[1], c[2] - h)};
    if (n[0] * g[0] + n[1] * g[1] + n[2] * g[2] > 0) ++inward;
  }
  return inward;
}

template <typename Field>
void check_closed_surface(const char *name, const Field &f, int64_t n, long euler, long components) {
  const Mesh m = extract(sample(n, n, n, f));
  CHECK(m.status == HY3D_OK);
  const Topology t = analyze(m);
  print_topology(name, t);
  CHECK(t.faces > 0);
  CHECK(t.watertight());
  CHECK(t.euler() == euler);
  CHECK(t.components == components);
  CHECK(t.vertices == static_cast<long>(m.vertex_count()));  // every vertex is used
  CHECK(finite_vertices(m));
  // Linear interpolation of a distance field is exact up to curvature terms.
  CHECK(max_surface_error(m, f, [&f](double x, double y, double z) { return f.rough(x, y, z); }) < 0.05);
  CHECK(inward_faces(m, f) == 0);
}

void test_analytic_surfaces() {
  check_closed_surface("sphere", Everywhere<Sphere>{{20.3, 19.7, 20.1, 12.5}, {}}, 42, 2, 1);
  check_closed_surface("torus", Everywhere<Torus>{{20.4, 20.2, 19.6, 11.0, 4.5}, {}}, 42, 0, 1);
  check_closed_surface("overlapping spheres", Union<Sphere, Sphere>{{14.2, 20.1, 20.3, 9}, {30.2, 20.1, 20.3, 9}}, 44,
                       2, 1);
  check_closed_surface("separate spheres", Union<Sphere, Sphere>{{12.2, 20.1, 20.3, 8}, {30.2, 20.1, 20.3, 8}}, 44,
                       4, 2);
}

// Spheres touching at one point, placed where the sampling makes the cells
// around the contact ambiguous: whichever way they resolve, the result must
// be closed surfaces of genus 0.
void test_touching_spheres() {
  for (double offset : {0.0, 0.25, 0.5}) {
    const Union<Sphere, Sphere> f{{11.5 + offset, 20.5, 20.5, 9}, {29.5 + offset, 20.5, 20.5, 9}};
    const Mesh m = extract(sample(42, 42, 42, f));
    const Topology t = analyze(m);
    print_topology("touching spheres", t);
    CHECK(t.watertight());
    CHECK(t.euler() == 2 * t.components);
    CHECK(finite_vertices(m));
  }
}

// The saddle (i-cx)(j-cy) with its axis through face centres: every face on
// the axis is ambiguous.
void test_saddle() {
  const double c = 16.5;
  auto f = [c](double x, double y, double z) {
    return std::min((x - c) * (y - c), 12.2 - length(x - c, y - c, z - c));
  };
  const Mesh m = extract(sample(34, 34, 34, f));
  const Topology t = analyze(m);
  print_topology("saddle", t);
  CHECK(t.faces > 0);
  CHECK(t.watertight());
  CHECK(t.euler() == 2 * t.components);
  CHECK(finite_vertices(m));
}

// Alternating signs: every cell is a checkerboard configuration, every face
// ambiguous.
void test_checkerboard() {
  Grid g = sample(10, 9, 8, [](double, double, double) { return -1.0; });
  for (int64_t i = 1; i + 1 < g.nx; ++i)
    for (int64_t j = 1; j + 1 < g.ny; ++j)
      for (int64_t k = 1; k + 1 < g.nz; ++k) g.at(i, j, k) = ((i + j + k) % 2 ? 1.0f : -1.0f) * (1.0f + 0.01f * k);
  const Mesh m = extract(g);
  const Topology t = analyze(m);
  print_topology("checkerboard", t);
  CHECK(t.faces > 0);
  CHECK(t.watertight());
  CHECK(finite_vertices(m));
}

void test_gyroid_shell() {
  const GyroidShell f{24.5, 21.3, 13.0, 0.35};
  const Mesh m = extract(sample(50, 50, 50, f));
  const Topology t = analyze(m);
  print_topology("gyroid shell", t);
  CHECK(t.faces > 1000);
  CHECK(t.watertight());
  CHECK(t.euler() % 2 == 0);
  CHECK(finite_vertices(m));
}

// NaN samples are outside: a NaN slab through a sphere leaves two closed
// caps, and no vertex is NaN.
void test_nan_regions() {
  const Sphere sphere{20.3, 19.7, 20.1, 12.5};
  Grid g = sample(42, 42, 42, sphere);
  for (int64_t i = 18; i <= 21; ++i)
    for (int64_t j = 0; j < g.ny; ++j)
      for (int64_t k = 0; k < g.nz; ++k) g.at(i, j, k) = std::nanf("");
  // And scattered NaN outside the sphere, which must change nothing.
  Grid h = sample(42, 42, 42, sphere);
  for (size_t s = 0; s < h.values.size(); s += 7) {
    if (h.values[s] < -1.5f) h.values[s] = std::nanf("");
  }
  const Mesh slab = extract(g), scattered = extract(h), plain = extract(sample(42, 42, 42, sphere));
  const Topology t = analyze(slab);
  print_topology("NaN slab", t);
  CHECK(t.watertight());
  CHECK(t.components == 2);
  CHECK(t.euler() == 4);
  CHECK(finite_vertices(slab));
  for (size_t v = 0; v < slab.vertex_count(); ++v) CHECK(slab.vertices[3 * v] <= 17.5f || slab.vertices[3 * v] >= 21.5f);
  CHECK(scattered == plain);
  // A grid of NaN only has nothing inside.
  const Mesh none = extract(sample(5, 6, 7, [](double, double, double) { return std::nan(""); }));
  CHECK(none.status == HY3D_OK && none.triangle_count() == 0 && none.vertex_count() == 0);
}

// The output (vertex order included) does not depend on the thread count.
void test_thread_count_independent() {
  const Grid g = sample(37, 41, 70, Torus{18.2, 20.1, 35.3, 11.0, 5.0});
  const Mesh one = extract(g, 0.0f, 1);
  CHECK(one.triangle_count() > 0);
  for (int threads : {2, 3, 0, 64}) CHECK(extract(g, 0.0f, threads) == one);
}

// Samples exactly at the level are outside; output stays closed.
void test_samples_on_level() {
  const Sphere f{16, 16, 16, 10};
  const Mesh m = extract(sample(33, 33, 33, f));
  const Topology t = analyze(m);
  CHECK(t.watertight());
  CHECK(t.euler() == 2);
  // A nonzero level is the same surface as the shifted field at zero.
  const Mesh shifted = extract(sample(33, 33, 33, [f](double x, double y, double z) { return f(x, y, z) + 2.5; }), 2.5f);
  const Topology ts = analyze(shifted);
  CHECK(ts.watertight() && ts.euler() == 2);
  CHECK(max_surface_error(shifted, f) < 0.05);
}

// Rows longer than one 64-bit word, and a surface crossing word boundaries.
void test_long_rows() {
  const Sphere f{6.2, 6.9, 100.3, 5.5};
  const Mesh m = extract(sample(14, 15, 200, f));
  const Topology t = analyze(m);
  CHECK(t.watertight() && t.euler() == 2 && t.components == 1);
  CHECK(max_surface_error(m, f) < 0.05);
  const Sphere g{6.2, 6.9, 64.0, 5.5};  // centred on a word boundary
  const Mesh n = extract(sample(14, 15, 129, g));
  const Topology u = analyze(n);
  CHECK(u.watertight() && u.euler() == 2 && u.components == 1);
}

void test_degenerate_grids() {
  for (auto dims : {std::vector<int64_t>{1, 5, 5}, {5, 1, 5}, {5, 5, 1}, {1, 1, 1}}) {
    const Mesh m = extract(sample(dims[0], dims[1], dims[2], [](double, double, double) { return 1.0; }));
    CHECK(m.status == HY3D_OK && m.triangle_count() == 0);
  }
  // An all-inside grid has no surface (the grid border is not closed off).
  const Mesh full = extract(sample(6, 6, 6, [](double, double, double) { return 1.0; }));
  CHECK(full.status == HY3D_OK && full.triangle_count() == 0);
}

void test_invalid_arguments() {
  const float v[8] = {};
  hy3d_mesh *m = reinterpret_cast<hy3d_mesh *>(0x1);
  CHECK(hy3d_marching_cubes(v, 2, 2, 2, 0.0f, 1, nullptr) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(hy3d_marching_cubes(nullptr, 2, 2, 2, 0.0f, 1, &m) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(m == nullptr);
  CHECK(std::strstr(hy3d_last_error(), "NULL values") != nullptr);
  CHECK(hy3d_marching_cubes(v, 0, 2, 2, 0.0f, 1, &m) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(hy3d_marching_cubes(v, 2, -2, 2, 0.0f, 1, &m) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(hy3d_marching_cubes(v, int64_t{1} << 40, int64_t{1} << 40, 2, 0.0f, 1, &m) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(hy3d_last_error(), "too large") != nullptr);
  CHECK(hy3d_marching_cubes(v, 2, 2, 2, std::nanf(""), 1, &m) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(hy3d_marching_cubes(v, 2, 2, 2, INFINITY, 1, &m) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(hy3d_marching_cubes(v, 2, 2, 2, 0.0f, 1, &m) == HY3D_OK);
  CHECK(std::strlen(hy3d_last_error()) == 0);
  hy3d_mesh_destroy(m);
}

}  // namespace

int main() {
  test_analytic_surfaces();
  test_touching_spheres();
  test_saddle();
  test_checkerboard();
  test_gyroid_shell();
  test_nan_regions();
  test_thread_count_independent();
  test_samples_on_level();
  test_long_rows();
  test_degenerate_grids();
  test_invalid_arguments();
  return check_failures();
}
