// Internal helpers for implementing the C ABI: errors carry an hy3d_status,
// guard() converts them (and any other exception) into a status plus the
// thread-local last-error message.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>

#include "hy3d.h"

namespace hy3d {

class Error : public std::runtime_error {
 public:
  Error(hy3d_status status, const std::string &message) : std::runtime_error(message), status_(status) {}
  hy3d_status status() const { return status_; }

 private:
  hy3d_status status_;
};

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

// Records message as the calling thread's last error and returns status.
hy3d_status fail(hy3d_status status, const std::string &message);
void clear_error();
void log(LogLevel level, const std::string &message);

// Runs body, translating exceptions into a status; every extern "C" entry
// point that can fail is written as `return guard([&] { ... });`.
hy3d_status guard(const std::function<hy3d_status()> &body) noexcept;

}  // namespace hy3d
