// Multi-threaded marching cubes over a dense grid or a set of blocks of it.
//
// The kernel works on sign bit masks rather than on cells. Pass 1 turns every
// row of samples (the contiguous k axis) into 64-bit words of "inside" bits
// and, by XOR with the neighbouring row, into masks of the crossed edges along
// k, j and i. A vertex's index is then computable from anywhere: the prefix
// count of its row and direction plus a popcount of the mask below it. So no
// thread ever needs a hash map or another thread's output to share vertices,
// and empty space costs a few word operations per 64 cells. Pass 2 counts the
// triangles of each row of cells (their cases come from the same bits), a
// prefix sum sizes the output exactly, and pass 3 writes vertices and
// triangles straight into their final places, in parallel, in an order that
// does not depend on the thread count.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "mc_table.hpp"
#include "mesh.hpp"
#include "status.hpp"

namespace hy3d {
namespace {

using Word = uint64_t;
constexpr int kWordBits = 64;

// Calls body(item) for every item in [0, count) on up to `threads` threads
// (the caller's included), handing out chunks of `chunk` items dynamically so
// that slabs dense with surface do not leave a thread idle. body must not
// throw.
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

inline int popcount(Word w) { return __builtin_popcountll(w); }
inline int lowest_bit(Word w) { return __builtin_ctzll(w); }

// Bits [lo, hi) of a multi-word mask.
void set_bits(Word *words, int64_t lo, int64_t hi) {
  for (int64_t k = lo; k < hi;) {
    const int64_t q = k / kWordBits, b = k % kWordBits;
    const int64_t n = std::min<int64_t>(kWordBits - b, hi - k);
    words[q] |= (n == kWordBits ? ~Word{0} : ((Word{1} << n) - 1)) << b;
    k += n;
  }
}

// Interpolation parameter of the crossing between an inside sample a and an
// outside sample b. A NaN (or infinite) outside sample puts the vertex half
// way, so no NaN ever reaches a vertex.
inline float crossing(float a, float b, float level) {
  const float t = (level - a) / (b - a);
  return (t >= 0.0f && t <= 1.0f) ? t : 0.5f;
}

class Extractor {
 public:
  Extractor(const float *values, int64_t nx, int64_t ny, int64_t nz, float level)
      : values_(values), nx_(nx), ny_(ny), nz_(nz), level_(level), words_((nz + kWordBits - 1) / kWordBits),
        stride_(words_ + 1) {}

  // Restricts the extraction to the cells of the listed blocks.
  void select_blocks(int64_t block_size, const int32_t *blocks, size_t count) {
    block_size_ = block_size;
    const int64_t cells[3] = {nx_ - 1, ny_ - 1, nz_ - 1};
    int64_t nb[3];
    for (int a = 0; a < 3; ++a) nb[a] = (cells[a] + block_size - 1) / block_size;
    blocks_j_ = nb[1];
    block_cells_.assign(static_cast<size_t>(nb[0] * nb[1] * stride_), 0);
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
      set_bits(&block_cells_[static_cast<size_t>((c[0] * nb[1] + c[1]) * stride_)], lo, hi);
    }
    blocks_ = true;
  }

  std::unique_ptr<hy3d_mesh> run(int threads) {
    auto mesh = std::make_unique<hy3d_mesh>();
    if (nx_ < 2 || ny_ < 2 || nz_ < 2) return mesh;
    const size_t rows = static_cast<size_t>(nx_ * ny_);
    sign_.assign(rows * stride_, 0);
    if (blocks_) readable_.assign(rows * stride_, 0);
    for (auto &m : edges_) m.assign(rows * stride_, 0);
    word_base_.assign(rows * 3 * words_, 0);
    row_base_.assign(rows * 3, 0);
    tri_base_.assign(rows, 0);
    // Chunks of two planes keep the work items coarse enough that the atomic
    // counter is noise, and fine enough to balance uneven surfaces.
    constexpr int64_t kChunk = 2;
    parallel_chunks(threads, nx_, kChunk, [&](int64_t i) { classify_plane(i); });
    parallel_chunks(threads, nx_ - 1, kChunk, [&](int64_t i) { link_planes(i); });

    uint64_t vertices = 0;
    for (size_t r = 0; r < rows * 3; ++r) {
      const uint64_t n = row_base_[r];
      row_base_[r] = static_cast<uint32_t>(vertices);
      vertices += n;
    }
    uint64_t triangles = 0;
    for (size_t r = 0; r < rows; ++r) {
      const uint64_t n = tri_base_[r];
      tri_base_[r] = triangles;
      triangles += n;
    }
    if (vertices > std::numeric_limits<uint32_t>::max()) {
      throw Error(HY3D_ERR_INVALID_ARGUMENT, "marching cubes: the surface has " + std::to_string(vertices) +
                                                 " vertices, more than 32-bit indices can address");
    }
    mesh->vertices.resize(static_cast<size_t>(vertices) * 3);
    mesh->indices.resize(static_cast<size_t>(triangles) * 3);
    vertices_out_ = mesh->vertices.data();
    indices_out_ = mesh->indices.data();
    parallel_chunks(threads, nx_, kChunk, [&](int64_t i) { emit_plane(i); });
    return mesh;
  }

 private:
  enum Axis { kAxisK = 0, kAxisJ = 1, kAxisI = 2 };

  size_t row(int64_t i, int64_t j) const { return static_cast<size_t>(i * ny_ + j); }
  Word *words(std::vector<Word> &v, size_t r) { return &v[r * stride_]; }
  const Word *words(const std::vector<Word> &v, size_t r) const { return &v[r * stride_]; }
  const float *samples(size_t r) const { return values_ + r * static_cast<size_t>(nz_); }

  // Bits of cells [0, nz-1) in word q: everything but the row's last sample.
  Word cell_word_mask(int64_t q) const {
    const int64_t valid = nz_ - 1 - q * kWordBits;
    if (valid >= kWordBits) return ~Word{0};
    return valid <= 0 ? 0 : (Word{1} << valid) - 1;
  }

  // The block selection's cells in cell row (i, j), or nullptr outside it.
  const Word *block_row(int64_t i, int64_t j) const {
    if (i < 0 || j < 0 || i >= nx_ - 1 || j >= ny_ - 1) return nullptr;
    return &block_cells_[static_cast<size_t>(((i / block_size_) * blocks_j_ + j / block_size_) * stride_)];
  }

  // Samples of row (i, j) that are a corner of a selected cell.
  void readable_row(int64_t i, int64_t j, Word *out) const {
    const Word *cells[4] = {block_row(i - 1, j - 1), block_row(i - 1, j), block_row(i, j - 1), block_row(i, j)};
    Word carry = 0;
    for (int64_t q = 0; q < words_; ++q) {
      Word u = 0;
      for (const Word *c : cells) u |= c ? c[q] : 0;
      out[q] = u | u << 1 | carry;  // cell k has samples k and k+1
      carry = u >> (kWordBits - 1);
    }
  }

  // Inside bits of n <= 64 consecutive samples.
  Word sign_word(const float *v, int n) const {
    Word w = 0;
    int k = 0;
#if defined(__SSE2__)
    const __m128 level = _mm_set1_ps(level_);
    for (; k + 4 <= n; k += 4) {
      w |= static_cast<Word>(_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(v + k), level))) << k;
    }
#endif
    for (; k < n; ++k) w |= static_cast<Word>(v[k] > level_) << k;
    return w;
  }

  // Same, reading only the samples whose bit is set in readable.
  Word sign_word_masked(const float *v, int n, Word readable) const {
    if (n == kWordBits && readable == ~Word{0}) return sign_word(v, n);
    Word w = 0;
    for (Word m = readable; m != 0; m &= m - 1) {
      const int k = lowest_bit(m);
      w |= static_cast<Word>(v[k] > level_) << k;
    }
    return w;
  }

  // Per-word prefix counts of one edge mask row; returns the row's total.
  uint32_t count_edges(const Word *mask, size_t r, Axis axis) {
    uint32_t *base = &word_base_[(r * 3 + axis) * words_];
    uint32_t total = 0;
    for (int64_t q = 0; q < words_; ++q) {
      base[q] = total;
      total += popcount(mask[q]);
    }
    row_base_[r * 3 + axis] = total;
    return total;
  }

  // Pass 1 for plane i: inside bits, and the crossed k- and j-edges.
  void classify_plane(int64_t i) {
    for (int64_t j = 0; j < ny_; ++j) {
      const size_t r = row(i, j);
      const float *v = samples(r);
      Word *s = words(sign_, r);
      Word *read = blocks_ ? words(readable_, r) : nullptr;
      if (blocks_) readable_row(i, j, read);
      for (int64_t q = 0; q < words_; ++q) {
        const int n = static_cast<int>(std::min<int64_t>(kWordBits, nz_ - q * kWordBits));
        s[q] = blocks_ ? sign_word_masked(v + q * kWordBits, n, read[q]) : sign_word(v + q * kWordBits, n);
      }
      Word *ek = words(edges_[kAxisK], r);
      for (int64_t q = 0; q < words_; ++q) {
        Word cross = (s[q] ^ (s[q] >> 1 | s[q + 1] << (kWordBits - 1))) & cell_word_mask(q);
        if (blocks_) cross &= read[q] & (read[q] >> 1 | read[q + 1] << (kWordBits - 1));
        ek[q] = cross;
      }
      count_edges(ek, r, kAxisK);
      if (j > 0) cross_rows(r - 1, r, kAxisJ);
    }
  }

  // Crossed edges between sample rows a and b, stored on row a.
  void cross_rows(size_t a, size_t b, Axis axis) {
    const Word *sa = words(sign_, a), *sb = words(sign_, b);
    Word *e = words(edges_[axis], a);
    for (int64_t q = 0; q < words_; ++q) {
      Word cross = sa[q] ^ sb[q];
      if (blocks_) cross &= readable_[a * stride_ + q] & readable_[b * stride_ + q];
      e[q] = cross;
    }
    count_edges(e, a, axis);
  }

  // Calls fn(word, bit, case) for each cell of row (i, j) that the surface crosses.
  template <typename Fn>
  void for_each_cell(int64_t i, int64_t j, const Fn &fn) const {
    const Word *a = words(sign_, row(i, j)), *b = words(sign_, row(i, j + 1));
    const Word *c = words(sign_, row(i + 1, j)), *d = words(sign_, row(i + 1, j + 1));
    const Word *selected = blocks_ ? block_row(i, j) : nullptr;
    for (int64_t q = 0; q < words_; ++q) {
      auto next = [q](const Word *w) { return w[q] >> 1 | w[q + 1] << (kWordBits - 1); };
      const Word lo[4] = {a[q], c[q], b[q], d[q]};  // corners 0..3, then +k for 4..7
      const Word hi[4] = {next(a), next(c), next(b), next(d)};
      const Word any = lo[0] | lo[1] | lo[2] | lo[3] | hi[0] | hi[1] | hi[2] | hi[3];
      const Word all = lo[0] & lo[1] & lo[2] & lo[3] & hi[0] & hi[1] & hi[2] & hi[3];
      Word active = any & ~all & cell_word_mask(q);
      if (selected) active &= selected[q];
      for (; active != 0; active &= active - 1) {
        const int bit = lowest_bit(active);
        unsigned config = 0;
        for (int corner = 0; corner < 4; ++corner) {
          config |= static_cast<unsigned>(lo[corner] >> bit & 1) << corner;
          config |= static_cast<unsigned>(hi[corner] >> bit & 1) << (corner + 4);
        }
        fn(q, bit, config);
      }
    }
  }

  // Pass 2 for cell slab i: crossed i-edges and triangle counts per cell row.
  void link_planes(int64_t i) {
    const mc::CaseTable &table = mc::case_table();
    for (int64_t j = 0; j < ny_; ++j) cross_rows(row(i, j), row(i + 1, j), kAxisI);
    for (int64_t j = 0; j + 1 < ny_; ++j) {
      uint64_t n = 0;
      for_each_cell(i, j, [&](int64_t, int, unsigned config) { n += table.triangle_count[config]; });
      tri_base_[row(i, j)] = n;
    }
  }

  // Index of the first vertex at or after position k of an edge row:
  // row_base + word_base + popcount below k in k's word.
  struct EdgeRow {
    const Word *mask;
    const uint32_t *word_base;
    uint32_t base;
  };
  EdgeRow edge_row(size_t r, Axis axis) const {
    return {words(edges_[axis], r), &word_base_[(r * 3 + axis) * words_], row_base_[r * 3 + axis]};
  }

  void emit_vertices(size_t r, int64_t i, int64_t j) const {
    const float *v = samples(r);
    const float fi = static_cast<float>(i), fj = static_cast<float>(j);
    const float *vj = j + 1 < ny_ ? samples(r + 1) : nullptr;
    const float *vi = i + 1 < nx_ ? samples(r + static_cast<size_t>(ny_)) : nullptr;
    for (int axis = kAxisK; axis <= kAxisI; ++axis) {
      const Word *mask = words(edges_[axis], r);
      float *out = vertices_out_ + 3 * static_cast<size_t>(row_base_[r * 3 + axis]);
      const float *other = axis == kAxisK ? v + 1 : axis == kAxisJ ? vj : vi;
      for (int64_t q = 0; q < words_; ++q) {
        for (Word m = mask[q]; m != 0; m &= m - 1) {
          const int64_t k = q * kWordBits + lowest_bit(m);
          const float a = v[k], b = other[k];
          // Interpolate from the inside sample: only the outside one may be NaN.
          const float t = a > level_ ? crossing(a, b, level_) : 1.0f - crossing(b, a, level_);
          out[0] = fi, out[1] = fj, out[2] = static_cast<float>(k);
          out[2 - axis] += t;
          out += 3;
        }
      }
    }
  }

  void emit_triangles(int64_t i, int64_t j) const {
    const mc::CaseTable &table = mc::case_table();
    const size_t r00 = row(i, j), r01 = r00 + 1, r10 = r00 + static_cast<size_t>(ny_), r11 = r10 + 1;
    // Edge rows in cube-edge order: k-edges of the four sample rows, then
    // the j- and i-edges at k (edges 6, 7, 10, 11 are the same rows at k+1).
    const EdgeRow rows[8] = {edge_row(r00, kAxisK), edge_row(r10, kAxisK), edge_row(r01, kAxisK),
                             edge_row(r11, kAxisK), edge_row(r00, kAxisJ), edge_row(r10, kAxisJ),
                             edge_row(r00, kAxisI), edge_row(r01, kAxisI)};
    uint32_t *out = indices_out_ + 3 * tri_base_[r00];
    for_each_cell(i, j, [&](int64_t q, int bit, unsigned config) {
      const Word below = (Word{1} << bit) - 1;
      uint32_t id[12];
      for (int e = 0; e < 8; ++e) {
        id[e < 6 ? e : e + 2] = rows[e].base + rows[e].word_base[q] + popcount(rows[e].mask[q] & below);
      }
      for (int e = 4; e < 6; ++e) id[e + 2] = id[e] + static_cast<uint32_t>(rows[e].mask[q] >> bit & 1);
      for (int e = 8; e < 10; ++e) id[e + 2] = id[e] + static_cast<uint32_t>(rows[e - 2].mask[q] >> bit & 1);
      const uint8_t *tri = table.triangles[config].data();
      for (int n = 3 * table.triangle_count[config]; n > 0; --n) *out++ = id[*tri++];
    });
  }

  // Pass 3 for plane i: its vertices, and the triangles of cell slab i.
  void emit_plane(int64_t i) {
    for (int64_t j = 0; j < ny_; ++j) emit_vertices(row(i, j), i, j);
    if (i + 1 < nx_) {
      for (int64_t j = 0; j + 1 < ny_; ++j) emit_triangles(i, j);
    }
  }

  const float *values_;
  const int64_t nx_, ny_, nz_;
  const float level_;
  const int64_t words_;   // words per row
  const int64_t stride_;  // words per row plus a zero word, so bit k+1 is always readable
  bool blocks_ = false;
  int64_t block_size_ = 0;
  int64_t blocks_j_ = 0;
  std::vector<Word> block_cells_;  // selected cells per (block i, block j) row of blocks
  std::vector<Word> sign_;         // inside bits per sample row
  std::vector<Word> readable_;     // samples that belong to a selected cell (blocks only)
  std::vector<Word> edges_[3];     // crossed edges along k, j, i, stored on their lower row
  std::vector<uint32_t> word_base_;  // per row, axis, word: edges before the word within the row
  std::vector<uint32_t> row_base_;   // per row, axis: first vertex index (edge counts before the prefix sum)
  std::vector<uint64_t> tri_base_;   // per cell row: first triangle (counts before the prefix sum)
  float *vertices_out_ = nullptr;
  uint32_t *indices_out_ = nullptr;
};

void check_grid(const char *fn, const float *values, int64_t nx, int64_t ny, int64_t nz, float level,
                hy3d_mesh **out) {
  if (out == nullptr) throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string(fn) + ": NULL output");
  *out = nullptr;
  if (values == nullptr) throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string(fn) + ": NULL values");
  if (nx < 1 || ny < 1 || nz < 1) {
    throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string(fn) + ": grid " + std::to_string(nx) + "x" +
                                               std::to_string(ny) + "x" + std::to_string(nz) + " is empty");
  }
  int64_t samples = 0;
  // Sizes above 2^31 per axis or 2^40 in total are far beyond any field we
  // can hold, and keep every index product below int64 overflow.
  constexpr int64_t kMaxAxis = int64_t{1} << 31, kMaxSamples = int64_t{1} << 40;
  if (nx > kMaxAxis || ny > kMaxAxis || nz > kMaxAxis || __builtin_mul_overflow(nx, ny, &samples) ||
      __builtin_mul_overflow(samples, nz, &samples) || samples > kMaxSamples) {
    throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string(fn) + ": grid " + std::to_string(nx) + "x" +
                                               std::to_string(ny) + "x" + std::to_string(nz) + " is too large");
  }
  if (!std::isfinite(level)) throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string(fn) + ": level is not finite");
}

int thread_count(int threads) {
  if (threads > 0) return threads;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace
}  // namespace hy3d

extern "C" {

hy3d_status hy3d_marching_cubes(const float *values, int64_t nx, int64_t ny, int64_t nz, float level, int threads,
                                hy3d_mesh **out) {
  return hy3d::guard([&] {
    hy3d::check_grid("hy3d_marching_cubes", values, nx, ny, nz, level, out);
    *out = hy3d::Extractor(values, nx, ny, nz, level).run(hy3d::thread_count(threads)).release();
    return HY3D_OK;
  });
}

hy3d_status hy3d_marching_cubes_blocks(const float *values, int64_t nx, int64_t ny, int64_t nz, float level,
                                       int32_t block_size, const int32_t *blocks, size_t block_count, int threads,
                                       hy3d_mesh **out) {
  return hy3d::guard([&] {
    hy3d::check_grid("hy3d_marching_cubes_blocks", values, nx, ny, nz, level, out);
    if (block_size < 1) {
      throw hy3d::Error(HY3D_ERR_INVALID_ARGUMENT,
                        "hy3d_marching_cubes_blocks: block size " + std::to_string(block_size) + " < 1");
    }
    if (blocks == nullptr && block_count > 0) {
      throw hy3d::Error(HY3D_ERR_INVALID_ARGUMENT, "hy3d_marching_cubes_blocks: NULL blocks");
    }
    hy3d::Extractor extractor(values, nx, ny, nz, level);
    if (nx >= 2 && ny >= 2 && nz >= 2) {
      extractor.select_blocks(block_size, blocks, block_count);
    } else if (block_count > 0) {
      throw hy3d::Error(HY3D_ERR_INVALID_ARGUMENT, "hy3d_marching_cubes_blocks: the grid has no cells");
    }
    *out = extractor.run(hy3d::thread_count(threads)).release();
    return HY3D_OK;
  });
}

}  // extern "C"
