#include "pipeline/src/trace.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <utility>

#include <hetpipe/error.hpp>
#include <nlohmann/json.hpp>

namespace hetpipe::detail {

int tracer::track(const std::string& name) {
  std::lock_guard lock(mutex_);
  tracks_.push_back(name);
  return static_cast<int>(tracks_.size()) - 1;
}

void tracer::span(int track, const char* stage, std::uint64_t begin_ns, std::uint64_t end_ns,
                  std::uint64_t seq, std::uint64_t bytes) {
  if (end_ns < begin_ns) end_ns = begin_ns;
  std::lock_guard lock(mutex_);
  totals_[stage] += end_ns - begin_ns;
  if (record_) events_.push_back({track, stage, begin_ns, end_ns, seq, bytes});
}

std::map<std::string, double> tracer::stage_totals() const {
  std::lock_guard lock(mutex_);
  std::map<std::string, double> out;
  for (const auto& [stage, ns] : totals_) out[stage] = static_cast<double>(ns) * 1e-9;
  return out;
}

void tracer::open(const std::string& path) {
  path_ = path;
  file_ = std::fopen(path.c_str(), "wb");
  if (!file_) throw io_error(path, "cannot write the trace file: " + errno_reason(errno), -errno);
  // Only a regular file is removed again: never a device (/dev/full, /dev/stdout) or a FIFO.
  struct stat st {};
  removable_ = ::fstat(::fileno(file_), &st) == 0 && S_ISREG(st.st_mode);
}

void tracer::discard() noexcept {
  if (!file_) return;
  std::fclose(std::exchange(file_, nullptr));
  if (removable_) ::unlink(path_.c_str());
}

void tracer::write() {
  std::lock_guard lock(mutex_);
  nlohmann::json events = nlohmann::json::array();
  for (std::size_t t = 0; t < tracks_.size(); ++t)
    events.push_back({{"name", "thread_name"},
                      {"ph", "M"},
                      {"pid", 1},
                      {"tid", t},
                      {"args", {{"name", tracks_[t]}}}});
  for (const auto& e : events_) {
    const double ts = static_cast<double>(e.begin - std::min(e.begin, origin_)) * 1e-3;
    const double dur = static_cast<double>(e.end - e.begin) * 1e-3;
    events.push_back({{"name", e.stage},
                      {"cat", e.stage},
                      {"ph", "X"},
                      {"pid", 1},
                      {"tid", e.track},
                      {"ts", ts},
                      {"dur", dur},
                      {"args", {{"seq", e.seq}, {"bytes", e.bytes}}}});
  }
  nlohmann::json doc = {{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}};
  const std::string text = doc.dump();
  std::FILE* f = std::exchange(file_, nullptr);
  if (!f) throw std::logic_error("tracer::write without open");
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const int err = errno;
  if (std::fclose(f) != 0 || !ok) {  // a full disk shows at the close, if not before
    const int e = ok ? errno : err;
    if (removable_) ::unlink(path_.c_str());
    throw io_error(path_, "cannot write the trace file: " + errno_reason(e), -e);
  }
}

}  // namespace hetpipe::detail
