// The text parsers: host::img::parse_ops (--ops), hetpipe::parse_size (--chunk-size) and
// cli::parse_sum_line (checksum --check). The first byte picks the parser, the rest is its text.
// Round trips: the ops' canonical text parses back to the same ops (and a chain of them runs on a
// small image when every step stays small); a parsed sum line prints back (sum_line) to a line
// that parses to the same entry.
#include <string>
#include <vector>

#include <hetpipe/options.hpp>

#include "cli/checksum_cmd.hpp"
#include "fuzz_common.hpp"
#include "host/image_ops.hpp"

namespace img = hetpipe::host::img;
using hetpipe::fuzz::expect_clean;
using hetpipe::fuzz::require;

namespace {

bool same(const img::op& a, const img::op& b) {
  return a.kind == b.kind && a.sigma == b.sigma && a.factor == b.factor && a.width == b.width &&
         a.height == b.height && a.threshold == b.threshold;
}

void fuzz_ops(std::string_view text, std::uint8_t variant) {
  std::vector<img::op> ops;
  if (!expect_clean("parse_ops", [&] { ops = img::parse_ops(text); })) return;
  std::string canonical;
  for (const img::op& o : ops) canonical += (canonical.empty() ? "" : ",") + img::to_string(o);
  const std::vector<img::op> back = img::parse_ops(canonical);
  require(back.size() == ops.size(), "ops round trip changes the count");
  for (std::size_t i = 0; i < ops.size(); ++i)
    require(same(back[i], ops[i]), "ops round trip differs");
  if (ops.size() > 8) return;
  // Run the chain on a small image when every step stays small (a resize may ask for 2^31 pixels,
  // which is allowed and not what this harness is after).
  img::image in;
  in.shape = {7, 5, 1u + variant % 4, (variant & 4) ? 65535u : (variant & 8) ? 1000u : 255u};
  img::image_shape s = in.shape;
  for (const img::op& o : ops) {
    if (!expect_clean("output_shape", [&] { s = img::output_shape(s, o); })) return;
    if (s.pixels() > 4096) return;
  }
  in.samples.resize(in.shape.samples());
  for (std::size_t i = 0; i < in.samples.size(); ++i)
    in.samples[i] = static_cast<std::uint16_t>((i * 40503u) % (in.shape.maxval + 1));
  img::image out;
  if (expect_clean("apply", [&] { out = img::apply(in, ops); })) {
    require(out.shape == s, "apply's shape differs from chain_shape");
    require(out.samples.size() == out.shape.samples(), "apply's sample count differs");
    for (std::uint16_t v : out.samples)
      require(v <= out.shape.maxval, "apply: sample above maxval");
  }
}

void fuzz_size(std::string_view text) {
  std::size_t n = 0;
  if (expect_clean("parse_size", [&] { n = hetpipe::parse_size(text); }))
    expect_clean("format_size", [&] { hetpipe::format_size(n); });
}

void fuzz_sum_line(std::string_view text) {
  const std::string line(text);
  std::optional<hetpipe::cli::sum_entry> e;
  expect_clean("parse_sum_line", [&] { e = hetpipe::cli::parse_sum_line(line); });
  if (!e) return;
  require(!e->hex.empty() && !e->name.empty(), "empty hex or name accepted");
  const std::string again = hetpipe::cli::sum_line(e->hex, e->name);
  std::optional<hetpipe::cli::sum_entry> f;
  expect_clean("parse_sum_line (again)", [&] { f = hetpipe::cli::parse_sum_line(again); });
  require(f && f->hex == e->hex && f->name == e->name, "sum line round trip differs");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text = hetpipe::fuzz::as_text(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      fuzz_ops(text, static_cast<std::uint8_t>(data[0] / 3));
      break;
    case 1:
      fuzz_size(text);
      break;
    case 2:
      fuzz_sum_line(text);
      break;
  }
  return 0;
}
