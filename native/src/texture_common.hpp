// Helpers shared by the texture kernels (texture_*.cpp): a fork-join loop
// over index ranges and argument checks that every entry point repeats.
#pragma once

#include <algorithm>
#include <atomic>
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

// Checks an indexed triangle list: non-NULL arrays for non-zero counts,
// indices below vertex_count, counts that fit the 32-bit face ids.
void check_triangles(const char *op, const float *vertices, size_t vertex_count, const uint32_t *indices,
                     size_t triangle_count);

// Rejects images whose pixel count overflows or exceeds what one call handles.
void check_image(const char *op, int32_t width, int32_t height);

}  // namespace hy3d
