//   file ─▶ hetpipe reader ─▶ chunks ─┬─▶ CPU lane: count bytes ─────┐
//                                     └─▶ GPU lane: histogram kernel ─┴─▶ merge ─▶ 256 counts
//
// Usage: hetpipe_histogram [--device auto|cpu|gpu] [--chunk-size 4M] [--check] FILE...
// --check recounts every file with a plain loop and fails if the engine's answer differs.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "histogram.hpp"

namespace {

class histogram_op final : public hetpipe::reduce_op {
 public:
  hetpipe::framing frame(std::size_t) const override { return hetpipe::framing::records(1); }
  std::unique_ptr<hetpipe::partial> identity(std::size_t) const override {
    return std::make_unique<byte_histogram>();
  }
  std::unique_ptr<hetpipe::partial> host(const hetpipe::chunk_info&,
                                         std::span<const std::byte> data) const override {
    auto h = std::make_unique<byte_histogram>();
    for (std::byte b : data) h->bins[static_cast<unsigned char>(b)]++;
    return h;
  }
  void merge(hetpipe::partial& total, hetpipe::partial& next) const override {
    auto& t = static_cast<byte_histogram&>(total);
    const auto& n = static_cast<const byte_histogram&>(next);
    for (int i = 0; i < 256; ++i) t.bins[i] += n.bins[i];
  }
  std::unique_ptr<hetpipe::device_reducer> make_device_reducer(int, std::size_t,
                                                               unsigned buffers) const override {
#ifdef HISTOGRAM_WITH_CUDA
    return make_histogram_device(buffers);
#else
    (void)buffers;
    return nullptr;
#endif
  }
};

std::array<std::uint64_t, 256> plain_count(const std::string& path) {
  std::array<std::uint64_t, 256> bins{};
  std::ifstream f(path, std::ios::binary);
  std::vector<char> buf(1 << 16);
  while (f.read(buf.data(), static_cast<std::streamsize>(buf.size())) || f.gcount() > 0)
    for (std::streamsize i = 0; i < f.gcount(); ++i) bins[static_cast<unsigned char>(buf[i])]++;
  return bins;
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage = "usage: %s [--device auto|cpu|gpu] [--chunk-size N] [--check] FILE...\n";
  hetpipe::options opt;
  bool check = false;
  std::vector<hetpipe::input> inputs;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--check") {
        check = true;
      } else if (a == "--device" || a == "--chunk-size") {
        if (i + 1 == argc) throw hetpipe::usage_error(a + " needs a value");
        const std::string v = argv[++i];
        if (a == "--chunk-size") {
          opt.chunk_size = hetpipe::parse_size(v);
        } else if (const auto m = hetpipe::parse_device_mode(v)) {
          opt.device = *m;
        } else {
          throw hetpipe::usage_error("--device: " + v + " is not auto, cpu or gpu");
        }
      } else {
        inputs.push_back({a, 0, std::nullopt});
      }
    }
    // --check counts each file again with a plain loop: standard input cannot be read twice.
    for (const auto& in : inputs)
      if (check && in.path == "-") throw hetpipe::usage_error("--check needs files, not -");
  } catch (const hetpipe::usage_error& e) {
    std::fprintf(stderr, "hetpipe_histogram: %s\n", e.what());
    std::fprintf(stderr, usage, argv[0]);
    return 2;
  }
  if (inputs.empty()) {
    std::fprintf(stderr, usage, argv[0]);
    return 2;
  }
  try {
    histogram_op op;
    hetpipe::job_report report;
    const auto totals = hetpipe::run(op, inputs, opt, &report);
    int status = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const auto& h = static_cast<const byte_histogram&>(*totals[i]);
      std::uint64_t n = 0;
      for (auto c : h.bins) n += c;
      double entropy = 0;
      for (auto c : h.bins)
        if (c) entropy -= static_cast<double>(c) / n * std::log2(static_cast<double>(c) / n);
      std::printf("%s: %llu bytes, entropy %.4f bits/byte\n", inputs[i].path.c_str(),
                  static_cast<unsigned long long>(n), entropy);
      if (check && plain_count(inputs[i].path) != h.bins) {
        std::fprintf(stderr, "%s: histogram differs from a plain count\n", inputs[i].path.c_str());
        status = 1;
      }
    }
    std::printf("%u CPU lanes, %u GPU lanes, %.3f s\n", report.cpu_lanes, report.gpu_lanes,
                report.seconds);
    return status;
  } catch (const hetpipe::usage_error& e) {
    std::fprintf(stderr, "hetpipe_histogram: %s\n", e.what());
    return 2;
  } catch (const hetpipe::error& e) {
    std::fprintf(stderr, "hetpipe_histogram: %s\n", e.what());
    return 1;
  }
}
