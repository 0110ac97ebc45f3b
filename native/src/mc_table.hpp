// The marching cubes case table, generated at first use instead of being
// transcribed: for each of the 256 corner-sign configurations the iso-contour
// is traced over the cube's six faces, the resulting closed polygons are
// triangulated, and the triangles are stored as cube-edge indices.
//
// Why generation keeps the surface crack-free: every face segment depends
// only on the four signs of that face (ambiguous faces, with diagonal corners
// inside, always separate the inside corners), so the two cubes sharing a face
// trace the same segments there, in opposite directions. Triangulations never
// add a chord between two vertices that lie on one face, so every mesh edge on
// a face is one of those segments, used once by each cube; every other edge is
// a chord interior to one polygon and used by its two triangles.
//
// Numbering. Corner c sits at (c&1, c>>1&1, c>>2&1) in (i, j, k). Edge e runs
// along axis k (e = 0..3), j (e = 4..7) or i (e = 8..11); within an axis the
// two low bits give the offsets along the other two axes, lower axis first:
// k-edges (di + 2dj), j-edges (di + 2dk), i-edges (dj + 2dk).
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <stdexcept>

namespace hy3d {
namespace mc {

// The most triangles any configuration needs; generate() refuses more.
constexpr int kMaxTriangles = 5;
// Entries are padded to 16 edge indices (unused ones 0) so that vector code
// can load and expand one whole.
constexpr int kEntrySize = 16;

struct CaseTable {
  std::array<uint8_t, 256> triangle_count;
  std::array<uint16_t, 256> edge_mask;  // bit e: edge e is crossed
  // Triangles as cube-edge triples, counter-clockwise seen from outside:
  // the right-hand normal points from inside corners to outside ones.
  std::array<std::array<uint8_t, kEntrySize>, 256> triangles;
};

// The two corners of edge e, the lower one (along the edge's axis) first.
inline std::array<int, 2> edge_corners(int e) {
  const int axis = 2 - e / 4;  // 0 = i, 1 = j, 2 = k
  const int r = e % 4;
  int lo = 0;
  if (axis == 2) lo = (r & 1) | (r >> 1) << 1;
  if (axis == 1) lo = (r & 1) | (r >> 1) << 2;
  if (axis == 0) lo = (r & 1) << 1 | (r >> 1) << 2;
  return {lo, lo | 1 << axis};
}

namespace detail {

inline int edge_between(int a, int b) {
  for (int e = 0; e < 12; ++e) {
    const auto c = edge_corners(e);
    if ((c[0] == a && c[1] == b) || (c[0] == b && c[1] == a)) return e;
  }
  throw std::logic_error("mc table: corners are not adjacent");
}

// Bit set of the faces (axis*2 + side) an edge lies on.
inline unsigned edge_faces(int e) {
  const auto c = edge_corners(e);
  const int axis = 2 - e / 4;
  unsigned faces = 0;
  for (int a = 0; a < 3; ++a) {
    if (a != axis) faces |= 1u << (a * 2 + ((c[0] >> a) & 1));
  }
  return faces;
}

// The four corners of face (axis, side) in counter-clockwise order seen from
// outside the cube.
inline std::array<int, 4> face_corners(int axis, int side) {
  const int u = (axis + 1) % 3, v = (axis + 2) % 3;  // (u, v, axis) right-handed
  const int base = side << axis;
  std::array<int, 4> q = {base, base | 1 << u, base | 1 << u | 1 << v, base | 1 << v};
  if (side == 0) std::swap(q[1], q[3]);
  return q;
}

inline CaseTable generate() {
  CaseTable t{};
  for (int config = 0; config < 256; ++config) {
    auto inside = [config](int c) { return (config >> c & 1) != 0; };
    // next[x] = y: the face segment leaving edge x's crossing ends at edge y's.
    // Seen from outside each face, the segment keeps the inside corners on its
    // left, so it runs from an exit crossing (inside -> outside, walking the
    // face counter-clockwise) to the entry crossing that closes the run of
    // inside corners behind it. Walking back over inside corners (rather than
    // forward over outside ones) is what separates the inside corners of an
    // ambiguous face.
    std::array<int, 12> next;
    next.fill(-1);
    for (int axis = 0; axis < 3; ++axis) {
      for (int side = 0; side < 2; ++side) {
        const auto q = face_corners(axis, side);
        for (int m = 0; m < 4; ++m) {
          if (!inside(q[m]) || inside(q[(m + 1) % 4])) continue;
          int n = m;
          while (inside(q[(n + 3) % 4])) n = (n + 3) % 4;
          next[edge_between(q[m], q[(m + 1) % 4])] = edge_between(q[(n + 3) % 4], q[n]);
        }
      }
    }
    uint16_t mask = 0;
    for (int e = 0; e < 12; ++e) {
      const auto c = edge_corners(e);
      if (inside(c[0]) != inside(c[1])) mask |= 1u << e;
    }
    t.edge_mask[config] = mask;

    int tri = 0;
    uint16_t seen = 0;
    for (int start = 0; start < 12; ++start) {
      if (!(mask >> start & 1) || (seen >> start & 1)) continue;
      int loop[12];
      int n = 0;
      for (int e = start; !(seen >> e & 1); e = next[e]) {
        if (e < 0) throw std::logic_error("mc table: open contour");
        seen |= 1u << e;
        loop[n++] = e;
      }
      if (n < 3) throw std::logic_error("mc table: degenerate contour");
      // Minimum-total-chord-length triangulation over the chords allowed
      // (endpoints on no common face), by the classic interval DP.
      auto mid = [](int e, int axis) {
        const auto c = edge_corners(e);
        return 0.5 * (((c[0] >> axis) & 1) + ((c[1] >> axis) & 1));
      };
      auto chord = [&](int a, int b) {
        if (b - a == 1 || (a == 0 && b == n - 1)) return 0.0;
        if (edge_faces(loop[a]) & edge_faces(loop[b])) return HUGE_VAL;
        double s = 0;
        for (int axis = 0; axis < 3; ++axis) {
          const double d = mid(loop[a], axis) - mid(loop[b], axis);
          s += d * d;
        }
        return std::sqrt(s);
      };
      double cost[12][12] = {};
      int split[12][12] = {};
      for (int len = 2; len < n; ++len) {
        for (int a = 0; a + len < n; ++a) {
          const int b = a + len;
          cost[a][b] = HUGE_VAL;
          for (int m = a + 1; m < b; ++m) {
            const double c = cost[a][m] + cost[m][b] + chord(a, m) + chord(m, b);
            if (c < cost[a][b]) cost[a][b] = c, split[a][b] = m;
          }
        }
      }
      if (!(cost[0][n - 1] < HUGE_VAL)) throw std::logic_error("mc table: polygon has no face-safe triangulation");
      int stack[24][2];
      int top = 0;
      stack[top][0] = 0, stack[top][1] = n - 1, ++top;
      while (top > 0) {
        --top;
        const int a = stack[top][0], b = stack[top][1];
        if (b - a < 2) continue;
        const int m = split[a][b];
        if (tri == kMaxTriangles) throw std::logic_error("mc table: too many triangles");
        // The loop runs counter-clockwise around the inside corners, so its
        // own normal points inward; store the triangles reversed.
        uint8_t *out = &t.triangles[config][3 * tri++];
        out[0] = static_cast<uint8_t>(loop[a]);
        out[1] = static_cast<uint8_t>(loop[b]);
        out[2] = static_cast<uint8_t>(loop[m]);
        stack[top][0] = a, stack[top][1] = m, ++top;
        stack[top][0] = m, stack[top][1] = b, ++top;
      }
    }
    t.triangle_count[config] = static_cast<uint8_t>(tri);
  }
  return t;
}

}  // namespace detail

// The table, generated once (thread-safe static initialization).
inline const CaseTable &case_table() {
  static const CaseTable table = detail::generate();
  return table;
}

}  // namespace mc
}  // namespace hy3d
