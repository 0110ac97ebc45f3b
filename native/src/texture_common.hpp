// Helpers shared by the texture kernels (texture_*.cpp): a fork-join loop
// over index ranges and argument checks that every entry point repeats.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "status.hpp"

namespace hy3d {

inline int resolve_threads(int threads) {
  return threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency()));
}

// Runs body(begin, end, worker) over [0, n) cut into one contiguous range per
// worker. Ranges below min_per_thread items stay on the calling thread, where
// starting a thread would cost more than the work. body must not throw.
template <class Body>
void parallel_ranges(size_t n, int threads, size_t min_per_thread, const Body &body) {
  size_t workers = size_t(std::max(1, threads));
  if (min_per_thread > 0) workers = std::min(workers, std::max<size_t>(1, n / min_per_thread));
  if (workers <= 1) {
    body(size_t(0), n, 0);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  for (size_t w = 1; w < workers; ++w) {
    pool.emplace_back([&, w] { body(n * w / workers, n * (w + 1) / workers, int(w)); });
  }
  body(0, n / workers, 0);
  for (std::thread &t : pool) t.join();
}

// Like parallel_ranges, but workers take chunks of `chunk` items from a
// shared counter until none is left, for loops whose cost per item varies
// along the range (texels of charts facing toward or away from a view).
template <class Body>
void parallel_chunks(size_t n, int threads, size_t chunk, const Body &body) {
  const size_t chunks = (n + chunk - 1) / chunk;
  std::atomic<size_t> next{0};
  parallel_ranges(std::min(chunks, size_t(std::max(1, threads))), threads, 1, [&](size_t, size_t, int worker) {
    for (size_t c = next++; c < chunks; c = next++) body(c * chunk, std::min(n, (c + 1) * chunk), worker);
  });
}

// A vertex in pixel coordinates with its depth (smaller is nearer).
struct ScreenVertex {
  double x, y, z;
};

// A triangle's barycentrics as affine functions of the sample position:
// w0 = e0x x + e0y y + e0c, w1 likewise, w2 = 1 - w0 - w1. Every kernel
// that needs a raster's barycentrics evaluates them through barycentric()
// at pixel centres, so they are the ones the rasterizer's coverage test saw.
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

// The barycentrics at the centre of pixel (px, py).
inline void barycentric(const Edges &e, size_t px, size_t py, float out[3]) {
  const double sx = double(px) + 0.5, sy = double(py) + 0.5;
  const double r0 = e.e0y * sy + e.e0c, r1 = e.e1y * sy + e.e1c;
  const double w0 = e.e0x * sx + r0, w1 = e.e1x * sx + r1;
  out[0] = float(w0);
  out[1] = float(w1);
  out[2] = float(1.0 - w0 - w1);
}

// Vertex v of a UV layout (2 floats per vertex) in the pixels of a
// width x height texture.
inline ScreenVertex uv_vertex(const float *uvs, uint32_t v, int32_t width, int32_t height) {
  return {double(uvs[2 * size_t(v)]) * width, double(uvs[2 * size_t(v) + 1]) * height, 0};
}

// The barycentrics of face f of a UV layout at texel (x, y), with the
// face's edges cached between calls for consecutive texels of one face.
class UVBarycentrics {
 public:
  UVBarycentrics(const float *uvs, const uint32_t *indices, int32_t width, int32_t height)
      : uvs_(uvs), indices_(indices), width_(width), height_(height) {}
  void at(int32_t f, size_t x, size_t y, float out[3]) {
    if (f != face_) {
      face_ = f;
      const uint32_t *t = indices_ + 3 * size_t(f);
      edges(uv_vertex(uvs_, t[0], width_, height_), uv_vertex(uvs_, t[1], width_, height_),
            uv_vertex(uvs_, t[2], width_, height_), e_);
    }
    barycentric(e_, x, y, out);
  }

 private:
  const float *uvs_;
  const uint32_t *indices_;
  int32_t width_, height_;
  int32_t face_ = -1;
  Edges e_{};
};

// Checks an indexed triangle list: non-NULL arrays for non-zero counts,
// indices below vertex_count, counts that fit the 32-bit face ids.
void check_triangles(const char *op, const float *vertices, size_t vertex_count, const uint32_t *indices,
                     size_t triangle_count);

// Rejects images whose pixel count overflows or exceeds what one call handles.
void check_image(const char *op, int32_t width, int32_t height);

}  // namespace hy3d
