#include "pipeline/src/trace.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include <hetpipe/error.hpp>
#include <nlohmann/json.hpp>

#include "pipeline/src/paths.hpp"

namespace hetpipe::detail {

int tracer::track(const std::string& name) {
  std::lock_guard lock(mutex_);
  // A name given before (by an earlier job of a shared trace) is its row again.
  const auto at = std::find(tracks_.begin(), tracks_.end(), name);
  if (at != tracks_.end()) return static_cast<int>(at - tracks_.begin());
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

tracer::~tracer() = default;  // an unwritten trace's writer aborts: an old file stays as it was

void tracer::open(const std::string& path, const std::vector<std::string>& inputs,
                  const std::vector<std::string>& outputs) {
  // An existing file is told by what it is: an input or output that is it (by another name, or
  // through a link) is refused. A new one can only be an output not made yet, told by its name,
  // then its folder (resolved only for outputs of the trace's name: 20 000 images cost a compare
  // each).
  namespace fs = std::filesystem;
  const auto refuse = [&](const std::string& f) {
    throw usage_error(path, "--trace names " + f +
                                ", which the job reads or writes (the trace would replace it): "
                                "name another file");
  };
  struct stat ts {};
  if (::stat(path.c_str(), &ts) == 0 && S_ISREG(ts.st_mode)) {
    for (const auto* files : {&inputs, &outputs})
      for (const auto& f : *files) {
        struct stat st {};
        if (f != "-" && !f.empty() && ::stat(f.c_str(), &st) == 0 && st.st_dev == ts.st_dev &&
            st.st_ino == ts.st_ino)
          refuse(f);
      }
  } else {
    const fs::path trace_path(path);
    std::optional<std::string> trace_folder;
    for (const auto& f : outputs) {
      const fs::path p(f);  // an empty one: a bad input's, with no output; "-": standard output
      if (f.empty() || f == "-" || p.filename() != trace_path.filename()) continue;
      if (!trace_folder) trace_folder = folder_key(trace_path);
      if (folder_key(p) == *trace_folder) refuse(f);
    }
  }
  path_ = path;
  try {
    out_ = std::make_unique<io::writer>(path == "-" ? "./-" : path, 1);  // a file named "-"
  } catch (const io_error& e) {
    throw io_error(path, "cannot write the trace file: " + e.reason(), e.code());
  }
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
  if (!out_) throw std::logic_error("tracer::write without open");
  std::vector<std::byte> bytes(text.size());
  std::memcpy(bytes.data(), text.data(), text.size());
  try {
    out_->write(0, std::move(bytes));
    out_->commit();  // fsync and rename onto the path (a full disk shows here, if not before)
  } catch (const io_error& e) {
    out_.reset();
    throw io_error(path_, "cannot write the trace file: " + e.reason(), e.code());
  }
  out_.reset();
}

}  // namespace hetpipe::detail
