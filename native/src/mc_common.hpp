// Pieces of the marching cubes kernel that do not depend on the instruction
// set it is compiled for: the field description, the block selection, the
// thread fan-out and the memory helpers.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "status.hpp"

namespace hy3d {
namespace mc {

using Word = uint64_t;
constexpr int kWordBits = 64;

// A dense grid; value (i, j, k) is values[(i*ny + j)*nz + k].
struct Field {
  const float *values;
  int64_t nx, ny, nz;
  float level;
  // Words of one row's bit mask, and the stride between rows: one zero word
  // more, so that bit k+1 of the last word can always be read.
  int64_t words() const { return (nz + kWordBits - 1) / kWordBits; }
  int64_t stride() const { return words() + 1; }
};

// Bits [lo, hi) of a multi-word mask.
inline void set_bits(Word *words, int64_t lo, int64_t hi) {
  for (int64_t k = lo; k < hi;) {
    const int64_t q = k / kWordBits, b = k % kWordBits;
    const int64_t n = std::min<int64_t>(kWordBits - b, hi - k);
    words[q] |= (n == kWordBits ? ~Word{0} : ((Word{1} << n) - 1)) << b;
    k += n;
  }
}

// The cells of a block selection, as one bit mask along k per column of
// blocks (block i, block j): every cell row of the column shares it.
class BlockCells {
 public:
  BlockCells(const Field &f, int64_t block_size, const int32_t *blocks, size_t count)
      : block_size_(block_size), stride_(f.stride()), cells_i_(f.nx - 1), cells_j_(f.ny - 1) {
    const int64_t cells[3] = {f.nx - 1, f.ny - 1, f.nz - 1};
    int64_t nb[3];
    for (int a = 0; a < 3; ++a) nb[a] = (cells[a] + block_size - 1) / block_size;
    blocks_j_ = nb[1];
    cells_.assign(static_cast<size_t>(nb[0] * nb[1] * stride_), 0);
    for (size_t b = 0; b < count; ++b) {
      const int32_t *c = blocks + 3 * b;
      for (int a = 0; a < 3; ++a) {
        if (c[a] < 0 || c[a] >= nb[a]) {
          throw Error(HY3D_ERR_INVALID_ARGUMENT,
                      "hy3d_marching_cubes_blocks: block " + std::to_string(b) + " (" + std::to_string(c[0]) + ", " +
                          std::to_string(c[1]) + ", " + std::to_string(c[2]) + ") lies outside the grid's " +
                          std::to_string(nb[0]) + "x" + std::to_string(nb[1]) + "x" + std::to_string(nb[2]) +
                          " blocks");
        }
      }
      const int64_t lo = c[2] * block_size, hi = std::min(cells[2], lo + block_size);
      set_bits(&cells_[static_cast<size_t>((c[0] * nb[1] + c[1]) * stride_)], lo, hi);
    }
  }

  // Selected cells of cell row (i, j), or nullptr outside the grid's cells.
  const Word *row(int64_t i, int64_t j) const {
    if (i < 0 || j < 0 || i >= cells_i_ || j >= cells_j_) return nullptr;
    return &cells_[static_cast<size_t>(((i / block_size_) * blocks_j_ + j / block_size_) * stride_)];
  }

 private:
  int64_t block_size_, stride_, cells_i_, cells_j_, blocks_j_ = 0;
  std::vector<Word> cells_;
};

// Milliseconds between laps, for the per-call debug log.
class Stopwatch {
 public:
  double lap() {
    const auto now = std::chrono::steady_clock::now();
    const double ms = std::chrono::duration<double, std::milli>(now - last_).count();
    last_ = now;
    return ms;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// Calls body(item) for every item in [0, count) on up to `threads` threads
// (the caller's included), handing out chunks of `chunk` items dynamically so
// that slabs dense with surface, or a core busy with something else, do not
// leave the other threads idle. body must not throw.
template <typename Body>
void parallel_chunks(int threads, int64_t count, int64_t chunk, const Body &body) {
  std::atomic<int64_t> next{0};
  auto worker = [&] {
    for (;;) {
      const int64_t begin = next.fetch_add(chunk, std::memory_order_relaxed);
      if (begin >= count) return;
      const int64_t end = std::min(count, begin + chunk);
      for (int64_t item = begin; item < end; ++item) body(item);
    }
  };
  std::vector<std::thread> pool;
  const int64_t wanted = std::min<int64_t>(threads, (count + chunk - 1) / chunk);
  for (int64_t t = 1; t < wanted; ++t) {
    try {
      pool.emplace_back(worker);
    } catch (const std::system_error &) {
      break;  // fewer threads than asked for is still correct
    }
  }
  worker();
  for (std::thread &t : pool) t.join();
}

// Transparent huge pages, where the system grants them on request. Fresh
// memory is the largest cost of a call on the virtual machines we run on:
// malloc hands large blocks back to the kernel on free, so every call
// faults its scratch and output in again, and a fault per 4 KiB page costs
// about eight times what a fault per 2 MiB page does per byte.
constexpr size_t kHugePage = size_t{2} << 20;

// How many bytes to ask malloc for, at least `bytes`, so that a large
// block (with glibc's 16-byte header, rounded) spans whole huge pages: the
// kernel places such mappings on huge-page boundaries, so every page of the
// block can be huge. Where that does not hold, only the partial huge pages
// at the block's ends stay small.
inline size_t huge_page_request(size_t bytes) {
  constexpr size_t kHeader = 32;
  if (bytes < kHugePage) return bytes;
  return ((bytes + kHeader + kHugePage - 1) & ~(kHugePage - 1)) - kHeader;
}

// Advises huge pages for [p, p + bytes), from the start of p's page (which
// the block's header shares).
inline void advise_huge_pages(void *p, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes < kHugePage) return;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{4095};
  const uintptr_t end = reinterpret_cast<uintptr_t>(p) + bytes;
  madvise(reinterpret_cast<void *>(begin), end - begin, MADV_HUGEPAGE);  // advice; may fail
#else
  (void)p, (void)bytes;
#endif
}

// Frees what allocate() returned: small blocks come from malloc, large ones
// are mappings of their own.
class Release {
 public:
  Release() = default;
  explicit Release(size_t mapped_bytes) : mapped_bytes_(mapped_bytes) {}
  void operator()(void *p) const {
#if defined(__linux__)
    if (mapped_bytes_ > 0) {
      munmap(p, mapped_bytes_);
      return;
    }
#endif
    std::free(p);
  }

 private:
  size_t mapped_bytes_ = 0;
};
template <typename T>
using Array = std::unique_ptr<T[], Release>;

// Uninitialized storage for n values of a trivial type. From a huge page
// up it is an anonymous mapping of its own, aligned to huge pages and
// advised for them, so that it costs one fault per 2 MiB whatever malloc's
// state, and goes back to the kernel when released.
template <typename T>
Array<T> allocate(size_t n) {
  const size_t bytes = std::max<size_t>(n * sizeof(T), 1);
#if defined(__linux__)
  if (bytes >= kHugePage) {
    const size_t rounded = (bytes + kHugePage - 1) & ~(kHugePage - 1);
    void *map = mmap(nullptr, rounded + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) throw std::bad_alloc();
    // Trim the mapping to an aligned window of `rounded` bytes.
    const uintptr_t start = reinterpret_cast<uintptr_t>(map);
    const uintptr_t aligned = (start + kHugePage - 1) & ~(kHugePage - 1);
    if (aligned > start) munmap(map, aligned - start);
    if (start + kHugePage > aligned) munmap(reinterpret_cast<void *>(aligned + rounded), start + kHugePage - aligned);
    advise_huge_pages(reinterpret_cast<void *>(aligned), rounded);
    return Array<T>(reinterpret_cast<T *>(aligned), Release(rounded));
  }
#endif
  void *p = std::malloc(bytes);
  if (p == nullptr) throw std::bad_alloc();
  return Array<T>(static_cast<T *>(p));
}

// Sizes an output vector to n elements, on huge pages where granted: the
// capacity is rounded as for allocate() and the advice given before the
// zero-fill first touches the pages.
template <typename T>
void resize_output(std::vector<T> &v, size_t n) {
  v.reserve(huge_page_request(n * sizeof(T)) / sizeof(T));
  advise_huge_pages(v.data(), v.capacity() * sizeof(T));
  v.resize(n);
}

// A growable array of a trivial type, filled by one thread without
// initializing.
template <typename T>
class GrowBuffer {
 public:
  explicit GrowBuffer(size_t capacity = 0) : data_(allocate<T>(capacity)), capacity_(capacity) {}
  size_t size() const { return size_; }
  const T *data() const { return data_.get(); }
  // Room for n more values, returned as the place to write them; commit()
  // then records how many were written.
  T *reserve_more(size_t n) {
    if (size_ + n > capacity_) {
      const size_t capacity = std::max(size_ + n, 2 * capacity_);
      Array<T> grown = allocate<T>(capacity);
      std::copy(data_.get(), data_.get() + size_, grown.get());
      data_ = std::move(grown);
      capacity_ = capacity;
    }
    return data_.get() + size_;
  }
  void commit(size_t n) { size_ += n; }

 private:
  Array<T> data_;
  size_t size_ = 0, capacity_ = 0;
};

// Position of the crossing on the edge from sample lo to sample hi (0 at
// lo), exactly one of which is inside. A NaN or infinite sample, which can
// only be the outside one, makes the quotient NaN (or out of range): the
// vertex then goes half way, so no NaN ever reaches a vertex.
inline float edge_position(float lo, float hi, float level) {
  const float t = (level - lo) / (hi - lo);
  return (t >= 0.0f && t <= 1.0f) ? t : 0.5f;
}

}  // namespace mc
}  // namespace hy3d
