// The marching cubes kernel proper.
//
// marching_cubes.cpp includes this file once per instruction set it
// dispatches to, each time inside a namespace of its own and under a
// different `#pragma GCC target`, so that every function here, lambdas
// included, is compiled for that set (hardware popcount above all). Hence
// there is deliberately no include guard, and no #include: mc_common.hpp,
// mc_table.hpp and mesh.hpp come first.
//
// The kernel works on sign bit masks rather than on cells. Every row of
// samples (the contiguous k axis) becomes 64-bit words of "inside" bits, and
// XOR with the next sample along k, j or i gives the crossed edges. A
// vertex's index is then computable from anywhere, as the first index of its
// row and axis plus a popcount of the mask below it: no thread needs a hash
// map or another thread's output to share vertices, and empty space costs a
// few word operations per 64 cells.
//
// Pass 1 streams the field once, slab by slab: inside bits, crossed-edge
// counts, vertices (interpolated while the samples are in cache), and the
// case of every crossed cell. A prefix sum then sizes the output exactly,
// and pass 2 copies the vertices and writes the triangles straight into
// their final places, in parallel, in an order that does not depend on the
// thread count.

inline int popcount(Word w) { return __builtin_popcountll(w); }
inline int lowest_bit(Word w) { return __builtin_ctzll(w); }

class Extractor {
 public:
  Extractor(const Field &field, const BlockCells *blocks, int threads)
      : f_(field),
        blocks_(blocks),
        threads_(threads),
        words_(field.words()),
        stride_(field.stride()),
        rows_(static_cast<size_t>(field.nx * field.ny)) {}

  void run(hy3d_mesh &mesh) {
    if (f_.nx < 2 || f_.ny < 2 || f_.nz < 2) return;
    if (blocks_ != nullptr) {
      run_passes<true>(mesh);
    } else {
      run_passes<false>(mesh);
    }
  }

 private:
  enum Axis { kK = 0, kJ = 1, kI = 2 };

  // What pass 1 leaves for pass 2, per slab, row by row: vertices (xyz, in
  // their final order) and the cases of crossed cells.
  struct Slab {
    GrowBuffer<float> vertices;
    GrowBuffer<uint8_t> cases;
  };

  template <bool kBlocks>
  void run_passes(hy3d_mesh &mesh) {
    Stopwatch clock;
    // The per-row arrays share one allocation, made by the calling thread.
    const size_t planes = static_cast<size_t>(f_.nx), words = rows_ * static_cast<size_t>(stride_);
    const size_t bytes = padded<Word>(words) * (kBlocks ? 2 : 1) + padded<uint32_t>(3 * rows_) +
                         padded<uint64_t>(rows_) + padded<size_t>(planes) + padded<uint32_t>(rows_);
    scratch_ = allocate<unsigned char>(bytes);
    unsigned char *cursor = scratch_.get();
    sign_ = carve<Word>(cursor, words);
    if (kBlocks) readable_ = carve<Word>(cursor, words);
    base_ = carve<uint32_t>(cursor, 3 * rows_);
    tri_base_ = carve<uint64_t>(cursor, rows_);
    plane_offset_ = carve<size_t>(cursor, planes);
    case_offset_ = carve<uint32_t>(cursor, rows_);
    // Pass 1 works on contiguous slabs so that each plane's samples are read
    // (almost) once; four slabs per thread balance uneven surfaces.
    const int64_t slabs = std::min<int64_t>(f_.nx, threads_ == 1 ? 1 : 4 * int64_t{threads_});
    slab_planes_ = (f_.nx + slabs - 1) / slabs;
    slabs_ = std::vector<Slab>(static_cast<size_t>((f_.nx + slab_planes_ - 1) / slab_planes_));
    parallel_chunks(threads_, static_cast<int64_t>(slabs_.size()), 1,
                    [&](int64_t slab) { classify_slab<kBlocks>(slab); });
    const double pass1_ms = clock.lap();

    uint64_t vertices = 0;
    for (size_t r = 0; r < rows_ * 3; ++r) {
      const uint64_t n = base_[r];
      base_[r] = static_cast<uint32_t>(vertices);
      vertices += n;
    }
    uint64_t triangles = 0;
    for (size_t r = 0; r < rows_; ++r) {
      const uint64_t n = tri_base_[r];
      tri_base_[r] = triangles;
      triangles += n;
    }
    if (vertices > uint64_t{UINT32_MAX}) {
      throw Error(HY3D_ERR_INVALID_ARGUMENT, "marching cubes: the surface has " + std::to_string(vertices) +
                                                 " vertices, more than 32-bit indices can address");
    }
    resize_output(mesh.vertices, static_cast<size_t>(vertices) * 3);
    resize_output(mesh.indices, static_cast<size_t>(triangles) * 3);
    vertices_out_ = mesh.vertices.data();
    indices_out_ = mesh.indices.data();
    const double output_ms = clock.lap();
    // Pass 2 reads only bit masks and pass 1's compact output; small chunks.
    parallel_chunks(threads_, f_.nx, 2, [&](int64_t i) { emit_plane<kBlocks>(i); });
    const double pass2_ms = clock.lap();
    char line[256];
    std::snprintf(line, sizeof line,
                  "marching cubes %lldx%lldx%lld%s on %d threads: %llu vertices, %llu triangles; "
                  "pass 1 %.2f ms, sizing the output %.2f ms, pass 2 %.2f ms",
                  static_cast<long long>(f_.nx), static_cast<long long>(f_.ny), static_cast<long long>(f_.nz),
                  kBlocks ? " (blocks)" : "", threads_, static_cast<unsigned long long>(vertices),
                  static_cast<unsigned long long>(triangles), pass1_ms, output_ms, pass2_ms);
    log(LogLevel::Debug, line);
  }

  // Bytes of n values of T, rounded to a cache line.
  template <typename T>
  static size_t padded(size_t n) {
    return (n * sizeof(T) + 63) & ~size_t{63};
  }
  template <typename T>
  static T *carve(unsigned char *&cursor, size_t n) {
    T *p = reinterpret_cast<T *>(cursor);
    cursor += padded<T>(n);
    return p;
  }

  size_t row(int64_t i, int64_t j) const { return static_cast<size_t>(i * f_.ny + j); }
  const float *samples(int64_t i, int64_t j) const { return f_.values + row(i, j) * static_cast<size_t>(f_.nz); }

  // Bits of cells [0, nz-1) in word q: everything but the row's last sample.
  Word cell_word_mask(int64_t q) const {
    const int64_t valid = f_.nz - 1 - q * kWordBits;
    if (valid >= kWordBits) return ~Word{0};
    return valid <= 0 ? 0 : (Word{1} << valid) - 1;
  }

  // Bit k+1 of a row, as bit k.
  static Word next_bit(const Word *w, int64_t q) { return w[q] >> 1 | w[q + 1] << (kWordBits - 1); }

  // Crossed edges along k in word q of a row (r: its readable samples).
  template <bool kBlocks>
  Word k_edges(const Word *s, const Word *r, int64_t q) const {
    Word m = (s[q] ^ next_bit(s, q)) & cell_word_mask(q);
    if (kBlocks) m &= r[q] & next_bit(r, q);
    return m;
  }

  // Crossed edges between two rows.
  template <bool kBlocks>
  static Word row_edges(const Word *s0, const Word *s1, const Word *r0, const Word *r1, int64_t q) {
    Word m = s0[q] ^ s1[q];
    if (kBlocks) m &= r0[q] & r1[q];
    return m;
  }

  // Samples of row (i, j) that are a corner of a selected cell.
  void readable_row(int64_t i, int64_t j, Word *out) const {
    const Word *cells[4] = {blocks_->row(i - 1, j - 1), blocks_->row(i - 1, j), blocks_->row(i, j - 1),
                            blocks_->row(i, j)};
    Word carry = 0;
    for (int64_t q = 0; q < words_; ++q) {
      Word u = 0;
      for (const Word *c : cells) u |= c ? c[q] : 0;
      out[q] = u | u << 1 | carry;  // cell k has samples k and k+1
      carry = u >> (kWordBits - 1);
    }
    out[words_] = 0;
  }

  // Inside bits of n <= 64 consecutive samples.
  Word sign_word(const float *v, int n) const {
    Word w = 0;
    int k = 0;
#if defined(HY3D_MC_AVX2)
    const __m256 level8 = _mm256_set1_ps(f_.level);
    for (; k + 8 <= n; k += 8) {
      const __m256 inside = _mm256_cmp_ps(_mm256_loadu_ps(v + k), level8, _CMP_GT_OQ);
      w |= static_cast<Word>(static_cast<unsigned>(_mm256_movemask_ps(inside))) << k;
    }
#endif
#if defined(__SSE2__)
    const __m128 level = _mm_set1_ps(f_.level);
    for (; k + 4 <= n; k += 4) {
      w |= static_cast<Word>(_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(v + k), level))) << k;
    }
#endif
    for (; k < n; ++k) w |= static_cast<Word>(v[k] > f_.level) << k;
    return w;
  }

  // Same, reading only the samples whose bit is set in readable: eight at a
  // time where all eight are (blocks make long runs), else one by one.
  Word sign_word_masked(const float *v, int n, Word readable) const {
    if (n == kWordBits && readable == ~Word{0}) return sign_word(v, n);
    Word w = 0;
    for (int g = 0; g < n; g += 8) {
      const unsigned group = static_cast<unsigned>(readable >> g) & 0xffu;
      if (group == 0xffu && g + 8 <= n) {
        w |= sign_word(v + g, 8) << g;
        continue;
      }
      for (unsigned m = group; m != 0; m &= m - 1) {
        const int k = g + __builtin_ctz(m);
        w |= static_cast<Word>(v[k] > f_.level) << k;
      }
    }
    return w;
  }

  // Inside bits (and, for blocks, readable bits) of plane i.
  template <bool kBlocks>
  void classify_signs(int64_t i, Word *s, Word *r) const {
    for (int64_t j = 0; j < f_.ny; ++j, s += stride_) {
      const float *v = samples(i, j);
      if (kBlocks) readable_row(i, j, r);
      for (int64_t q = 0; q < words_; ++q) {
        const int n = static_cast<int>(std::min<int64_t>(kWordBits, f_.nz - q * kWordBits));
        s[q] = kBlocks ? sign_word_masked(v + q * kWordBits, n, r[q]) : sign_word(v + q * kWordBits, n);
      }
      s[words_] = 0;
      if (kBlocks) r += stride_;
    }
  }

  // Appends the vertices of one row's crossed edges along an axis, whose far
  // samples are `far` (the row shifted by one along the axis); returns the
  // number of floats written.
  template <int kAxis>
  static size_t append_vertices(const float *v, const float *far, const Word *mask, int64_t words, float level,
                                float fi, float fj, float *out) {
    float *p = out;
    for (int64_t q = 0; q < words; ++q) {
      for (Word m = mask[q]; m != 0; m &= m - 1) {
        const int64_t k = q * kWordBits + lowest_bit(m);
        p[0] = fi, p[1] = fj, p[2] = static_cast<float>(k);
        p[2 - kAxis] += edge_position(v[k], far[k], level);
        p += 3;
      }
    }
    return static_cast<size_t>(p - out);
  }

  // Pass 1 over the planes of one slab: signs of each plane and the next,
  // then everything about the plane's edges and its slab of cells.
  template <bool kBlocks>
  void classify_slab(int64_t s) {
    const int64_t i0 = s * slab_planes_, i1 = std::min(f_.nx, i0 + slab_planes_);
    const size_t plane = static_cast<size_t>(f_.ny * stride_);
    // The plane after the slab belongs to the next slab; its bits are
    // recomputed here, into scratch, rather than shared across threads.
    std::vector<Word> scratch(kBlocks ? 2 * plane : plane);
    Word *cur_s = &sign_[static_cast<size_t>(i0) * plane];
    Word *cur_r = kBlocks ? &readable_[static_cast<size_t>(i0) * plane] : nullptr;
    classify_signs<kBlocks>(i0, cur_s, cur_r);
    Slab &slab = slabs_[static_cast<size_t>(s)];
    const size_t rows = static_cast<size_t>((i1 - i0) * f_.ny);
    // Generous room (16 crossings per row): pages never written are never
    // faulted in, so only address space is spent, and growing is rare. At
    // least a huge page: one fault, even if it is mostly unused.
    slab.vertices = GrowBuffer<float>(std::max(3 * 16 * rows, kHugePage / sizeof(float)));
    slab.cases = GrowBuffer<uint8_t>(16 * rows);
    const mc::CaseTable &table = mc::case_table();
    std::vector<Word> masks(static_cast<size_t>(3 * words_));
    for (int64_t i = i0; i < i1; ++i) {
      plane_offset_[i] = slab.vertices.size();
      const float fi = static_cast<float>(i);
      Word *next_s = nullptr, *next_r = nullptr;
      if (i + 1 < f_.nx) {
        const bool own = i + 1 < i1;
        next_s = own ? &sign_[static_cast<size_t>(i + 1) * plane] : scratch.data();
        if (kBlocks) next_r = own ? &readable_[static_cast<size_t>(i + 1) * plane] : scratch.data() + plane;
        classify_signs<kBlocks>(i + 1, next_s, next_r);
      }
      for (int64_t j = 0; j < f_.ny; ++j) {
        const size_t r = row(i, j);
        const Word *a = cur_s + j * stride_, *ra = kBlocks ? cur_r + j * stride_ : nullptr;
        const bool has_j = j + 1 < f_.ny, has_i = next_s != nullptr;
        const Word *b = a + stride_, *rb = kBlocks ? ra + stride_ : nullptr;
        const Word *c = has_i ? next_s + j * stride_ : nullptr;
        const Word *rc = kBlocks && has_i ? next_r + j * stride_ : nullptr;
        Word *mk = masks.data(), *mj = mk + words_, *mi = mj + words_;
        for (int64_t q = 0; q < words_; ++q) {
          mk[q] = k_edges<kBlocks>(a, ra, q);
          mj[q] = has_j ? row_edges<kBlocks>(a, b, ra, rb, q) : 0;
          mi[q] = has_i ? row_edges<kBlocks>(a, c, ra, rc, q) : 0;
        }
        const float *v = samples(i, j);
        const float fj = static_cast<float>(j);
        float *out = slab.vertices.reserve_more(static_cast<size_t>(9 * f_.nz));
        const size_t nk = append_vertices<kK>(v, v + 1, mk, words_, f_.level, fi, fj, out);
        const size_t nj = has_j ? append_vertices<kJ>(v, v + f_.nz, mj, words_, f_.level, fi, fj, out + nk) : 0;
        const size_t ni =
            has_i ? append_vertices<kI>(v, samples(i + 1, j), mi, words_, f_.level, fi, fj, out + nk + nj) : 0;
        slab.vertices.commit(nk + nj + ni);
        base_[3 * r + kK] = static_cast<uint32_t>(nk / 3);
        base_[3 * r + kJ] = static_cast<uint32_t>(nj / 3);
        base_[3 * r + kI] = static_cast<uint32_t>(ni / 3);

        case_offset_[r] = static_cast<uint32_t>(slab.cases.size());
        uint64_t triangles = 0;
        if (has_i && has_j) {
          const Word *d = c + stride_;
          const Word *selected = kBlocks ? blocks_->row(i, j) : nullptr;
          uint8_t *cases = slab.cases.reserve_more(static_cast<size_t>(f_.nz));
          size_t n = 0;
          for (int64_t q = 0; q < words_; ++q) {
            const Word lo[4] = {a[q], c[q], b[q], d[q]};  // corners 0..3, then +k for 4..7
            const Word hi[4] = {next_bit(a, q), next_bit(c, q), next_bit(b, q), next_bit(d, q)};
            for (Word m = active_cells<kBlocks>(lo, hi, selected, q); m != 0; m &= m - 1) {
              const int bit = lowest_bit(m);
              unsigned config = 0;
              for (int corner = 0; corner < 4; ++corner) {
                config |= static_cast<unsigned>(lo[corner] >> bit & 1) << corner;
                config |= static_cast<unsigned>(hi[corner] >> bit & 1) << (corner + 4);
              }
              cases[n++] = static_cast<uint8_t>(config);
              triangles += table.triangle_count[config];
            }
          }
          slab.cases.commit(n);
        }
        tri_base_[r] = triangles;
      }
      cur_s = next_s, cur_r = next_r;
    }
  }

  // Cells of word q of a cell row that the surface crosses, from the row's
  // corner bits at k (lo) and k+1 (hi).
  template <bool kBlocks>
  Word active_cells(const Word lo[4], const Word hi[4], const Word *selected, int64_t q) const {
    const Word any = lo[0] | lo[1] | lo[2] | lo[3] | hi[0] | hi[1] | hi[2] | hi[3];
    const Word all = lo[0] & lo[1] & lo[2] & lo[3] & hi[0] & hi[1] & hi[2] & hi[3];
    Word active = any & ~all & cell_word_mask(q);
    if (kBlocks) active &= selected[q];
    return active;
  }

  const Word *signs(int64_t i, int64_t j) const { return &sign_[row(i, j) * stride_]; }
  const Word *readable(int64_t i, int64_t j) const { return &readable_[row(i, j) * stride_]; }
  const Slab &slab_of(int64_t i) const { return slabs_[static_cast<size_t>(i / slab_planes_)]; }

  // Copies plane i's vertices from its slab's buffer to their final place.
  void emit_vertices(int64_t i) const {
    const Slab &slab = slab_of(i);
    const size_t begin = plane_offset_[i];
    const size_t end = (i + 1) % slab_planes_ != 0 && i + 1 < f_.nx ? plane_offset_[i + 1] : slab.vertices.size();
    std::copy(slab.vertices.data() + begin, slab.vertices.data() + end,
              vertices_out_ + 3 * static_cast<size_t>(base_[3 * row(i, 0)]));
  }

  template <bool kBlocks>
  void emit_triangles(int64_t i, int64_t j) const {
    const mc::CaseTable &table = mc::case_table();
    const size_t r00 = row(i, j), r01 = r00 + 1, r10 = r00 + static_cast<size_t>(f_.ny), r11 = r10 + 1;
    const Word *a = signs(i, j), *b = signs(i, j + 1), *c = signs(i + 1, j), *d = signs(i + 1, j + 1);
    const Word *ra = nullptr, *rb = nullptr, *rc = nullptr, *rd = nullptr;
    if (kBlocks) ra = readable(i, j), rb = readable(i, j + 1), rc = readable(i + 1, j), rd = readable(i + 1, j + 1);
    const Word *selected = kBlocks ? blocks_->row(i, j) : nullptr;
    // The eight edge rows a cell touches: k-edges of rows a, c, b, d
    // (cube edges 0..3); j-edges of a and c (edges 4, 5 at k; 6, 7 at k+1);
    // i-edges of a and b (edges 8, 9 at k; 10, 11 at k+1). base holds each
    // row's first vertex index at the current word.
    const uint32_t base0[8] = {base_[3 * r00 + kK], base_[3 * r10 + kK], base_[3 * r01 + kK], base_[3 * r11 + kK],
                               base_[3 * r00 + kJ], base_[3 * r10 + kJ], base_[3 * r00 + kI], base_[3 * r01 + kI]};
    EdgeIds ids(base0);
    uint32_t *out = indices_out_ + 3 * tri_base_[r00];
    const uint8_t *cases = slab_of(i).cases.data() + case_offset_[r00];
    // Each cell writes a full table entry (unused slots are harmless) to a
    // staging area, where the next cell overwrites the excess: a fixed-length
    // gather without a branch per triangle. The stage then goes out in one
    // piece.
    uint32_t stage[(kWordBits - 1) * 3 * mc::kMaxTriangles + mc::kEntrySize];
    for (int64_t q = 0; q < words_; ++q) {
      uint32_t *staged = stage;
      const Word lo[4] = {a[q], c[q], b[q], d[q]};
      const Word hi[4] = {next_bit(a, q), next_bit(c, q), next_bit(b, q), next_bit(d, q)};
      ids.set_word(k_edges<kBlocks>(a, ra, q), k_edges<kBlocks>(c, rc, q), k_edges<kBlocks>(b, rb, q),
                   k_edges<kBlocks>(d, rd, q), row_edges<kBlocks>(a, b, ra, rb, q),
                   row_edges<kBlocks>(c, d, rc, rd, q), row_edges<kBlocks>(a, c, ra, rc, q),
                   row_edges<kBlocks>(b, d, rb, rd, q));
      for (Word m = active_cells<kBlocks>(lo, hi, selected, q); m != 0; m &= m - 1) {
        const unsigned config = *cases++;
        ids.gather(lowest_bit(m), config, staged);
        staged += 3 * table.triangle_count[config];
      }
      out = std::copy(stage, staged, out);
      ids.next_word();
    }
  }

#if defined(HY3D_MC_AVX2)
  // Vertex indices of a row of cells' edges, eight edge rows at a time in
  // AVX2 lanes. Lanes hold the rows interleaved (0, 4, 1, 5, 2, 6, 3, 7), the
  // order in which two vectors of four 64-bit popcounts pack into eight
  // 32-bit lanes; a second vector holds the same rows at k+1.
  class EdgeIds {
   public:
    explicit EdgeIds(const uint32_t base[8])
        : base_(_mm256_setr_epi32(static_cast<int>(base[0]), static_cast<int>(base[4]), static_cast<int>(base[1]),
                                  static_cast<int>(base[5]), static_cast<int>(base[2]), static_cast<int>(base[6]),
                                  static_cast<int>(base[3]), static_cast<int>(base[7]))) {}

    void set_word(Word m0, Word m1, Word m2, Word m3, Word m4, Word m5, Word m6, Word m7) {
      lo_ = _mm256_setr_epi64x(static_cast<long long>(m0), static_cast<long long>(m1), static_cast<long long>(m2),
                               static_cast<long long>(m3));
      hi_ = _mm256_setr_epi64x(static_cast<long long>(m4), static_cast<long long>(m5), static_cast<long long>(m6),
                               static_cast<long long>(m7));
    }
    void next_word() { base_ = _mm256_add_epi32(base_, counts(lo_, hi_)); }

    // Writes the kEntrySize vertex indices of `config`'s table entry for the
    // cell at `bit` of the current word.
    void gather(int bit, unsigned config, uint32_t *out) const {
      const __m256i below = _mm256_set1_epi64x(static_cast<long long>((Word{1} << bit) - 1));
      const __m256i at = _mm256_add_epi32(base_, counts(_mm256_and_si256(lo_, below), _mm256_and_si256(hi_, below)));
      // Rows 4..7 step to the next vertex along k when their edge at k is crossed.
      const __m256i crossed = _mm256_and_si256(_mm256_srl_epi64(hi_, _mm_cvtsi32_si128(bit)), _mm256_set1_epi64x(1));
      const __m256i next = _mm256_add_epi32(at, _mm256_slli_epi64(crossed, 32));
      const uint8_t *lanes = lane_table()[config].data();
      const __m256i seven = _mm256_set1_epi32(7);
      for (int half = 0; half < 2; ++half) {
        const __m256i lane =
            _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(lanes + 8 * half)));
        const __m256i v = _mm256_blendv_epi8(_mm256_permutevar8x32_epi32(at, lane),
                                             _mm256_permutevar8x32_epi32(next, lane), _mm256_cmpgt_epi32(lane, seven));
        _mm256_storeu_si256(reinterpret_cast<__m256i *>(out + 8 * half), v);
      }
    }

   private:
    // Popcounts of the four 64-bit lanes of a and of b, packed interleaved
    // into 32-bit lanes.
    static __m256i counts(__m256i a, __m256i b) {
      return _mm256_blend_epi32(popcount64(a), _mm256_slli_epi64(popcount64(b), 32), 0xAA);
    }
    static __m256i popcount64(__m256i v) {
      const __m256i nibble_bits =
          _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
      const __m256i low = _mm256_set1_epi8(0x0f);
      const __m256i bytes = _mm256_add_epi8(_mm256_shuffle_epi8(nibble_bits, _mm256_and_si256(v, low)),
                                            _mm256_shuffle_epi8(nibble_bits, _mm256_and_si256(_mm256_srli_epi16(v, 4), low)));
      return _mm256_sad_epu8(bytes, _mm256_setzero_si256());
    }
    // The case table with cube edges replaced by lanes: 0..7 of the indices
    // at k, 8..15 of those at k+1.
    static const std::array<std::array<uint8_t, mc::kEntrySize>, 256> &lane_table() {
      static const auto table = [] {
        constexpr uint8_t kLane[12] = {0, 2, 4, 6, 1, 3, 9, 11, 5, 7, 13, 15};
        const mc::CaseTable &cases = mc::case_table();
        std::array<std::array<uint8_t, mc::kEntrySize>, 256> t{};
        for (size_t config = 0; config < t.size(); ++config) {
          for (int n = 0; n < mc::kEntrySize; ++n) t[config][n] = kLane[cases.triangles[config][n]];
        }
        return t;
      }();
      return table;
    }

    __m256i base_;
    __m256i lo_ = _mm256_setzero_si256(), hi_ = _mm256_setzero_si256();
  };
#else
  // Vertex indices of a row of cells' edges, one edge row at a time.
  class EdgeIds {
   public:
    explicit EdgeIds(const uint32_t base[8]) { std::copy(base, base + 8, base_); }

    void set_word(Word m0, Word m1, Word m2, Word m3, Word m4, Word m5, Word m6, Word m7) {
      const Word m[8] = {m0, m1, m2, m3, m4, m5, m6, m7};
      std::copy(m, m + 8, mask_);
    }
    void next_word() {
      for (int e = 0; e < 8; ++e) base_[e] += static_cast<uint32_t>(popcount(mask_[e]));
    }

    // Writes the kEntrySize vertex indices of `config`'s table entry for the
    // cell at `bit` of the current word.
    void gather(int bit, unsigned config, uint32_t *out) const {
      const Word below = (Word{1} << bit) - 1;
      uint32_t id[12];
      for (int e = 0; e < 8; ++e) id[e < 6 ? e : e + 2] = base_[e] + static_cast<uint32_t>(popcount(mask_[e] & below));
      for (int e = 4; e < 6; ++e) id[e + 2] = id[e] + static_cast<uint32_t>(mask_[e] >> bit & 1);
      for (int e = 6; e < 8; ++e) id[e + 4] = id[e + 2] + static_cast<uint32_t>(mask_[e] >> bit & 1);
      const uint8_t *entry = mc::case_table().triangles[config].data();
      for (int n = 0; n < mc::kEntrySize; ++n) out[n] = id[entry[n]];
    }

   private:
    uint32_t base_[8];
    Word mask_[8] = {};
  };
#endif

  // Pass 2 for plane i: its vertices, and the triangles of cell slab i.
  template <bool kBlocks>
  void emit_plane(int64_t i) const {
    emit_vertices(i);
    if (i + 1 < f_.nx) {
      for (int64_t j = 0; j + 1 < f_.ny; ++j) emit_triangles<kBlocks>(i, j);
    }
  }

  const Field f_;
  const BlockCells *blocks_;
  const int threads_;
  const int64_t words_, stride_;
  const size_t rows_;
  int64_t slab_planes_ = 1;
  Array<unsigned char> scratch_;     // holds the arrays below
  Word *sign_ = nullptr;             // inside bits per sample row (stride_ words)
  Word *readable_ = nullptr;         // blocks only: samples that are a corner of a selected cell
  uint32_t *base_ = nullptr;         // per row and axis: crossed edges, then (after the prefix sum) first vertex
  uint64_t *tri_base_ = nullptr;     // per cell row: triangles, then first triangle
  size_t *plane_offset_ = nullptr;   // per plane: its first vertex coordinate in its slab's buffer
  uint32_t *case_offset_ = nullptr;  // per cell row: its first crossed cell's case in its slab's buffer
  std::vector<Slab> slabs_;
  float *vertices_out_ = nullptr;
  uint32_t *indices_out_ = nullptr;
};

inline void extract(const Field &field, const BlockCells *blocks, int threads, hy3d_mesh &mesh) {
  Extractor(field, blocks, threads).run(mesh);
}
