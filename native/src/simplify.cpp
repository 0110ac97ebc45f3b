// Quadric edge-collapse simplification that never breaks manifoldness.
//
// Why not meshopt_simplify: it cannot be told to reject a collapse, and on
// thin marching-cubes shells it leaves non-manifold edges and duplicate
// faces (README.md, "Measured here": meshoptimizer 0.18 left 275
// non-manifold edges decimating the 256³ benchmark mesh to 40,000 faces). Here every collapse must pass the link
// condition, which is what keeps a closed 2-manifold closed and manifold
// (Dey, Edelsbrunner, Guha, Nekhayev, "Topology preserving edge
// contraction", 1999).
//
// What it reproduces: Hunyuan3D's FaceReducer (hy3dgen/shapegen/
// postprocessors.py, reduce_face) runs MeshLab's
// meshing_decimation_quadric_edge_collapse with qualitythr=1.0,
// preserveboundary, boundaryweight=3, preservenormal, preservetopology,
// autoclean and the default optimal placement. In vcglib's
// TriEdgeCollapseQuadric, as MeshLab's filter configures it, that means:
//  - boundary vertices never move (PreserveBoundary is turned into
//    FastPreserveBoundary, so boundaryweight has no effect);
//  - a collapse must pass the link condition (preservetopology);
//  - the vertex lands where the summed quadric of both ends is smallest;
//  - the cost is the quadric error divided by the worst quality of the
//    triangles the collapse reshapes (2·area / longest edge², capped at
//    qualitythr) and by a normal factor (min(cos θ, cos 45°) + 1) / 2, so
//    turning a triangle by more than 45° costs more and flipping it is
//    never worth it;
//  - zero-error collapses go shortest edge first.
// We reject outright a collapse that turns a triangle by more than 90°
// (MeshLab only penalizes it) and, like autoclean, emit no unreferenced
// vertex. Face quadrics are weighted by area (Garland–Heckbert); the
// vertices of non-manifold edges stay fixed like boundary vertices.
//
// How it stays fast (MeshLab takes ~23 s of CPU for 1M → 40k faces here;
// one global heap re-scored around every collapse is cache-hostile): it
// works in passes over the whole mesh. A pass ranks every edge by the
// summed quadric of its ends at the best of its ends and midpoint (cheap,
// never below the error of the final placement, and spread over threads),
// sets a threshold from the ranking (1.5× the rank of the collapse that
// would meet the budget, as meshoptimizer does), and walks the edges under
// it in two bands, the cheaper half first, each in vertex order so memory
// is touched locally. A vertex takes part in at most one collapse per pass,
// so every rank it is judged by is current. The placement, the link
// condition and the shape penalty are computed only for the collapses
// attempted. Between passes dead faces and vertices are squeezed out, so
// later passes walk dense arrays.
#include <meshoptimizer.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "mesh.hpp"
#include "status.hpp"

namespace hy3d {
namespace {

struct Vec3 {
  double x, y, z;
};

inline Vec3 operator+(Vec3 a, Vec3 b) { return {a.x + b.x, a.y + b.y, a.z + b.z}; }
inline Vec3 operator-(Vec3 a, Vec3 b) { return {a.x - b.x, a.y - b.y, a.z - b.z}; }
inline Vec3 operator*(Vec3 a, double s) { return {a.x * s, a.y * s, a.z * s}; }
inline double dot(Vec3 a, Vec3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
inline Vec3 cross(Vec3 a, Vec3 b) { return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x}; }

// Q(p) = pᵀAp + 2bᵀp + c: the area-weighted sum of squared distances from p
// to the planes folded into it. area is the total weight, so Q(p)/area is a
// mean squared distance (the max_error bound).
struct Quadric {
  double a00 = 0, a01 = 0, a02 = 0, a11 = 0, a12 = 0, a22 = 0;
  double b0 = 0, b1 = 0, b2 = 0, c = 0;
  double area = 0;

  // The plane n·p + d = 0 with |n| = 1, weighted by w.
  void add_plane(Vec3 n, double d, double w) {
    a00 += w * n.x * n.x;
    a01 += w * n.x * n.y;
    a02 += w * n.x * n.z;
    a11 += w * n.y * n.y;
    a12 += w * n.y * n.z;
    a22 += w * n.z * n.z;
    b0 += w * n.x * d;
    b1 += w * n.y * d;
    b2 += w * n.z * d;
    c += w * d * d;
    area += w;
  }

  Quadric &operator+=(const Quadric &o) {
    a00 += o.a00;
    a01 += o.a01;
    a02 += o.a02;
    a11 += o.a11;
    a12 += o.a12;
    a22 += o.a22;
    b0 += o.b0;
    b1 += o.b1;
    b2 += o.b2;
    c += o.c;
    area += o.area;
    return *this;
  }

  Vec3 apply_a(Vec3 p) const {
    return {a00 * p.x + a01 * p.y + a02 * p.z, a01 * p.x + a11 * p.y + a12 * p.z,
            a02 * p.x + a12 * p.y + a22 * p.z};
  }

  double eval(Vec3 p) const {
    return std::max(0.0, dot(p, apply_a(p)) + 2 * (b0 * p.x + b1 * p.y + b2 * p.z) + c);
  }
};

inline Quadric operator+(Quadric a, const Quadric &b) {
  a += b;
  return a;
}

// Where the merged vertex of a collapse goes and the quadric error there.
struct Placement {
  Vec3 p;
  double error;
};

struct Edge {
  uint32_t u, v;  // u < v
  float rank;
};

// One face around a vertex, copied out of the mesh for a collapse attempt.
struct Corner {
  uint32_t face;
  uint32_t v[3];
  bool has(uint32_t x) const { return v[0] == x || v[1] == x || v[2] == x; }
};

// Triangle quality as vcglib measures it: 2·area / longest edge², 0 for a
// degenerate triangle, √3/2 for an equilateral one.
constexpr double kBestQuality = 0.86602540378443865;
// Hunyuan3D's qualitythr.
constexpr double kQualityThreshold = 1.0;
// MeshLab's preservenormal sets NormalThrRad = π/4: turning a triangle by
// less than 45° is free.
constexpr double kCos45 = 0.70710678118654752;
constexpr double kBestNormalFactor = (kCos45 + 1) / 2;
// Errors at the level of rounding noise (relative to the merged area) count
// as zero; such collapses are then ranked by edge length, as in vcglib.
constexpr double kNoiseError = 1e-15;
// Below this determinant (relative to the trace cubed, or squared in 2D) a
// quadric's minimizer is too ill-determined to trust.
constexpr double kMinRelativeDeterminant = 1e-9;
// A pass takes the edges under its threshold in this many bands of halving
// cost, cheapest first. More bands follow the cost order more closely but
// jump around memory more; two lose nothing measurable against four
// (bench/decimate) and save a sixth of the time.
constexpr int kBands = 2;
// Passes in a row without a single collapse (each doubling the threshold)
// before giving up above the budget.
constexpr int kMaxIdlePasses = 8;

// Below this many vertices per thread, ranking stays on one thread.
constexpr uint32_t kMinVerticesPerThread = 20000;

constexpr uint32_t kNone = UINT32_MAX;
constexpr uint8_t kLocked = 1;   // on a boundary or non-manifold edge: never moves
constexpr uint8_t kRemoved = 2;  // collapsed into another vertex
constexpr uint8_t kTouched = 4;  // merged in this pass: its ranks are stale
constexpr uint8_t kMoved = 8;    // its input coordinates are out of date

class Simplifier {
 public:
  Simplifier(const float *vertices, size_t vertex_count, const uint32_t *indices, size_t triangle_count,
             double max_error, int threads)
      : threads_(std::max(1, threads)),
        input_(vertices),
        original_(vertex_count),
        pos_(vertex_count),
        quadric_(vertex_count),
        state_(vertex_count, 0),
        mark_(vertex_count, 0),
        blocked_with_(vertex_count, kNone),
        penalized_with_(vertex_count, kNone),
        penalty_(vertex_count, 1.0f),
        faces_(indices, indices + 3 * triangle_count),
        face_alive_(triangle_count, 1),
        live_faces_(triangle_count),
        ref_begin_(vertex_count, 0),
        ref_size_(vertex_count, 0),
        max_error_sq_(max_error > 0 ? max_error * max_error : std::numeric_limits<double>::infinity()) {
    for (size_t v = 0; v < vertex_count; ++v) original_[v] = uint32_t(v);
    normalize_positions();
    drop_repeated_index_faces();
    build_adjacency();
    lock_boundary_and_non_manifold();
    init_quadrics();
  }

  void run(size_t target) {
    std::vector<Edge> edges, banded;
    std::vector<float> ranks;
    double threshold = 0;
    int idle_passes = 0;
    while (live_faces_ > target) {
      if (passes_ > 0) build_adjacency();
      ++passes_;
      rank_edges(edges);
      if (edges.empty()) break;
      // Each interior collapse removes two faces. The threshold never goes
      // down: costs grow as the mesh gets coarser.
      const size_t goal = std::max<size_t>(1, (live_faces_ - target + 1) / 2);
      if (goal < edges.size()) {
        ranks.resize(edges.size());
        for (size_t i = 0; i < edges.size(); ++i) ranks[i] = edges[i].rank;
        std::nth_element(ranks.begin(), ranks.begin() + goal, ranks.end());
        threshold = std::max(threshold, 1.5 * double(ranks[goal]));
      } else {
        threshold = std::numeric_limits<double>::infinity();
      }
      // Stable partition into bands, cheapest first; edges over the
      // threshold are dropped.
      size_t band_begin[kBands + 1] = {};
      double bound[kBands];
      for (int b = 0; b < kBands; ++b) bound[b] = std::ldexp(threshold, b + 1 - kBands);
      auto band_of = [&](float r) {
        int b = 0;
        while (b < kBands && double(r) > bound[b]) ++b;
        return b;
      };
      for (const Edge &e : edges) ++band_begin[band_of(e.rank)];
      for (size_t b = 0, sum = 0; b <= kBands; ++b) {
        const size_t n = band_begin[b];
        band_begin[b] = sum;
        sum += n;
      }
      banded.resize(band_begin[kBands]);
      size_t fill[kBands];
      std::copy_n(band_begin, kBands, fill);
      for (const Edge &e : edges) {
        const int b = band_of(e.rank);
        if (b < kBands) banded[fill[b]++] = e;
      }
      size_t done = 0;
      for (size_t i = 0; i < banded.size(); ++i) {
        const Edge &e = banded[i];
        // Start the loads of later attempts early: the walk jumps over
        // every edge that is not a candidate, so caches are often cold.
        if (i + 16 < banded.size()) prefetch_vertex(banded[i + 16].u);
        if (i + 8 < banded.size()) prefetch_faces(banded[i + 8].u);
        if (live_faces_ <= target) break;
        if ((state_[e.u] | state_[e.v]) & (kTouched | kRemoved)) continue;
        if (try_collapse(e.u, e.v, threshold)) ++done;
      }
      collapses_ += done;
      if (penalty_count_ > 0) {
        typical_penalty_ = std::exp(log_penalty_sum_ / double(penalty_count_));
        log_penalty_sum_ = 0;
        penalty_count_ = 0;
      }
      for (uint8_t &s : state_) s &= uint8_t(~kTouched);
      if (done == 0) {
        // Everything under the threshold was blocked or failed its checks.
        if (++idle_passes > kMaxIdlePasses) break;
        threshold = threshold > 0 ? 2 * threshold : std::numeric_limits<double>::min();
      } else {
        idle_passes = 0;
        // Shape penalties and the collapses around them push costs above
        // the ranks the threshold came from; a pass that fell far short of
        // its goal looks further next time.
        if (done < goal / 4) threshold *= 1.5;
      }
    }
  }

  void emit(hy3d_mesh &out) const {
    std::vector<uint32_t> remap(pos_.size(), kNone);
    std::vector<uint32_t> indices;
    indices.reserve(3 * live_faces_);
    std::vector<float> vertices;
    for (size_t f = 0; f < face_alive_.size(); ++f) {
      if (!face_alive_[f]) continue;
      for (int k = 0; k < 3; ++k) {
        const uint32_t v = faces_[3 * f + k];
        if (remap[v] == kNone) {
          remap[v] = uint32_t(vertices.size() / 3);
          if (state_[v] & kMoved) {
            const Vec3 p = pos_[v] * scale_ + center_;
            vertices.insert(vertices.end(), {float(p.x), float(p.y), float(p.z)});
          } else {
            // Bit-exact: normalizing and back could nudge a fixed vertex.
            const float *p = input_ + 3 * size_t(original_[v]);
            vertices.insert(vertices.end(), p, p + 3);
          }
        }
        indices.push_back(remap[v]);
      }
    }
    // Vertex-cache and fetch order for whoever renders the result; it moves
    // triangles and vertices around, never changes them.
    const size_t vertex_count = vertices.size() / 3;
    out.indices.resize(indices.size());
    meshopt_optimizeVertexCache(out.indices.data(), indices.data(), indices.size(), vertex_count);
    out.vertices.resize(vertices.size());
    meshopt_optimizeVertexFetch(out.vertices.data(), out.indices.data(), out.indices.size(), vertices.data(),
                                vertex_count, 3 * sizeof(float));
  }

  size_t live_faces() const { return live_faces_; }
  size_t passes() const { return passes_; }
  size_t collapses() const { return collapses_; }
  size_t rejected_by_link() const { return rejected_by_link_; }
  size_t rejected_by_shape() const { return rejected_by_shape_; }

 private:
  // Centered on the bounding box and scaled to a unit diagonal, so the
  // quadrics are well conditioned and errors are relative to the mesh size.
  void normalize_positions() {
    Vec3 lo{INFINITY, INFINITY, INFINITY}, hi{-INFINITY, -INFINITY, -INFINITY};
    for (size_t i = 0; i < pos_.size(); ++i) {
      const Vec3 p{input_[3 * i], input_[3 * i + 1], input_[3 * i + 2]};
      lo = {std::min(lo.x, p.x), std::min(lo.y, p.y), std::min(lo.z, p.z)};
      hi = {std::max(hi.x, p.x), std::max(hi.y, p.y), std::max(hi.z, p.z)};
      pos_[i] = p;
    }
    if (pos_.empty()) return;
    center_ = (lo + hi) * 0.5;
    const double diagonal = std::sqrt(dot(hi - lo, hi - lo));
    scale_ = diagonal > 0 ? diagonal : 1.0;
    for (Vec3 &p : pos_) p = (p - center_) * (1.0 / scale_);
  }

  void drop_repeated_index_faces() {
    for (size_t f = 0; f < face_alive_.size(); ++f) {
      const uint32_t *t = &faces_[3 * f];
      if (t[0] == t[1] || t[1] == t[2] || t[0] == t[2]) {
        face_alive_[f] = 0;
        --live_faces_;
      }
    }
  }

  // Drops dead faces and the vertices no face uses any more (keeping the
  // order of the rest, so that later passes walk dense arrays), then builds
  // compact vertex → faces lists. Collapses append new lists at the end, so
  // a pass never has to shift anything.
  void build_adjacency() {
    size_t kept = 0;
    for (size_t f = 0; f < face_alive_.size(); ++f) {
      if (!face_alive_[f]) continue;
      std::copy_n(&faces_[3 * f], 3, &faces_[3 * kept]);
      ++kept;
    }
    faces_.resize(3 * kept);
    face_alive_.assign(kept, 1);
    compact_vertices();
    std::fill(ref_size_.begin(), ref_size_.end(), 0);
    for (uint32_t v : faces_) ++ref_size_[v];
    uint32_t sum = 0;
    for (size_t v = 0; v < ref_size_.size(); ++v) {
      ref_begin_[v] = sum;
      sum += ref_size_[v];
      ref_size_[v] = 0;
    }
    refs_.resize(sum);
    refs_.reserve(2 * size_t(sum));
    for (size_t f = 0; f < kept; ++f)
      for (int k = 0; k < 3; ++k) {
        const uint32_t v = faces_[3 * f + k];
        refs_[ref_begin_[v] + ref_size_[v]++] = uint32_t(f);
      }
  }

  void compact_vertices() {
    const size_t n = pos_.size();
    std::vector<uint32_t> renumber(n, kNone);
    for (uint32_t v : faces_) renumber[v] = 0;
    uint32_t kept = 0;
    for (uint32_t &r : renumber)
      if (r == 0) r = kept++;
    if (kept == n) return;
    auto moved = [&](uint32_t w) { return w == kNone ? kNone : renumber[w]; };
    for (size_t v = 0; v < n; ++v) {
      const uint32_t i = renumber[v];
      if (i == kNone) continue;
      pos_[i] = pos_[v];
      quadric_[i] = quadric_[v];
      state_[i] = state_[v];
      original_[i] = original_[v];
      penalty_[i] = penalty_[v];
      blocked_with_[i] = moved(blocked_with_[v]);
      penalized_with_[i] = moved(penalized_with_[v]);
    }
    for (auto *a : {&blocked_with_, &penalized_with_, &original_, &ref_begin_, &ref_size_}) a->resize(kept);
    pos_.resize(kept);
    quadric_.resize(kept);
    state_.resize(kept);
    penalty_.resize(kept);
    mark_.assign(kept, 0);
    stamp_ = 0;
    for (uint32_t &v : faces_) v = renumber[v];
  }

  template <typename Fn>
  void for_each_face(uint32_t v, Fn &&fn) const {
    const uint32_t *r = refs_.data() + ref_begin_[v];
    for (uint32_t i = 0; i < ref_size_[v]; ++i)
      if (face_alive_[r[i]]) fn(r[i]);
  }

  const uint32_t *face(uint32_t f) const { return &faces_[3 * size_t(f)]; }

  uint32_t next_stamp() {
    if (++stamp_ == 0) {  // wrapped: old marks could alias
      std::fill(mark_.begin(), mark_.end(), 0);
      stamp_ = 1;
    }
    return stamp_;
  }

  // An edge used by other than exactly two faces, or by two faces that run
  // it the same way, pins both of its vertices.
  void lock_boundary_and_non_manifold() {
    std::vector<std::array<uint32_t, 3>> seen;  // neighbour, faces, forward uses
    for (uint32_t v = 0; v < pos_.size(); ++v) {
      seen.clear();
      for_each_face(v, [&](uint32_t f) {
        const uint32_t *t = face(f);
        const int k = t[0] == v ? 0 : (t[1] == v ? 1 : 2);
        for (int side = 1; side <= 2; ++side) {
          const uint32_t w = t[(k + side) % 3];
          auto it = std::find_if(seen.begin(), seen.end(), [w](const std::array<uint32_t, 3> &s) { return s[0] == w; });
          if (it == seen.end()) it = seen.insert(seen.end(), {w, 0, 0});
          ++(*it)[1];
          if (side == 1) ++(*it)[2];
        }
      });
      for (const auto &s : seen)
        if (s[1] != 2 || s[2] != 1) {
          state_[v] |= kLocked;
          break;
        }
    }
  }

  void init_quadrics() {
    for (size_t f = 0; f < face_alive_.size(); ++f) {
      const uint32_t *t = face(uint32_t(f));
      const Vec3 p0 = pos_[t[0]];
      const Vec3 n = cross(pos_[t[1]] - p0, pos_[t[2]] - p0);
      const double len = std::sqrt(dot(n, n));
      if (len == 0) continue;
      const Vec3 unit = n * (1.0 / len);
      Quadric q;
      q.add_plane(unit, -dot(unit, p0), 0.5 * len);
      for (int k = 0; k < 3; ++k) quadric_[t[k]] += q;
    }
  }

  // Errors at noise level become a tiny length-ordered value.
  double denoise(double error, double area, Vec3 d) const {
    const double noise = kNoiseError * area;
    return error > noise ? error : noise * std::sqrt(dot(d, d));
  }

  // The rank of collapsing uv: the merged quadric at the best of u, v and
  // their midpoint. It bounds the error of the final placement from above.
  double rank(uint32_t u, uint32_t v) const {
    const Quadric q = quadric_[u] + quadric_[v];
    const Vec3 pu = pos_[u], pv = pos_[v];
    const double error = std::min({q.eval(pu), q.eval(pv), q.eval((pu + pv) * 0.5)});
    return denoise(error, q.area, pv - pu);
  }

  // Where the merged vertex goes. The minimizer of the summed quadric when
  // it is well defined and near the edge. On smooth surfaces it rarely is
  // (the planes of a small patch are nearly parallel, so the quadric only
  // pins the normal direction); then the vertex moves within the plane
  // spanned by the edge and the patch normal: along the edge and onto the
  // surface. Failing that, the best point on the edge.
  Placement place(uint32_t u, uint32_t v) const {
    const Quadric q = quadric_[u] + quadric_[v];
    const Vec3 pu = pos_[u], pv = pos_[v];
    const Vec3 d = pv - pu;
    const double edge_sq = dot(d, d);
    const Vec3 mid = (pu + pv) * 0.5;
    const double trace = q.a00 + q.a11 + q.a22;
    if (trace <= 0 || edge_sq == 0) return {mid, q.eval(mid)};

    const double c00 = q.a11 * q.a22 - q.a12 * q.a12;
    const double c01 = q.a02 * q.a12 - q.a01 * q.a22;
    const double c02 = q.a01 * q.a12 - q.a02 * q.a11;
    const double det = q.a00 * c00 + q.a01 * c01 + q.a02 * c02;
    if (det > kMinRelativeDeterminant * trace * trace * trace) {
      const double c11 = q.a00 * q.a22 - q.a02 * q.a02;
      const double c12 = q.a01 * q.a02 - q.a00 * q.a12;
      const double c22 = q.a00 * q.a11 - q.a01 * q.a01;
      const double inv = -1.0 / det;
      const Vec3 p{inv * (c00 * q.b0 + c01 * q.b1 + c02 * q.b2), inv * (c01 * q.b0 + c11 * q.b1 + c12 * q.b2),
                   inv * (c02 * q.b0 + c12 * q.b1 + c22 * q.b2)};
      const Vec3 off = p - mid;
      if (dot(off, off) <= edge_sq) return {p, q.eval(p)};
    }

    // The patch normal: A's dominant eigenvector, by two power iterations
    // from its largest column.
    Vec3 n = q.a00 >= q.a11 && q.a00 >= q.a22 ? Vec3{q.a00, q.a01, q.a02}
             : q.a11 >= q.a22                 ? Vec3{q.a01, q.a11, q.a12}
                                              : Vec3{q.a02, q.a12, q.a22};
    n = q.apply_a(n);
    n = q.apply_a(n * (1.0 / std::sqrt(dot(n, n))));
    const Vec3 e1 = d * (1.0 / std::sqrt(edge_sq));
    Vec3 e2 = n - e1 * dot(n, e1);
    const double e2_sq = dot(e2, e2);
    const Vec3 g = q.apply_a(mid) + Vec3{q.b0, q.b1, q.b2};  // half the gradient at mid
    const double half = 0.5 * std::sqrt(edge_sq);
    const double g1 = dot(e1, g);
    const double h11 = dot(e1, q.apply_a(e1));
    if (e2_sq > 1e-12 * dot(n, n)) {
      // Q(mid + s·e1 + t·e2) = Q(mid) + 2(s·g1 + t·g2) + s²h11 + 2st·h12 + t²h22.
      e2 = e2 * (1.0 / std::sqrt(e2_sq));
      const Vec3 ae2 = q.apply_a(e2);
      const double h12 = dot(e1, ae2), h22 = dot(e2, ae2);
      const double g2 = dot(e2, g);
      const double det2 = h11 * h22 - h12 * h12;
      if (det2 > kMinRelativeDeterminant * (h11 + h22) * (h11 + h22)) {
        const double s = (h12 * g2 - h22 * g1) / det2;
        const double t = (h12 * g1 - h11 * g2) / det2;
        if (std::abs(s) <= half && std::abs(t) <= 2 * half) {
          const Vec3 p = mid + e1 * s + e2 * t;
          return {p, q.eval(p)};
        }
      }
    }
    const double s = h11 > 0 ? std::clamp(-g1 / h11, -half, half) : (g1 < 0 ? half : -half);
    const Vec3 p = mid + e1 * s;
    return {p, q.eval(p)};
  }

  bool within_max_error(double error, double area) const { return area <= 0 || error <= max_error_sq_ * area; }

  // Every edge that may collapse, in vertex order, with its rank (times the
  // shape penalty it was last turned down with, if any). Ranking only reads
  // the mesh, so contiguous vertex ranges go to separate threads and their
  // lists are joined in order.
  void rank_edges(std::vector<Edge> &edges) {
    const uint32_t n = uint32_t(pos_.size());
    const int threads = n >= kMinVerticesPerThread * 2 ? std::min<int>(threads_, n / kMinVerticesPerThread) : 1;
    chunks_.resize(size_t(threads));
    auto work = [&](int t) {
      std::vector<Edge> &out = chunks_[size_t(t)];
      out.clear();
      std::vector<uint32_t> seen;
      for (uint32_t v = uint32_t(uint64_t(n) * t / threads); v < uint64_t(n) * (t + 1) / threads; ++v) {
        if (state_[v] & (kLocked | kRemoved)) continue;
        seen.clear();
        for_each_face(v, [&](uint32_t f) {
          for (int k = 0; k < 3; ++k) {
            const uint32_t w = face(f)[k];
            if (w <= v || (state_[w] & kLocked) || std::find(seen.begin(), seen.end(), w) != seen.end()) continue;
            seen.push_back(w);
            if (blocked_with_[v] == w || blocked_with_[w] == v) continue;
            double r = rank(v, w);
            if (penalized_with_[v] == w) r *= penalty_[v];
            out.push_back({v, w, float(r)});
          }
        });
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
    work(0);
    for (std::thread &th : pool) th.join();
    edges.swap(chunks_[0]);
    for (int t = 1; t < threads; ++t) edges.insert(edges.end(), chunks_[size_t(t)].begin(), chunks_[size_t(t)].end());
  }

  void prefetch_vertex(uint32_t v) const {
    __builtin_prefetch(&ref_begin_[v]);
    __builtin_prefetch(&ref_size_[v]);
    __builtin_prefetch(&pos_[v]);
    __builtin_prefetch(&quadric_[v]);
  }

  void prefetch_faces(uint32_t v) const {
    const uint32_t *r = refs_.data() + ref_begin_[v];
    for (uint32_t i = 0; i < ref_size_[v]; ++i) __builtin_prefetch(&faces_[3 * size_t(r[i])]);
  }

  void gather(uint32_t x, std::vector<Corner> &out) const {
    out.clear();
    for_each_face(x, [&](uint32_t f) {
      const uint32_t *t = face(f);
      out.push_back({f, {t[0], t[1], t[2]}});
    });
  }

  // The link condition for a manifold interior edge uv: exactly two faces
  // contain it, their third vertices are the only vertices adjacent to both
  // u and v, and those two are not joined to both u and v by faces (a
  // tetrahedron, whose collapse would leave two copies of one face).
  bool link_condition_holds(uint32_t u, uint32_t v) {
    uint32_t opposite[2];
    int shared = 0;
    const uint32_t ring = next_stamp();
    for (const Corner &c : around_u_) {
      const bool has_v = c.has(v);
      for (uint32_t w : c.v) {
        if (w == u || w == v) continue;
        mark_[w] = ring;
        if (has_v) {
          if (shared == 2) return false;
          opposite[shared++] = w;
        }
      }
    }
    if (shared != 2 || opposite[0] == opposite[1]) return false;
    const uint32_t common = next_stamp();
    int common_count = 0;
    for (const Corner &c : around_v_)
      for (uint32_t w : c.v)
        if (w != u && mark_[w] == ring) {
          mark_[w] = common;
          ++common_count;
        }
    if (common_count != 2) return false;
    auto joins_opposites = [&](const std::vector<Corner> &around) {
      for (const Corner &c : around)
        if (c.has(opposite[0]) && c.has(opposite[1])) return true;
      return false;
    };
    return !(joins_opposites(around_u_) && joins_opposites(around_v_));
  }

  // The cost multiplier of moving u and v to p (1 for a collapse that leaves
  // equilateral triangles turned by at most 45°), judged on the faces that
  // survive it; false when one of them would turn by more than 90° or
  // become degenerate.
  bool shape_penalty(uint32_t u, uint32_t v, Vec3 p, double &penalty) const {
    // Squared quality and signed squared cosine, so the loop needs no root.
    double min_quality_sq = kQualityThreshold * kQualityThreshold;
    double min_cos_sq = 1.0;
    auto visit = [&](const std::vector<Corner> &around, uint32_t moving, uint32_t other) {
      for (const Corner &c : around) {
        if (c.has(other)) continue;  // removed by the collapse
        Vec3 before[3], after[3];
        for (int k = 0; k < 3; ++k) {
          before[k] = pos_[c.v[k]];
          after[k] = c.v[k] == moving ? p : before[k];
        }
        const Vec3 e01 = after[1] - after[0], e02 = after[2] - after[0], e12 = after[2] - after[1];
        const Vec3 n_after = cross(e01, e02);
        const double len_sq_after = dot(n_after, n_after);
        const double longest = std::max({dot(e01, e01), dot(e02, e02), dot(e12, e12)});
        if (len_sq_after == 0 || longest == 0) return false;
        min_quality_sq = std::min(min_quality_sq, len_sq_after / (longest * longest));
        const Vec3 n_before = cross(before[1] - before[0], before[2] - before[0]);
        const double len_sq_before = dot(n_before, n_before);
        if (len_sq_before == 0) continue;  // no orientation to keep
        const double d = dot(n_before, n_after);
        if (d < 0) return false;
        min_cos_sq = std::min(min_cos_sq, d * d / (len_sq_before * len_sq_after));
      }
      return true;
    };
    if (!visit(around_u_, u, v) || !visit(around_v_, v, u)) return false;
    const double normal_factor = (std::min(std::sqrt(min_cos_sq), kCos45) + 1) / 2;
    penalty = (kBestQuality / std::sqrt(min_quality_sq)) * (kBestNormalFactor / normal_factor);
    return true;
  }

  bool try_collapse(uint32_t u, uint32_t v, double threshold) {
    gather(u, around_u_);
    gather(v, around_v_);
    if (!link_condition_holds(u, v)) {
      ++rejected_by_link_;
      block(u, v);
      return false;
    }
    const Placement pl = place(u, v);
    const double area = quadric_[u].area + quadric_[v].area;
    double penalty = 1;
    if (!within_max_error(pl.error, area) || !shape_penalty(u, v, pl.p, penalty)) {
      ++rejected_by_shape_;
      block(u, v);
      return false;
    }
    log_penalty_sum_ += std::log(penalty);
    ++penalty_count_;
    const double cost = denoise(pl.error, area, pos_[v] - pos_[u]) * penalty;
    if (cost > threshold * typical_penalty_) {
      // Rank it with this penalty until one end moves, so it waits for the
      // threshold to reach it instead of being retried every pass.
      penalized_with_[u] = v;
      penalty_[u] = float(penalty);
      return false;
    }

    pos_[u] = pl.p;
    quadric_[u] += quadric_[v];
    state_[u] |= kTouched | kMoved;
    state_[v] |= kRemoved;
    for (uint32_t x : {u, v}) {
      for (std::vector<uint32_t> *with : {&blocked_with_, &penalized_with_}) {
        const uint32_t y = (*with)[x];
        if (y != kNone && (*with)[y] == x) (*with)[y] = kNone;
        (*with)[x] = kNone;
      }
    }
    const uint32_t begin = uint32_t(refs_.size());
    for (const Corner &c : around_u_) {
      if (c.has(v)) {
        face_alive_[c.face] = 0;
        --live_faces_;
      } else {
        refs_.push_back(c.face);
      }
    }
    for (const Corner &c : around_v_) {
      if (c.has(u)) continue;
      uint32_t *t = &faces_[3 * size_t(c.face)];
      for (int k = 0; k < 3; ++k)
        if (t[k] == v) t[k] = u;
      refs_.push_back(c.face);
    }
    ref_begin_[u] = begin;
    ref_size_[u] = uint32_t(refs_.size() - begin);
    ref_size_[v] = 0;
    return true;
  }

  // Until one of its ends moves, edge uv would fail again.
  void block(uint32_t u, uint32_t v) {
    blocked_with_[u] = v;
    blocked_with_[v] = u;
  }

  int threads_;
  std::vector<std::vector<Edge>> chunks_;  // per ranking thread
  const float *input_;              // borrowed for the lifetime of the simplifier
  std::vector<uint32_t> original_;  // input index of each vertex
  std::vector<Vec3> pos_;
  std::vector<Quadric> quadric_;
  std::vector<uint8_t> state_;
  std::vector<uint32_t> mark_;
  uint32_t stamp_ = 0;
  // The other end of an edge that failed the link condition, the normal
  // check or the error bound.
  std::vector<uint32_t> blocked_with_;
  // The other end of an edge whose shape penalty kept it over the threshold
  // (in the slot of its lower-numbered end), and that penalty.
  std::vector<uint32_t> penalized_with_;
  std::vector<float> penalty_;
  std::vector<uint32_t> faces_;
  std::vector<uint8_t> face_alive_;
  size_t live_faces_;
  std::vector<uint32_t> ref_begin_, ref_size_, refs_;
  std::vector<Corner> around_u_, around_v_;  // scratch for try_collapse
  double max_error_sq_;
  Vec3 center_{0, 0, 0};
  double scale_ = 1;
  // Ranks leave the shape penalty out, so the threshold they set is met
  // against costs divided by the typical penalty (the geometric mean over
  // the previous pass's attempts): only collapses that reshape worse than
  // usual wait, as they would in MeshLab's cost order.
  double typical_penalty_ = 1, log_penalty_sum_ = 0;
  size_t penalty_count_ = 0;
  size_t passes_ = 0, collapses_ = 0, rejected_by_link_ = 0, rejected_by_shape_ = 0;
};

}  // namespace
}  // namespace hy3d

extern "C" {

hy3d_status hy3d_simplify(const float *vertices, size_t vertex_count, const uint32_t *indices, size_t triangle_count,
                          size_t target_triangles, float max_error, int threads, hy3d_mesh **out) {
  return hy3d::guard([&] {
    if (out == nullptr) return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "hy3d_simplify: out is NULL");
    *out = nullptr;
    if ((vertices == nullptr && vertex_count > 0) || (indices == nullptr && triangle_count > 0)) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "hy3d_simplify: NULL vertex or index array");
    }
    if (vertex_count >= UINT32_MAX || triangle_count >= UINT32_MAX / 3) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "hy3d_simplify: mesh too large for 32-bit indices");
    }
    if (!(max_error >= 0)) return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "hy3d_simplify: max_error must be >= 0");
    for (size_t i = 0; i < 3 * triangle_count; ++i) {
      if (indices[i] >= vertex_count) {
        return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "hy3d_simplify: index " + std::to_string(indices[i]) +
                                                         " at position " + std::to_string(i) + " >= vertex count " +
                                                         std::to_string(vertex_count));
      }
    }
    for (size_t i = 0; i < 3 * vertex_count; ++i) {
      if (!std::isfinite(vertices[i])) {
        return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT,
                          "hy3d_simplify: non-finite coordinate in vertex " + std::to_string(i / 3));
      }
    }
    auto mesh = std::make_unique<hy3d_mesh>();
    if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
    hy3d::Simplifier simplifier(vertices, vertex_count, indices, triangle_count, double(max_error), threads);
    simplifier.run(target_triangles);
    simplifier.emit(*mesh);
    hy3d::log(hy3d::LogLevel::Debug,
              "simplify: " + std::to_string(triangle_count) + " -> " + std::to_string(simplifier.live_faces()) +
                  " faces in " + std::to_string(simplifier.passes()) + " passes, " +
                  std::to_string(simplifier.collapses()) + " collapses; turned down " +
                  std::to_string(simplifier.rejected_by_link()) + " by the link condition, " +
                  std::to_string(simplifier.rejected_by_shape()) + " by the normal check or error bound");
    *out = mesh.release();
    return HY3D_OK;
  });
}

}  // extern "C"
