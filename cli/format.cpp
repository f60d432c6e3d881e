#include "format.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iomanip>
#include <sstream>
#include <string_view>
#include <system_error>
#include <variant>

namespace hetpipe::cli {

std::string count_of(std::uint64_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

std::string format_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

namespace {

// Python's repr of a finite double: the shortest digits that read back the same, plain from 1e-4
// to below 1e16 (a whole number with ".0": 1000.0, not 1e+03), scientific outside (1e-05,
// 1.2456493019597237e+21, not 1245649301959723712512.0).
void append_repr(std::string& out, double v) {
  char buf[400];
  const auto rs = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  const std::string_view sci(buf, static_cast<std::size_t>(rs.ptr - buf));
  int exponent = 0;
  const char* e = sci.data() + sci.find('e') + 1;
  std::from_chars(e + (*e == '+'), sci.data() + sci.size(), exponent);
  if (exponent < -4 || exponent >= 16) {
    out += sci;
  } else {
    const auto rf = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    const std::string_view fixed(buf, static_cast<std::size_t>(rf.ptr - buf));
    out += fixed;
    if (fixed.find('.') == std::string_view::npos) out += ".0";
  }
}

}  // namespace

std::string json_text(const nlohmann::json& j, int indent) {
  const std::string text = j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
  // nlohmann-json writes a double so that it reads back the same (Grisu2), but now and then a
  // digit longer than it needs (6.5133849661047024e+16 for 6.513384966104702e+16): each number
  // with a fraction or an exponent is written again in its shortest form, as the tables are.
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size())
        out += text[++i];
      else if (c == '"')
        in_string = false;
      ++i;
      continue;
    }
    if (c == '"') in_string = true;
    if (c != '-' && (c < '0' || c > '9')) {
      out += c;
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < text.size() && std::strchr("+-.0123456789eE", text[end]) != nullptr) ++end;
    const std::string_view number(text.data() + i, end - i);
    double v = 0;
    const auto parsed = std::from_chars(number.data(), number.data() + number.size(), v);
    if (number.find_first_of(".eE") == std::string_view::npos || parsed.ec != std::errc() ||
        parsed.ptr != number.data() + number.size()) {
      out += number;  // an integer, kept as it is
    } else {
      append_repr(out, v);
    }
    i = end;
  }
  return out;
}

nlohmann::json json_double(double v) {
  if (!std::isfinite(v)) return format_double(v);
  return v;
}

namespace {

std::string shape_text(const std::vector<std::uint64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

std::string stats_json_text(const std::vector<stats_result>& results,
                            const std::vector<std::string>& errors) {
  // json_text(j) of the document nlohmann-json would hold (keys sorted, two spaces an indent),
  // written directly: for a million columns that document took 2 GB and 18 s.
  std::string out = results.empty() ? "[]" : "[\n";
  const auto number = [&](double v) {
    if (std::isfinite(v))
      append_repr(out, v);
    else
      out += '"' + format_double(v) + '"';
  };
  const auto value = [&](const std::variant<double, std::int64_t, std::uint64_t>& v) {
    std::visit(
        [&](auto x) {
          if constexpr (std::is_same_v<decltype(x), double>)
            number(x);
          else
            out += std::to_string(x);
        },
        v);
  };
  const auto text = [](const std::string& s) {
    return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    if (i < errors.size() && !errors[i].empty()) {
      out +=
          "  {\n    \"error\": " + text(errors[i]) + ",\n    \"file\": " + text(r.file) + "\n  }";
      out += i + 1 < results.size() ? ",\n" : "\n]";
      continue;
    }
    out += "  {\n    \"columns\": [";
    out.reserve(out.size() + r.columns.size() * 330);
    for (std::size_t k = 0; k < r.columns.size(); ++k) {
      const auto& c = r.columns[k];
      out += k ? ",\n      {\n" : "\n      {\n";
      out += "        \"count\": " + std::to_string(c.count) + ",\n        \"max\": ";
      value(c.max);
      out += ",\n        \"mean\": ";
      number(c.mean);
      out += ",\n        \"min\": ";
      value(c.min);
      if (k < r.names.size())
        out += ",\n        \"name\": " +
               nlohmann::json(r.names[k])
                   .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      out += ",\n        \"nan_count\": " + std::to_string(c.nan_count);
      out += ",\n        \"sample_variance\": ";
      number(c.sample_variance);
      out += ",\n        \"std\": ";
      number(c.std);
      out += ",\n        \"sum\": ";
      number(c.sum);
      out += ",\n        \"variance\": ";
      number(c.variance);
      out += "\n      }";
    }
    out += r.columns.empty() ? "],\n" : "\n    ],\n";
    out += "    \"dtype\": \"" + std::string(dtype_name(r.type)) + "\",\n    \"file\": ";
    out += nlohmann::json(r.file).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out += ",\n    \"shape\": [";
    for (std::size_t k = 0; k < r.shape.size(); ++k)
      out += (k ? ",\n      " : "\n      ") + std::to_string(r.shape[k]);
    out += r.shape.empty() ? "]" : "\n    ]";
    if (!r.names.empty() || !r.skipped_columns.empty()) {  // CSV
      out += ",\n    \"skipped_columns\": [";
      for (std::size_t k = 0; k < r.skipped_columns.size(); ++k)
        out += (k ? ",\n      " : "\n      ") +
               nlohmann::json(r.skipped_columns[k])
                   .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      out += r.skipped_columns.empty() ? "]" : "\n    ]";
    }
    out += "\n  }";
    out += i + 1 < results.size() ? ",\n" : "\n]";
  }
  return out;
}

namespace {

// format_double and text_value, appended to `to` (no string of their own).
void append_double(std::string& to, double v) {
  if (std::isnan(v) || std::isinf(v)) {
    to += format_double(v);
    return;
  }
  char buf[64];
  to.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

template <class Int>
void append_int(std::string& to, Int v) {
  char buf[24];
  to.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

void append_value(std::string& to, const std::variant<double, std::int64_t, std::uint64_t>& v) {
  std::visit(
      [&](auto x) {
        if constexpr (std::is_same_v<decltype(x), double>)
          append_double(to, x);
        else
          append_int(to, x);
      },
      v);
}

}  // namespace

std::string to_table(const std::vector<stats_result>& results) {
  std::string out;
  constexpr std::string_view heads[] = {"column", "count", "nan", "min",      "max",
                                        "sum",    "mean",  "std", "variance", "sample_var"};
  constexpr std::size_t n = std::size(heads);
  for (const auto& r : results) {
    out += r.file + "  " + std::string(dtype_name(r.type)) + " " + shape_text(r.shape);
    for (std::size_t k = 0; k < r.skipped_columns.size(); ++k)
      out += (k ? ", " : "; left out, not numbers: ") + r.skipped_columns[k];
    out += "\n";
    // Every cell's text in one buffer, each ending at ends[cell] (a million columns had made ten
    // million strings and spent more than the job in the allocator).
    std::string cells;
    std::vector<std::size_t> ends;
    cells.reserve((r.columns.size() + 1) * 128);
    ends.reserve((r.columns.size() + 1) * n);
    for (const auto h : heads) {
      cells += h;
      ends.push_back(cells.size());
    }
    const auto done = [&] { ends.push_back(cells.size()); };
    for (std::size_t i = 0; i < r.columns.size(); ++i) {
      const auto& c = r.columns[i];
      if (i < r.names.size())
        cells += r.names[i];
      else
        append_int(cells, i);
      done();
      append_int(cells, c.count), done();
      append_int(cells, c.nan_count), done();
      append_value(cells, c.min), done();
      append_value(cells, c.max), done();
      for (const double v : {c.sum, c.mean, c.std, c.variance, c.sample_variance})
        append_double(cells, v), done();
    }
    std::size_t width[n] = {};
    for (std::size_t k = 0, start = 0; k < ends.size(); start = ends[k++])
      width[k % n] = std::max(width[k % n], ends[k] - start);
    std::size_t line = 2;
    for (const std::size_t w : width) line += w + 1;
    out.reserve(out.size() + line * (ends.size() / n));
    for (std::size_t k = 0, start = 0; k < ends.size(); start = ends[k++]) {
      if (k % n == 0) out += ' ';
      out.append(width[k % n] - (ends[k] - start) + 1, ' ');
      out.append(cells, start, ends[k] - start);
      if (k % n == n - 1) out += '\n';
    }
  }
  return out;
}

nlohmann::json to_json(const system_info& s) {
  nlohmann::json devs = nlohmann::json::array();
  for (const auto& d : s.devices)
    devs.push_back({{"id", d.id},
                    {"name", d.name},
                    {"memory", d.total_memory},
                    {"multiprocessors", d.multiprocessors},
                    {"copy_engines", d.copy_engines},
                    {"compute_capability", d.compute_capability}});
  const auto& o = s.resolved;
  return {
      {"version", s.version},
      {"cuda_compiled", s.cuda_compiled},
      {"cuda_architectures", s.cuda_architectures},
      {"cuda_status", s.cuda_status},
      {"devices", devs},
      {"hardware_threads", s.hardware_threads},
      {"device", std::string(device_mode_name(o.device))},
      {"chunk_size", o.chunk_size},
      {"slots", o.slots},
      {"io_threads", o.io_threads},
      {"reads", std::string(read_mode_name(o.reads))},
      {"cpu_lanes", s.cpu_lanes},
      {"cpu_lanes_beside_gpu", s.gpu_lanes ? std::min(s.cpu_lanes, o.cpu_threads_beside_gpu) : 0},
      {"gpu_lanes", s.gpu_lanes},
      {"gpu_buffers_per_lane", o.gpu_buffers},
      {"host_pool_bytes", s.host_pool_bytes},
      {"device_pool_bytes_per_gpu", s.device_pool_bytes},
      {"auto_gpu_min_remaining_seconds", o.auto_gpu_min_remaining},
      {"blake3_build", s.blake3_build},
      {"blake3_builds", s.blake3_builds}};
}

std::string to_text(const system_info& s) {
  std::ostringstream os;
  const auto& o = s.resolved;
  os << "hetpipe " << s.version << "\n";
  os << "build:    CUDA "
     << (s.cuda_compiled ? "compiled in (sm_" + s.cuda_architectures + ")"
                         : std::string("not compiled in"))
     << ", OpenMP, libuv\n";
  os << "cuda:     " << s.cuda_status << "\n";
  if (s.devices.empty()) os << "devices:  none usable: CPU lanes only\n";
  for (const auto& d : s.devices)
    os << "device " << d.id << ": " << d.name << ", " << format_size(d.total_memory) << ", "
       << d.multiprocessors << " SMs, " << d.copy_engines << " copy engines, sm_"
       << d.compute_capability << "\n";
  os << "host:     " << s.hardware_threads << " hardware threads; BLAKE3 build " << s.blake3_build
     << " (this CPU runs";
  for (const auto& b : s.blake3_builds) os << (&b == &s.blake3_builds.front() ? " " : ", ") << b;
  os << "; HETPIPE_BLAKE3=NAME picks one)\n";
  os << "job:      --device " << device_mode_name(o.device) << ": "
     << count_of(s.cpu_lanes, "CPU lane");
  if (s.gpu_lanes && s.cpu_lanes > o.cpu_threads_beside_gpu)
    os << " (" << o.cpu_threads_beside_gpu << " once GPU lanes run)";
  os << ", " << count_of(s.gpu_lanes, "GPU lane") << " (" << o.gpu_buffers
     << " device buffers each)";
  if (o.device == device_mode::gpu && s.gpu_lanes == 0)
    os << ": no usable CUDA device, so such a job fails";
  os << "\n";
  // Auto mode's pool is page-locked only once its GPU lanes join (engine.cpp).
  const bool late = s.gpu_lanes && o.device == device_mode::automatic;
  os << "          --chunk-size " << format_size(o.chunk_size) << ", --slots " << o.slots
     << " (host pool " << format_size(s.host_pool_bytes)
     << (!s.gpu_lanes ? ", page-aligned"
         : late       ? ", page-aligned, page-locked when the GPU lanes join"
                      : ", pinned")
     << "), --io-threads " << o.io_threads << ", --reads " << read_mode_name(o.reads) << "\n";
  if (s.gpu_lanes)
    os << "          device memory per GPU " << format_size(s.device_pool_bytes) << "\n";
  if (late)
    os << "          GPU lanes start once the CPU lanes are projected to need over " << std::fixed
       << std::setprecision(2) << o.auto_gpu_min_remaining << " s more (checked every 20 ms)\n";
  return os.str();
}

nlohmann::json to_json(const checksum_result& r, const checksum_spec& spec) {
  nlohmann::json j = {{"file", r.file},
                      {"algorithm", std::string(checksum_algo_name(spec.algo))},
                      {"keyed", spec.key.has_value()},
                      {"digest", to_hex(r.digest)},
                      {"bytes", r.bytes}};
  if (spec.derive_key_context) j["derive_key_context"] = *spec.derive_key_context;
  return j;
}

namespace {

std::string escaped_text(const std::string& text) {
  std::string esc;
  esc.reserve(text.size() + 8);
  for (char c : text) {
    if (c == '\\')
      esc += "\\\\";
    else if (c == '\n')
      esc += "\\n";
    else if (c == '\r')
      esc += "\\r";
    else
      esc += c;
  }
  return esc;
}

}  // namespace

std::string printed_name(const std::string& name, bool& escaped) {
  escaped = name.find_first_of("\\\n\r") != std::string::npos;
  return escaped ? escaped_text(name) : name;
}

void print_error(const std::string& file, const std::string& reason) {
  // A reason may quote a name too (a file another names, a command-line word): a line break there
  // is escaped the same way, and then the file's backslashes are, so that the line reads back.
  const bool escaped = file.find_first_of("\\\n\r") != std::string::npos ||
                       reason.find_first_of("\n\r") != std::string::npos;
  const std::string shown_reason = escaped ? escaped_text(reason) : reason;
  if (file.empty()) {
    std::fprintf(stderr, "hetpipe: %s%s\n", escaped ? "\\" : "", shown_reason.c_str());
    return;
  }
  const std::string shown = escaped ? escaped_text(file) : file;
  std::fprintf(stderr, "hetpipe: %s%s: %s\n", escaped ? "\\" : "", shown.c_str(),
               shown_reason.c_str());
}

}  // namespace hetpipe::cli
