// Triangle rasterization for texturing: orthographic views of a mesh (face
// id, barycentrics, depth per pixel) and the mesh laid out in UV space at the
// texture size, plus interpolation of vertex or face attributes over either.
//
// View pixels follow the CPU/GPU rasterizer of Hunyuan3D-Paint so that maps
// rendered here line up with the views its models were trained on: NDC x in
// [-1, 1] maps to x_px = (x/2 + 1/2)(W - 1) + 1/2, the same for y, row 0 is
// NDC y = -1 (no flip), and a pixel is covered when its centre (px + 1/2)
// lies in the closed triangle. Where two triangles cover a pixel the nearer
// one wins and, at equal depth, the lower face id (Hunyuan3D quantizes depth
// to 2^18 steps before that comparison; we compare the float depths).
//
// UV space uses the convention of glTF samplers instead: texel (i, j) has
// its centre at u = (j + 1/2)/W, v = (i + 1/2)/H, row 0 at v = 0. Hunyuan3D
// maps u to (W - 1) there as well, which puts texel centres up to half a
// texel away from where a viewer samples them.
//
// Work is split into tiles of pixels (see rasterize), so no pixel is
// written by two threads and the result does not depend on the thread count.
#include <cmath>
#include <cstring>
#include <limits>

#include "texture_common.hpp"

namespace hy3d {

void check_triangles(const char *op, const float *vertices, size_t vertex_count, const uint32_t *indices,
                     size_t triangle_count) {
  if ((vertex_count > 0 && vertices == nullptr) || (triangle_count > 0 && indices == nullptr)) {
    throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": NULL array with a non-zero count");
  }
  if (triangle_count > size_t(std::numeric_limits<int32_t>::max())) {
    throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": more triangles than 32-bit face ids hold");
  }
  for (size_t i = 0; i < 3 * triangle_count; ++i) {
    if (indices[i] >= vertex_count) {
      throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": index " + std::to_string(indices[i]) +
                                                 " out of range for " + std::to_string(vertex_count) + " vertices");
    }
  }
}

void check_image(const char *op, int32_t width, int32_t height) {
  constexpr int32_t kMaxSide = 1 << 15;
  if (width <= 0 || height <= 0 || width > kMaxSide || height > kMaxSide) {
    throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": image size " + std::to_string(width) + "x" +
                                               std::to_string(height) + " outside 1.." + std::to_string(kMaxSide));
  }
}

namespace {

void check_finite(const char *op, const float *values, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (!std::isfinite(values[i])) {
      throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": non-finite coordinate at " + std::to_string(i));
    }
  }
}

// A float's bits as an unsigned integer of the same order (negative
// values below positive ones), so depths sort as integers.
inline uint32_t ordered_bits(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits & 0x80000000u ? ~bits : bits | 0x80000000u;
}

// The pixel rectangle [x0, x1] x [y0, y1] whose samples (at px + 1/2) a
// triangle can cover, clipped to the image; false when empty.
inline bool sample_box(const ScreenVertex &a, const ScreenVertex &b, const ScreenVertex &c, int32_t width,
                       int32_t height, int64_t &x0, int64_t &y0, int64_t &x1, int64_t &y1) {
  // Pixel px can be covered when min - 1/2 <= px <= max - 1/2.
  const double ylo = std::max(0.0, std::ceil(std::min({a.y, b.y, c.y}) - 0.5));
  const double yhi = std::min(double(height) - 1, std::floor(std::max({a.y, b.y, c.y}) - 0.5));
  const double xlo = std::max(0.0, std::ceil(std::min({a.x, b.x, c.x}) - 0.5));
  const double xhi = std::min(double(width) - 1, std::floor(std::max({a.x, b.x, c.x}) - 0.5));
  if (!(ylo <= yhi && xlo <= xhi)) return false;
  x0 = int64_t(xlo);
  y0 = int64_t(ylo);
  x1 = int64_t(xhi);
  y1 = int64_t(yhi);
  return true;
}

// Rasterizes the triangles over the given vertices into face_ids (-1 where
// none), barycentrics (3 per pixel, 0 on the background) and, when depth is
// non-NULL, the depth (0 on the background). Closed triangles; the nearer
// wins, at equal depth the lower id. With depth_test false every triangle
// is at the same depth (UV space): the lower id wins.
//
// The image is cut into tiles of kTile² pixels, small enough that a tile's
// depth and face ids stay in cache; every triangle is listed in the tiles
// its box meets (in increasing id order), and workers take whole tiles:
// first each pixel's face (and depth), then its barycentrics, so pixels
// drawn over by nearer faces cost no barycentric writes. No pixel is
// written by two workers, and the result does not depend on their number.
void rasterize(const std::vector<ScreenVertex> &sv, const uint32_t *indices, size_t triangle_count, int32_t width,
               int32_t height, int threads, bool depth_test, int32_t *face_ids, float *bary, float *depth) {
  constexpr int64_t kTile = 64;
  constexpr size_t kFarthestEvery = 32;  // faces between updates of a covered tile's farthest depth
  constexpr int64_t kNarrow = 8;         // boxes at least this wide get their row spans solved for
  const int64_t tiles_x = (int64_t(width) + kTile - 1) / kTile, tiles_y = (int64_t(height) + kTile - 1) / kTile;
  const size_t tiles = size_t(tiles_x * tiles_y);
  // Bin the triangles: each worker lists a range of them per tile, the
  // lists are then joined in range order.
  const int binners = std::max(1, std::min(threads, int(triangle_count / 4096)));
  using Bins = std::vector<std::vector<uint32_t>>;  // face ids per tile
  std::vector<Bins> bins(static_cast<size_t>(binners), Bins(tiles));
  parallel_ranges(triangle_count, binners, 1, [&](size_t begin, size_t end, int worker) {
    Bins &own = bins[size_t(worker)];
    for (size_t f = begin; f < end; ++f) {
      int64_t x0, y0, x1, y1;
      if (!sample_box(sv[indices[3 * f]], sv[indices[3 * f + 1]], sv[indices[3 * f + 2]], width, height, x0, y0, x1,
                      y1)) {
        continue;
      }
      for (int64_t ty = y0 / kTile; ty <= y1 / kTile; ++ty) {
        for (int64_t tx = x0 / kTile; tx <= x1 / kTile; ++tx) own[size_t(ty * tiles_x + tx)].push_back(uint32_t(f));
      }
    }
  });
  std::vector<float> zbuf;
  float *z = depth;
  if (depth_test && z == nullptr) {
    zbuf.resize(size_t(width) * size_t(height));
    z = zbuf.data();
  }
  parallel_chunks(tiles, threads, 1, [&](size_t begin, size_t end, int) {
    std::vector<uint32_t> order;
    std::vector<uint64_t> keyed;  // a face's nearest depth (ordered bits) above its id
    for (size_t tile = begin; tile < end; ++tile) {
      const int64_t tx0 = int64_t(tile) % tiles_x * kTile, ty0 = int64_t(tile) / tiles_x * kTile;
      const int64_t tx1 = std::min<int64_t>(tx0 + kTile, width) - 1, ty1 = std::min<int64_t>(ty0 + kTile, height) - 1;
      for (int64_t y = ty0; y <= ty1; ++y) {
        std::fill(face_ids + y * width + tx0, face_ids + y * width + tx1 + 1, -1);
        if (depth_test) std::fill(z + y * width + tx0, z + y * width + tx1 + 1, std::numeric_limits<float>::infinity());
      }
      // With depth, the tile's faces go nearest first, and once every
      // pixel of the tile is covered, faces entirely behind the farthest
      // pixel so far are skipped (the tie rule then compares ids).
      order.clear();
      for (const Bins &own : bins) order.insert(order.end(), own[tile].begin(), own[tile].end());
      if (depth_test) {
        keyed.resize(order.size());
        for (size_t i = 0; i < order.size(); ++i) {
          const uint32_t *t = indices + 3 * size_t(order[i]);
          keyed[i] = uint64_t(ordered_bits(float(std::min({sv[t[0]].z, sv[t[1]].z, sv[t[2]].z})))) << 32 | order[i];
        }
        std::sort(keyed.begin(), keyed.end());
        for (size_t i = 0; i < order.size(); ++i) order[i] = uint32_t(keyed[i]);
      }
      const int64_t tile_pixels = (tx1 - tx0 + 1) * (ty1 - ty0 + 1);
      int64_t uncovered = tile_pixels;
      float farthest = std::numeric_limits<float>::infinity();
      for (size_t i = 0; i < order.size(); ++i) {
        const uint32_t f = order[i];
        if (depth_test) {
          if (uncovered == 0 && (i % kFarthestEvery == 0 || farthest == std::numeric_limits<float>::infinity())) {
            farthest = -std::numeric_limits<float>::infinity();
            for (int64_t y = ty0; y <= ty1; ++y) {
              for (int64_t x = tx0; x <= tx1; ++x) farthest = std::max(farthest, z[y * width + x]);
            }
          }
          // This face and every later one lie behind the whole tile: done.
          if (keyed[i] >> 32 > ordered_bits(farthest)) break;
        }
        {
          const ScreenVertex &a = sv[indices[3 * size_t(f)]], &b = sv[indices[3 * size_t(f) + 1]],
                             &c = sv[indices[3 * size_t(f) + 2]];
          int64_t x0 = 0, y0 = 0, x1 = -1, y1 = -1;
          sample_box(a, b, c, width, height, x0, y0, x1, y1);  // non-empty: the triangle was binned
          x0 = std::max(x0, tx0);
          x1 = std::min(x1, tx1);
          y0 = std::max(y0, ty0);
          y1 = std::min(y1, ty1);
          Edges e;
          if (x0 > x1 || y0 > y1 || !edges(a, b, c, e)) continue;
          const int32_t face = int32_t(f);
          for (int64_t py = y0; py <= y1; ++py) {
            const double sy = double(py) + 0.5;
            const double r0 = e.e0y * sy + e.e0c, r1 = e.e1y * sy + e.e1c;
            // The samples of this row inside the triangle form one span; find
            // it from the three half-planes, widened by a pixel so rounding
            // never drops a sample, then find its first and last covered
            // samples exactly: those between are covered too (the triangle
            // is convex).
            // (Narrow boxes are searched sample by sample instead.)
            double lo = double(x0), hi = double(x1);
            if (x1 - x0 >= kNarrow) {
              const double half[3][2] = {{e.e0x, r0}, {e.e1x, r1}, {-e.e0x - e.e1x, 1.0 - r0 - r1}};
              for (const auto &h : half) {
                if (h[0] > 0) {
                  lo = std::max(lo, std::floor(-h[1] / h[0] - 0.5) - 1);
                } else if (h[0] < 0) {
                  hi = std::min(hi, std::ceil(-h[1] / h[0] - 0.5) + 1);
                } else if (h[1] < 0) {
                  hi = lo - 1;
                }
              }
            }
            auto covered = [&](int64_t px) {
              const double sx = double(px) + 0.5;
              const double w0 = e.e0x * sx + r0, w1 = e.e1x * sx + r1;
              return w0 >= 0 && w1 >= 0 && 1.0 - w0 - w1 >= 0;
            };
            int64_t first = int64_t(lo), last = int64_t(hi);
            while (first <= last && !covered(first)) ++first;
            while (last > first && !covered(last)) --last;
            if (first > last) continue;
            int32_t *row_ids = face_ids + py * width;
            if (!depth_test) {
              for (int64_t px = first; px <= last; ++px) row_ids[px] = row_ids[px] < 0 ? face : row_ids[px];
              continue;
            }
            // Depth is affine in the sample too; faces come in increasing
            // id order, so a later face must be strictly nearer to win.
            float *row_z = z + py * width;
            const double dzx = e.e0x * a.z + e.e1x * b.z - (e.e0x + e.e1x) * c.z;
            const double dz0 = r0 * a.z + r1 * b.z + (1.0 - r0 - r1) * c.z;
            for (int64_t px = first; px <= last; ++px) {
              const float d = float(dzx * (double(px) + 0.5) + dz0);
              if (d < row_z[px] || (d == row_z[px] && face < row_ids[px])) {
                uncovered -= row_ids[px] < 0;
                row_z[px] = d;
                row_ids[px] = face;
              }
            }
          }
        }
      }
      // Barycentrics of the faces that won, as their coverage test saw them.
      if (bary == nullptr && depth == nullptr) continue;
      int32_t current = -1;
      Edges e{};
      for (int64_t py = ty0; py <= ty1; ++py) {
        for (int64_t px = tx0; px <= tx1; ++px) {
          const size_t p = size_t(py) * size_t(width) + size_t(px);
          const int32_t f = face_ids[p];
          if (f < 0) {
            if (bary != nullptr) bary[3 * p] = bary[3 * p + 1] = bary[3 * p + 2] = 0;
            if (depth != nullptr) depth[p] = 0;
            continue;
          }
          if (bary == nullptr) continue;
          if (f != current) {
            current = f;
            edges(sv[indices[3 * size_t(f)]], sv[indices[3 * size_t(f) + 1]], sv[indices[3 * size_t(f) + 2]], e);
          }
          barycentric(e, size_t(px), size_t(py), bary + 3 * p);
        }
      }
    }
  });
}

void check_outputs(const char *op, const int32_t *face_ids, const float *bary) {
  if (face_ids == nullptr || bary == nullptr) {
    throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": NULL output");
  }
}

}  // namespace
}  // namespace hy3d

extern "C" {

hy3d_status hy3d_rasterize_ortho(const float *vertices, size_t vertex_count, const uint32_t *indices,
                                 size_t triangle_count, const float *world_to_camera, float ortho_scale,
                                 int32_t width, int32_t height, int threads, int32_t *face_ids, float *barycentrics,
                                 float *depth) {
  return hy3d::guard([&] {
    const char *op = "hy3d_rasterize_ortho";
    hy3d::check_triangles(op, vertices, vertex_count, indices, triangle_count);
    hy3d::check_image(op, width, height);
    hy3d::check_outputs(op, face_ids, barycentrics);
    if (world_to_camera == nullptr || !(ortho_scale > 0) || !std::isfinite(ortho_scale)) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": NULL camera or bad ortho scale");
    }
    hy3d::check_finite(op, vertices, 3 * vertex_count);
    hy3d::check_finite(op, world_to_camera, 12);
    threads = hy3d::resolve_threads(threads);
    std::vector<hy3d::ScreenVertex> sv(vertex_count);
    const double half = double(ortho_scale) / 2;
    const float *m = world_to_camera;
    hy3d::parallel_ranges(vertex_count, threads, 1 << 14, [&](size_t begin, size_t end, int) {
      for (size_t v = begin; v < end; ++v) {
        const double x = vertices[3 * v], y = vertices[3 * v + 1], zz = vertices[3 * v + 2];
        const double cx = m[0] * x + m[1] * y + m[2] * zz + m[3];
        const double cy = m[4] * x + m[5] * y + m[6] * zz + m[7];
        const double cz = m[8] * x + m[9] * y + m[10] * zz + m[11];
        sv[v] = {(cx / half * 0.5 + 0.5) * (width - 1) + 0.5, (cy / half * 0.5 + 0.5) * (height - 1) + 0.5, -cz};
      }
    });
    hy3d::rasterize(sv, indices, triangle_count, width, height, threads, true, face_ids, barycentrics, depth);
    return HY3D_OK;
  });
}

hy3d_status hy3d_rasterize_uv(const float *uvs, size_t vertex_count, const uint32_t *indices, size_t triangle_count,
                              int32_t width, int32_t height, int threads, int32_t *face_ids, float *barycentrics) {
  return hy3d::guard([&] {
    const char *op = "hy3d_rasterize_uv";
    hy3d::check_triangles(op, uvs, vertex_count, indices, triangle_count);
    hy3d::check_image(op, width, height);
    if (face_ids == nullptr) return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": NULL output");
    hy3d::check_finite(op, uvs, 2 * vertex_count);
    std::vector<hy3d::ScreenVertex> sv(vertex_count);
    for (size_t v = 0; v < vertex_count; ++v) sv[v] = hy3d::uv_vertex(uvs, uint32_t(v), width, height);
    hy3d::rasterize(sv, indices, triangle_count, width, height, hy3d::resolve_threads(threads), false, face_ids,
                    barycentrics, nullptr);
    return HY3D_OK;
  });
}

hy3d_status hy3d_uv_texels(const float *uvs, size_t vertex_count, const uint32_t *indices, size_t triangle_count,
                           const int32_t *face_ids, int32_t width, int32_t height, const float *attributes,
                           int32_t channels, int threads, size_t *texel_count, uint32_t *texel_index,
                           float *texel_values) {
  return hy3d::guard([&] {
    const char *op = "hy3d_uv_texels";
    hy3d::check_image(op, width, height);
    if (texel_count == nullptr || face_ids == nullptr || channels <= 0 || channels > 16 ||
        (texel_index != nullptr && (texel_values == nullptr || (vertex_count > 0 && attributes == nullptr)))) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": NULL array or channels outside 1..16");
    }
    threads = hy3d::resolve_threads(threads);
    // Bands of kTile rows; each band lists its texels tile by tile, so the
    // list can be written band by band from each band's offset.
    constexpr size_t kTile = 8;
    const size_t w = size_t(width), h = size_t(height), bands = (h + kTile - 1) / kTile;
    std::vector<size_t> offset(bands + 1, 0);
    hy3d::parallel_chunks(bands, threads, 1, [&](size_t begin, size_t end, int) {
      for (size_t band = begin; band < end; ++band) {
        size_t n = 0;
        for (size_t p = band * kTile * w; p < std::min(h, (band + 1) * kTile) * w; ++p) n += face_ids[p] >= 0;
        offset[band + 1] = n;
      }
    });
    for (size_t band = 0; band < bands; ++band) offset[band + 1] += offset[band];
    *texel_count = offset[bands];
    if (texel_index == nullptr) return HY3D_OK;
    hy3d::check_triangles(op, uvs, vertex_count, indices, triangle_count);
    const size_t c = size_t(channels);
    std::atomic<bool> bad_face{false};
    hy3d::parallel_chunks(bands, threads, 1, [&](size_t begin, size_t end, int) {
      hy3d::UVBarycentrics bary(uvs, indices, width, height);
      float b[3];
      for (size_t band = begin; band < end; ++band) {
        size_t t = offset[band];
        for (size_t x0 = 0; x0 < w; x0 += kTile) {
          for (size_t y = band * kTile; y < std::min(h, (band + 1) * kTile); ++y) {
            for (size_t x = x0; x < std::min(w, x0 + kTile); ++x) {
              const size_t p = y * w + x;
              const int32_t f = face_ids[p];
              if (f < 0) continue;
              if (size_t(f) >= triangle_count) {
                bad_face = true;
                return;
              }
              texel_index[t] = uint32_t(p);
              bary.at(f, x, y, b);
              const float *a0 = attributes + c * indices[3 * size_t(f)];
              const float *a1 = attributes + c * indices[3 * size_t(f) + 1];
              const float *a2 = attributes + c * indices[3 * size_t(f) + 2];
              for (size_t k = 0; k < c; ++k) texel_values[c * t + k] = b[0] * a0[k] + b[1] * a1[k] + b[2] * a2[k];
              ++t;
            }
          }
        }
      }
    });
    if (bad_face) return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": face id out of range");
    return HY3D_OK;
  });
}

hy3d_status hy3d_interpolate(const float *attributes, int32_t channels, int32_t flags, size_t attribute_count,
                             const uint32_t *indices, size_t triangle_count, const int32_t *face_ids,
                             const float *barycentrics, size_t pixel_count, const float *background, int threads,
                             float *out) {
  return hy3d::guard([&] {
    const char *op = "hy3d_interpolate";
    if (channels <= 0 || channels > 16 || (attribute_count > 0 && attributes == nullptr) || background == nullptr ||
        (pixel_count > 0 && (face_ids == nullptr || barycentrics == nullptr || out == nullptr))) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": NULL array or channels outside 1..16");
    }
    const bool per_face = flags & HY3D_INTERPOLATE_PER_FACE, unit = flags & HY3D_INTERPOLATE_UNIT;
    if (per_face) {
      if (attribute_count != triangle_count) {
        return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": per-face attributes need one per triangle");
      }
    } else {
      hy3d::check_triangles(op, attributes, attribute_count, indices, triangle_count);
    }
    const size_t c = size_t(channels);
    std::string bad;
    hy3d::parallel_ranges(pixel_count, hy3d::resolve_threads(threads), 1 << 16, [&](size_t begin, size_t end, int) {
      for (size_t p = begin; p < end; ++p) {
        float *o = out + c * p;
        const int32_t f = face_ids[p];
        if (f < 0 || size_t(f) >= triangle_count) {
          for (size_t k = 0; k < c; ++k) o[k] = background[k];
          continue;
        }
        if (per_face) {
          for (size_t k = 0; k < c; ++k) o[k] = attributes[c * size_t(f) + k];
        } else {
          const float *b = barycentrics + 3 * p;
          const float *a0 = attributes + c * indices[3 * size_t(f)];
          const float *a1 = attributes + c * indices[3 * size_t(f) + 1];
          const float *a2 = attributes + c * indices[3 * size_t(f) + 2];
          for (size_t k = 0; k < c; ++k) o[k] = b[0] * a0[k] + b[1] * a1[k] + b[2] * a2[k];
        }
        if (unit) {
          double length = 0;
          for (size_t k = 0; k < c; ++k) length += double(o[k]) * o[k];
          length = std::sqrt(length);
          if (length > 0) {
            for (size_t k = 0; k < c; ++k) o[k] = float(o[k] / length);
          }
        }
      }
    });
    return HY3D_OK;
  });
}

}  // extern "C"
