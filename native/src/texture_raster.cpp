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
// Work is split into bands of rows, one per thread; each thread walks every
// triangle whose bounding box meets its band, so no pixel is written by two
// threads and the result does not depend on the thread count.
#include <cmath>
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

// A vertex in pixel coordinates with its depth (smaller is nearer).
struct ScreenVertex {
  double x, y, z;
};

// A triangle's barycentrics as affine functions of the sample position:
// w0 = e0x x + e0y y + e0c, w1 likewise, w2 = 1 - w0 - w1. Both passes of
// rasterize() evaluate them in the same order, so the barycentrics of a
// pixel are the ones its coverage test saw.
struct Edges {
  double e0x, e0y, e0c, e1x, e1y, e1c;
};

// False for a triangle that is degenerate in this projection (it covers no pixel).
inline bool edges(const ScreenVertex &a, const ScreenVertex &b, const ScreenVertex &c, Edges &e) {
  const double area = (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x);
  if (!(std::fabs(area) > 0)) return false;
  const double inv = 1.0 / area;
  e = {(b.y - c.y) * inv, (c.x - b.x) * inv, (b.x * c.y - b.y * c.x) * inv,
       (c.y - a.y) * inv, (a.x - c.x) * inv, (c.x * a.y - c.y * a.x) * inv};
  return true;
}

// Rasterizes the triangles over the given vertices into face_ids (-1 where
// none), barycentrics (3 per pixel, 0 on the background) and, when depth is
// non-NULL, the depth (0 on the background). Closed triangles; the nearer
// wins, at equal depth the lower id. With depth_test false every triangle
// is at the same depth (UV space): the lower id wins. The first pass finds
// each pixel's face (and depth), the second its barycentrics, so pixels
// drawn over by nearer faces cost no barycentric writes.
void rasterize(const std::vector<ScreenVertex> &sv, const uint32_t *indices, size_t triangle_count, int32_t width,
               int32_t height, int threads, bool depth_test, int32_t *face_ids, float *bary, float *depth) {
  std::vector<float> zbuf;
  float *z = depth;
  if (depth_test && z == nullptr) {
    zbuf.resize(size_t(width) * size_t(height));
    z = zbuf.data();
  }
  parallel_ranges(size_t(height), threads, 16, [&](size_t row_begin, size_t row_end, int) {
    std::fill(face_ids + row_begin * size_t(width), face_ids + row_end * size_t(width), -1);
    if (depth_test) {
      std::fill(z + row_begin * size_t(width), z + row_end * size_t(width), std::numeric_limits<float>::infinity());
    }
    const double band_lo = double(row_begin), band_hi = double(row_end) - 1;
    for (size_t f = 0; f < triangle_count; ++f) {
      const ScreenVertex &a = sv[indices[3 * f]], &b = sv[indices[3 * f + 1]], &c = sv[indices[3 * f + 2]];
      // Pixel px is sampled at px + 1/2, so it can be covered when
      // min - 1/2 <= px <= max - 1/2.
      const double ylo = std::max(band_lo, std::ceil(std::min({a.y, b.y, c.y}) - 0.5));
      const double yhi = std::min(band_hi, std::floor(std::max({a.y, b.y, c.y}) - 0.5));
      if (ylo > yhi) continue;
      const double xlo = std::max(0.0, std::ceil(std::min({a.x, b.x, c.x}) - 0.5));
      const double xhi = std::min(double(width) - 1, std::floor(std::max({a.x, b.x, c.x}) - 0.5));
      if (xlo > xhi) continue;
      Edges e;
      if (!edges(a, b, c, e)) continue;
      const int32_t face = int32_t(f);
      for (int64_t py = int64_t(ylo); py <= int64_t(yhi); ++py) {
        const double sy = double(py) + 0.5;
        const double r0 = e.e0y * sy + e.e0c, r1 = e.e1y * sy + e.e1c;
        // The samples of this row inside the triangle form one span; find
        // it from the three half-planes, widened by a pixel so rounding
        // never drops a sample, then test each sample exactly.
        double lo = xlo, hi = xhi;
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
        // The span's first and last covered samples; the samples between
        // them are covered too (the triangle is convex).
        auto covered = [&](int64_t px) {
          const double sx = double(px) + 0.5;
          const double w0 = e.e0x * sx + r0, w1 = e.e1x * sx + r1;
          return w0 >= 0 && w1 >= 0 && 1.0 - w0 - w1 >= 0;
        };
        int64_t first = int64_t(lo), last = int64_t(hi);
        while (first <= last && !covered(first)) ++first;
        while (last > first && !covered(last)) --last;
        if (first > last) continue;
        int32_t *row_ids = face_ids + size_t(py) * size_t(width);
        if (!depth_test) {
          for (int64_t px = first; px <= last; ++px) {
            if (row_ids[px] < 0) row_ids[px] = face;
          }
          continue;
        }
        // Depth is affine in the sample too; faces come in increasing id
        // order, so a later face must be strictly nearer to win.
        float *row_z = z + size_t(py) * size_t(width);
        const double dzx = e.e0x * a.z + e.e1x * b.z - (e.e0x + e.e1x) * c.z;
        const double dz0 = r0 * a.z + r1 * b.z + (1.0 - r0 - r1) * c.z;
        for (int64_t px = first; px <= last; ++px) {
          const float d = float(dzx * (double(px) + 0.5) + dz0);
          if (d < row_z[px]) {
            row_z[px] = d;
            row_ids[px] = face;
          }
        }
      }
    }
  });
  parallel_ranges(size_t(height), threads, 16, [&](size_t row_begin, size_t row_end, int) {
    int32_t current = -1;
    Edges e{};
    for (size_t py = row_begin; py < row_end; ++py) {
      const double sy = double(py) + 0.5;
      for (size_t px = 0; px < size_t(width); ++px) {
        const size_t p = py * size_t(width) + px;
        const int32_t f = face_ids[p];
        if (f < 0) {
          bary[3 * p] = bary[3 * p + 1] = bary[3 * p + 2] = 0;
          if (depth != nullptr) depth[p] = 0;
          continue;
        }
        if (f != current) {
          current = f;
          edges(sv[indices[3 * size_t(f)]], sv[indices[3 * size_t(f) + 1]], sv[indices[3 * size_t(f) + 2]], e);
        }
        const double r0 = e.e0y * sy + e.e0c, r1 = e.e1y * sy + e.e1c;
        const double sx = double(px) + 0.5;
        const double w0 = e.e0x * sx + r0;
        const double w1 = e.e1x * sx + r1;
        bary[3 * p] = float(w0);
        bary[3 * p + 1] = float(w1);
        bary[3 * p + 2] = float(1.0 - w0 - w1);
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
    hy3d::check_outputs(op, face_ids, barycentrics);
    hy3d::check_finite(op, uvs, 2 * vertex_count);
    std::vector<hy3d::ScreenVertex> sv(vertex_count);
    for (size_t v = 0; v < vertex_count; ++v) sv[v] = {double(uvs[2 * v]) * width, double(uvs[2 * v + 1]) * height, 0};
    hy3d::rasterize(sv, indices, triangle_count, width, height, hy3d::resolve_threads(threads), false, face_ids,
                    barycentrics, nullptr);
    return HY3D_OK;
  });
}

hy3d_status hy3d_covered_texels(const int32_t *face_ids, const float *barycentrics, int32_t width, int32_t height,
                                const float *attributes, int32_t channels, size_t attribute_count,
                                const uint32_t *indices, size_t triangle_count, int threads, size_t *texel_count,
                                uint32_t *texel_index, float *texel_values) {
  return hy3d::guard([&] {
    const char *op = "hy3d_covered_texels";
    hy3d::check_image(op, width, height);
    if (texel_count == nullptr || face_ids == nullptr || channels <= 0 || channels > 16 ||
        (texel_index != nullptr && (barycentrics == nullptr || texel_values == nullptr))) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": NULL array or channels outside 1..16");
    }
    threads = hy3d::resolve_threads(threads);
    // Bands of kTile rows; each band lists its texels tile by tile, so the
    // list can be written band by band from each band's offset.
    constexpr size_t kTile = 32;
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
    hy3d::check_triangles(op, attributes, attribute_count, indices, triangle_count);
    const size_t c = size_t(channels);
    std::atomic<bool> bad_face{false};
    hy3d::parallel_chunks(bands, threads, 1, [&](size_t begin, size_t end, int) {
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
              const float *b = barycentrics + 3 * p;
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

hy3d_status hy3d_interpolate(const float *attributes, int32_t channels, int32_t per_face, size_t attribute_count,
                             const uint32_t *indices, size_t triangle_count, const int32_t *face_ids,
                             const float *barycentrics, size_t pixel_count, const float *background, int threads,
                             float *out) {
  return hy3d::guard([&] {
    const char *op = "hy3d_interpolate";
    if (channels <= 0 || channels > 16 || (attribute_count > 0 && attributes == nullptr) || background == nullptr ||
        (pixel_count > 0 && (face_ids == nullptr || barycentrics == nullptr || out == nullptr))) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": NULL array or channels outside 1..16");
    }
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
          continue;
        }
        const float *b = barycentrics + 3 * p;
        const float *a0 = attributes + c * indices[3 * size_t(f)];
        const float *a1 = attributes + c * indices[3 * size_t(f) + 1];
        const float *a2 = attributes + c * indices[3 * size_t(f) + 2];
        for (size_t k = 0; k < c; ++k) o[k] = b[0] * a0[k] + b[1] * a1[k] + b[2] * a2[k];
      }
    });
    return HY3D_OK;
  });
}

}  // extern "C"
