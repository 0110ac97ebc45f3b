// The concrete type behind the opaque hy3d_mesh handle.
#pragma once

#include <cstdint>
#include <vector>

struct hy3d_mesh {
  std::vector<float> vertices;    // xyz triples
  std::vector<uint32_t> indices;  // triangle index triples
};
