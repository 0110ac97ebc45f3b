// UV atlas: charts, their parameterization and their packing.
//
// Charts grow over face adjacency from a seed, taking a neighbour while its
// normal stays within max_angle of the chart's area-weighted mean normal and
// of the seed's normal (normal-cone clustering in the spirit of Sander,
// Wood, Gortler, Snyder, Hoppe, "Multi-chart geometry images", SGP 2003,
// without their iterative Lloyd refinement); fragments of fewer than 16
// faces left between charts then join their closest neighbour. Each chart is parameterized by
// orthographic projection onto the plane of its mean normal: every face is
// then scaled by at most 1/cos(max_angle) along one direction and never
// flipped, and the projection is exact for planar regions. A chart whose
// projection folds over itself (a flipped face, or two faces that cover the
// same texel when the atlas is rasterized at its size) is cut in two across
// its longest extent and both halves are projected again.
//
// Charts are rotated onto the principal axes of their projected vertices,
// sorted by height and packed on shelves (Igarashi, Cosgrove, "Adaptive
// unwrapping for interactive texture painting", I3D 2001, pack charts by
// height into rows) with `padding` texels around each; the common scale is
// the largest that fits the square, found by bisection. Vertices are split
// only where a chart border passes: one output vertex per (input vertex,
// chart) pair, xref naming the input vertex.
//
// Reported: chart count; L2 stretch (Sander, Snyder, Gortler, Hoppe,
// "Texture mapping progressive meshes", SIGGRAPH 2001) normalized so that an
// isometry up to one global scale gives 1; utilization, the fraction of
// texels whose centre some face covers; overlapping texels, whose centre
// lies strictly inside two faces.
#include <cmath>
#include <deque>
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
  // Projected, rotated 2D coordinates per corner (faces.size()*3 pairs), in world units.
  std::vector<double> corners;
  double width = 0, height = 0;
  // Placement in texels after packing.
  double x = 0, y = 0;
};

class AtlasBuilder {
 public:
  AtlasBuilder(const float *vertices, size_t vertex_count, const uint32_t *indices, size_t triangle_count,
               const hy3d_atlas_options &opt)
      : vertices_(vertices), vertex_count_(vertex_count), indices_(indices), faces_(triangle_count), opt_(opt) {}

  hy3d_atlas *build() {
    face_geometry();
    adjacency();
    in_chart_.assign(faces_, 0);
    grow_charts();
    merge_small();
    for (Chart &c : charts_) project(c);
    split_folded();
    split_long();
    for (int round = 0; round < kMaxSplitRounds; ++round) {
      pack();
      std::vector<uint8_t> bad = raster_check();
      if (stats_.overlap_texels == 0) break;
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
    return emit();
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
  // rotated onto the principal axes of the projected corners.
  void project(Chart &c) {
    V3 sum;
    for (uint32_t f : c.faces) sum = sum + normal_[f] * area_[f];
    c.normal = norm(sum) > 0 ? unit(sum) : (area_[c.faces[0]] > 0 ? normal_[c.faces[0]] : V3{0, 0, 1});
    const V3 n = c.normal;
    const V3 helper = std::fabs(n.x) < 0.6 ? V3{1, 0, 0} : (std::fabs(n.y) < 0.6 ? V3{0, 1, 0} : V3{0, 0, 1});
    const V3 e1 = unit(cross(helper, n)), e2 = cross(n, e1);
    c.corners.resize(6 * c.faces.size());
    double mx = 0, my = 0;
    for (size_t i = 0; i < c.faces.size(); ++i) {
      for (int k = 0; k < 3; ++k) {
        const V3 p = vertex(indices_[3 * c.faces[i] + k]);
        c.corners[6 * i + 2 * k] = dot(p, e1);
        c.corners[6 * i + 2 * k + 1] = dot(p, e2);
        mx += c.corners[6 * i + 2 * k];
        my += c.corners[6 * i + 2 * k + 1];
      }
    }
    const double count = double(3 * c.faces.size());
    mx /= count;
    my /= count;
    double sxx = 0, syy = 0, sxy = 0;
    for (size_t i = 0; i < c.corners.size(); i += 2) {
      const double dx = c.corners[i] - mx, dy = c.corners[i + 1] - my;
      sxx += dx * dx;
      syy += dy * dy;
      sxy += dx * dy;
    }
    const double angle = 0.5 * std::atan2(2 * sxy, sxx - syy);
    const double ca = std::cos(angle), sa = std::sin(angle);
    double lox = std::numeric_limits<double>::infinity(), loy = lox, hix = -lox, hiy = -lox;
    for (size_t i = 0; i < c.corners.size(); i += 2) {
      const double dx = c.corners[i] - mx, dy = c.corners[i + 1] - my;
      // Principal axis along x: the long side lies on the shelf.
      const double x = ca * dx + sa * dy, y = -sa * dx + ca * dy;
      c.corners[i] = x;
      c.corners[i + 1] = y;
      lox = std::min(lox, x);
      hix = std::max(hix, x);
      loy = std::min(loy, y);
      hiy = std::max(hiy, y);
    }
    for (size_t i = 0; i < c.corners.size(); i += 2) {
      c.corners[i] -= lox;
      c.corners[i + 1] -= loy;
    }
    c.width = hix - lox;
    c.height = hiy - loy;
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

  void split_folded() {
    for (size_t i = 0; i < charts_.size(); ++i) {
      while (charts_[i].faces.size() > 1 && folded(charts_[i])) {
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

  // Shelf packing at world-to-texel scale s; returns the height used.
  double shelves(double s, const std::vector<uint32_t> &order, bool place) {
    const double size = opt_.size, pad = opt_.padding;
    double x = 0, y = 0, row = 0;
    for (uint32_t i : order) {
      Chart &c = charts_[i];
      const double w = std::ceil(c.width * s) + 2 * pad, h = std::ceil(c.height * s) + 2 * pad;
      if (w > size) return std::numeric_limits<double>::infinity();
      if (x + w > size) {
        y += row;
        x = 0;
        row = 0;
      }
      if (place) {
        c.x = x + pad;
        c.y = y + pad;
      }
      x += w;
      row = std::max(row, h);
    }
    return y + row;
  }

  void pack() {
    std::vector<uint32_t> order(charts_.size());
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      return charts_[a].height > charts_[b].height;
    });
    double area = 0, longest = 0;
    for (const Chart &c : charts_) {
      area += c.width * c.height;
      longest = std::max({longest, c.width, c.height});
    }
    const double size = opt_.size;
    double hi = longest > 0 ? size / longest : 1;
    if (area > 0) hi = std::min(hi, size / std::sqrt(area));
    double lo = 0;
    for (int i = 0; i < 40; ++i) {
      const double mid = (lo + hi) / 2;
      if (shelves(mid, order, false) <= size) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    scale_ = lo;
    shelves(scale_, order, true);
  }

  double corner_u(const Chart &c, size_t i) const { return (c.x + c.corners[i] * scale_) / opt_.size; }
  double corner_v(const Chart &c, size_t i) const { return (c.y + c.corners[i + 1] * scale_) / opt_.size; }

  // Rasterizes the packed atlas at its size: utilization, overlapping
  // texels, and which charts hold them.
  std::vector<uint8_t> raster_check() {
    const int32_t size = opt_.size;
    std::vector<uint32_t> owner(size_t(size) * size_t(size), kNone);
    std::vector<uint8_t> doubled(size_t(size) * size_t(size), 0);
    std::vector<uint8_t> bad(charts_.size(), 0);
    std::vector<uint64_t> overlaps(size_t(opt_.threads), 0), covered(size_t(opt_.threads), 0);
    std::vector<std::vector<uint32_t>> bad_local(size_t(opt_.threads));
    parallel_ranges(size_t(size), opt_.threads, 16, [&](size_t y0, size_t y1, int worker) {
      for (size_t ci = 0; ci < charts_.size(); ++ci) {
        const Chart &c = charts_[ci];
        for (size_t i = 0; i < c.faces.size(); ++i) {
          double px[3], py[3];
          for (int k = 0; k < 3; ++k) {
            px[k] = corner_u(c, 6 * i + 2 * k) * size;
            py[k] = corner_v(c, 6 * i + 2 * k) * size;
          }
          const double ylo = std::max(double(y0), std::ceil(std::min({py[0], py[1], py[2]}) - 0.5));
          const double yhi = std::min(double(y1) - 1, std::floor(std::max({py[0], py[1], py[2]}) - 0.5));
          if (ylo > yhi) continue;
          const double xlo = std::max(0.0, std::ceil(std::min({px[0], px[1], px[2]}) - 0.5));
          const double xhi = std::min(double(size) - 1, std::floor(std::max({px[0], px[1], px[2]}) - 0.5));
          const double area = (px[1] - px[0]) * (py[2] - py[0]) - (py[1] - py[0]) * (px[2] - px[0]);
          if (!(std::fabs(area) > 0)) continue;
          const double inv = 1 / area;
          const uint32_t key = uint32_t(ci);
          for (int64_t y = int64_t(ylo); y <= int64_t(yhi); ++y) {
            const double sy = double(y) + 0.5;
            for (int64_t x = int64_t(xlo); x <= int64_t(xhi); ++x) {
              const double sx = double(x) + 0.5;
              const double w0 = ((px[1] - sx) * (py[2] - sy) - (py[1] - sy) * (px[2] - sx)) * inv;
              const double w1 = ((px[2] - sx) * (py[0] - sy) - (py[2] - sy) * (px[0] - sx)) * inv;
              const double w2 = 1 - w0 - w1;
              if (w0 < 0 || w1 < 0 || w2 < 0) continue;
              const size_t p = size_t(y) * size_t(size) + size_t(x);
              if (owner[p] == kNone) {
                owner[p] = key;
                ++covered[size_t(worker)];
              } else if (w0 > 0 && w1 > 0 && w2 > 0) {
                // Strictly inside this face and covered by an earlier one:
                // a shared edge cannot put a centre strictly inside both.
                if (!doubled[p]) ++overlaps[size_t(worker)];
                doubled[p] = 1;
                bad_local[size_t(worker)].push_back(owner[p]);
                bad_local[size_t(worker)].push_back(key);
              }
            }
          }
        }
      }
    });
    stats_.overlap_texels = 0;
    uint64_t total_covered = 0;
    for (int t = 0; t < opt_.threads; ++t) {
      stats_.overlap_texels += overlaps[size_t(t)];
      total_covered += covered[size_t(t)];
      for (uint32_t ci : bad_local[size_t(t)]) bad[ci] = 1;
    }
    stats_.utilization = double(total_covered) / (double(size) * double(size));
    return bad;
  }

  hy3d_atlas *emit() {
    auto atlas = std::make_unique<hy3d_atlas>();
    atlas->indices.resize(3 * faces_);
    atlas->face_chart.resize(faces_);
    std::vector<uint32_t> slot(vertex_count_, kNone);  // output vertex of an input vertex in the current chart
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
          s[k] = corner_u(c, 6 * i + 2 * k);
          t[k] = corner_v(c, 6 * i + 2 * k);
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
    atlas->stats = stats_;
    return atlas.release();
  }

  static constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
  // Each round at least halves every chart that still overlaps.
  static constexpr int kMaxSplitRounds = 24;
  static constexpr size_t kSmallChart = 16;
  // Longest chart side, as a fraction of the square root of the summed chart rectangles.
  static constexpr double kMaxChartSpan = 0.25;

  const float *vertices_;
  size_t vertex_count_;
  const uint32_t *indices_;
  size_t faces_;
  hy3d_atlas_options opt_;
  std::vector<V3> normal_;
  std::vector<double> area_;
  std::vector<uint32_t> neighbours_, chart_of_;
  std::vector<uint8_t> in_chart_;  // scratch of halve: 1 in the chart being cut, 2 reached
  std::vector<Chart> charts_;
  double scale_ = 1;
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
