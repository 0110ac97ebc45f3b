// A minimal assertion helper for the native tests: CHECK records a failure
// with its location and keeps going; main returns check_failures().
#pragma once

#include <cstdio>

inline int &check_failure_count() {
  static int failures = 0;
  return failures;
}

#define CHECK(cond)                                                    \
  do {                                                                 \
    if (!(cond)) {                                                     \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++check_failure_count();                                         \
    }                                                                  \
  } while (0)

inline int check_failures() { return check_failure_count() == 0 ? 0 : 1; }
