// Status plumbing shared by every entry point: the thread-local last error,
// the log sink, and the exception firewall that keeps C++ exceptions from
// crossing the C ABI.
#include "status.hpp"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <new>
#include <string>

namespace hy3d {
namespace {

thread_local std::string g_last_error;

struct LogSink {
  std::mutex mutex;
  hy3d_log_fn fn = nullptr;
  void *user = nullptr;
};

LogSink &log_sink() {
  static LogSink sink;
  return sink;
}

}  // namespace

hy3d_status fail(hy3d_status status, const std::string &message) {
  g_last_error = message;
  return status;
}

void clear_error() { g_last_error.clear(); }

void log(LogLevel level, const std::string &message) {
  LogSink &sink = log_sink();
  std::lock_guard<std::mutex> lock(sink.mutex);
  if (sink.fn != nullptr) sink.fn(static_cast<int>(level), message.c_str(), sink.user);
}

hy3d_status guard(const std::function<hy3d_status()> &body) noexcept {
  try {
    clear_error();
    return body();
  } catch (const std::bad_alloc &) {
    return fail(HY3D_ERR_OUT_OF_MEMORY, "out of host memory");
  } catch (const Error &e) {
    return fail(e.status(), e.what());
  } catch (const std::exception &e) {
    return fail(HY3D_ERR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(HY3D_ERR_INTERNAL, "internal error: unknown exception");
  }
}

}  // namespace hy3d

extern "C" {

uint32_t hy3d_abi_version(void) { return HY3D_ABI_VERSION; }

const char *hy3d_last_error(void) { return hy3d::g_last_error.c_str(); }

void hy3d_set_log_callback(hy3d_log_fn fn, void *user) {
  hy3d::LogSink &sink = hy3d::log_sink();
  std::lock_guard<std::mutex> lock(sink.mutex);
  sink.fn = fn;
  sink.user = user;
}

}  // extern "C"
