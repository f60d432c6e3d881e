// The BLAKE3 batch kernels against the official test vectors and, bit for bit, against
// host::blake3 on random batches of pieces of many inputs.
#ifdef HETPIPE_WITH_CUDA

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <hetpipe/error.hpp>

#include "cuda/blake3_kernels.hpp"
#include "cuda/runtime.hpp"
#include "host/blake3.hpp"
#include "support/blake3_vectors.hpp"

namespace {

namespace b3 = hetpipe::host::blake3;
namespace hc = hetpipe::cuda;

std::string vectors_path() {
  return std::string(HETPIPE_TEST_DATA) + "/blake3_test_vectors.json";
}

b3::output_node to_node(const hc::blake3_result& r) {
  b3::output_node n;
  std::copy(r.cv, r.cv + 8, n.input_cv.begin());
  std::copy(r.block, r.block + 16, n.block.begin());
  n.block_len = r.block_len;
  n.counter = r.counter;
  n.flags = r.flags;
  return n;
}

b3::cv to_cv(const hc::blake3_result& r) {
  b3::cv c;
  std::copy(r.cv, r.cv + 8, c.begin());
  return c;
}

// Runs one launch over `bytes` (copied to the device) and returns the results.
std::vector<hc::blake3_result> run_batch(hc::blake3_workspace& ws, hc::stream& s,
                                         const std::vector<std::uint8_t>& bytes,
                                         const std::vector<hc::blake3_piece>& pieces,
                                         const b3::key_words& key, std::uint32_t flags) {
  hc::device_buffer d_data(std::max<std::size_t>(bytes.size(), 1));
  hc::device_buffer d_results(sizeof(hc::blake3_result) * pieces.size());
  hc::copy_h2d_async(d_data.get(), bytes.data(), bytes.size(), s);
  ws.launch(d_data.get(), pieces.data(), pieces.size(), key.data(), flags,
            static_cast<hc::blake3_result*>(d_results.get()), s.handle());
  std::vector<hc::blake3_result> out(pieces.size());
  hc::copy_d2h_async(out.data(), d_results.get(), d_results.size(), s);
  s.synchronize();
  return out;
}

}  // namespace

TEST_CASE("gpu blake3 batch reproduces the official test vectors", "[gpu][blake3]") {
  const auto v = hetpipe::test::load_blake3_vectors(vectors_path());
  REQUIRE(v.cases.size() >= 20);
  hc::stream s(0);
  hc::blake3_workspace ws;
  // Every input twice in one batch: at a 16-byte aligned offset and at an odd one.
  std::vector<std::uint8_t> bytes;
  std::vector<hc::blake3_piece> pieces;
  for (const auto& c : v.cases) {
    const auto in = hetpipe::test::blake3_vector_input(c.input_len);
    for (std::size_t skew : {0, 3}) {
      bytes.resize((bytes.size() + 15) / 16 * 16 + skew);
      pieces.push_back({bytes.size(), in.size(), 0, 1, 0});
      bytes.insert(bytes.end(), in.begin(), in.end());
    }
  }
  const auto* raw_key = reinterpret_cast<const std::uint8_t*>(v.key.data());
  const struct {
    b3::key_words key;
    std::uint32_t flags;
    std::vector<std::uint8_t> hetpipe::test::blake3_case::*expected;
  } modes[] = {
      {b3::iv_key(), 0, &hetpipe::test::blake3_case::hash},
      {b3::keyed(raw_key), b3::flag_keyed_hash, &hetpipe::test::blake3_case::keyed_hash},
      {b3::derive_key_words(v.context), b3::flag_derive_key_material,
       &hetpipe::test::blake3_case::derive_key},
  };
  for (const auto& mode : modes) {
    const auto res = run_batch(ws, s, bytes, pieces, mode.key, mode.flags);
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      const auto& c = v.cases[i / 2];
      INFO("input_len " << c.input_len << " offset " << pieces[i].offset << " flags "
                        << mode.flags);
      std::vector<std::uint8_t> out(c.hash.size());
      b3::root_bytes(to_node(res[i]), 0, out.data(), out.size());
      CHECK(out == c.*mode.expected);
    }
  }
}

TEST_CASE("gpu blake3 pieces of random batches equal the host bit for bit", "[gpu][blake3]") {
  std::mt19937_64 g(99);
  hc::stream s(0);
  hc::blake3_workspace ws;  // reused: grows and shrinks across launches
  const std::size_t C = b3::chunk_len;
  const std::size_t lengths[] = {0,        1,           5,       1023,        1024,
                                 1025,     2048,        3000,    8 * C,       8 * C + 1,
                                 33 * C,   64 * C + 17, 129 * C, 255 * C + 1, 1000 * C + 9,
                                 4096 * C, 5000 * C + 3};
  std::uint8_t raw_key[32];
  for (auto& b : raw_key) b = static_cast<std::uint8_t>(g());
  for (int round = 0; round < 6; ++round) {
    const bool keyed = round % 2 == 1;
    const b3::key_words key = keyed ? b3::keyed(raw_key) : b3::iv_key();
    const std::uint32_t flags = keyed ? b3::flag_keyed_hash : 0;
    const std::size_t S = C << (round * 2 % 13);  // 1 KiB, 4 KiB, 16 KiB, ... 1 MiB
    // Inputs of the batch; each is split into pieces of S bytes, placed in shuffled order.
    struct input {
      std::vector<std::uint8_t> data;
      std::size_t first_piece = 0, pieces = 0;
    };
    std::vector<input> inputs;
    for (std::size_t len : lengths) inputs.push_back({std::vector<std::uint8_t>(len)});
    for (int extra = 0; extra < 40; ++extra)
      inputs.push_back({std::vector<std::uint8_t>(g() % (3 * S + 2))});
    struct piece_ref {
      std::size_t input, index;
    };
    std::vector<piece_ref> refs;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      for (auto& b : inputs[i].data) b = static_cast<std::uint8_t>(g());
      const std::size_t len = inputs[i].data.size();
      const std::size_t n = len <= S ? 1 : (len + S - 1) / S;
      for (std::size_t k = 0; k < n; ++k) refs.push_back({i, k});
    }
    std::shuffle(refs.begin(), refs.end(), g);
    std::vector<std::uint8_t> bytes;
    std::vector<hc::blake3_piece> pieces;
    for (const auto& r : refs) {
      const auto& d = inputs[r.input].data;
      const bool root = d.size() <= S;
      const std::size_t off = r.index * S, len = root ? d.size() : std::min(S, d.size() - off);
      bytes.resize((bytes.size() + 15) / 16 * 16 + (g() % 4 == 0 ? g() % 16 : 0));
      pieces.push_back({bytes.size(), len, root ? 0 : off / C, root ? 1u : 0u, 0});
      bytes.insert(bytes.end(), d.begin() + off, d.begin() + off + len);
    }
    const auto res = run_batch(ws, s, bytes, pieces, key, flags);

    // Each piece on its own, then each input through tree_merger.
    std::vector<std::vector<b3::cv>> cvs(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i)
      cvs[i].resize(std::max<std::size_t>(1, (inputs[i].data.size() + S - 1) / S));
    for (std::size_t p = 0; p < refs.size(); ++p) {
      const auto& d = inputs[refs[p].input].data;
      INFO("round " << round << " input len " << d.size() << " piece " << refs[p].index);
      if (pieces[p].is_root) {
        const auto want = b3::piece_root(d.data(), d.size(), key, flags);
        const auto got = to_node(res[p]);
        CHECK(got.input_cv == want.input_cv);
        CHECK(got.block == want.block);
        CHECK(got.block_len == want.block_len);
        CHECK(got.counter == want.counter);
        CHECK(got.flags == want.flags);
      } else {
        const auto want = b3::piece_cv(d.data() + refs[p].index * S, pieces[p].len,
                                       pieces[p].chunk_counter, key, flags);
        CHECK(to_cv(res[p]) == want);
        cvs[refs[p].input][refs[p].index] = to_cv(res[p]);
      }
    }
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const auto& d = inputs[i].data;
      if (d.size() <= S) continue;
      b3::tree_merger m(key, flags);
      for (std::size_t k = 0; k < cvs[i].size(); ++k)
        m.push(cvs[i][k], (std::min(S, d.size() - k * S) + C - 1) / C);
      std::uint8_t got[40], want[40];
      b3::root_bytes(m.finish(), 0, got, sizeof got);
      b3::xof(key, flags, d.data(), d.size(), want, sizeof want);
      INFO("round " << round << " input len " << d.size());
      CHECK(std::equal(got, got + 40, want));
    }
  }
}

TEST_CASE("gpu blake3 rejects an empty piece that is not a whole input", "[gpu][blake3]") {
  hc::stream s(0);
  hc::blake3_workspace ws;
  hc::device_buffer d_results(sizeof(hc::blake3_result));
  const hc::blake3_piece bad{0, 0, 0, 0, 0};
  const auto key = b3::iv_key();
  CHECK_THROWS_AS(ws.launch(nullptr, &bad, 1, key.data(), 0,
                            static_cast<hc::blake3_result*>(d_results.get()), s.handle()),
                  hetpipe::gpu_error);
}

TEST_CASE("gpu blake3 batch throughput", "[.bench][gpu][blake3]") {
  hc::stream s(0);
  hc::blake3_workspace ws;
  const std::size_t S = 4 << 20, count = 64;  // 256 MiB of 4 MiB pieces
  std::vector<std::uint8_t> bytes(S * count);
  std::mt19937_64 g(5);
  for (auto& b : bytes) b = static_cast<std::uint8_t>(g());
  std::vector<hc::blake3_piece> pieces;
  for (std::size_t i = 0; i < count; ++i) pieces.push_back({i * S, S, i * (S / 1024), 0, 0});
  hc::device_buffer d_data(bytes.size());
  hc::device_buffer d_results(sizeof(hc::blake3_result) * count);
  hc::copy_h2d_async(d_data.get(), bytes.data(), bytes.size(), s);
  const auto key = b3::iv_key();
  auto* d_res = static_cast<hc::blake3_result*>(d_results.get());
  ws.launch(d_data.get(), pieces.data(), count, key.data(), 0, d_res, s.handle());  // warm-up
  hc::event t0(true), t1(true);
  const int reps = 10;
  t0.record(s);
  for (int r = 0; r < reps; ++r)
    ws.launch(d_data.get(), pieces.data(), count, key.data(), 0, d_res, s.handle());
  t1.record(s);
  s.synchronize();
  const double ms = hc::elapsed_ms(t0, t1) / reps;
  std::printf("gpu blake3, 64 x 4 MiB pieces: %.1f GB/s (%s)\n", double(bytes.size()) / ms / 1e6,
              hc::devices().empty() ? "?" : hc::devices()[0].name.c_str());
  std::vector<hc::blake3_result> res(count);
  hc::copy_d2h_async(res.data(), d_res, sizeof(hc::blake3_result) * count, s);
  s.synchronize();
  CHECK(to_cv(res[3]) == b3::piece_cv(bytes.data() + 3 * S, S, 3 * (S / 1024), key, 0));
}

#endif  // HETPIPE_WITH_CUDA
