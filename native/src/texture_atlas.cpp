// UV atlas: charts, their parameterization and their packing.
//
// Charts grow over face adjacency from a seed, taking a neighbour while its
// normal stays within max_angle of the chart's area-weighted mean normal and
// of the seed's normal (normal-cone clustering in the spirit of Sander,
// Wood, Gortler, Snyder, Hoppe, "Multi-chart geometry images", SGP 2003,
// without their iterative Lloyd refinement); fragments of fewer than 16
// faces left between charts then join their closest neighbour. Each chart is
// parameterized by orthographic projection onto the plane of its mean
// normal: every face is then scaled by at most 1/cos(max_angle) along one
// direction, and the projection is exact for planar regions. A chart whose
// projection overlaps itself is cut in two along the surface and both
// halves are projected again; overlaps are found before packing, at any
// scale: a flipped face, faces around a vertex whose angular sectors
// overlap, or two border edges that cross.
//
// Each chart is turned onto its minimum-area bounding rectangle, and the
// charts, tallest first, are packed by a skyline ("horizon") packer in the
// spirit of the Tetris-like packing of Lévy, Petitjean, Ray, Maillot,
// "Least squares conformal maps for automatic texture atlas generation",
// SIGGRAPH 2002: per column, the texels a chart reserves (those within
// `padding` of it, so that with padding 1 no texel is read by bilinear
// lookups of two charts) are dropped onto the lowest free row, at the
// column and in the quarter turn that give the lowest top, then the least
// area left free below. The common scale is the largest at which the
// packing fits the square, found in a few rounds. Vertices are split only
// where a chart border passes: one output vertex per (input vertex, chart)
// pair, xref naming the input vertex.
//
// Reported: chart count; L2 stretch (Sander, Snyder, Gortler, Hoppe,
// "Texture mapping progressive meshes", SIGGRAPH 2001) normalized so that an
// isometry up to one global scale gives 1; utilization, the fraction of
// texels whose centre some face covers; overlapping texels, whose centre
// lies strictly inside two faces (charts reserve disjoint texels, so each
// chart is checked on its own).
#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <memory>
#include <limits>
#include <numeric>

#include "texture_common.hpp"

struct hy3d_atlas {
  std::vector<uint32_t> xref;
  std::vector<float> uvs;
  std::vector<uint32_t> indices;
  std::vector<uint32_t> face_chart;
  hy3d_atlas_stats stats{};
};

namespace hy3d {
namespace {

struct V3 {
  double x = 0, y = 0, z = 0;
};
inline V3 operator-(V3 a, V3 b) { return {a.x - b.x, a.y - b.y, a.z - b.z}; }
inline V3 operator+(V3 a, V3 b) { return {a.x + b.x, a.y + b.y, a.z + b.z}; }
inline V3 operator*(V3 a, double s) { return {a.x * s, a.y * s, a.z * s}; }
inline double dot(V3 a, V3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
inline V3 cross(V3 a, V3 b) { return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x}; }
inline double norm(V3 a) { return std::sqrt(dot(a, a)); }
inline V3 unit(V3 a) {
  const double l = norm(a);
  return l > 0 ? a * (1 / l) : V3{0, 0, 1};
}

struct Chart {
  std::vector<uint32_t> faces;
  V3 normal;
  // 2D coordinates per corner (faces.size()*3 pairs) in world units: the
  // projection turned onto its minimum-area bounding rectangle, which
  // spans [0, width] x [0, height] with width >= height.
  std::vector<double> corners;
  double width = 0, height = 0;
  double area = 0;  // of the projected triangles, world units squared
  // Placement: corner p lands at texel coordinates rotate(p * scale, orientation) + (u0, v0).
  int orientation = 0;  // quarter turns counter-clockwise
  double u0 = 0, v0 = 0;
};

// The texels a chart reserves in one orientation at one scale: per column
// of its bounding box the rows [lo, hi) (lo = kEmptyLo, hi = kEmptyHi for
// none). shift_u, shift_v move the rotated chart onto this grid.
struct Footprint {
  int32_t width = 0, height = 0;
  std::vector<int32_t> lo, hi;
  double shift_u = 0, shift_v = 0;
};
constexpr int32_t kEmptyLo = 1 << 29, kEmptyHi = -(1 << 29);

// The lowest free row of every atlas column, with the minimum of every
// block of kBlock columns to find the lowest column fast.
struct Skyline {
  static constexpr size_t kBlock = 64;
  std::vector<int32_t> h, block_min;
  explicit Skyline(int32_t width) : h(size_t(width), 0), block_min((size_t(width) + kBlock - 1) / kBlock, 0) {}
  int32_t lowest() const {
    const size_t b = size_t(std::min_element(block_min.begin(), block_min.end()) - block_min.begin());
    const auto first = h.begin() + std::ptrdiff_t(b * kBlock);
    const auto last = first + std::ptrdiff_t(std::min(kBlock, h.size() - b * kBlock));
    return int32_t(std::min_element(first, last) - h.begin());
  }
  int32_t highest() const { return *std::max_element(h.begin(), h.end()); }
  // Sets the columns under footprint fp placed at (x, y) to its top.
  void place(int32_t x, int32_t y, const Footprint &fp) {
    for (int32_t i = 0; i < fp.width; ++i) {
      if (fp.hi[size_t(i)] != kEmptyHi) h[size_t(x + i)] = y + fp.hi[size_t(i)];
    }
    for (size_t b = size_t(x) / kBlock; b * kBlock < size_t(x + fp.width); ++b) {
      const auto first = h.begin() + std::ptrdiff_t(b * kBlock);
      block_min[b] = *std::min_element(first, first + std::ptrdiff_t(std::min(kBlock, h.size() - b * kBlock)));
    }
  }
};

// Rotation by quarter turns counter-clockwise.
inline void rotate(double x, double y, int quarter, double &u, double &v) {
  switch (quarter & 3) {
    case 0: u = x; v = y; break;
    case 1: u = -y; v = x; break;
    case 2: u = -x; v = -y; break;
    default: u = y; v = -x; break;
  }
}

inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

class AtlasBuilder {
 public:
  AtlasBuilder(const float *vertices, size_t vertex_count, const uint32_t *indices, size_t triangle_count,
               const hy3d_atlas_options &opt)
      : vertices_(vertices),
        vertex_count_(vertex_count),
        indices_(indices),
        faces_(triangle_count),
        opt_(opt),
        padding_strips_(opt.padding > 0 ? 2 * int64_t(opt.padding) : 1),
        reach_strips_(padding_strips_) {}

  hy3d_atlas *build() {
    face_geometry();
    adjacency();
    in_chart_.assign(faces_, 0);
    grow_charts();
    merge_small();
    for (Chart &c : charts_) project(c);
    split_folded();
    split_long();
    std::unique_ptr<hy3d_atlas> atlas;
    for (int round = 0;; ++round) {
      pack();
      atlas = emit();
      std::vector<uint8_t> bad = check(*atlas);
      if (stats_.overlap_texels == 0 || round + 1 == kMaxSplitRounds) break;
      std::vector<Chart> next;
      for (size_t i = 0; i < charts_.size(); ++i) {
        if (bad[i] && charts_[i].faces.size() > 1) {
          auto [a, b] = halve(charts_[i]);
          next.push_back(std::move(a));
          next.push_back(std::move(b));
        } else {
          next.push_back(std::move(charts_[i]));
        }
      }
      charts_ = std::move(next);
      split_folded();
    }
    atlas->stats = stats_;
    return atlas.release();
  }

 private:
  V3 vertex(uint32_t v) const { return {vertices_[3 * v], vertices_[3 * v + 1], vertices_[3 * v + 2]}; }

  void face_geometry() {
    normal_.resize(faces_);
    area_.resize(faces_);
    for (size_t f = 0; f < faces_; ++f) {
      const V3 a = vertex(indices_[3 * f]), b = vertex(indices_[3 * f + 1]), c = vertex(indices_[3 * f + 2]);
      const V3 n = cross(b - a, c - a);
      area_[f] = norm(n) / 2;
      normal_[f] = area_[f] > 0 ? unit(n) : V3{0, 0, 0};
    }
  }

  // Faces sharing an edge with exactly one other face are neighbours;
  // non-manifold edges (three or more faces) separate charts.
  void adjacency() {
    struct HalfEdge {
      uint32_t a, b, face;
    };
    std::vector<HalfEdge> edges;
    edges.reserve(3 * faces_);
    for (size_t f = 0; f < faces_; ++f) {
      for (int e = 0; e < 3; ++e) {
        uint32_t a = indices_[3 * f + e], b = indices_[3 * f + (e + 1) % 3];
        if (a == b) continue;
        if (a > b) std::swap(a, b);
        edges.push_back({a, b, uint32_t(f)});
      }
    }
    std::sort(edges.begin(), edges.end(), [](const HalfEdge &l, const HalfEdge &r) {
      return l.a != r.a ? l.a < r.a : (l.b != r.b ? l.b < r.b : l.face < r.face);
    });
    neighbours_.assign(3 * faces_, kNone);
    std::vector<uint8_t> used(faces_, 0);
    for (size_t i = 0; i < edges.size();) {
      size_t j = i;
      while (j < edges.size() && edges[j].a == edges[i].a && edges[j].b == edges[i].b) ++j;
      if (j - i == 2 && edges[i].face != edges[i + 1].face) {
        link(edges[i].face, edges[i + 1].face, used);
        link(edges[i + 1].face, edges[i].face, used);
      }
      i = j;
    }
  }

  void link(uint32_t f, uint32_t g, std::vector<uint8_t> &used) {
    if (used[f] < 3) neighbours_[3 * f + used[f]++] = g;
  }

  void grow_charts() {
    const double cos_max = std::cos(double(opt_.max_chart_angle) * M_PI / 180);
    chart_of_.assign(faces_, kNone);
    std::deque<uint32_t> frontier;
    for (size_t seed = 0; seed < faces_; ++seed) {
      if (chart_of_[seed] != kNone) continue;
      const uint32_t id = uint32_t(charts_.size());
      Chart chart;
      const V3 seed_normal = normal_[seed];
      V3 sum = normal_[seed] * area_[seed];
      chart_of_[seed] = id;
      chart.faces.push_back(uint32_t(seed));
      frontier.assign(1, uint32_t(seed));
      while (!frontier.empty()) {
        const uint32_t f = frontier.front();
        frontier.pop_front();
        for (int e = 0; e < 3; ++e) {
          const uint32_t g = neighbours_[3 * f + e];
          if (g == kNone || chart_of_[g] != kNone) continue;
          if (area_[g] > 0 && area_[seed] > 0) {
            const V3 mean = unit(sum);
            if (dot(normal_[g], mean) < cos_max || dot(normal_[g], seed_normal) < cos_max) continue;
          }
          chart_of_[g] = id;
          chart.faces.push_back(g);
          sum = sum + normal_[g] * area_[g];
          frontier.push_back(g);
        }
      }
      chart.normal = unit(sum);
      charts_.push_back(std::move(chart));
    }
  }

  // Growing leaves fragments of a few faces between charts whose cones
  // just missed them. A chart under kSmallChart faces joins the neighbouring
  // chart whose mean normal is closest to its own, if every face of it
  // stays within a cone half as wide again of that chart's mean normal
  // (flips are still caught after projection).
  void merge_small() {
    const double cos_relaxed = std::cos(std::min(1.5 * double(opt_.max_chart_angle), 80.0) * M_PI / 180);
    std::vector<V3> sum(charts_.size());
    for (size_t c = 0; c < charts_.size(); ++c) {
      for (uint32_t f : charts_[c].faces) sum[c] = sum[c] + normal_[f] * area_[f];
    }
    std::vector<uint32_t> order(charts_.size());
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t a, uint32_t b) { return charts_[a].faces.size() < charts_[b].faces.size(); });
    for (uint32_t c : order) {
      Chart &small = charts_[c];
      if (small.faces.empty() || small.faces.size() >= kSmallChart) continue;
      uint32_t best = kNone;
      double best_dot = -2;
      for (uint32_t f : small.faces) {
        for (int e = 0; e < 3; ++e) {
          const uint32_t g = neighbours_[3 * f + e];
          if (g == kNone || chart_of_[g] == c) continue;
          const double d = dot(unit(sum[c]), unit(sum[chart_of_[g]]));
          if (d > best_dot) {
            best_dot = d;
            best = chart_of_[g];
          }
        }
      }
      if (best == kNone) continue;
      const V3 target = unit(sum[best]);
      bool fits = true;
      for (uint32_t f : small.faces) fits = fits && (area_[f] <= 0 || dot(normal_[f], target) >= cos_relaxed);
      if (!fits) continue;
      for (uint32_t f : small.faces) {
        chart_of_[f] = best;
        charts_[best].faces.push_back(f);
      }
      sum[best] = sum[best] + sum[c];
      small.faces.clear();
    }
    std::vector<Chart> kept;
    for (Chart &c : charts_) {
      if (!c.faces.empty()) kept.push_back(std::move(c));
    }
    charts_ = std::move(kept);
    for (size_t c = 0; c < charts_.size(); ++c) {
      for (uint32_t f : charts_[c].faces) chart_of_[f] = uint32_t(c);
    }
  }

  // Orthographic projection onto the plane of the chart's mean normal,
  // turned onto the minimum-area rectangle around it, long side along x.
  void project(Chart &c) {
    V3 sum;
    for (uint32_t f : c.faces) sum = sum + normal_[f] * area_[f];
    c.normal = norm(sum) > 0 ? unit(sum) : (area_[c.faces[0]] > 0 ? normal_[c.faces[0]] : V3{0, 0, 1});
    const V3 n = c.normal;
    const V3 helper = std::fabs(n.x) < 0.6 ? V3{1, 0, 0} : (std::fabs(n.y) < 0.6 ? V3{0, 1, 0} : V3{0, 0, 1});
    const V3 e1 = unit(cross(helper, n)), e2 = cross(n, e1);
    c.corners.resize(6 * c.faces.size());
    for (size_t i = 0; i < c.faces.size(); ++i) {
      for (int k = 0; k < 3; ++k) {
        const V3 p = vertex(indices_[3 * c.faces[i] + k]);
        c.corners[6 * i + 2 * k] = dot(p, e1);
        c.corners[6 * i + 2 * k + 1] = dot(p, e2);
      }
    }
    const auto [ux, uy] = min_area_direction(c.corners);
    double lox = std::numeric_limits<double>::infinity(), loy = lox, hix = -lox, hiy = -lox;
    for (size_t i = 0; i < c.corners.size(); i += 2) {
      const double x = ux * c.corners[i] + uy * c.corners[i + 1], y = -uy * c.corners[i] + ux * c.corners[i + 1];
      c.corners[i] = x;
      c.corners[i + 1] = y;
      lox = std::min(lox, x);
      hix = std::max(hix, x);
      loy = std::min(loy, y);
      hiy = std::max(hiy, y);
    }
    // A quarter turn clockwise, (x, y) -> (y, -x), when the rectangle stands upright.
    const bool upright = hiy - loy > hix - lox;
    c.area = 0;
    for (size_t i = 0; i < c.corners.size(); i += 2) {
      const double x = c.corners[i] - lox, y = c.corners[i + 1] - loy;
      c.corners[i] = upright ? y : x;
      c.corners[i + 1] = upright ? hix - lox - x : y;
    }
    c.width = upright ? hiy - loy : hix - lox;
    c.height = upright ? hix - lox : hiy - loy;
    for (size_t i = 0; i < c.corners.size(); i += 6) {
      const double *q = &c.corners[i];
      c.area += std::fabs((q[2] - q[0]) * (q[5] - q[1]) - (q[3] - q[1]) * (q[4] - q[0])) / 2;
    }
  }

  // The unit direction along which the minimum-area rectangle around the
  // points (x, y pairs) lies: one side of that rectangle carries an edge of
  // their convex hull (Freeman and Shapira, "Determining the minimum-area
  // encasing rectangle for an arbitrary closed curve", CACM 1975), found by
  // rotating calipers over the hull edges.
  static std::pair<double, double> min_area_direction(const std::vector<double> &xy) {
    std::vector<std::pair<double, double>> pts(xy.size() / 2);
    for (size_t i = 0; i < pts.size(); ++i) pts[i] = {xy[2 * i], xy[2 * i + 1]};
    std::sort(pts.begin(), pts.end());
    pts.erase(std::unique(pts.begin(), pts.end()), pts.end());
    if (pts.size() < 3) {
      if (pts.size() == 2) {
        const double dx = pts[1].first - pts[0].first, dy = pts[1].second - pts[0].second, l = std::hypot(dx, dy);
        if (l > 0) return {dx / l, dy / l};
      }
      return {1, 0};
    }
    // Andrew's monotone chain, counter-clockwise.
    std::vector<std::pair<double, double>> hull(2 * pts.size());
    size_t k = 0;
    auto turn = [](const std::pair<double, double> &o, const std::pair<double, double> &a,
                   const std::pair<double, double> &b) {
      return (a.first - o.first) * (b.second - o.second) - (a.second - o.second) * (b.first - o.first);
    };
    for (size_t i = 0; i < pts.size(); ++i) {
      while (k >= 2 && turn(hull[k - 2], hull[k - 1], pts[i]) <= 0) --k;
      hull[k++] = pts[i];
    }
    for (size_t i = pts.size() - 1, t = k + 1; i-- > 0;) {
      while (k >= t && turn(hull[k - 2], hull[k - 1], pts[i]) <= 0) --k;
      hull[k++] = pts[i];
    }
    hull.resize(k - 1);
    const size_t h = hull.size();
    if (h < 3) return {1, 0};
    auto along = [&](size_t p, double ux, double uy) { return hull[p % h].first * ux + hull[p % h].second * uy; };
    double best = std::numeric_limits<double>::infinity(), bx = 1, by = 0;
    size_t far = 1, right = 1, left = 0;
    for (size_t i = 0; i < h; ++i) {
      const auto &a = hull[i], &b = hull[(i + 1) % h];
      const double len = std::hypot(b.first - a.first, b.second - a.second);
      if (!(len > 0)) continue;
      const double ux = (b.first - a.first) / len, uy = (b.second - a.second) / len;
      // Extreme points advance monotonically with the edge (indices grow, read modulo h).
      if (far < i + 1) far = i + 1;
      while (along(far + 1, -uy, ux) >= along(far, -uy, ux) && far < i + h) ++far;
      if (right < i + 1) right = i + 1;
      while (along(right + 1, ux, uy) >= along(right, ux, uy) && right < i + h) ++right;
      if (i == 0) left = far;
      if (left < far) left = far;
      while (along(left + 1, ux, uy) <= along(left, ux, uy) && left < i + h) ++left;
      const double width = along(right, ux, uy) - along(left, ux, uy);
      const double height = along(far, -uy, ux) - along(i, -uy, ux);
      if (width * height < best) {
        best = width * height;
        bx = ux;
        by = uy;
      }
    }
    return {bx, by};
  }

  bool folded(const Chart &c) const {
    for (size_t i = 0; i < c.faces.size(); ++i) {
      if (area_[c.faces[i]] <= 0) continue;
      const double *q = &c.corners[6 * i];
      const double a = (q[2] - q[0]) * (q[5] - q[1]) - (q[3] - q[1]) * (q[4] - q[0]);
      if (!(a > 0)) return true;
    }
    return false;
  }

  // Cuts a chart in two along the surface: faces ordered by their hop
  // distance over the chart's adjacency from a face farthest from an
  // arbitrary one, the nearer half against the rest (faces the walk does
  // not reach, other components, go to the second half). Cutting across
  // the surface rather than across the projection separates the layers of
  // a chart that winds over itself.
  std::pair<Chart, Chart> halve(const Chart &c) {
    for (uint32_t f : c.faces) in_chart_[f] = 1;
    std::vector<uint32_t> order;
    walk(c.faces[0], order);
    walk(order.back(), order);
    if (order.size() < c.faces.size()) {
      for (uint32_t f : order) in_chart_[f] = 2;
      for (uint32_t f : c.faces) {
        if (in_chart_[f] == 1) order.push_back(f);
      }
    }
    for (uint32_t f : c.faces) in_chart_[f] = 0;
    Chart a, b;
    for (size_t i = 0; i < order.size(); ++i) (i < order.size() / 2 ? a : b).faces.push_back(order[i]);
    project(a);
    project(b);
    return {std::move(a), std::move(b)};
  }

  // Breadth-first order of the chart faces reachable from start; faces
  // reached are marked 2 in in_chart_ and restored to 1 before returning.
  void walk(uint32_t start, std::vector<uint32_t> &order) {
    order.assign(1, start);
    in_chart_[start] = 2;
    for (size_t i = 0; i < order.size(); ++i) {
      for (int e = 0; e < 3; ++e) {
        const uint32_t g = neighbours_[3 * order[i] + e];
        if (g != kNone && in_chart_[g] == 1) {
          in_chart_[g] = 2;
          order.push_back(g);
        }
      }
    }
    for (uint32_t f : order) in_chart_[f] = 1;
  }

  // Whether two edges of the chart's border cross in the projection
  // (segments sharing a vertex are not compared). A chart without flipped
  // faces is one-to-one unless its border crosses itself, so with folded()
  // this finds every overlap before packing, at any scale. Border segments
  // go into a uniform grid over the chart, and only segments sharing a
  // cell are compared.
  bool border_crosses(const Chart &c) const {
    struct Edge {
      uint32_t a, b, corner_a, corner_b;
    };
    std::vector<Edge> edges;
    edges.reserve(3 * c.faces.size());
    for (size_t i = 0; i < c.faces.size(); ++i) {
      for (int k = 0; k < 3; ++k) {
        const uint32_t a = indices_[3 * c.faces[i] + k], b = indices_[3 * c.faces[i] + (k + 1) % 3];
        if (a == b) continue;
        edges.push_back({std::min(a, b), std::max(a, b), uint32_t(3 * i + k), uint32_t(3 * i + (k + 1) % 3)});
      }
    }
    std::sort(edges.begin(), edges.end(),
              [](const Edge &l, const Edge &r) { return l.a != r.a ? l.a < r.a : l.b < r.b; });
    std::vector<Edge> border;
    for (size_t i = 0; i < edges.size();) {
      size_t j = i;
      while (j < edges.size() && edges[j].a == edges[i].a && edges[j].b == edges[i].b) ++j;
      if (j - i != 2) border.insert(border.end(), edges.begin() + i, edges.begin() + j);
      i = j;
    }
    if (border.size() < 2) return false;
    const double *q = c.corners.data();
    const size_t side = std::max<size_t>(1, size_t(std::sqrt(double(border.size()))));
    const double cw = std::max(c.width, 1e-300) / double(side), ch = std::max(c.height, 1e-300) / double(side);
    auto cell = [&](double x, double step) { return size_t(std::clamp(x / step, 0.0, double(side - 1))); };
    std::vector<std::vector<uint32_t>> grid(side * side);
    for (uint32_t e = 0; e < border.size(); ++e) {
      const double *p0 = q + 2 * border[e].corner_a, *p1 = q + 2 * border[e].corner_b;
      const size_t x0 = cell(std::min(p0[0], p1[0]), cw), x1 = cell(std::max(p0[0], p1[0]), cw);
      const size_t y0 = cell(std::min(p0[1], p1[1]), ch), y1 = cell(std::max(p0[1], p1[1]), ch);
      for (size_t y = y0; y <= y1; ++y) {
        for (size_t x = x0; x <= x1; ++x) grid[y * side + x].push_back(e);
      }
    }
    auto orient = [](const double *o, const double *a, const double *b) {
      return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
    };
    for (const std::vector<uint32_t> &in_cell : grid) {
      for (size_t i = 0; i < in_cell.size(); ++i) {
        const Edge &e = border[in_cell[i]];
        const double *p0 = q + 2 * e.corner_a, *p1 = q + 2 * e.corner_b;
        for (size_t j = i + 1; j < in_cell.size(); ++j) {
          const Edge &f = border[in_cell[j]];
          if (f.a == e.a || f.a == e.b || f.b == e.a || f.b == e.b) continue;
          const double *r0 = q + 2 * f.corner_a, *r1 = q + 2 * f.corner_b;
          const double d0 = orient(p0, p1, r0), d1 = orient(p0, p1, r1);
          const double d2 = orient(r0, r1, p0), d3 = orient(r0, r1, p1);
          if (d0 == 0 && d1 == 0) {
            // Collinear: crossing when the projections onto the line overlap.
            const double dx = p1[0] - p0[0], dy = p1[1] - p0[1];
            const double t0 = (r0[0] - p0[0]) * dx + (r0[1] - p0[1]) * dy;
            const double t1 = (r1[0] - p0[0]) * dx + (r1[1] - p0[1]) * dy;
            const double len = dx * dx + dy * dy;
            if (std::max(t0, t1) > 0 && std::min(t0, t1) < len) return true;
            continue;
          }
          // Each segment's ends on both sides of (or on) the other's line.
          auto apart = [](double a, double b) { return (a <= 0 && b >= 0) || (a >= 0 && b <= 0); };
          if (apart(d0, d1) && apart(d2, d3)) return true;
        }
      }
    }
    return false;
  }

  // Whether the faces around some vertex of the chart overlap near it: the
  // angular sectors the faces open at the vertex, sorted, must not
  // overlap. Two faces sharing a vertex that overlap anywhere overlap next
  // to it (both are convex), so this also finds neighbours of inconsistent
  // winding and the sheets of a non-manifold vertex laid over each other.
  bool fans_overlap(const Chart &c) const {
    struct Sector {
      uint32_t vertex;
      double start, width;
    };
    std::vector<Sector> sectors;
    sectors.reserve(3 * c.faces.size());
    const double *q = c.corners.data();
    for (size_t i = 0; i < c.faces.size(); ++i) {
      if (area_[c.faces[i]] <= 0) continue;
      for (int k = 0; k < 3; ++k) {
        const double *p = q + 6 * i + 2 * k, *a = q + 6 * i + 2 * ((k + 1) % 3), *b = q + 6 * i + 2 * ((k + 2) % 3);
        const double ax = a[0] - p[0], ay = a[1] - p[1], bx = b[0] - p[0], by = b[1] - p[1];
        const double start = std::atan2(ay, ax);
        sectors.push_back({indices_[3 * c.faces[i] + k], start < 0 ? start + 2 * M_PI : start,
                           std::atan2(ax * by - ay * bx, ax * bx + ay * by)});
      }
    }
    std::sort(sectors.begin(), sectors.end(), [](const Sector &l, const Sector &r) {
      return l.vertex != r.vertex ? l.vertex < r.vertex : l.start < r.start;
    });
    constexpr double kSlack = 1e-9;
    for (size_t i = 0; i < sectors.size();) {
      size_t j = i;
      double total = 0;
      while (j < sectors.size() && sectors[j].vertex == sectors[i].vertex) total += sectors[j++].width;
      if (total > 2 * M_PI + kSlack) return true;
      for (size_t k = i; k + 1 < j; ++k) {
        if (sectors[k].start + sectors[k].width > sectors[k + 1].start + kSlack) return true;
      }
      if (j - i > 1 && sectors[j - 1].start + sectors[j - 1].width > sectors[i].start + 2 * M_PI + kSlack) return true;
      i = j;
    }
    return false;
  }

  void split_folded() {
    for (size_t i = 0; i < charts_.size(); ++i) {
      while (charts_[i].faces.size() > 1 &&
             (folded(charts_[i]) || fans_overlap(charts_[i]) || border_crosses(charts_[i]))) {
        auto [a, b] = halve(charts_[i]);
        charts_[i] = std::move(a);
        charts_.push_back(std::move(b));
      }
    }
  }

  // A chart much longer than the square root of the total chart area would
  // set the packing scale by itself; such charts are halved until none is.
  void split_long() {
    double area = 0;
    for (const Chart &c : charts_) area += c.width * c.height;
    const double limit = kMaxChartSpan * std::sqrt(area);
    for (size_t i = 0; i < charts_.size(); ++i) {
      while (charts_[i].faces.size() > 1 && std::max(charts_[i].width, charts_[i].height) > limit) {
        auto [a, b] = halve(charts_[i]);
        charts_[i] = std::move(a);
        charts_.push_back(std::move(b));
      }
    }
  }

  // The texels chart c reserves turned by `quarter` quarter turns at scale
  // s (texels per world unit): those whose centre lies within Chebyshev
  // distance < reach_ of the chart. The chart's vertical extent is taken
  // over half-texel-wide strips first (per triangle, from its long edge,
  // its two short edges and its middle vertex at the strip's sides); a
  // column's window of 2 reach_ is the union of 4 reach_ strips.
  void footprint(const Chart &c, int quarter, double s, Footprint &fp, std::vector<double> &strip_lo,
                 std::vector<double> &strip_hi) const {
    const size_t corners = c.corners.size() / 2;
    double umin = std::numeric_limits<double>::infinity(), umax = -umin;
    for (size_t i = 0; i < corners; ++i) {
      double u, v;
      rotate(c.corners[2 * i] * s, c.corners[2 * i + 1] * s, quarter, u, v);
      umin = std::min(umin, u);
      umax = std::max(umax, u);
    }
    const int64_t m0 = int64_t(std::floor(2 * umin)), m1 = int64_t(std::floor(2 * umax));
    strip_lo.assign(size_t(m1 - m0 + 1), std::numeric_limits<double>::infinity());
    strip_hi.assign(size_t(m1 - m0 + 1), -std::numeric_limits<double>::infinity());
    struct P {
      double u, v;
    };
    for (size_t i = 0; i < corners; i += 3) {
      P p[3];
      for (int k = 0; k < 3; ++k) {
        rotate(c.corners[2 * (i + k)] * s, c.corners[2 * (i + k) + 1] * s, quarter, p[k].u, p[k].v);
      }
      if (p[1].u < p[0].u) std::swap(p[0], p[1]);
      if (p[2].u < p[1].u) std::swap(p[1], p[2]);
      if (p[1].u < p[0].u) std::swap(p[0], p[1]);
      const P &A = p[0], &B = p[1], &C = p[2];
      const int64_t first = int64_t(std::floor(2 * A.u)) - m0, last = int64_t(std::floor(2 * C.u)) - m0;
      if (!(C.u > A.u)) {
        const double lo = std::min({A.v, B.v, C.v}), hi = std::max({A.v, B.v, C.v});
        for (int64_t m = first; m <= last; ++m) {
          strip_lo[size_t(m)] = std::min(strip_lo[size_t(m)], lo);
          strip_hi[size_t(m)] = std::max(strip_hi[size_t(m)], hi);
        }
        continue;
      }
      // Between A.u and C.u the triangle spans from its long edge AC to
      // the chain A-B-C; both are linear between strip sides except at B.
      const double long_slope = (C.v - A.v) / (C.u - A.u);
      const double ab_slope = B.u > A.u ? (B.v - A.v) / (B.u - A.u) : 0;
      const double bc_slope = C.u > B.u ? (C.v - B.v) / (C.u - B.u) : 0;
      auto extent = [&](double u, double &lo, double &hi) {
        const double l = A.v + long_slope * (u - A.u);
        const double ch = u < B.u ? A.v + ab_slope * (u - A.u) : B.v + bc_slope * (u - B.u);
        lo = std::min(l, ch);
        hi = std::max(l, ch);
      };
      double lo_a, hi_a;
      extent(A.u, lo_a, hi_a);
      lo_a = std::min(lo_a, A.v);
      hi_a = std::max(hi_a, A.v);
      for (int64_t m = first; m <= last; ++m) {
        const double b = std::min(double(m + m0 + 1) / 2, C.u);
        double lo_b, hi_b;
        extent(b, lo_b, hi_b);
        double lo = std::min(lo_a, lo_b), hi = std::max(hi_a, hi_b);
        if (B.u <= b && B.u >= double(m + m0) / 2) {
          lo = std::min(lo, B.v);
          hi = std::max(hi, B.v);
        }
        strip_lo[size_t(m)] = std::min(strip_lo[size_t(m)], lo);
        strip_hi[size_t(m)] = std::max(strip_hi[size_t(m)], hi);
        lo_a = lo_b;
        hi_a = hi_b;
      }
    }
    // Column i's window (i + 1/2 - reach, i + 1/2 + reach) holds strips 2i + 1 - R .. 2i + R.
    const int64_t R = reach_strips_;
    const int64_t i0 = -floor_div(R - m0, 2), i1 = floor_div(m1 + R - 1, 2);
    fp.width = int32_t(i1 - i0 + 1);
    fp.lo.assign(size_t(fp.width), kEmptyLo);
    fp.hi.assign(size_t(fp.width), kEmptyHi);
    const double reach = double(R) / 2;
    int64_t row0 = std::numeric_limits<int64_t>::max();
    for (int64_t i = i0; i <= i1; ++i) {
      double lo = std::numeric_limits<double>::infinity(), hi = -lo;
      for (int64_t m = std::max(m0, 2 * i + 1 - R); m <= std::min(m1, 2 * i + R); ++m) {
        lo = std::min(lo, strip_lo[size_t(m - m0)]);
        hi = std::max(hi, strip_hi[size_t(m - m0)]);
      }
      if (!(lo <= hi)) continue;
      const int64_t jlo = int64_t(std::floor(lo - reach - 0.5)) + 1, jhi = int64_t(std::ceil(hi + reach - 0.5));
      fp.lo[size_t(i - i0)] = int32_t(jlo);
      fp.hi[size_t(i - i0)] = int32_t(jhi);
      row0 = std::min(row0, jlo);
    }
    fp.height = 0;
    for (size_t i = 0; i < fp.lo.size(); ++i) {
      if (fp.hi[i] == kEmptyHi) continue;
      fp.lo[i] -= int32_t(row0);
      fp.hi[i] -= int32_t(row0);
      fp.height = std::max(fp.height, fp.hi[i]);
    }
    fp.shift_u = -double(i0);
    fp.shift_v = -double(row0);
  }

  // The footprint of the chart turned by another half turn: the grid is
  // mirrored in both axes, which maps texel centres onto texel centres.
  static Footprint half_turn(const Footprint &fp) {
    Footprint out;
    out.width = fp.width;
    out.height = fp.height;
    out.lo.resize(fp.lo.size());
    out.hi.resize(fp.hi.size());
    for (size_t i = 0; i < fp.lo.size(); ++i) {
      const size_t j = fp.lo.size() - 1 - i;
      const bool empty = fp.hi[j] == kEmptyHi;
      out.lo[i] = empty ? kEmptyLo : fp.height - fp.hi[j];
      out.hi[i] = empty ? kEmptyHi : fp.height - fp.lo[j];
    }
    out.shift_u = fp.width - fp.shift_u;
    out.shift_v = fp.height - fp.shift_v;
    return out;
  }

  struct Placement {
    int32_t x = 0, y = 0;
    int orientation = 0;
    double shift_u = 0, shift_v = 0;
  };

  // Packs every chart at scale s into `size` columns and unbounded rows,
  // in `order`: each chart, in the quarter turn and at the column (every
  // width/kPlacementSteps columns, then every column around the best)
  // where it ends lowest, then leaves the least area free below it, is
  // dropped onto the skyline (the lowest free row of every column). Returns
  // the rows used, or -1 when a chart is wider than the atlas in every turn.
  int64_t pack_at(double s, const std::vector<uint32_t> &order, std::vector<Placement> &out) {
    const size_t n = charts_.size();
    std::vector<std::array<Footprint, 4>> fps(n);
    parallel_chunks(n, opt_.threads, 256, [&](size_t begin, size_t end, int) {
      std::vector<double> lo, hi;
      for (size_t i = begin; i < end; ++i) {
        footprint(charts_[i], 0, s, fps[i][0], lo, hi);
        footprint(charts_[i], 1, s, fps[i][1], lo, hi);
        fps[i][2] = half_turn(fps[i][0]);
        fps[i][3] = half_turn(fps[i][1]);
      }
    });
    const int32_t size = opt_.size;
    Skyline sky(size);
    out.assign(n, Placement{});
    for (uint32_t ci : order) {
      // Lowest top first, then least area left free under the chart.
      int best = -1;
      int32_t best_x = 0, best_y = 0, best_top = std::numeric_limits<int32_t>::max();
      int64_t best_waste = 0;
      for (int o = 0; o < 4; ++o) {
        const Footprint &fp = fps[ci][size_t(o)];
        if (fp.width > size) continue;
        // A column of the chart's lowest row: no placement at x sits lower than sky[x + anchor].
        const int32_t anchor = int32_t(std::find(fp.lo.begin(), fp.lo.end(), 0) - fp.lo.begin());
        auto consider = [&](int32_t x) {
          const int32_t bound = best_top - fp.height;  // highest y that can still win
          if (sky.h[size_t(x + anchor)] > bound) return;
          int32_t y = std::numeric_limits<int32_t>::min();
          for (int32_t i = 0; i < fp.width && y <= bound; ++i) y = std::max(y, sky.h[size_t(x + i)] - fp.lo[size_t(i)]);
          if (y > bound) return;
          int64_t waste = 0;
          for (int32_t i = 0; i < fp.width; ++i) {
            if (fp.hi[size_t(i)] != kEmptyHi) waste += y + fp.lo[size_t(i)] - sky.h[size_t(x + i)];
          }
          const int32_t top = y + fp.height;
          if (top < best_top || (top == best_top && waste < best_waste)) {
            best = o;
            best_x = x;
            best_y = y;
            best_top = top;
            best_waste = waste;
          }
        };
        consider(std::clamp(sky.lowest() - anchor, 0, size - fp.width));
        const int32_t stride = std::max(1, fp.width / kPlacementSteps);
        for (int32_t x = 0; x + fp.width <= size; x += stride) consider(x);
        if (best == o) {
          const int32_t around = best_x;
          for (int32_t x = std::max(0, around - stride + 1); x < around + stride && x + fp.width <= size; ++x) {
            consider(x);
          }
        }
      }
      if (best < 0) return -1;
      const Footprint &fp = fps[ci][size_t(best)];
      sky.place(best_x, best_y, fp);
      out[ci] = {best_x, best_y, best, fp.shift_u, fp.shift_v};
    }
    return sky.highest();
  }

  // The largest scale (from a first guess, at most widest) at which pack_at
  // fits the square, found in a few rounds (the rows used grow with the
  // square of the scale), with its placements; 0 when none fits.
  double largest_fit(double s, double widest, const std::vector<uint32_t> &order, std::vector<Placement> &best) {
    const double size = opt_.size;
    double fit = 0, fail = std::numeric_limits<double>::infinity();
    std::vector<Placement> trial;
    for (int round = 0; round < kPackRounds; ++round) {
      const int64_t rows = pack_at(s, order, trial);
      if (rows >= 0 && rows <= opt_.size) {
        if (s > fit) {
          fit = s;
          best.swap(trial);
        }
        if (rows >= kGoodFill * size) break;
      } else {
        fail = std::min(fail, s);
      }
      if (fit > 0 && fail / fit < 1 + 1e-3) break;
      double next = rows > 0 ? s * std::sqrt(size / double(rows)) : s / 2;
      if (rows > opt_.size) next *= 0.998;
      next = std::min(next, widest);
      if (!(next > fit && next < fail)) next = fit > 0 ? std::sqrt(fit * std::min(fail, 2 * fit)) : s / 2;
      if (!(next > 0) || !std::isfinite(next)) break;
      s = next;
    }
    return fit;
  }

  // Places the charts at the largest scale that fits the square. When no
  // scale fits with the padding (more charts than the atlas has room for
  // with it), the padding shrinks, to none; when none fits even without,
  // the smallest packing is squeezed into the square: charts stay apart
  // but closer than a texel.
  void pack() {
    const double size = opt_.size;
    double area = 0;
    for (const Chart &c : charts_) area += c.area;
    std::vector<uint32_t> order(charts_.size());
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      return charts_[a].height > charts_[b].height;
    });
    // No chart fits beyond the scale that makes its long side the atlas's.
    double longest = 0;
    for (const Chart &c : charts_) longest = std::max(longest, c.width);
    const double widest = longest > 0 ? size / longest : std::numeric_limits<double>::infinity();
    const double first = std::min(area > 0 ? size * std::sqrt(kFirstFill / area) : 1, widest);
    std::vector<Placement> best;
    double fit = 0;
    // With less padding when the charts do not fit with it, down to none.
    for (reach_strips_ = padding_strips_; fit == 0; reach_strips_ = reach_strips_ > 2 ? reach_strips_ - 2 : 1) {
      fit = largest_fit(first, widest, order, best);
      if (reach_strips_ == 1) break;
    }
    squeeze_ = 1;
    if (fit == 0) {
      // More charts than texels: packs them shrunk to about a point each
      // and squeezes that into the square.
      fit = longest > 0 ? 1e-3 / longest : 1;
      const int64_t rows = pack_at(fit, order, best);
      if (rows > opt_.size) squeeze_ = size / double(rows);
    }
    scale_ = fit;
    for (size_t i = 0; i < charts_.size(); ++i) {
      Chart &c = charts_[i];
      c.orientation = best[i].orientation;
      c.u0 = best[i].x + best[i].shift_u;
      c.v0 = best[i].y + best[i].shift_v;
    }
  }

  // Texel coordinates of corner i of chart c as placed.
  void corner_texel(const Chart &c, size_t i, double &u, double &v) const {
    rotate(c.corners[2 * i] * scale_, c.corners[2 * i + 1] * scale_, c.orientation, u, v);
    u = (u + c.u0) * squeeze_;
    v = (v + c.v0) * squeeze_;
  }

  // The atlas as placed, with its chart count and L2 stretch; vertices
  // are split only where a chart border passes.
  std::unique_ptr<hy3d_atlas> emit() {
    auto atlas = std::make_unique<hy3d_atlas>();
    atlas->indices.resize(3 * faces_);
    atlas->face_chart.resize(faces_);
    std::vector<uint32_t> slot(vertex_count_, kNone);  // output vertex of an input vertex in the current chart
    const double size = opt_.size;
    double stretch_sum = 0, area3 = 0, area2 = 0;
    for (size_t ci = 0; ci < charts_.size(); ++ci) {
      const Chart &c = charts_[ci];
      std::vector<uint32_t> touched;
      for (size_t i = 0; i < c.faces.size(); ++i) {
        const uint32_t f = c.faces[i];
        atlas->face_chart[f] = uint32_t(ci);
        double s[3], t[3];
        for (int k = 0; k < 3; ++k) {
          const uint32_t v = indices_[3 * f + k];
          corner_texel(c, 3 * i + k, s[k], t[k]);
          s[k] = std::clamp(s[k] / size, 0.0, 1.0);
          t[k] = std::clamp(t[k] / size, 0.0, 1.0);
          if (slot[v] == kNone) {
            slot[v] = uint32_t(atlas->xref.size());
            atlas->xref.push_back(v);
            atlas->uvs.push_back(float(s[k]));
            atlas->uvs.push_back(float(t[k]));
            touched.push_back(v);
          }
          atlas->indices[3 * f + k] = slot[v];
        }
        const double a2 = ((s[1] - s[0]) * (t[2] - t[0]) - (s[2] - s[0]) * (t[1] - t[0])) / 2;
        if (!(area_[f] > 0) || !(a2 > 0)) continue;
        const V3 q0 = vertex(indices_[3 * f]), q1 = vertex(indices_[3 * f + 1]), q2 = vertex(indices_[3 * f + 2]);
        const V3 ss = (q0 * (t[1] - t[2]) + q1 * (t[2] - t[0]) + q2 * (t[0] - t[1])) * (1 / (2 * a2));
        const V3 st = (q0 * (s[2] - s[1]) + q1 * (s[0] - s[2]) + q2 * (s[1] - s[0])) * (1 / (2 * a2));
        stretch_sum += area_[f] * (dot(ss, ss) + dot(st, st)) / 2;
        area3 += area_[f];
        area2 += a2;
      }
      for (uint32_t v : touched) slot[v] = kNone;
    }
    stats_.charts = uint32_t(charts_.size());
    stats_.stretch_l2 = area3 > 0 ? std::sqrt(stretch_sum / area3) * std::sqrt(area2 / area3) : 1;
    return atlas;
  }

  // Rasterizes faces of the atlas (texel centres, closed triangles, as the
  // UV rasterizer covers them) over the texel box [x0, x1) x [y0, y1):
  // returns the texels covered, adds the texels strictly inside one face
  // and covered by another to overlaps, and marks the charts of both.
  // owner is scratch: one entry per texel of the box.
  uint64_t raster(const hy3d_atlas &atlas, const uint32_t *faces, size_t count, int64_t x0, int64_t y0, int64_t x1,
                  int64_t y1, std::vector<uint32_t> &owner, uint64_t &overlaps, std::vector<uint8_t> &bad) const {
    constexpr uint32_t kStrict = 1u << 31, kCounted = 1u << 30, kFace = kCounted - 1;
    const int64_t w = x1 - x0, size = opt_.size;
    owner.assign(size_t(w * (y1 - y0)), kNone);
    uint64_t covered = 0;
    for (size_t n = 0; n < count; ++n) {
      const uint32_t f = faces[n];
      double px[3], py[3];
      for (int k = 0; k < 3; ++k) {
        const uint32_t v = atlas.indices[3 * f + k];
        px[k] = double(atlas.uvs[2 * v]) * double(size) - double(x0);
        py[k] = double(atlas.uvs[2 * v + 1]) * double(size) - double(y0);
      }
      const double area = (px[1] - px[0]) * (py[2] - py[0]) - (py[1] - py[0]) * (px[2] - px[0]);
      if (!(std::fabs(area) > 0)) continue;
      const double inv = 1 / area;
      const int64_t ylo = std::max<int64_t>(0, int64_t(std::ceil(std::min({py[0], py[1], py[2]}) - 0.5)));
      const int64_t yhi = std::min<int64_t>(y1 - y0 - 1, int64_t(std::floor(std::max({py[0], py[1], py[2]}) - 0.5)));
      const double xmin = std::max(0.0, std::ceil(std::min({px[0], px[1], px[2]}) - 0.5));
      const double xmax = std::min(double(w - 1), std::floor(std::max({px[0], px[1], px[2]}) - 0.5));
      // Barycentrics are affine in the sample: w0 = e0x x + e0y y + e0c (as in texture_raster.cpp).
      const double e0x = (py[1] - py[2]) * inv, e0y = (px[2] - px[1]) * inv;
      const double e0c = (px[1] * py[2] - py[1] * px[2]) * inv;
      const double e1x = (py[2] - py[0]) * inv, e1y = (px[0] - px[2]) * inv;
      const double e1c = (px[2] * py[0] - py[2] * px[0]) * inv;
      for (int64_t y = ylo; y <= yhi; ++y) {
        const double sy = double(y) + 0.5;
        const double r0 = e0y * sy + e0c, r1 = e1y * sy + e1c;
        double lo = xmin, hi = xmax;
        const double edge[3][2] = {{e0x, r0}, {e1x, r1}, {-e0x - e1x, 1.0 - r0 - r1}};
        for (const auto &e : edge) {
          if (e[0] > 0) {
            lo = std::max(lo, std::floor(-e[1] / e[0] - 0.5) - 1);
          } else if (e[0] < 0) {
            hi = std::min(hi, std::ceil(-e[1] / e[0] - 0.5) + 1);
          } else if (e[1] < 0) {
            hi = lo - 1;
          }
        }
        for (int64_t x = int64_t(lo); x <= int64_t(hi); ++x) {
          const double sx = double(x) + 0.5;
          const double w0 = e0x * sx + r0, w1 = e1x * sx + r1, w2 = 1 - w0 - w1;
          if (w0 < 0 || w1 < 0 || w2 < 0) continue;
          const bool strict = w0 > 0 && w1 > 0 && w2 > 0;
          uint32_t &o = owner[size_t(y * w + x)];
          if (o == kNone) {
            o = f | (strict ? kStrict : 0);
            ++covered;
          } else if (strict || (o & kStrict)) {
            // A shared edge or vertex puts a centre on the border of both faces, never strictly inside one.
            if (!(o & kCounted)) ++overlaps;
            bad[atlas.face_chart[o & kFace]] = 1;
            bad[atlas.face_chart[f]] = 1;
            o |= kCounted;
          }
        }
      }
    }
    return covered;
  }

  // Utilization and overlaps of the placed atlas; returns which charts
  // overlap. Charts reserve disjoint texels, so each is rasterized alone
  // over its own box (in parallel), unless the packing was squeezed.
  std::vector<uint8_t> check(const hy3d_atlas &atlas) {
    const size_t n = charts_.size();
    std::vector<uint8_t> bad(n, 0);
    const int64_t size = opt_.size;
    stats_.overlap_texels = 0;
    uint64_t covered = 0;
    if (squeeze_ < 1) {
      std::vector<uint32_t> faces(faces_), owner;
      std::iota(faces.begin(), faces.end(), 0u);
      covered = raster(atlas, faces.data(), faces.size(), 0, 0, size, size, owner, stats_.overlap_texels, bad);
    } else {
      const int threads = opt_.threads;
      std::vector<uint64_t> covered_by(size_t(threads), 0), overlaps_by(size_t(threads), 0);
      std::vector<std::vector<uint8_t>> bad_by(size_t(threads), std::vector<uint8_t>(n, 0));
      parallel_chunks(n, threads, 64, [&](size_t begin, size_t end, int worker) {
        std::vector<uint32_t> owner;
        for (size_t ci = begin; ci < end; ++ci) {
          const Chart &c = charts_[ci];
          double lox = std::numeric_limits<double>::infinity(), loy = lox, hix = -lox, hiy = -lox;
          for (uint32_t f : c.faces) {
            for (int k = 0; k < 3; ++k) {
              const uint32_t v = atlas.indices[3 * f + k];
              lox = std::min(lox, double(atlas.uvs[2 * v]));
              hix = std::max(hix, double(atlas.uvs[2 * v]));
              loy = std::min(loy, double(atlas.uvs[2 * v + 1]));
              hiy = std::max(hiy, double(atlas.uvs[2 * v + 1]));
            }
          }
          const int64_t x0 = std::clamp<int64_t>(int64_t(std::floor(lox * size)) - 1, 0, size);
          const int64_t x1 = std::clamp<int64_t>(int64_t(std::ceil(hix * size)) + 1, x0, size);
          const int64_t y0 = std::clamp<int64_t>(int64_t(std::floor(loy * size)) - 1, 0, size);
          const int64_t y1 = std::clamp<int64_t>(int64_t(std::ceil(hiy * size)) + 1, y0, size);
          covered_by[size_t(worker)] += raster(atlas, c.faces.data(), c.faces.size(), x0, y0, x1, y1, owner,
                                               overlaps_by[size_t(worker)], bad_by[size_t(worker)]);
        }
      });
      for (int t = 0; t < threads; ++t) {
        covered += covered_by[size_t(t)];
        stats_.overlap_texels += overlaps_by[size_t(t)];
        for (size_t ci = 0; ci < n; ++ci) bad[ci] |= bad_by[size_t(t)][ci];
      }
    }
    stats_.utilization = double(covered) / (double(size) * double(size));
    return bad;
  }

  static constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
  // Each round at least halves every chart that still overlaps.
  static constexpr int kMaxSplitRounds = 24;
  static constexpr size_t kSmallChart = 16;
  // Longest chart side, as a fraction of the square root of the summed chart rectangles.
  static constexpr double kMaxChartSpan = 0.25;
  // Scale search: the first guess fills this fraction of the atlas; a
  // packing whose rows reach this fraction of the side is kept.
  static constexpr double kFirstFill = 0.5;
  static constexpr double kGoodFill = 0.985;
  static constexpr int kPackRounds = 8;
  // Candidate columns per chart width in the placement scan (then every column around the best).
  static constexpr int32_t kPlacementSteps = 4;

  const float *vertices_;
  size_t vertex_count_;
  const uint32_t *indices_;
  size_t faces_;
  hy3d_atlas_options opt_;
  // How far a chart reserves texels around it, in half texels: texel
  // centres within Chebyshev distance < padding (1/2 for no padding), as
  // asked and as packed.
  const int64_t padding_strips_;
  int64_t reach_strips_;
  std::vector<V3> normal_;
  std::vector<double> area_;
  std::vector<uint32_t> neighbours_, chart_of_;
  std::vector<uint8_t> in_chart_;  // scratch of halve: 1 in the chart being cut, 2 reached
  std::vector<Chart> charts_;
  double scale_ = 1, squeeze_ = 1;
  hy3d_atlas_stats stats_{};
};

}  // namespace
}  // namespace hy3d

extern "C" {

hy3d_status hy3d_atlas_build(const float *vertices, size_t vertex_count, const uint32_t *indices,
                             size_t triangle_count, const hy3d_atlas_options *options, hy3d_atlas **out) {
  return hy3d::guard([&] {
    const char *op = "hy3d_atlas_build";
    if (options == nullptr || out == nullptr) return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": NULL argument");
    *out = nullptr;
    hy3d::check_triangles(op, vertices, vertex_count, indices, triangle_count);
    hy3d::check_image(op, options->size, options->size);
    if (vertex_count >= std::numeric_limits<uint32_t>::max()) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": too many vertices");
    }
    if (options->padding < 0 || options->padding > options->size / 4 || !(options->max_chart_angle > 0) ||
        !(options->max_chart_angle < 90)) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT,
                        std::string(op) + ": padding outside 0..size/4 or chart angle outside (0, 90) degrees");
    }
    for (size_t i = 0; i < 3 * vertex_count; ++i) {
      if (!std::isfinite(vertices[i])) {
        return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": non-finite coordinate");
      }
    }
    hy3d_atlas_options opt = *options;
    opt.threads = hy3d::resolve_threads(opt.threads);
    hy3d::AtlasBuilder builder(vertices, vertex_count, indices, triangle_count, opt);
    *out = builder.build();
    return HY3D_OK;
  });
}

hy3d_status hy3d_atlas_view(const hy3d_atlas *atlas, const uint32_t **xref, const float **uvs, size_t *vertex_count,
                            const uint32_t **indices, size_t *triangle_count, const uint32_t **face_chart,
                            hy3d_atlas_stats *stats) {
  return hy3d::guard([&] {
    if (atlas == nullptr || xref == nullptr || uvs == nullptr || vertex_count == nullptr || indices == nullptr ||
        triangle_count == nullptr || face_chart == nullptr || stats == nullptr) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "hy3d_atlas_view: NULL argument");
    }
    *xref = atlas->xref.data();
    *uvs = atlas->uvs.data();
    *vertex_count = atlas->xref.size();
    *indices = atlas->indices.data();
    *triangle_count = atlas->indices.size() / 3;
    *face_chart = atlas->face_chart.data();
    *stats = atlas->stats;
    return HY3D_OK;
  });
}

void hy3d_atlas_destroy(hy3d_atlas *atlas) { delete atlas; }

}  // extern "C"
