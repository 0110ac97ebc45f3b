// Texture kernels: rasterizer conventions (pixel mapping, closed triangles,
// nearest wins, thread-count independence), interpolation, a bake of a
// constant view, filling, the atlas on a closed mesh, argument checks and
// JPEG encoding of texture images.
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <cstdio>
#include <utility>
#include <vector>

#include "check.hpp"
#include "hy3d.h"

namespace {

// Identity camera: camera x, y = world x, y; looking down -z, so depth = -z.
const float kIdentity[12] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};

void test_raster_conventions() {
  // Two triangles covering the square [-1, 1]² of a view with ortho scale 2
  // (NDC = camera coordinates), and a nearer small triangle on top.
  const std::vector<float> v = {-1, -1, -1, 1, -1, -1, 1, 1, -1, -1, 1, -1,  // square at depth 1
                                -0.5f, -0.5f, 0, 0.5f, -0.5f, 0, 0, 0.5f, 0};  // triangle at depth 0
  const std::vector<uint32_t> f = {0, 1, 2, 0, 2, 3, 4, 5, 6};
  const int w = 64, h = 48;
  std::vector<int32_t> ids1(w * h), ids2(w * h);
  std::vector<float> bary1(3 * w * h), bary2(3 * w * h), depth(w * h);
  CHECK(hy3d_rasterize_ortho(v.data(), 7, f.data(), 3, kIdentity, 2.0f, w, h, 1, ids1.data(), bary1.data(),
                             depth.data()) == HY3D_OK);
  CHECK(hy3d_rasterize_ortho(v.data(), 7, f.data(), 3, kIdentity, 2.0f, w, h, 2, ids2.data(), bary2.data(),
                             nullptr) == HY3D_OK);
  CHECK(ids1 == ids2 && bary1 == bary2);
  // x_px = (x/2 + 1/2)(W - 1) + 1/2 puts NDC -1 at 0.5 and +1 at W - 0.5:
  // every pixel centre of the image is inside the square (the outermost
  // ones on its edges, where rounding decides).
  int background = 0, front = 0;
  for (int y = 1; y + 1 < h; ++y) {
    for (int x = 1; x + 1 < w; ++x) {
      background += ids1[y * w + x] < 0;
      front += ids1[y * w + x] == 2;
    }
  }
  CHECK(background == 0);
  CHECK(front > 0);
  // Row 0 is NDC y = -1: the small triangle's apex (y = 0.5) is in the upper rows.
  const int centre_col = w / 2;
  CHECK(ids1[(h / 4) * w + centre_col] == 2);  // y ≈ -0.5..: inside the triangle's base region
  CHECK(ids1[(h - 3) * w + centre_col] != 2);  // near NDC y = +1: above the apex
  // Depth of the front triangle is 0, of the square 1.
  int wrong_depth = 0;
  for (int p = 0; p < w * h; ++p) {
    if (ids1[p] >= 0) wrong_depth += std::fabs(depth[p] - (ids1[p] == 2 ? 0.0f : 1.0f)) > 1e-6f;
  }
  CHECK(wrong_depth == 0);
  // Barycentrics sum to one and interpolate positions back.
  std::vector<float> pos(3 * w * h);
  const float bg[3] = {9, 9, 9};
  CHECK(hy3d_interpolate(v.data(), 3, 0, 7, f.data(), 3, ids1.data(), bary1.data(), size_t(w * h), bg, 2,
                         pos.data()) == HY3D_OK);
  int wrong_bary = 0, wrong_pos = 0;
  for (int p = 0; p < w * h; ++p) {
    if (ids1[p] < 0) continue;
    wrong_bary += std::fabs(bary1[3 * p] + bary1[3 * p + 1] + bary1[3 * p + 2] - 1) > 1e-5f;
    const double x = (double(p % w) + 0.5 - 0.5) / (w - 1) * 2 - 1;  // inverse of the pixel mapping
    wrong_pos += std::fabs(pos[3 * p] - x) > 1e-4;
  }
  CHECK(wrong_bary == 0);
  CHECK(wrong_pos == 0);
  // HY3D_INTERPOLATE_UNIT: blended vertex vectors come out of unit length.
  std::vector<float> vectors(3 * 7), unit(3 * w * h);
  for (size_t i = 0; i < vectors.size(); ++i) vectors[i] = float(i % 5) + 0.5f;
  CHECK(hy3d_interpolate(vectors.data(), 3, HY3D_INTERPOLATE_UNIT, 7, f.data(), 3, ids1.data(), bary1.data(),
                         size_t(w * h), bg, 2, unit.data()) == HY3D_OK);
  int wrong_length = 0;
  for (int p = 0; p < w * h; ++p) {
    const double l = std::sqrt(double(unit[3 * p]) * unit[3 * p] + double(unit[3 * p + 1]) * unit[3 * p + 1] +
                               double(unit[3 * p + 2]) * unit[3 * p + 2]);
    wrong_length += ids1[p] >= 0 && std::fabs(l - 1) > 1e-5;
  }
  CHECK(wrong_length == 0);
}

void test_uv_raster_and_fill() {
  // A quad filling the left half of UV space.
  const std::vector<float> uv = {0, 0, 0.5f, 0, 0.5f, 1, 0, 1};
  const std::vector<float> pos = {0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0};
  const std::vector<uint32_t> f = {0, 1, 2, 0, 2, 3};
  const int n = 32;
  std::vector<int32_t> ids(n * n);
  std::vector<float> bary(3 * n * n);
  CHECK(hy3d_rasterize_uv(uv.data(), 4, f.data(), 2, n, n, 0, ids.data(), bary.data()) == HY3D_OK);
  for (int y = 0; y < n; ++y) {
    for (int x = 0; x < n; ++x) CHECK((ids[y * n + x] >= 0) == (x < n / 2));
  }
  // Paint the lower rows grey 0.25, leave the rest; fill must give every
  // texel a finite value and keep the painted ones.
  std::vector<float> tex(n * n, 0.0f);
  std::vector<uint8_t> painted(n * n, 0);
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < n / 2; ++x) {
      tex[y * n + x] = 0.25f;
      painted[y * n + x] = 1;
    }
  }
  // A gutter texel a splat painted keeps its colour.
  const int gutter = 20 * n + 3 * n / 4;
  tex[gutter] = 0.5f;
  painted[gutter] = 1;
  std::vector<float> colors(4);
  std::vector<uint8_t> known(4);
  CHECK(hy3d_fill_vertex_colors(pos.data(), uv.data(), nullptr, 4, f.data(), 2, tex.data(), painted.data(), n, n, 1,
                                colors.data(), known.data()) == HY3D_OK);
  for (int v = 0; v < 4; ++v) {
    CHECK(known[v] == 1);
    CHECK(std::fabs(colors[v] - 0.25f) < 1e-6f);  // the only colour there is
  }
  CHECK(hy3d_fill_texels(tex.data(), painted.data(), ids.data(), uv.data(), f.data(), 2, colors.data(), known.data(), 4,
                         n, n, 1, 2) == HY3D_OK);
  CHECK(tex[gutter] == 0.5f);
  int wrong = 0;
  for (int p = 0; p < n * n; ++p) wrong += p % n < n / 2 && !(std::fabs(tex[p] - 0.25f) < 1e-5f);
  CHECK(wrong == 0);
}

void test_bake_constant_view() {
  // A square facing the camera, atlas = its own UVs; a constant view must
  // bake to that constant wherever it paints.
  const std::vector<float> pos = {-0.5f, -0.5f, 0, 0.5f, -0.5f, 0, 0.5f, 0.5f, 0, -0.5f, 0.5f, 0};
  const std::vector<float> uv = {0, 0, 1, 0, 1, 1, 0, 1};
  const std::vector<uint32_t> f = {0, 1, 2, 0, 2, 3};
  const float cam[12] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, -1.45f};  // camera 1.45 in front
  const int vs = 128, ts = 64;
  std::vector<int32_t> ids(vs * vs);
  std::vector<float> bary(3 * vs * vs), depth(vs * vs), normals(3 * vs * vs), weights(vs * vs);
  CHECK(hy3d_rasterize_ortho(pos.data(), 4, f.data(), 2, cam, 1.2f, vs, vs, 0, ids.data(), bary.data(),
                             depth.data()) == HY3D_OK);
  const float face_normals[6] = {0, 0, 1, 0, 0, 1};
  const float zero[3] = {0, 0, 0};
  CHECK(hy3d_interpolate(face_normals, 3, 1, 2, f.data(), 2, ids.data(), bary.data(), size_t(vs * vs), zero, 0,
                         normals.data()) == HY3D_OK);
  const float to_camera[3] = {0, 0, 1};
  CHECK(hy3d_bake_view_weights(ids.data(), normals.data(), depth.data(), vs, vs, to_camera, 0.2588f, 2, 0,
                               weights.data()) == HY3D_OK);
  int reliable = 0;
  for (float w : weights) reliable += w > 0.99f;
  CHECK(reliable > vs * vs / 2);
  std::vector<float> image(3 * vs * vs, 0.75f);
  // Texel positions for the gather.
  std::vector<int32_t> tids(ts * ts);
  std::vector<float> tbary(3 * ts * ts), tpos(3 * ts * ts);
  CHECK(hy3d_rasterize_uv(uv.data(), 4, f.data(), 2, ts, ts, 0, tids.data(), tbary.data()) == HY3D_OK);
  CHECK(hy3d_interpolate(pos.data(), 3, 0, 4, f.data(), 2, tids.data(), tbary.data(), size_t(ts * ts), zero, 0,
                         tpos.data()) == HY3D_OK);
  // The covered texels listed tile by tile carry the same positions.
  size_t covered = 0;
  CHECK(hy3d_uv_texels(uv.data(), 4, f.data(), 2, tids.data(), ts, ts, pos.data(), 3, 2, &covered, nullptr, nullptr) ==
        HY3D_OK);
  std::vector<uint32_t> listed(covered);
  std::vector<float> listed_pos(3 * covered);
  CHECK(hy3d_uv_texels(uv.data(), 4, f.data(), 2, tids.data(), ts, ts, pos.data(), 3, 2, &covered, listed.data(),
                       listed_pos.data()) == HY3D_OK);
  size_t expected = 0, wrong_texel = 0;
  for (int t = 0; t < ts * ts; ++t) expected += tids[t] >= 0;
  CHECK(covered == expected);
  for (size_t i = 0; i < covered; ++i) {
    wrong_texel += tids[listed[i]] < 0 || (i > 0 && listed[i] == listed[i - 1]);
    for (int k = 0; k < 3; ++k) wrong_texel += listed_pos[3 * i + k] != tpos[3 * listed[i] + k];
  }
  CHECK(wrong_texel == 0);
  std::vector<uint32_t> index(ts * ts);
  for (uint32_t i = 0; i < uint32_t(ts * ts); ++i) index[i] = i;
  std::vector<float> uvmap(2 * vs * vs);
  const float zero2[2] = {0, 0};
  CHECK(hy3d_interpolate(uv.data(), 2, 0, 4, f.data(), 2, ids.data(), bary.data(), size_t(vs * vs), zero2, 0,
                         uvmap.data()) == HY3D_OK);
  for (int mode = 0; mode < 2; ++mode) {
    std::vector<float> color(3 * ts * ts, 0.0f), weight(ts * ts, 0.0f);
    int32_t used = 0;
    if (mode == 0) {
      // With and without the texel boxes: the same sums.
      const int32_t run = 16;
      std::vector<float> bounds(6 * ((index.size() + run - 1) / run));
      CHECK(hy3d_texel_bounds(tpos.data(), index.size(), run, 2, bounds.data()) == HY3D_OK);
      std::vector<float> plain_color(color), plain_weight(weight);
      CHECK(hy3d_bake_gather(tpos.data(), index.data(), index.size(), bounds.data(), run, image.data(), depth.data(),
                             weights.data(), vs, vs, 3, cam, 1.2f, 1.0f, 4.0f, 3e-3f, size_t(ts * ts), 0,
                             color.data(), weight.data(), &used) == HY3D_OK);
      CHECK(hy3d_bake_gather(tpos.data(), index.data(), index.size(), nullptr, 0, image.data(), depth.data(),
                             weights.data(), vs, vs, 3, cam, 1.2f, 1.0f, 4.0f, 3e-3f, size_t(ts * ts), 0,
                             plain_color.data(), plain_weight.data(), &used) == HY3D_OK);
      CHECK(plain_color == color && plain_weight == weight);
    } else {
      CHECK(hy3d_bake_splat(uvmap.data(), image.data(), weights.data(), vs, vs, 3, ts, ts, 1.0f, 4.0f, 0, color.data(),
                            weight.data(), &used) == HY3D_OK);
    }
    CHECK(used == 1);
    std::vector<uint8_t> painted(ts * ts);
    CHECK(hy3d_bake_resolve(color.data(), weight.data(), size_t(ts * ts), 3, 0, painted.data()) == HY3D_OK);
    int count = 0;
    for (int t = 0; t < ts * ts; ++t) {
      if (!painted[t]) continue;
      ++count;
      for (int k = 0; k < 3; ++k) CHECK(std::fabs(color[3 * t + k] - 0.75f) < 1e-4f);
    }
    CHECK(count > ts * ts / 2);
    // The same view again paints nothing new: skipped.
    std::vector<float> c2(color.size(), 0.0f), w2(weight.begin(), weight.end());
    if (mode == 0) {
      CHECK(hy3d_bake_gather(tpos.data(), index.data(), index.size(), nullptr, 0, image.data(), depth.data(),
                             weights.data(), vs, vs, 3, cam, 1.2f, 1.0f, 4.0f, 3e-3f, size_t(ts * ts), 0, c2.data(),
                             w2.data(), &used) == HY3D_OK);
      CHECK(used == 0);
    }
  }
}

// Octahedron subdivided and pushed onto a sphere.
void sphere(std::vector<float> &v, std::vector<uint32_t> &f, int n) {
  // Latitude-longitude grid closed at the poles.
  v.clear();
  f.clear();
  v.insert(v.end(), {0, 0, 1});
  for (int i = 1; i < n; ++i) {
    const double th = M_PI * i / n;
    for (int j = 0; j < 2 * n; ++j) {
      const double ph = M_PI * j / n;
      v.insert(v.end(), {float(std::sin(th) * std::cos(ph)), float(std::sin(th) * std::sin(ph)), float(std::cos(th))});
    }
  }
  v.insert(v.end(), {0, 0, -1});
  const uint32_t south = uint32_t(v.size() / 3 - 1);
  auto at = [&](int i, int j) { return uint32_t(1 + (i - 1) * 2 * n + (j % (2 * n))); };
  for (int j = 0; j < 2 * n; ++j) f.insert(f.end(), {0, at(1, j), at(1, j + 1)});
  for (int i = 1; i < n - 1; ++i) {
    for (int j = 0; j < 2 * n; ++j) {
      f.insert(f.end(), {at(i, j), at(i + 1, j), at(i + 1, j + 1)});
      f.insert(f.end(), {at(i, j), at(i + 1, j + 1), at(i, j + 1)});
    }
  }
  for (int j = 0; j < 2 * n; ++j) f.insert(f.end(), {south, at(n - 1, j + 1), at(n - 1, j)});
}

void test_atlas() {
  std::vector<float> v;
  std::vector<uint32_t> f;
  sphere(v, f, 24);
  hy3d_atlas_options opt{512, 2, 40.0f, 0};
  hy3d_atlas *atlas = nullptr;
  CHECK(hy3d_atlas_build(v.data(), v.size() / 3, f.data(), f.size() / 3, &opt, &atlas) == HY3D_OK);
  const uint32_t *xref = nullptr, *idx = nullptr, *chart = nullptr;
  const float *uvs = nullptr;
  size_t nv = 0, nt = 0;
  hy3d_atlas_stats stats{};
  CHECK(hy3d_atlas_view(atlas, &xref, &uvs, &nv, &idx, &nt, &chart, &stats) == HY3D_OK);
  CHECK(nt == f.size() / 3);
  CHECK(nv >= v.size() / 3);
  CHECK(stats.overlap_texels == 0);
  CHECK(stats.charts > 1);
  CHECK(stats.stretch_l2 >= 1 && stats.stretch_l2 < 1.17);
  for (size_t i = 0; i < 2 * nv; ++i) CHECK(uvs[i] >= 0 && uvs[i] <= 1);
  for (size_t i = 0; i < 3 * nt; ++i) CHECK(xref[idx[i]] == f[i]);
  hy3d_atlas_destroy(atlas);
  hy3d_atlas_destroy(nullptr);
}

void test_bad_arguments() {
  const float v[9] = {0, 0, 0, 1, 0, 0, 0, 1, 0};
  const uint32_t bad[3] = {0, 1, 3};
  int32_t ids[4];
  float bary[12];
  CHECK(hy3d_rasterize_ortho(v, 3, bad, 1, kIdentity, 2, 2, 2, 1, ids, bary, nullptr) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(hy3d_last_error()[0] != '\0');
  const uint32_t ok[3] = {0, 1, 2};
  CHECK(hy3d_rasterize_ortho(v, 3, ok, 1, kIdentity, 0, 2, 2, 1, ids, bary, nullptr) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(hy3d_rasterize_ortho(v, 3, ok, 1, kIdentity, 2, 0, 2, 1, ids, bary, nullptr) == HY3D_ERR_INVALID_ARGUMENT);
  const float nan_v[9] = {0, 0, NAN, 1, 0, 0, 0, 1, 0};
  CHECK(hy3d_rasterize_ortho(nan_v, 3, ok, 1, kIdentity, 2, 2, 2, 1, ids, bary, nullptr) == HY3D_ERR_INVALID_ARGUMENT);
  hy3d_atlas *atlas = nullptr;
  hy3d_atlas_options opt{64, 2, 95.0f, 1};
  CHECK(hy3d_atlas_build(v, 3, ok, 1, &opt, &atlas) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(atlas == nullptr);
  // No faces: an empty atlas.
  opt.max_chart_angle = 40;
  CHECK(hy3d_atlas_build(v, 3, ok, 0, &opt, &atlas) == HY3D_OK);
  hy3d_atlas_destroy(atlas);
}

void test_view_weights_margins() {
  // A flat view facing the camera (no depth edges) with two background
  // pixels, one where packed rows cross a 64-pixel word, one by the corner:
  // exactly the pixels within radius (Chebyshev) of them are unreliable.
  const int w = 130, h = 40, r = 5;
  const int holes[2][2] = {{63, 20}, {2, 1}};
  std::vector<int32_t> ids(w * h, 0);
  for (const auto &hole : holes) ids[hole[1] * w + hole[0]] = -1;
  std::vector<float> normals(3 * w * h), depth(w * h, 1.0f), weights(w * h);
  for (int p = 0; p < w * h; ++p) normals[3 * p + 2] = 1;
  const float to_camera[3] = {0, 0, 2};
  CHECK(hy3d_bake_view_weights(ids.data(), normals.data(), depth.data(), w, h, to_camera, 0.2588f, r, 2,
                               weights.data()) == HY3D_OK);
  int wrong = 0;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      bool near = false;
      for (const auto &hole : holes) near = near || (std::abs(x - hole[0]) <= r && std::abs(y - hole[1]) <= r);
      wrong += near ? weights[y * w + x] != -1.0f : std::fabs(weights[y * w + x] - 1.0f) > 1e-6f;
    }
  }
  CHECK(wrong == 0);
}

void test_encode_jpeg() {
  const int w = 40, h = 24;
  std::vector<float> rgb(3 * w * h);
  for (int p = 0; p < w * h; ++p) {
    rgb[3 * p] = float(p % w) / w;
    rgb[3 * p + 1] = 0.5f;
    rgb[3 * p + 2] = std::nanf("");  // encoded as 0
  }
  const int32_t colour[3] = {0, 1, 2}, packed[3] = {-1, 1, 0}, grey[1] = {1};
  for (const auto &[layout, components] : {std::pair<const int32_t *, int32_t>{colour, 3}, {packed, 3}, {grey, 1}}) {
    hy3d_buffer *jpeg = nullptr;
    CHECK(hy3d_encode_jpeg(rgb.data(), w, h, 3, layout, components, 90, 2, &jpeg) == HY3D_OK);
    const uint8_t *data = nullptr;
    size_t size = 0;
    CHECK(hy3d_buffer_view(jpeg, &data, &size) == HY3D_OK);
    CHECK(size > 4 && data[0] == 0xff && data[1] == 0xd8 && data[size - 2] == 0xff && data[size - 1] == 0xd9);
    hy3d_buffer_destroy(jpeg);
  }
  // Encoded in strips on 1, 2 and 3 threads: the same bytes (strips of 8
  // MCU rows need at least 128 rows of colour, 64 of grey to split).
  const int tall_w = 48, tall_h = 300;
  std::vector<float> tall(3 * tall_w * tall_h);
  for (size_t i = 0; i < tall.size(); ++i) tall[i] = float((i * 7919) % 1000) / 999.0f;
  for (const auto &[layout, components] : {std::pair<const int32_t *, int32_t>{colour, 3}, {grey, 1}}) {
    std::vector<std::vector<uint8_t>> encodings;
    for (int threads = 1; threads <= 3; ++threads) {
      hy3d_buffer *jpeg = nullptr;
      CHECK(hy3d_encode_jpeg(tall.data(), tall_w, tall_h, 3, layout, components, 80, threads, &jpeg) == HY3D_OK);
      const uint8_t *data = nullptr;
      size_t size = 0;
      CHECK(hy3d_buffer_view(jpeg, &data, &size) == HY3D_OK);
      encodings.emplace_back(data, data + size);
      hy3d_buffer_destroy(jpeg);
    }
    CHECK(encodings[0] == encodings[1] && encodings[0] == encodings[2]);
  }
  hy3d_buffer *jpeg = nullptr;
  const int32_t past[1] = {3};
  CHECK(hy3d_encode_jpeg(rgb.data(), w, h, 3, past, 1, 90, 1, &jpeg) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(hy3d_encode_jpeg(rgb.data(), w, h, 3, colour, 2, 90, 1, &jpeg) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(hy3d_encode_jpeg(rgb.data(), w, h, 3, colour, 3, 0, 1, &jpeg) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(hy3d_encode_jpeg(rgb.data(), 0, h, 3, colour, 3, 90, 1, &jpeg) == HY3D_ERR_INVALID_ARGUMENT);
  CHECK(jpeg == nullptr);
  hy3d_buffer_destroy(nullptr);
}

}  // namespace

int main() {
  test_raster_conventions();
  test_uv_raster_and_fill();
  test_bake_constant_view();
  test_atlas();
  test_bad_arguments();
  test_view_weights_margins();
  test_encode_jpeg();
  return check_failures();
}
