// The text count kernel against host::count_text, piece by piece.
#ifdef HETPIPE_WITH_CUDA
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include <hetpipe/error.hpp>

#include "cuda/runtime.hpp"
#include "cuda/text_kernels.hpp"
#include "host/text_count.hpp"
#include "support/text.hpp"

namespace {

namespace hc = hetpipe::cuda;
namespace hh = hetpipe::host;

std::vector<hc::text_piece_counts> gpu_counts(const std::vector<std::uint8_t>& buf,
                                              const std::vector<hc::text_piece>& pieces) {
  hc::stream s(0);
  hc::device_buffer d_buf(buf.size() + 16);
  hc::device_buffer d_out(pieces.size() * sizeof(hc::text_piece_counts) + 8);
  hc::copy_h2d_async(d_buf.get(), buf.data(), buf.size(), s);
  // Results the kernel must overwrite, not add to.
  hc::memset_async(d_out.get(), 0x5a, d_out.size(), s);
  auto* d_counts = static_cast<hc::text_piece_counts*>(d_out.get());
  hc::text_count_batch(d_buf.get(), pieces.data(), pieces.size(), d_counts, s.handle());
  std::vector<hc::text_piece_counts> out(pieces.size());
  hc::copy_d2h_async(out.data(), d_counts, out.size() * sizeof out[0], s);
  s.synchronize();
  return out;
}

// Pieces at offsets that are multiples of 16, their lengths `lengths`, laid end to end.
std::vector<hc::text_piece> lay_out(const std::vector<std::size_t>& lengths, std::size_t& bytes) {
  std::vector<hc::text_piece> pieces;
  bytes = 0;
  for (std::size_t n : lengths) {
    pieces.push_back({bytes, n});
    bytes += (n + 15) / 16 * 16;
  }
  return pieces;
}

std::size_t compare(const std::vector<std::uint8_t>& buf, const std::vector<hc::text_piece>& pieces,
                    const std::vector<hc::text_piece_counts>& got) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    const hh::text_tally want = hh::count_text(buf.data() + pieces[i].offset, pieces[i].size);
    const bool same = got[i].lines == want.lines && got[i].words == want.words &&
                      got[i].chars == want.chars &&
                      got[i].starts_in_word == (want.starts_in_word ? 1u : 0u) &&
                      got[i].ends_in_word == (want.ends_in_word ? 1u : 0u);
    if (!same && bad++ == 0) {
      INFO("piece " << i << " offset " << pieces[i].offset << " size " << pieces[i].size);
      CHECK(got[i].lines == want.lines);
      CHECK(got[i].words == want.words);
      CHECK(got[i].chars == want.chars);
      CHECK(got[i].starts_in_word == want.starts_in_word);
      CHECK(got[i].ends_in_word == want.ends_in_word);
    }
  }
  return bad;
}

}  // namespace

TEST_CASE("GPU text counts of every short length equal the CPU", "[gpu][kernels][count]") {
  std::mt19937_64 g(31);
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 600; ++n) lengths.push_back(n);  // 3 launches of 240 pieces
  std::size_t bytes = 0;
  const auto pieces = lay_out(lengths, bytes);
  const auto buf = hetpipe::test::random_text(bytes, g);
  CHECK(compare(buf, pieces, gpu_counts(buf, pieces)) == 0);
}

TEST_CASE("GPU text counts of pieces longer than one grid stride equal the CPU",
          "[gpu][kernels][count]") {
  std::mt19937_64 g(32);
  // 1024 blocks of 256 threads read 4 MiB a stride.
  std::size_t bytes = 0;
  const auto pieces = lay_out({(9u << 20) + 5, 1, 4u << 20, (4u << 20) - 1, 77}, bytes);
  auto buf = hetpipe::test::random_text(bytes, g);
  CHECK(compare(buf, pieces, gpu_counts(buf, pieces)) == 0);
  // All one word, and all white space.
  std::fill(buf.begin(), buf.end(), std::uint8_t{'x'});
  CHECK(compare(buf, pieces, gpu_counts(buf, pieces)) == 0);
  std::fill(buf.begin(), buf.end(), std::uint8_t{'\n'});
  CHECK(compare(buf, pieces, gpu_counts(buf, pieces)) == 0);
}

TEST_CASE("GPU text count launcher refuses bad arguments", "[gpu][kernels][count]") {
  hc::device_buffer d(64);
  auto* out = static_cast<hc::text_piece_counts*>(d.get());
  const hc::text_piece misplaced{8, 4};
  CHECK_THROWS_AS(hc::text_count_batch(d.get(), &misplaced, 1, out, nullptr), hetpipe::gpu_error);
  const hc::text_piece fine{0, 4};
  CHECK_THROWS_AS(hc::text_count_batch(nullptr, &fine, 1, out, nullptr), hetpipe::gpu_error);
  CHECK_NOTHROW(hc::text_count_batch(d.get(), &fine, 0, out, nullptr));
}

#endif  // HETPIPE_WITH_CUDA
