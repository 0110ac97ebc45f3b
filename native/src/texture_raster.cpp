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

// Rasterizes the triangles over the given vertices into face_ids (-1 where
// none), barycentrics (3 per pixel) and, when depth is non-NULL, the
// interpolated depth. Closed triangles; nearer, then lower id, wins.
void rasterize(const std::vector<ScreenVertex> &sv, const uint32_t *indices, size_t triangle_count, int32_t width,
               int32_t height, int threads, int32_t *face_ids, float *bary, float *depth) {
  const size_t pixels = size_t(width) * size_t(height);
  std::vector<float> zbuf;
  float *z = depth;
  if (z == nullptr) {
    zbuf.resize(pixels);
    z = zbuf.data();
  }
  parallel_ranges(size_t(height), threads, 16, [&](size_t row_begin, size_t row_end, int) {
    for (size_t p = row_begin * size_t(width); p < row_end * size_t(width); ++p) {
      face_ids[p] = -1;
      z[p] = std::numeric_limits<float>::infinity();
      bary[3 * p] = bary[3 * p + 1] = bary[3 * p + 2] = 0;
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
      const double area = (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x);
      if (!(std::fabs(area) > 0)) continue;  // degenerate in this projection: never covers a pixel
      const double inv = 1.0 / area;
      const int32_t face = int32_t(f);
      // Barycentrics are affine in the sample position: w0 = e0x·x + e0y·y + e0c.
      const double e0x = (b.y - c.y) * inv, e0y = (c.x - b.x) * inv, e0c = (b.x * c.y - b.y * c.x) * inv;
      const double e1x = (c.y - a.y) * inv, e1y = (a.x - c.x) * inv, e1c = (c.x * a.y - c.y * a.x) * inv;
      for (int64_t py = int64_t(ylo); py <= int64_t(yhi); ++py) {
        const double sy = double(py) + 0.5;
        const double r0 = e0y * sy + e0c, r1 = e1y * sy + e1c;
        // The samples of this row inside the triangle form one span; find
        // it from the three half-planes, widened by a pixel so rounding
        // never drops a sample, then test each sample exactly.
        double lo = xlo, hi = xhi;
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
        for (int64_t px = int64_t(lo); px <= int64_t(hi); ++px) {
          const double sx = double(px) + 0.5;
          const double w0 = e0x * sx + r0;
          const double w1 = e1x * sx + r1;
          const double w2 = 1.0 - w0 - w1;
          if (w0 < 0 || w1 < 0 || w2 < 0) continue;
          const size_t p = size_t(py) * size_t(width) + size_t(px);
          const float d = float(w0 * a.z + w1 * b.z + w2 * c.z);
          if (d < z[p] || (d == z[p] && face < face_ids[p])) {
            z[p] = d;
            face_ids[p] = face;
            bary[3 * p] = float(w0);
            bary[3 * p + 1] = float(w1);
            bary[3 * p + 2] = float(w2);
          }
        }
      }
    }
  });
  if (depth != nullptr) {
    for (size_t p = 0; p < pixels; ++p) {
      if (face_ids[p] < 0) depth[p] = 0;
    }
  }
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
    hy3d::rasterize(sv, indices, triangle_count, width, height, threads, face_ids, barycentrics, depth);
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
    hy3d::rasterize(sv, indices, triangle_count, width, height, hy3d::resolve_threads(threads), face_ids,
                    barycentrics, nullptr);
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
