// Filling what no view painted.
//
// hy3d_fill_vertex_colors gives every vertex a colour. A vertex group (the
// copies of one position that the atlas split along seams, named by weld)
// is a source when a texel under one of its corners was painted; its colour
// is the mean of those texels. Every other group is reached by one
// multi-source Dijkstra pass over the edges of the welded mesh, and when it
// is settled takes the mean of its already settled neighbours weighted by
// 1/length². That is the rule Hunyuan3D's meshVerticeInpaint applies, but
// applied once in distance order instead of in repeated sweeps over every
// corner (which grow with the depth of the unseen region, hours on dense
// meshes), and over the welded graph, so colour crosses UV seams.
//
// hy3d_fill_texels then fills the texture. Inside a chart, an unpainted
// texel gets the vertex colours interpolated over its face plus a residual:
// the difference between the painted texels and that interpolation, spread
// into the hole by pull-push, pinned to zero where the chart meets the
// gutter. The interpolation alone is continuous across seams (both sides
// read the same welded vertex colours), the residual makes the fill meet
// the painted texels without a step. Outside the charts (the gutters) every
// texel gets a pull-push average of the chart texels around it, which keeps
// mipmaps and bilinear lookups at chart borders from reading black.
// Pull-push: Gortler, Grzeszczuk, Szeliski, Cohen, "The Lumigraph",
// SIGGRAPH 1996, §3.3.
#include <cmath>
#include <limits>
#include <queue>
#include <utility>

#include "texture_common.hpp"

namespace hy3d {
namespace {

constexpr uint8_t kUnknown = 0, kKnown = 1, kIgnored = 2;

// Fills the texels with known[p] == kUnknown from those with known[p] ==
// kKnown (texels marked kIgnored are neither read nor written): averages
// of the known texels are pulled up a pyramid of halved images, then
// pushed down, each unknown texel taking the bilinear interpolation of the
// next coarser level. values has `channels` floats per texel.
//
// Storage of the coarser levels, reused by the pull-pushes of one fill.
struct Pyramid {
  std::vector<std::vector<float>> values;
  std::vector<std::vector<uint8_t>> known;
};

template <size_t C>
void pull_push_channels(float *values, const uint8_t *known, int32_t width, int32_t height, size_t channels,
                        int threads, Pyramid &pyramid) {
  // Level 0 is the caller's image, worked on in place; level i > 0 lives in pyramid.*[i - 1].
  struct Level {
    int32_t w, h;
    float *v;  // channels per texel
    const uint8_t *k;
    uint8_t *own_k;
  };
  // C > 0: the channel count known at compile time (loops unrolled).
  const size_t c = C > 0 ? C : channels;
  std::vector<Level> levels;
  levels.push_back({width, height, values, known, nullptr});
  while (levels.back().w > 1 || levels.back().h > 1) {
    const Level &f = levels.back();
    const size_t i = levels.size() - 1;
    if (pyramid.values.size() <= i) {
      pyramid.values.resize(i + 1);
      pyramid.known.resize(i + 1);
    }
    Level g{(f.w + 1) / 2, (f.h + 1) / 2, nullptr, nullptr, nullptr};
    pyramid.values[i].resize(c * size_t(g.w) * size_t(g.h));
    pyramid.known[i].resize(size_t(g.w) * size_t(g.h));
    g.v = pyramid.values[i].data();
    g.own_k = pyramid.known[i].data();
    g.k = g.own_k;
    parallel_ranges(size_t(g.h), threads, 16, [&](size_t y0, size_t y1, int) {
      for (size_t y = y0; y < y1; ++y) {
        // The fine rows 2y and 2y + 1 (the first again at an odd bottom edge).
        const size_t r0 = 2 * y, r1 = std::min(2 * y + 1, size_t(f.h) - 1);
        for (size_t x = 0; x < size_t(g.w); ++x) {
          const size_t x0 = 2 * x, x1 = std::min(2 * x + 1, size_t(f.w) - 1);
          const size_t fine[4] = {r0 * size_t(f.w) + x0, r0 * size_t(f.w) + x1, r1 * size_t(f.w) + x0,
                                  r1 * size_t(f.w) + x1};
          // Texels repeated at an odd edge count once.
          const bool distinct[4] = {true, x1 != x0, r1 != r0, x1 != x0 && r1 != r0};
          float sum[16] = {0};
          int n = 0;
          for (int j = 0; j < 4; ++j) {
            // Branch-free: unknown and repeated texels add zero.
            const int take = int(distinct[j]) & int(f.k[fine[j]] == kKnown);
            const float *v = f.v + c * fine[j];
            for (size_t ch = 0; ch < c; ++ch) sum[ch] += take ? v[ch] : 0.0f;
            n += take;
          }
          const size_t q = y * size_t(g.w) + x;
          g.own_k[q] = n > 0 ? kKnown : kUnknown;
          const float inv = n > 0 ? 1.0f / float(n) : 0.0f;
          for (size_t ch = 0; ch < c; ++ch) g.v[c * q + ch] = sum[ch] * inv;
        }
      }
    });
    levels.push_back(g);
  }
  for (size_t l = levels.size() - 1; l-- > 0;) {
    Level &f = levels[l];
    const Level &g = levels[l + 1];
    // Fine texel x sits at coarse coordinate (x + 1/2)/2 - 1/2, clamped to
    // the coarse grid: its two coarse neighbours and the weight of the second.
    std::vector<int32_t> gx0(size_t(f.w)), gx1(size_t(f.w));
    std::vector<float> fx(size_t(f.w));
    for (int32_t x = 0; x < f.w; ++x) {
      const float at = std::clamp((float(x) + 0.5f) / 2 - 0.5f, 0.0f, float(g.w - 1));
      gx0[size_t(x)] = int32_t(at);
      gx1[size_t(x)] = std::min(gx0[size_t(x)] + 1, g.w - 1);
      fx[size_t(x)] = at - float(gx0[size_t(x)]);
    }
    parallel_ranges(size_t(f.h), threads, 16, [&](size_t y0, size_t y1, int) {
      for (size_t y = y0; y < y1; ++y) {
        const float at = std::clamp((float(y) + 0.5f) / 2 - 0.5f, 0.0f, float(g.h - 1));
        const size_t gy0 = size_t(at), gy1 = std::min(gy0 + 1, size_t(g.h) - 1);
        const float fy = at - float(gy0);
        const float *row0 = g.v + c * gy0 * size_t(g.w), *row1 = g.v + c * gy1 * size_t(g.w);
        for (size_t x = 0; x < size_t(f.w); ++x) {
          const size_t p = y * size_t(f.w) + x;
          if (f.k[p] != kUnknown) continue;
          const float *a = row0 + c * size_t(gx0[x]), *b = row0 + c * size_t(gx1[x]);
          const float *d = row1 + c * size_t(gx0[x]), *e = row1 + c * size_t(gx1[x]);
          const float wx = fx[x];
          for (size_t ch = 0; ch < c; ++ch) {
            f.v[c * p + ch] = (a[ch] * (1 - wx) + b[ch] * wx) * (1 - fy) + (d[ch] * (1 - wx) + e[ch] * wx) * fy;
          }
        }
      }
    });
    // Every texel of a coarser level now holds a value for the next push.
    if (l > 0) std::fill(f.own_k, f.own_k + size_t(f.w) * size_t(f.h), kKnown);
  }
}

void pull_push(float *values, const uint8_t *known, int32_t width, int32_t height, int32_t channels, int threads,
               Pyramid &pyramid) {
  switch (channels) {
    case 1: return pull_push_channels<1>(values, known, width, height, 1, threads, pyramid);
    case 2: return pull_push_channels<2>(values, known, width, height, 2, threads, pyramid);
    case 3: return pull_push_channels<3>(values, known, width, height, 3, threads, pyramid);
    case 4: return pull_push_channels<4>(values, known, width, height, 4, threads, pyramid);
    default: return pull_push_channels<0>(values, known, width, height, size_t(channels), threads, pyramid);
  }
}

}  // namespace
}  // namespace hy3d

extern "C" {

hy3d_status hy3d_fill_vertex_colors(const float *positions, const float *uvs, const uint32_t *weld,
                                    size_t vertex_count, const uint32_t *indices, size_t triangle_count,
                                    const float *texture, const uint8_t *painted, int32_t width, int32_t height,
                                    int32_t channels, float *vertex_colors, uint8_t *vertex_known) {
  return hy3d::guard([&] {
    const char *op = "hy3d_fill_vertex_colors";
    hy3d::check_triangles(op, positions, vertex_count, indices, triangle_count);
    hy3d::check_image(op, width, height);
    if (channels <= 0 || channels > 16 || (vertex_count > 0 && (uvs == nullptr || vertex_colors == nullptr ||
                                                                 vertex_known == nullptr)) ||
        texture == nullptr || painted == nullptr) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": NULL array or channels outside 1..16");
    }
    const size_t c = size_t(channels), n = vertex_count;
    // Dense group ids: weld ids may be any 32-bit values (the atlas's
    // xref names input vertices, which can outnumber the atlas's).
    std::vector<uint32_t> group(n);
    {
      std::vector<std::pair<uint32_t, uint32_t>> by_weld(n);
      for (size_t v = 0; v < n; ++v) by_weld[v] = {weld != nullptr ? weld[v] : uint32_t(v), uint32_t(v)};
      std::sort(by_weld.begin(), by_weld.end());
      uint32_t next = 0;
      for (size_t i = 0; i < n; ++i) {
        if (i > 0 && by_weld[i].first != by_weld[i - 1].first) ++next;
        group[by_weld[i].second] = next;
      }
    }
    // Sources: painted texels under the corners, averaged per group.
    std::vector<double> sum(c * n, 0.0);
    std::vector<uint32_t> hits(n, 0);
    for (size_t v = 0; v < n; ++v) {
      const float u = uvs[2 * v], w = uvs[2 * v + 1];
      if (!(u >= 0 && u <= 1 && w >= 0 && w <= 1)) continue;
      const int32_t x = std::min(int32_t(u * width), width - 1), y = std::min(int32_t(w * height), height - 1);
      const size_t p = size_t(y) * size_t(width) + size_t(x);
      if (!painted[p]) continue;
      for (size_t k = 0; k < c; ++k) sum[c * group[v] + k] += texture[c * p + k];
      ++hits[group[v]];
    }
    // The welded graph in CSR form, one directed edge per triangle side and direction.
    std::vector<uint32_t> start(n + 1, 0);
    for (size_t i = 0; i < 3 * triangle_count; ++i) start[group[indices[i]] + 1] += 2;
    for (size_t v = 0; v < n; ++v) start[v + 1] += start[v];
    std::vector<uint32_t> fill(start.begin(), start.end() - 1), adj(start[n]);
    for (size_t f = 0; f < triangle_count; ++f) {
      for (int e = 0; e < 3; ++e) {
        const uint32_t a = group[indices[3 * f + e]], b = group[indices[3 * f + (e + 1) % 3]];
        adj[fill[a]++] = b;
        adj[fill[b]++] = a;
      }
    }
    auto length = [&](uint32_t a, uint32_t b) {
      const double dx = double(positions[3 * a]) - positions[3 * b], dy = double(positions[3 * a + 1]) - positions[3 * b + 1],
                   dz = double(positions[3 * a + 2]) - positions[3 * b + 2];
      return std::sqrt(dx * dx + dy * dy + dz * dz);
    };
    std::vector<double> dist(n, std::numeric_limits<double>::infinity());
    std::vector<uint8_t> settled(n, 0), colored(n, 0);
    std::vector<float> color(c * n, 0.0f);
    using Item = std::pair<double, uint32_t>;
    std::priority_queue<Item, std::vector<Item>, std::greater<Item>> queue;
    for (size_t g = 0; g < n; ++g) {
      if (hits[g] == 0) continue;
      for (size_t k = 0; k < c; ++k) color[c * g + k] = float(sum[c * g + k] / hits[g]);
      colored[g] = 1;
      dist[g] = 0;
      queue.push({0.0, uint32_t(g)});
    }
    while (!queue.empty()) {
      const auto [d, g] = queue.top();
      queue.pop();
      if (settled[g] || d > dist[g]) continue;
      settled[g] = 1;
      if (!colored[g]) {
        double acc[16] = {0}, total = 0;
        for (uint32_t e = start[g]; e < start[g + 1]; ++e) {
          const uint32_t m = adj[e];
          if (!settled[m] || !colored[m] || m == g) continue;
          const double len = length(g, m);
          const double w = 1.0 / std::max(len * len, 1e-24);
          for (size_t k = 0; k < c; ++k) acc[k] += w * color[c * m + k];
          total += w;
        }
        if (total > 0) {
          for (size_t k = 0; k < c; ++k) color[c * g + k] = float(acc[k] / total);
          colored[g] = 1;
        }
      }
      for (uint32_t e = start[g]; e < start[g + 1]; ++e) {
        const uint32_t m = adj[e];
        const double nd = d + length(g, m);
        if (nd < dist[m]) {
          dist[m] = nd;
          queue.push({nd, m});
        }
      }
    }
    for (size_t v = 0; v < n; ++v) {
      for (size_t k = 0; k < c; ++k) vertex_colors[c * v + k] = color[c * group[v] + k];
      vertex_known[v] = colored[group[v]];
    }
    return HY3D_OK;
  });
}

hy3d_status hy3d_fill_texels(float *texture, const uint8_t *painted, const int32_t *face_ids, const float *uvs,
                             const uint32_t *indices, size_t triangle_count, const float *vertex_colors,
                             const uint8_t *vertex_known, size_t vertex_count, int32_t width, int32_t height,
                             int32_t channels, int threads) {
  return hy3d::guard([&] {
    const char *op = "hy3d_fill_texels";
    hy3d::check_triangles(op, vertex_colors, vertex_count, indices, triangle_count);
    hy3d::check_image(op, width, height);
    if (channels <= 0 || channels > 16 || texture == nullptr || painted == nullptr || face_ids == nullptr ||
        (vertex_count > 0 && (vertex_known == nullptr || uvs == nullptr))) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": NULL array or channels outside 1..16");
    }
    threads = hy3d::resolve_threads(threads);
    const size_t c = size_t(channels), texels = size_t(width) * size_t(height);
    // Texel p's face, when it has one whose vertex colours are all known.
    auto face_of = [&](size_t p) -> const uint32_t * {
      const int32_t f = face_ids[p];
      if (f < 0 || size_t(f) >= triangle_count) return nullptr;
      const uint32_t *t = indices + 3 * size_t(f);
      return vertex_known[t[0]] && vertex_known[t[1]] && vertex_known[t[2]] ? t : nullptr;
    };
    // The vertex colours interpolated at texel p over face t.
    auto interpolated = [&](hy3d::UVBarycentrics &bary, size_t p, const uint32_t *t, float *out) {
      float b[3];
      bary.at(face_ids[p], p % size_t(width), p / size_t(width), b);
      for (size_t k = 0; k < c; ++k) {
        out[k] = b[0] * vertex_colors[c * t[0] + k] + b[1] * vertex_colors[c * t[1] + k] +
                 b[2] * vertex_colors[c * t[2] + k];
      }
    };
    // The residual (painted minus interpolated) replaces the painted texels
    // in place; it is known there and pinned to zero on unpainted chart
    // texels next to the gutter, and pull-push spreads it into the holes.
    // Texels without a face with vertex colours (the gutters, and gutter
    // texels a splat painted) keep their values through it.
    std::vector<uint8_t> known(texels, hy3d::kIgnored);
    std::atomic<bool> any_hole{false};
    hy3d::parallel_ranges(size_t(height), threads, 32, [&](size_t y0, size_t y1, int) {
      hy3d::UVBarycentrics bary(uvs, indices, width, height);
      float base[16];
      bool hole = false;
      for (size_t y = y0; y < y1; ++y) {
        for (size_t x = 0; x < size_t(width); ++x) {
          const size_t p = y * size_t(width) + x;
          const uint32_t *t = face_of(p);
          if (t == nullptr) continue;
          if (painted[p]) {
            interpolated(bary, p, t, base);
            for (size_t k = 0; k < c; ++k) texture[c * p + k] -= base[k];
            known[p] = hy3d::kKnown;
            continue;
          }
          hole = true;
          const bool border = x == 0 || y == 0 || x + 1 == size_t(width) || y + 1 == size_t(height) ||
                              face_ids[p - 1] < 0 || face_ids[p + 1] < 0 || face_ids[p - size_t(width)] < 0 ||
                              face_ids[p + size_t(width)] < 0;
          known[p] = border ? hy3d::kKnown : hy3d::kUnknown;
          if (border) {
            for (size_t k = 0; k < c; ++k) texture[c * p + k] = 0;
          }
        }
      }
      if (hole) any_hole = true;
    });
    hy3d::Pyramid pyramid;
    if (any_hole) hy3d::pull_push(texture, known.data(), width, height, channels, threads, pyramid);
    // Back to colours: interpolation plus residual on the chart texels that
    // have it (painted ones get their colour back, up to rounding).
    std::vector<uint8_t> &chart = known;  // reused: texels holding a colour before the gutter fill
    hy3d::parallel_ranges(texels, threads, 1 << 16, [&](size_t begin, size_t end, int) {
      hy3d::UVBarycentrics bary(uvs, indices, width, height);
      float base[16];
      for (size_t p = begin; p < end; ++p) {
        const uint32_t *t = face_of(p);
        chart[p] = painted[p] || t != nullptr ? hy3d::kKnown : hy3d::kUnknown;
        if (t == nullptr) continue;
        interpolated(bary, p, t, base);
        for (size_t k = 0; k < c; ++k) texture[c * p + k] += base[k];
      }
    });
    hy3d::pull_push(texture, chart.data(), width, height, channels, threads, pyramid);
    return HY3D_OK;
  });
}

}  // extern "C"
