// The marching cubes entry points: argument checks, and dispatch to the
// kernel (mc_kernel.hpp) compiled for the best instruction set the CPU has.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "mc_common.hpp"
#include "mc_table.hpp"
#include "mesh.hpp"
#include "status.hpp"

namespace hy3d {
namespace mc {

namespace baseline {
#include "mc_kernel.hpp"
}  // namespace baseline

// GCC only: clang spells per-region targets differently.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HY3D_MC_X86_V3 1
// x86-64-v3 (Haswell, Zen and later): hardware popcount, BMI, AVX2.
#pragma GCC push_options
#pragma GCC target("popcnt,lzcnt,bmi,bmi2,avx,avx2,fma")
#define HY3D_MC_AVX2 1
namespace x86_v3 {
#include "mc_kernel.hpp"
}  // namespace x86_v3
#undef HY3D_MC_AVX2
#pragma GCC pop_options
#endif

namespace {

void extract(const Field &field, const BlockCells *blocks, int threads, hy3d_mesh &mesh) {
#if defined(HY3D_MC_X86_V3)
  static const bool v3 = __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("bmi2") &&
                         __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (v3) return x86_v3::extract(field, blocks, threads, mesh);
#endif
  baseline::extract(field, blocks, threads, mesh);
}

Field check_grid(const char *fn, const float *values, int64_t nx, int64_t ny, int64_t nz, float level,
                 hy3d_mesh **out) {
  if (out == nullptr) throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string(fn) + ": NULL output");
  *out = nullptr;
  if (values == nullptr) throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string(fn) + ": NULL values");
  const std::string dims = std::to_string(nx) + "x" + std::to_string(ny) + "x" + std::to_string(nz);
  if (nx < 1 || ny < 1 || nz < 1) throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string(fn) + ": grid " + dims + " is empty");
  // Past 2^31 per axis or 2^40 in all, no field fits in memory; the bounds
  // also keep every index product clear of int64 overflow.
  constexpr int64_t kMaxAxis = int64_t{1} << 31, kMaxSamples = int64_t{1} << 40;
  int64_t samples = 0;
  if (nx > kMaxAxis || ny > kMaxAxis || nz > kMaxAxis || __builtin_mul_overflow(nx, ny, &samples) ||
      __builtin_mul_overflow(samples, nz, &samples) || samples > kMaxSamples) {
    throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string(fn) + ": grid " + dims + " is too large");
  }
  if (!std::isfinite(level)) throw Error(HY3D_ERR_INVALID_ARGUMENT, std::string(fn) + ": level is not finite");
  return Field{values, nx, ny, nz, level};
}

// threads <= 0 means all hardware threads. Far more threads than cores only
// adds spawning cost, so requests are capped.
int thread_count(int threads) {
  constexpr int kMaxThreads = 256;
  if (threads > 0) return std::min(threads, kMaxThreads);
  return static_cast<int>(std::min<unsigned>(std::max(1u, std::thread::hardware_concurrency()), kMaxThreads));
}

}  // namespace
}  // namespace mc
}  // namespace hy3d

extern "C" {

hy3d_status hy3d_marching_cubes(const float *values, int64_t nx, int64_t ny, int64_t nz, float level, int threads,
                                hy3d_mesh **out) {
  return hy3d::guard([&] {
    const hy3d::mc::Field field = hy3d::mc::check_grid("hy3d_marching_cubes", values, nx, ny, nz, level, out);
    auto mesh = std::make_unique<hy3d_mesh>();
    hy3d::mc::extract(field, nullptr, hy3d::mc::thread_count(threads), *mesh);
    *out = mesh.release();
    return HY3D_OK;
  });
}

hy3d_status hy3d_marching_cubes_blocks(const float *values, int64_t nx, int64_t ny, int64_t nz, float level,
                                       int32_t block_size, const int32_t *blocks, size_t block_count, int threads,
                                       hy3d_mesh **out) {
  return hy3d::guard([&] {
    const char *fn = "hy3d_marching_cubes_blocks";
    const hy3d::mc::Field field = hy3d::mc::check_grid(fn, values, nx, ny, nz, level, out);
    if (block_size < 1) {
      throw hy3d::Error(HY3D_ERR_INVALID_ARGUMENT, std::string(fn) + ": block size " + std::to_string(block_size) + " < 1");
    }
    if (blocks == nullptr && block_count > 0) throw hy3d::Error(HY3D_ERR_INVALID_ARGUMENT, std::string(fn) + ": NULL blocks");
    auto mesh = std::make_unique<hy3d_mesh>();
    if (nx < 2 || ny < 2 || nz < 2) {
      if (block_count > 0) throw hy3d::Error(HY3D_ERR_INVALID_ARGUMENT, std::string(fn) + ": the grid has no cells");
    } else {
      const hy3d::mc::BlockCells cells(field, block_size, blocks, block_count);
      hy3d::mc::extract(field, &cells, hy3d::mc::thread_count(threads), *mesh);
    }
    *out = mesh.release();
    return HY3D_OK;
  });
}

}  // extern "C"
