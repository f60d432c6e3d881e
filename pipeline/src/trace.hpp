// Tracing and stage accounting: spans per track (reader, each lane), written as Chrome
// trace-event JSON that Perfetto opens; totals per stage for the -v summary.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "io/writer.hpp"

namespace hetpipe::detail {

inline std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

class tracer {
 public:
  explicit tracer(bool record_spans) : record_(record_spans), origin_(now_ns()) {}
  ~tracer();  // a trace opened and never written (the job failed): an old file stays as it was
  tracer(const tracer&) = delete;
  tracer& operator=(const tracer&) = delete;
  bool recording() const { return record_; }
  std::uint64_t origin() const { return origin_; }
  // A track is a row in the trace viewer (a reader slot or a lane).
  int track(const std::string& name);
  // A finished span [begin, end) on a track; `bytes` is shown as an argument.
  void span(int track, const char* stage, std::uint64_t begin_ns, std::uint64_t end_ns,
            std::uint64_t seq, std::uint64_t bytes);
  // The trace goes out as any output does (io::writer): open() makes its temporary file beside
  // the path before the job writes anything (a path that cannot be written fails the job first,
  // not after its outputs), write() fills it and renames it onto the path when the job succeeded;
  // a trace never written is removed by the destructor (an existing file at the path stays as it
  // was). A device (/dev/null) is written in place. Both throw io_error naming the path.
  // A path that names one of the job's inputs or outputs is refused (usage_error): the trace's
  // rename would replace it.
  void open(const std::string& path, const std::vector<std::string>& inputs,
            const std::vector<std::string>& outputs);
  void write();
  // Busy seconds per stage ("read", "h2d", "kernel", "host", "write", ...), all tracks together.
  std::map<std::string, double> stage_totals() const;

 private:
  struct event {
    int track;
    const char* stage;
    std::uint64_t begin, end, seq, bytes;
  };
  bool record_;
  std::uint64_t origin_;
  std::string path_;
  std::unique_ptr<io::writer> out_;  // between open() and write()
  mutable std::mutex mutex_;
  std::vector<std::string> tracks_;
  std::vector<event> events_;
  std::map<std::string, std::uint64_t> totals_;
};

// Spans that overlap (reads in flight, writes of several outputs) on rows "NAME 0", "NAME 1", ...:
// each goes on the first row free by its start, so the rows used show the concurrency reached.
// Thread-safe.
class span_rows {
 public:
  span_rows(tracer& t, std::string name) : t_(t), name_(std::move(name)) {}
  void span(const char* stage, std::uint64_t begin_ns, std::uint64_t end_ns, std::uint64_t seq,
            std::uint64_t bytes) {
    std::lock_guard lock(mutex_);
    auto row = std::find_if(rows_.begin(), rows_.end(),
                            [&](const auto& r) { return r.second <= begin_ns; });
    if (row == rows_.end())
      row = rows_.insert(row, {t_.track(name_ + " " + std::to_string(rows_.size())), 0});
    row->second = std::max(row->second, end_ns);
    t_.span(row->first, stage, begin_ns, end_ns, seq, bytes);
  }

 private:
  tracer& t_;
  std::string name_;
  std::mutex mutex_;
  std::vector<std::pair<int, std::uint64_t>> rows_;  // (track, end of its last span)
};

}  // namespace hetpipe::detail
