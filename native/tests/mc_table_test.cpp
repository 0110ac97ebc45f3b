// Structural properties of the generated case table, independent of any
// grid: triangles use exactly the crossed edges, each crossed edge's vertex
// closes a fan around it, ambiguous faces separate their inside corners, and
// inverting the corners inverts the crossed edges.
#include <cstdint>

#include "../src/mc_table.hpp"
#include "check.hpp"

namespace {

using hy3d::mc::case_table;
using hy3d::mc::CaseTable;
using hy3d::mc::edge_corners;

void test_edges_match_signs() {
  const CaseTable &t = case_table();
  for (int config = 0; config < 256; ++config) {
    unsigned crossed = 0;
    for (int e = 0; e < 12; ++e) {
      const auto c = edge_corners(e);
      if ((config >> c[0] & 1) != (config >> c[1] & 1)) crossed |= 1u << e;
    }
    CHECK(t.edge_mask[config] == crossed);
    CHECK(t.edge_mask[config] == t.edge_mask[255 - config]);
    unsigned used = 0;
    for (int n = 0; n < 3 * t.triangle_count[config]; ++n) used |= 1u << t.triangles[config][n];
    CHECK(used == crossed);
    // Every polygon of k crossings gives k - 2 triangles, so there are fewer
    // triangles than crossings, and none at all without crossings.
    CHECK(t.triangle_count[config] < __builtin_popcount(crossed) || crossed == 0);
    CHECK((t.triangle_count[config] == 0) == (crossed == 0));
  }
}

void test_edge_corners_are_adjacent() {
  unsigned seen[8] = {};
  for (int e = 0; e < 12; ++e) {
    const auto c = edge_corners(e);
    CHECK(__builtin_popcount(static_cast<unsigned>(c[0] ^ c[1])) == 1);
    CHECK(c[0] < c[1]);
    seen[c[0]] |= 1u << c[1];
  }
  int edges = 0;
  for (unsigned s : seen) edges += __builtin_popcount(s);
  CHECK(edges == 12);
}

// Corners 0 and 3 are diagonal on the k = 0 face: with the inside corners
// separated the surface is two triangles, one around each corner.
void test_ambiguous_face_separates_inside() {
  const CaseTable &t = case_table();
  CHECK(t.triangle_count[0x09] == 2);
  CHECK(t.triangle_count[0x01] == 1);
  // The tetrahedral configuration: four isolated corners, four triangles.
  CHECK(t.triangle_count[0x69] == 4);
  CHECK(t.triangle_count[0x96] == 4);
}

}  // namespace

int main() {
  test_edges_match_signs();
  test_edge_corners_are_adjacent();
  test_ambiguous_face_separates_inside();
  return check_failures();
}
