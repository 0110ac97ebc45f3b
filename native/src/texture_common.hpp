// Helpers shared by the texture kernels (texture_*.cpp): a fork-join loop
// over index ranges and argument checks that every entry point repeats.
#pragma once

#include <algorithm>
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

// Checks an indexed triangle list: non-NULL arrays for non-zero counts,
// indices below vertex_count, counts that fit the 32-bit face ids.
void check_triangles(const char *op, const float *vertices, size_t vertex_count, const uint32_t *indices,
                     size_t triangle_count);

// Rejects images whose pixel count overflows or exceeds what one call handles.
void check_image(const char *op, int32_t width, int32_t height);

}  // namespace hy3d
