// Baking painted views into a texture, as Hunyuan3D-Paint does it.
//
// Per view, hy3d_bake_view_weights turns the rendered geometry into a
// per-pixel weight: the cosine between the surface normal and the direction
// to the camera, zero below a threshold (cos 75° in Hunyuan3D), and the
// pixel marked unreliable (-1) when it is background, within `radius` pixels
// of the background (the visible mask eroded by a (2r+1)² box), or within
// `radius` pixels of a depth edge. Hunyuan3D finds depth edges with OpenCV's
// Canny (thresholds 30 and 80) on the min-max normalized depth as 8-bit
// grey; we use the same Sobel L1 magnitude, thresholds and hysteresis but no
// non-maximum suppression, so an edge is up to one pixel wider before the
// (2r+1)² dilation that follows in both.
//
// hy3d_bake_splat is Hunyuan3D-2.0's "linear" back-projection: every
// reliable pixel scatters its colour and cosine bilinearly into the texture
// at its interpolated UV, each texel is normalized by the weight it
// received. hy3d_bake_gather is Hunyuan3D-2.1's "back_sample": every texel
// of the UV raster is projected into the view, accepted when the pixel it
// lands in is reliable, faces the camera and lies within depth_tolerance
// (3e-3) of the texel's own depth, and samples the view bilinearly. Both add
// view_weight · cos^exponent times the colour into running sums, skipping a
// view that would paint almost nothing new (over 99 % of its texels already
// painted), as Hunyuan3D's fast_bake_texture does; hy3d_bake_resolve divides.
#include <cmath>
#include <limits>
#include <utility>

#include "texture_common.hpp"

namespace hy3d {
namespace {

constexpr float kUnreliable = -1.0f;
constexpr double kSkipPaintedRatio = 0.99;
constexpr float kWeightEpsilon = 1e-8f;

// A binary mask packed 64 pixels to a word, rows padded to whole words.
struct Bits {
  int32_t w = 0, h = 0;
  size_t words = 0;  // per row
  std::vector<uint64_t> v;
  Bits(int32_t width, int32_t height)
      : w(width), h(height), words((size_t(width) + 63) / 64), v(words * size_t(height)) {}
  bool at(size_t y, size_t x) const { return (v[y * words + x / 64] >> (x % 64)) & 1; }
};

// Chebyshev dilation by radius r: separable, each axis by OR-ing the mask
// with itself shifted both ways by growing steps (a window of radius a
// shifted by k <= 2a + 1 becomes one of radius a + k, so about log2 r steps).
void dilate(Bits &m, int32_t r, int threads) {
  std::vector<uint64_t> tmp(m.v.size());
  for (int32_t a = 0; a < r;) {
    const size_t k = size_t(std::min(2 * a + 1, r - a));
    const size_t word_shift = k / 64, bit_shift = k % 64;
    parallel_ranges(size_t(m.h), threads, 64, [&](size_t y0, size_t y1, int) {
      for (size_t y = y0; y < y1; ++y) {
        const uint64_t *src = &m.v[y * m.words];
        uint64_t *dst = &tmp[y * m.words];
        // src[i] read as 0 outside the row.
        auto word = [&](int64_t i) { return i >= 0 && size_t(i) < m.words ? src[i] : uint64_t(0); };
        for (size_t i = 0; i < m.words; ++i) {
          const int64_t lo = int64_t(i) - int64_t(word_shift), hi = int64_t(i) + int64_t(word_shift);
          // Towards higher x: bit j of word i gets bit j - k.
          uint64_t up = word(lo) << bit_shift, down = word(hi) >> bit_shift;
          if (bit_shift > 0) {
            up |= word(lo - 1) >> (64 - bit_shift);
            down |= word(hi + 1) << (64 - bit_shift);
          }
          dst[i] = src[i] | up | down;
        }
        // Bits past the row's end stay clear.
        if (m.w % 64 != 0) dst[m.words - 1] &= (uint64_t(1) << (m.w % 64)) - 1;
      }
    });
    m.v.swap(tmp);
    a += int32_t(k);
  }
  for (int32_t a = 0; a < r;) {
    const size_t k = size_t(std::min(2 * a + 1, r - a));
    parallel_ranges(size_t(m.h), threads, 64, [&](size_t y0, size_t y1, int) {
      for (size_t y = y0; y < y1; ++y) {
        uint64_t *dst = &tmp[y * m.words];
        const uint64_t *mid = &m.v[y * m.words];
        const uint64_t *below = y >= k ? &m.v[(y - k) * m.words] : nullptr;
        const uint64_t *above = y + k < size_t(m.h) ? &m.v[(y + k) * m.words] : nullptr;
        for (size_t i = 0; i < m.words; ++i) {
          dst[i] = mid[i] | (below != nullptr ? below[i] : 0) | (above != nullptr ? above[i] : 0);
        }
      }
    });
    m.v.swap(tmp);
    a += int32_t(k);
  }
}

// Depth edges: Sobel L1 magnitude of the 8-bit normalized depth, strong at
// >= high, kept at >= low when connected to a strong pixel (8-neighbours).
std::vector<uint8_t> depth_edges(const std::vector<uint8_t> &grey, int32_t w, int32_t h, int low, int high,
                                 int threads) {
  std::vector<uint8_t> klass(grey.size(), 0);  // 0 none, 1 weak, 2 strong
  // OpenCV's default border (reflect101) for the rows and columns outside.
  auto reflect = [](int32_t i, int32_t n) {
    if (n == 1) return 0;
    i = i < 0 ? -i : (i >= n ? 2 * n - 2 - i : i);
    return std::clamp(i, 0, n - 1);
  };
  parallel_ranges(size_t(h), threads, 64, [&](size_t y0, size_t y1, int) {
    for (int32_t y = int32_t(y0); y < int32_t(y1); ++y) {
      const uint8_t *up = &grey[size_t(reflect(y - 1, h)) * size_t(w)];
      const uint8_t *mid = &grey[size_t(y) * size_t(w)];
      const uint8_t *down = &grey[size_t(reflect(y + 1, h)) * size_t(w)];
      for (int32_t x = 0; x < w; ++x) {
        const int32_t l = x > 0 ? x - 1 : reflect(x - 1, w), r = x + 1 < w ? x + 1 : reflect(x + 1, w);
        const int gx = (up[r] + 2 * mid[r] + down[r]) - (up[l] + 2 * mid[l] + down[l]);
        const int gy = (down[l] + 2 * down[x] + down[r]) - (up[l] + 2 * up[x] + up[r]);
        const int mag = std::abs(gx) + std::abs(gy);
        klass[size_t(y) * size_t(w) + size_t(x)] = mag >= high ? 2 : (mag >= low ? 1 : 0);
      }
    }
  });
  // Hysteresis: weak pixels 8-connected to a strong one join it. Only the
  // strong pixels next to a weak one start a flood (found in parallel).
  std::vector<uint8_t> edge(grey.size());
  std::vector<std::vector<std::pair<int32_t, int32_t>>> seeds(size_t(std::max(1, threads)));
  auto weak_around = [&](int32_t x, int32_t y) {
    for (int32_t ny = std::max(0, y - 1); ny <= std::min(h - 1, y + 1); ++ny) {
      for (int32_t nx = std::max(0, x - 1); nx <= std::min(w - 1, x + 1); ++nx) {
        if (klass[size_t(ny) * size_t(w) + size_t(nx)] == 1) return true;
      }
    }
    return false;
  };
  parallel_ranges(size_t(h), threads, 64, [&](size_t y0, size_t y1, int worker) {
    for (int32_t y = int32_t(y0); y < int32_t(y1); ++y) {
      for (int32_t x = 0; x < w; ++x) {
        const size_t p = size_t(y) * size_t(w) + size_t(x);
        edge[p] = klass[p] == 2;
        if (edge[p] && weak_around(x, y)) seeds[size_t(worker)].push_back({x, y});
      }
    }
  });
  std::vector<std::pair<int32_t, int32_t>> stack;
  for (const auto &own : seeds) stack.insert(stack.end(), own.begin(), own.end());
  while (!stack.empty()) {
    const auto [x, y] = stack.back();
    stack.pop_back();
    for (int32_t ny = std::max(0, y - 1); ny <= std::min(h - 1, y + 1); ++ny) {
      for (int32_t nx = std::max(0, x - 1); nx <= std::min(w - 1, x + 1); ++nx) {
        const size_t q = size_t(ny) * size_t(w) + size_t(nx);
        if (klass[q] == 1 && !edge[q]) {
          edge[q] = 1;
          stack.push_back({nx, ny});
        }
      }
    }
  }
  return edge;
}

// w^e; Hunyuan3D's exponent 4 by two multiplications (std::pow costs
// more than the rest of a texel's work).
inline float power(float w, float e) {
  if (e == 4) {
    const float w2 = w * w;
    return w2 * w2;
  }
  return std::pow(w, e);
}

inline void atomic_add(float *target, float value) {
  float current;
  __atomic_load(target, &current, __ATOMIC_RELAXED);
  float next;
  do {
    next = current + value;
  } while (!__atomic_compare_exchange(target, &current, &next, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

void check_accumulators(const char *op, int32_t channels, const float *accum_color, const float *accum_weight) {
  if (channels <= 0 || channels > 16 || accum_color == nullptr || accum_weight == nullptr) {
    throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": NULL accumulator or channels outside 1..16");
  }
}

// Adds a view's per-texel colours and weights into the running sums unless
// more than 99 % of the texels it paints are painted already. weight[t] > 0
// marks the texels the view paints.
template <class ColorOf>
int32_t accumulate(size_t texels, const std::vector<float> &weight, int32_t channels, int threads,
                   const ColorOf &color_of, float *accum_color, float *accum_weight) {
  size_t painted = 0, repainted = 0;
  for (size_t t = 0; t < texels; ++t) {
    if (weight[t] > 0) {
      ++painted;
      if (accum_weight[t] > 0) ++repainted;
    }
  }
  if (painted == 0 || double(repainted) / double(painted) > kSkipPaintedRatio) return 0;
  const size_t c = size_t(channels);
  parallel_ranges(texels, threads, 1 << 16, [&](size_t begin, size_t end, int) {
    float rgb[16];
    for (size_t t = begin; t < end; ++t) {
      if (!(weight[t] > 0)) continue;
      color_of(t, rgb);
      for (size_t k = 0; k < c; ++k) accum_color[c * t + k] += weight[t] * rgb[k];
      accum_weight[t] += weight[t];
    }
  });
  return 1;
}

}  // namespace
}  // namespace hy3d

extern "C" {

hy3d_status hy3d_bake_view_weights(const int32_t *face_ids, const float *normals, const float *depth, int32_t width,
                                   int32_t height, const float *to_camera, float cos_threshold, int32_t radius,
                                   int threads, float *weights) {
  return hy3d::guard([&] {
    const char *op = "hy3d_bake_view_weights";
    hy3d::check_image(op, width, height);
    if (face_ids == nullptr || normals == nullptr || depth == nullptr || to_camera == nullptr || weights == nullptr ||
        radius < 0 || radius > 1024) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": NULL array or radius outside 0..1024");
    }
    threads = hy3d::resolve_threads(threads);
    const size_t n = size_t(width) * size_t(height);
    const double len = std::sqrt(double(to_camera[0]) * to_camera[0] + double(to_camera[1]) * to_camera[1] +
                                  double(to_camera[2]) * to_camera[2]);
    if (!(len > 0) || !std::isfinite(len)) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": camera direction has no length");
    }
    const float dir[3] = {float(to_camera[0] / len), float(to_camera[1] / len), float(to_camera[2] / len)};
    std::vector<float> lo_by(size_t(threads), std::numeric_limits<float>::infinity());
    std::vector<float> hi_by(size_t(threads), -std::numeric_limits<float>::infinity());
    hy3d::parallel_ranges(n, threads, 1 << 16, [&](size_t begin, size_t end, int worker) {
      float lo = lo_by[size_t(worker)], hi = hi_by[size_t(worker)];
      for (size_t p = begin; p < end; ++p) {
        if (face_ids[p] < 0) continue;
        lo = std::min(lo, depth[p]);
        hi = std::max(hi, depth[p]);
      }
      lo_by[size_t(worker)] = lo;
      hi_by[size_t(worker)] = hi;
    });
    const float dmin = *std::min_element(lo_by.begin(), lo_by.end());
    const float dmax = *std::max_element(hi_by.begin(), hi_by.end());
    const float span = dmax > dmin ? dmax - dmin : 1.0f;
    // Hunyuan3D normalizes camera z (negative, larger is nearer); we keep
    // the distance (positive, smaller is nearer), so the grey levels are
    // mirrored, which leaves gradient magnitudes unchanged.
    std::vector<uint8_t> grey(n);
    hy3d::parallel_ranges(n, threads, 1 << 16, [&](size_t begin, size_t end, int) {
      for (size_t p = begin; p < end; ++p) {
        grey[p] = face_ids[p] < 0 ? 0 : uint8_t(std::clamp((dmax - depth[p]) / span, 0.0f, 1.0f) * 255.0f);
      }
    });
    // Unreliable: within radius of a depth edge or of the background, one
    // dilation of their union.
    const std::vector<uint8_t> edges = hy3d::depth_edges(grey, width, height, 30, 80, threads);
    hy3d::Bits unreliable(width, height);
    hy3d::parallel_ranges(size_t(height), threads, 64, [&](size_t y0, size_t y1, int) {
      for (size_t y = y0; y < y1; ++y) {
        uint64_t *row = &unreliable.v[y * unreliable.words];
        for (size_t x = 0; x < size_t(width); ++x) {
          const size_t p = y * size_t(width) + x;
          row[x / 64] |= uint64_t(edges[p] | (face_ids[p] < 0)) << (x % 64);
        }
      }
    });
    if (radius > 0) hy3d::dilate(unreliable, radius, threads);
    hy3d::parallel_ranges(size_t(height), threads, 64, [&](size_t y0, size_t y1, int) {
      for (size_t y = y0; y < y1; ++y) {
        for (size_t x = 0; x < size_t(width); ++x) {
          const size_t p = y * size_t(width) + x;
          if (unreliable.at(y, x)) {
            weights[p] = hy3d::kUnreliable;
            continue;
          }
          const float *nv = normals + 3 * p;
          const float nl = std::sqrt(nv[0] * nv[0] + nv[1] * nv[1] + nv[2] * nv[2]);
          const float c = nl > 0 ? (nv[0] * dir[0] + nv[1] * dir[1] + nv[2] * dir[2]) / nl : 0.0f;
          weights[p] = c < cos_threshold ? 0.0f : c;
        }
      }
    });
    return HY3D_OK;
  });
}

hy3d_status hy3d_texel_bounds(const float *texel_positions, size_t texel_count, int32_t run, int threads,
                              float *bounds) {
  return hy3d::guard([&] {
    if ((texel_count > 0 && (texel_positions == nullptr || bounds == nullptr)) || run <= 0) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "hy3d_texel_bounds: NULL array or run below 1");
    }
    const size_t length = size_t(run), runs = (texel_count + length - 1) / length;
    hy3d::parallel_ranges(runs, hy3d::resolve_threads(threads), 256, [&](size_t begin, size_t end, int) {
      for (size_t r = begin; r < end; ++r) {
        float box[6] = {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::infinity(),
                        std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
        for (size_t i = r * length; i < std::min(texel_count, (r + 1) * length); ++i) {
          for (int k = 0; k < 3; ++k) {
            box[k] = std::min(box[k], texel_positions[3 * i + size_t(k)]);
            box[3 + k] = std::max(box[3 + k], texel_positions[3 * i + size_t(k)]);
          }
        }
        std::copy(box, box + 6, bounds + 6 * r);
      }
    });
    return HY3D_OK;
  });
}

hy3d_status hy3d_bake_gather(const float *texel_positions, const uint32_t *texel_index, size_t texel_count,
                             const float *texel_bounds, int32_t texel_run, const float *image, const float *depth,
                             const float *weights, int32_t width, int32_t height, int32_t channels,
                             const float *world_to_camera, float ortho_scale, float view_weight, float exponent,
                             float depth_tolerance, size_t texture_pixels, int threads, float *accum_color,
                             float *accum_weight, int32_t *used) {
  return hy3d::guard([&] {
    const char *op = "hy3d_bake_gather";
    hy3d::check_image(op, width, height);
    hy3d::check_accumulators(op, channels, accum_color, accum_weight);
    if ((texel_count > 0 && (texel_positions == nullptr || texel_index == nullptr)) || image == nullptr ||
        depth == nullptr || weights == nullptr || world_to_camera == nullptr || used == nullptr ||
        !(ortho_scale > 0) || (texel_bounds != nullptr && texel_run <= 0)) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": NULL array, bad ortho scale or texel run");
    }
    for (size_t i = 0; i < texel_count; ++i) {
      if (texel_index[i] >= texture_pixels) {
        return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": texel index out of range");
      }
    }
    threads = hy3d::resolve_threads(threads);
    const size_t c = size_t(channels);
    // Per block of kBlock² pixels the depth range of its pixels of positive
    // weight, small enough to stay in cache, which rejects most texels (and
    // runs of texels) hidden behind the visible surface without reading the
    // view's own arrays.
    constexpr int32_t kBlock = 8;
    const int32_t bw = (width + kBlock - 1) / kBlock, bh = (height + kBlock - 1) / kBlock;
    std::vector<float> block_lo(size_t(bw) * size_t(bh)), block_hi(size_t(bw) * size_t(bh));
    hy3d::parallel_ranges(size_t(bh), threads, 8, [&](size_t by0, size_t by1, int) {
      for (size_t by = by0; by < by1; ++by) {
        float *lo = &block_lo[by * size_t(bw)], *hi = &block_hi[by * size_t(bw)];
        std::fill(lo, lo + bw, std::numeric_limits<float>::infinity());
        std::fill(hi, hi + bw, -std::numeric_limits<float>::infinity());
        for (size_t y = by * kBlock; y < std::min(size_t(height), (by + 1) * kBlock); ++y) {
          for (size_t x = 0; x < size_t(width); ++x) {
            const size_t p = y * size_t(width) + x;
            if (!(weights[p] > 0)) continue;
            lo[x / kBlock] = std::min(lo[x / kBlock], depth[p]);
            hi[x / kBlock] = std::max(hi[x / kBlock], depth[p]);
          }
        }
      }
    });
    // The camera rows scaled to pixels: NDC x = camera x / (ortho_scale/2)
    // lands at (x/2 + 1/2)·W, Hunyuan3D-2.1's mapping here (not its
    // rasterizer's), and inside the view when 0 <= px <= W.
    const float *m = world_to_camera;
    const double sx = double(width) / double(ortho_scale), sy = double(height) / double(ortho_scale);
    const double row_x[4] = {m[0] * sx, m[1] * sx, m[2] * sx, m[3] * sx + width / 2.0};
    const double row_y[4] = {m[4] * sy, m[5] * sy, m[6] * sy, m[7] * sy + height / 2.0};
    const double row_z[4] = {-m[8], -m[9], -m[10], -m[11]};
    const double tolerance = depth_tolerance;
    // The texels each view accepts, per chunk of the texel list, found once:
    // the skip rule counts them, then only they are sampled.
    struct Sample {
      uint32_t texel;
      uint16_t x, y;
      float fx, fy, w;
    };
    // Whether some texel of run r can land on a block whose depth range it
    // meets: its box projected, against the blocks under the projection.
    auto may_accept = [&](size_t r) {
      const float *box = texel_bounds + 6 * r;
      double x0 = std::numeric_limits<double>::infinity(), y0 = x0, d0 = x0, x1 = -x0, y1 = -x0, d1 = -x0;
      for (int corner = 0; corner < 8; ++corner) {
        const double x = box[corner & 1 ? 3 : 0], y = box[corner & 2 ? 4 : 1], z = box[corner & 4 ? 5 : 2];
        const double px = row_x[0] * x + row_x[1] * y + row_x[2] * z + row_x[3];
        const double py = row_y[0] * x + row_y[1] * y + row_y[2] * z + row_y[3];
        const double dist = row_z[0] * x + row_z[1] * y + row_z[2] * z + row_z[3];
        x0 = std::min(x0, px);
        x1 = std::max(x1, px);
        y0 = std::min(y0, py);
        y1 = std::max(y1, py);
        d0 = std::min(d0, dist);
        d1 = std::max(d1, dist);
      }
      if (!(x1 >= 0 && x0 <= width && y1 >= 0 && y0 <= height)) return false;
      const int32_t bx0 = int32_t(std::max(0.0, x0)) / kBlock, bx1 = int32_t(std::min(double(width - 1), x1)) / kBlock;
      const int32_t by0 = int32_t(std::max(0.0, y0)) / kBlock, by1 = int32_t(std::min(double(height - 1), y1)) / kBlock;
      if (int64_t(bx1 - bx0 + 1) * int64_t(by1 - by0 + 1) > 64) return true;  // not worth testing
      for (int32_t by = by0; by <= by1; ++by) {
        for (int32_t bx = bx0; bx <= bx1; ++bx) {
          const size_t block = size_t(by) * size_t(bw) + size_t(bx);
          if (d1 > double(block_lo[block]) - tolerance && d0 < double(block_hi[block]) + tolerance) return true;
        }
      }
      return false;
    };
    // Chunks of the texel list start on a run.
    const size_t run = texel_bounds != nullptr ? size_t(texel_run) : 1;
    const size_t kChunk = ((size_t(1) << 14) + run - 1) / run * run;
    const size_t chunks = (texel_count + kChunk - 1) / kChunk;
    std::vector<std::vector<Sample>> accepted(chunks);
    std::vector<size_t> painted(size_t(threads), 0), repainted(size_t(threads), 0);
    hy3d::parallel_chunks(texel_count, threads, kChunk, [&](size_t begin, size_t end, int worker) {
      std::vector<Sample> &out = accepted[begin / kChunk];
      size_t again = 0;
      for (size_t i = begin; i < end; ++i) {
        if (texel_bounds != nullptr && i % run == 0 && !may_accept(i / run)) {
          i += run - 1;
          continue;
        }
        const double x = texel_positions[3 * i], y = texel_positions[3 * i + 1], z = texel_positions[3 * i + 2];
        const double px = row_x[0] * x + row_x[1] * y + row_x[2] * z + row_x[3];
        const double py = row_y[0] * x + row_y[1] * y + row_y[2] * z + row_y[3];
        if (!(px >= 0 && px <= width && py >= 0 && py <= height)) continue;
        const int32_t ix = std::min(int32_t(px), width - 1), iy = std::min(int32_t(py), height - 1);
        const double dist = row_z[0] * x + row_z[1] * y + row_z[2] * z + row_z[3];
        const size_t block = size_t(iy / kBlock) * size_t(bw) + size_t(ix / kBlock);
        if (!(dist > double(block_lo[block]) - tolerance && dist < double(block_hi[block]) + tolerance)) continue;
        const size_t pixel = size_t(iy) * size_t(width) + size_t(ix);
        if (!(weights[pixel] > 0) || !(std::fabs(dist - double(depth[pixel])) < tolerance)) continue;
        out.push_back({texel_index[i], uint16_t(ix), uint16_t(iy), float(px - ix), float(py - iy),
                       view_weight * hy3d::power(weights[pixel], exponent)});
        again += accum_weight[texel_index[i]] > 0;
      }
      painted[size_t(worker)] += out.size();
      repainted[size_t(worker)] += again;
    });
    size_t total = 0, again = 0;
    for (int t = 0; t < threads; ++t) {
      total += painted[size_t(t)];
      again += repainted[size_t(t)];
    }
    *used = total > 0 && double(again) / double(total) <= hy3d::kSkipPaintedRatio;
    if (!*used) return HY3D_OK;
    // Texel indices are distinct, so workers never add into the same texel.
    hy3d::parallel_chunks(chunks, threads, 1, [&](size_t begin, size_t end, int) {
      for (size_t chunk = begin; chunk < end; ++chunk) {
        for (const Sample &s : accepted[chunk]) {
          const size_t x1 = std::min<size_t>(s.x + 1, size_t(width) - 1);
          const size_t y1 = std::min<size_t>(s.y + 1, size_t(height) - 1);
          const float *p00 = image + c * (size_t(s.y) * size_t(width) + s.x);
          const float *p01 = image + c * (size_t(s.y) * size_t(width) + x1);
          const float *p10 = image + c * (y1 * size_t(width) + s.x);
          const float *p11 = image + c * (y1 * size_t(width) + x1);
          float *out = accum_color + c * s.texel;
          for (size_t k = 0; k < c; ++k) {
            out[k] += s.w * ((p00[k] * (1 - s.fx) + p01[k] * s.fx) * (1 - s.fy) +
                             (p10[k] * (1 - s.fx) + p11[k] * s.fx) * s.fy);
          }
          accum_weight[s.texel] += s.w;
        }
      }
    });
    return HY3D_OK;
  });
}

hy3d_status hy3d_bake_splat(const float *uv_map, const float *image, const float *weights, int32_t width,
                            int32_t height, int32_t channels, int32_t texture_width, int32_t texture_height,
                            float view_weight, float exponent, int threads, float *accum_color, float *accum_weight,
                            int32_t *used) {
  return hy3d::guard([&] {
    const char *op = "hy3d_bake_splat";
    hy3d::check_image(op, width, height);
    hy3d::check_image(op, texture_width, texture_height);
    hy3d::check_accumulators(op, channels, accum_color, accum_weight);
    if (uv_map == nullptr || image == nullptr || weights == nullptr || used == nullptr || texture_width < 2 ||
        texture_height < 2) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": NULL array or texture under 2x2");
    }
    threads = hy3d::resolve_threads(threads);
    const size_t c = size_t(channels), stride = c + 2;  // colour sum, cosine sum, weight sum
    const size_t texels = size_t(texture_width) * size_t(texture_height);
    std::vector<float> sums(stride * texels, 0.0f);
    const size_t pixels = size_t(width) * size_t(height);
    hy3d::parallel_ranges(pixels, threads, 1 << 15, [&](size_t begin, size_t end, int) {
      for (size_t p = begin; p < end; ++p) {
        if (weights[p] < 0) continue;
        const float u = uv_map[2 * p], v = uv_map[2 * p + 1];
        if (!std::isfinite(u) || !std::isfinite(v)) continue;
        // Texel (i, j) is centred on u = (j + 1/2)/W; Hunyuan3D-2.0 puts it at j/(W - 1).
        const float gx = std::clamp(u * texture_width - 0.5f, 0.0f, float(texture_width - 1));
        const float gy = std::clamp(v * texture_height - 0.5f, 0.0f, float(texture_height - 1));
        const int32_t x0 = std::min(int32_t(gx), texture_width - 2), y0 = std::min(int32_t(gy), texture_height - 2);
        const float fx = gx - x0, fy = gy - y0;
        const float corner[4] = {(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy};
        const size_t base[4] = {size_t(y0) * size_t(texture_width) + size_t(x0),
                                size_t(y0) * size_t(texture_width) + size_t(x0) + 1,
                                size_t(y0 + 1) * size_t(texture_width) + size_t(x0),
                                size_t(y0 + 1) * size_t(texture_width) + size_t(x0) + 1};
        const float *rgb = image + c * p;
        for (int k = 0; k < 4; ++k) {
          if (!(corner[k] > 0)) continue;
          float *s = &sums[stride * base[k]];
          for (size_t ch = 0; ch < c; ++ch) hy3d::atomic_add(&s[ch], corner[k] * rgb[ch]);
          hy3d::atomic_add(&s[c], corner[k] * weights[p]);
          hy3d::atomic_add(&s[c + 1], corner[k]);
        }
      }
    });
    std::vector<float> weight(texels, 0.0f);
    hy3d::parallel_ranges(texels, threads, 1 << 16, [&](size_t begin, size_t end, int) {
      for (size_t t = begin; t < end; ++t) {
        const float total = sums[stride * t + c + 1];
        if (total > 0) weight[t] = view_weight * hy3d::power(sums[stride * t + c] / total, exponent);
      }
    });
    *used = hy3d::accumulate(
        texels, weight, channels, threads,
        [&](size_t t, float *rgb) {
          const float *s = &sums[stride * t];
          for (size_t k = 0; k < c; ++k) rgb[k] = s[k] / s[c + 1];
        },
        accum_color, accum_weight);
    return HY3D_OK;
  });
}

hy3d_status hy3d_bake_resolve(float *accum_color, const float *accum_weight, size_t texel_count, int32_t channels,
                              int threads, uint8_t *painted) {
  return hy3d::guard([&] {
    hy3d::check_accumulators("hy3d_bake_resolve", channels, accum_color, accum_weight);
    if (painted == nullptr) return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "hy3d_bake_resolve: NULL mask");
    const size_t c = size_t(channels);
    hy3d::parallel_ranges(texel_count, hy3d::resolve_threads(threads), 1 << 16, [&](size_t begin, size_t end, int) {
      for (size_t t = begin; t < end; ++t) {
        const float w = accum_weight[t];
        painted[t] = w > hy3d::kWeightEpsilon;
        const float inv = 1.0f / std::max(w, hy3d::kWeightEpsilon);
        for (size_t k = 0; k < c; ++k) accum_color[c * t + k] *= inv;
      }
    });
    return HY3D_OK;
  });
}

}  // extern "C"
