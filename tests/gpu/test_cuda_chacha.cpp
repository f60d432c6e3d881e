// The ChaCha20-Poly1305 kernels (age STREAM batches) against RFC 8439's vectors and the scalar
// reference of tests/support/chacha_reference.hpp (itself checked on the CPU by
// tests/host/test_chacha_reference.cpp), byte for byte.
#ifdef HETPIPE_WITH_CUDA

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <hetpipe/error.hpp>

#include "cuda/chacha_kernels.hpp"
#include "cuda/runtime.hpp"
#include "support/chacha_reference.hpp"
#include "support/hex.hpp"
#include "support/random.hpp"

namespace {

namespace hc = hetpipe::cuda;
namespace ref = hetpipe::test::chacha_ref;
using bytes = std::vector<std::uint8_t>;
using hetpipe::test::random_bytes;

bytes hex(const std::string& s) {
  return hetpipe::test::from_hex(s);
}
bytes str(const char* s) {
  return hetpipe::test::bytes_of(s);
}

const char* sunscreen =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
    "sunscreen would be it.";

// aead_seal_one on the GPU: ciphertext || tag.
bytes gpu_seal_one(const bytes& key, const bytes& nonce, const bytes& aad, const bytes& pt) {
  hc::stream s(0);
  hc::device_buffer d_aad(aad.size() + 1), d_pt(pt.size() + 1), d_out(pt.size() + 16);
  hc::copy_h2d_async(d_aad.get(), aad.data(), aad.size(), s);
  hc::copy_h2d_async(d_pt.get(), pt.data(), pt.size(), s);
  hc::aead_seal_one(key.data(), nonce.data(), d_aad.get(), aad.size(), d_pt.get(), pt.size(),
                    d_out.get(), s.handle());
  bytes out(pt.size() + 16);
  hc::copy_d2h_async(out.data(), d_out.get(), out.size(), s);
  s.synchronize();
  return out;
}

bytes gpu_poly1305(const bytes& key, const bytes& msg) {
  hc::stream s(0);
  hc::device_buffer d_msg(msg.size() + 1), d_tag(16);
  hc::copy_h2d_async(d_msg.get(), msg.data(), msg.size(), s);
  hc::poly1305_one(key.data(), d_msg.get(), msg.size(), d_tag.get(), s.handle());
  bytes tag(16);
  hc::copy_d2h_async(tag.data(), d_tag.get(), 16, s);
  s.synchronize();
  return tag;
}

struct batch_result {
  bytes sealed;                   // seal(plain)
  bytes opened;                   // open(sealed_in)
  std::vector<std::uint32_t> ok;  // open's flags
};

// Seals `plain` and opens `sealed_in` (the GPU's own output when empty) with buffers placed
// `shift` bytes past cudaMalloc'ed addresses (0: the aligned fast path).
batch_result gpu_batch(const bytes& key, const hc::aead_batch& b, const bytes& plain,
                       const bytes* sealed_in = nullptr, std::size_t shift = 0) {
  const std::size_t np = hc::plain_bytes(b), ns = hc::sealed_bytes(b);
  REQUIRE(plain.size() == np);
  hc::stream s(0);
  hc::device_buffer d_plain(np + shift + 1), d_sealed(ns + shift + 1), d_back(np + shift + 1),
      d_ok(4 * b.chunks + 4);
  auto* p = static_cast<std::uint8_t*>(d_plain.get()) + shift;
  auto* c = static_cast<std::uint8_t*>(d_sealed.get()) + shift;
  auto* q = static_cast<std::uint8_t*>(d_back.get()) + shift;
  auto* ok = static_cast<std::uint32_t*>(d_ok.get());
  hc::copy_h2d_async(p, plain.data(), np, s);
  hc::memset_async(ok, 0xee, 4 * b.chunks, s);
  hc::aead_workspace ws;
  ws.seal(key.data(), b, p, c, s.handle());
  batch_result r;
  r.sealed.resize(ns);
  hc::copy_d2h_async(r.sealed.data(), c, ns, s);
  if (sealed_in != nullptr) {
    REQUIRE(sealed_in->size() == ns);
    s.synchronize();
    hc::copy_h2d_async(c, sealed_in->data(), ns, s);
  }
  ws.open(key.data(), b, c, q, ok, s.handle());
  r.opened.resize(np);
  r.ok.resize(b.chunks);
  hc::copy_d2h_async(r.opened.data(), q, np, s);
  hc::copy_d2h_async(r.ok.data(), ok, 4 * b.chunks, s);
  s.synchronize();
  return r;
}

}  // namespace

TEST_CASE("GPU ChaCha20 block function and encryption: RFC 8439 2.3.2, 2.4.2", "[gpu][chacha]") {
  bytes key(32);
  for (int i = 0; i < 32; ++i) key[i] = static_cast<std::uint8_t>(i);
  // 2.3.2: the block for counter 1 is the keystream XORed onto the first 64 zero bytes.
  const bytes zeros(64, 0);
  const bytes b = gpu_seal_one(key, hex("000000090000004a00000000"), {}, zeros);
  CHECK(bytes(b.begin(), b.begin() + 64) == hex("10f1e7e4d13b5915500fdd1fa32071c4"
                                                "c7d1f4c733c068030422aa9ac3d46c4e"
                                                "d2826446079faa0914c2d705d98b02a2"
                                                "b5129cd1de164eb9cbd083e8a2503c4e"));
  const bytes pt = str(sunscreen);
  const bytes e = gpu_seal_one(key, hex("000000000000004a00000000"), {}, pt);
  CHECK(bytes(e.begin(), e.begin() + static_cast<std::ptrdiff_t>(pt.size())) ==
        hex("6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
            "f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
            "07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
            "5af90bbf74a35be6b40b8eedf2785e42874d"));
}

TEST_CASE("GPU Poly1305: RFC 8439 2.5.2 and A.3 #5-#11", "[gpu][chacha]") {
  CHECK(gpu_poly1305(hex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b"),
                     str("Cryptographic Forum Research Group")) ==
        hex("a8061dc1305136c6c22b8baf0c0127a9"));
  const char* z16 = "00000000000000000000000000000000";
  const std::string r1 = "01000000000000000000000000000000", r2 = "02" + std::string(30, '0'),
                    r14 = "01000000000000000400000000000000";
  const std::string t103 = "03" + std::string(30, '0');
  struct full {  // RFC 8439 A.3 #5..#11: key (r || s), data, tag
    std::string key, data, tag;
  };
  const full vs[] = {
      {r2 + z16, "ffffffffffffffffffffffffffffffff", t103},
      {r2 + "ffffffffffffffffffffffffffffffff", "02000000000000000000000000000000", t103},
      {r1 + z16,
       "ffffffffffffffffffffffffffffffff f0ffffffffffffffffffffffffffffff "
       "11000000000000000000000000000000",
       "05" + std::string(30, '0')},
      {r1 + z16,
       "ffffffffffffffffffffffffffffffff fbfefefefefefefefefefefefefefefe "
       "01010101010101010101010101010101",
       z16},
      {r2 + z16, "fdffffffffffffffffffffffffffffff", "faffffffffffffffffffffffffffffff"},
      {r14 + z16,
       "e33594d7505e43b90000000000000000 3394d7505e4379cd0100000000000000 "
       "00000000000000000000000000000000 01000000000000000000000000000000",
       "14000000000000005500000000000000"},
      {r14 + z16,
       "e33594d7505e43b90000000000000000 3394d7505e4379cd0100000000000000 "
       "00000000000000000000000000000000",
       "13000000000000000000000000000000"},
  };
  for (const full& v : vs) CHECK(gpu_poly1305(hex(v.key), hex(v.data)) == hex(v.tag));
  std::mt19937_64 g(1305);
  for (int t = 0; t < 20; ++t) {
    const bytes key = random_bytes(32, g), msg = random_bytes(g() % 300, g);
    const auto want = ref::poly1305(key.data(), msg.data(), msg.size());
    CHECK(gpu_poly1305(key, msg) == bytes(want.begin(), want.end()));
  }
}

TEST_CASE("GPU ChaCha20-Poly1305 AEAD: RFC 8439 2.8.2", "[gpu][chacha]") {
  const bytes key = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  CHECK(gpu_seal_one(key, hex("070000004041424344454647"), hex("50515253c0c1c2c3c4c5c6c7"),
                     str(sunscreen)) ==
        hex("d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
            "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
            "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
            "3ff4def08e4b7a9de576d26586cec64b6116"
            "1ae10b594f09e26a7e902ecbd0600691"));
}

TEST_CASE("GPU age STREAM batches equal the reference byte for byte", "[gpu][chacha]") {
  std::mt19937_64 g(20240);
  const std::uint32_t counts[] = {1, 2, 63, 64, 65};
  for (const std::uint32_t chunks : counts) {
    std::vector<std::uint32_t> lens = {65536, 1, 65535, static_cast<std::uint32_t>(g() % 65536)};
    if (chunks <= 2) lens.insert(lens.end(), {0, 15, 16, 17, 8192, 8193, 57344});
    for (const std::uint32_t last_len : lens)
      for (const bool final_is_last : {true, false}) {
        const std::uint64_t first = final_is_last ? (1ull << 40) + g() % 1000
                                                  : ~std::uint64_t{0} - chunks + 1;  // up to 2^64-1
        const hc::aead_batch b{first, chunks, last_len, final_is_last};
        const bytes key = random_bytes(32, g);
        const bytes plain = random_bytes(hc::plain_bytes(b), g);
        INFO(chunks << " chunks, last_len " << last_len << ", first " << first << ", final "
                    << final_is_last);
        const bytes want =
            ref::age_seal_batch(key.data(), first, chunks, last_len, final_is_last, plain);
        REQUIRE(want.size() == hc::sealed_bytes(b));
        const batch_result r = gpu_batch(key, b, plain);
        CHECK(r.sealed == want);
        CHECK(r.opened == plain);
        CHECK(r.ok == std::vector<std::uint32_t>(chunks, 1u));
      }
  }
}

TEST_CASE("GPU age STREAM: unaligned buffers take the byte path with the same result",
          "[gpu][chacha]") {
  std::mt19937_64 g(77);
  for (const std::size_t shift : {1, 3, 8}) {
    const hc::aead_batch b{12345, 3, 40000 + static_cast<std::uint32_t>(shift), true};
    const bytes key = random_bytes(32, g), plain = random_bytes(hc::plain_bytes(b), g);
    const bytes want =
        ref::age_seal_batch(key.data(), b.first_counter, b.chunks, b.last_len, true, plain);
    const batch_result r = gpu_batch(key, b, plain, nullptr, shift);
    CHECK(r.sealed == want);
    CHECK(r.opened == plain);
    CHECK(r.ok == std::vector<std::uint32_t>(b.chunks, 1u));
  }
}

TEST_CASE("GPU age STREAM: a tampered chunk fails alone and its plaintext is wiped",
          "[gpu][chacha]") {
  std::mt19937_64 g(99);
  const hc::aead_batch b{7, 65, 1000, true};
  const bytes key = random_bytes(32, g), plain = random_bytes(hc::plain_bytes(b), g);
  const bytes good = ref::age_seal_batch(key.data(), 7, 65, 1000, true, plain);
  const std::size_t sc = hc::age_sealed_chunk_bytes;
  struct edit {
    std::uint32_t chunk;
    std::size_t at;  // within the sealed chunk
  };
  const edit edits[] = {{0, 0},      {3, 65535}, {10, 65536 + 15},
                        {40, 12345}, {64, 999},  {64, 1000 + 7}};
  bytes bad = good;
  std::vector<std::uint32_t> want_ok(65, 1u);
  for (const edit& e : edits) {
    bad[e.chunk * sc + e.at] ^= 0x20;
    want_ok[e.chunk] = 0;
  }
  const batch_result r = gpu_batch(key, b, plain, &bad);
  CHECK(r.ok == want_ok);
  std::size_t wrong = 0;
  for (std::uint32_t c = 0; c < 65; ++c) {
    const std::size_t len = c == 64 ? 1000 : 65536;
    const std::uint8_t* got = r.opened.data() + c * hc::age_chunk_bytes;
    if (want_ok[c]) {
      wrong += std::memcmp(got, plain.data() + c * hc::age_chunk_bytes, len) != 0;
    } else {
      for (std::size_t i = 0; i < len; ++i) wrong += got[i] != 0;
    }
  }
  CHECK(wrong == 0);

  // Opened under the wrong counters every chunk fails; without the final flag only the last.
  const hc::aead_batch shifted{8, 65, 1000, true}, not_final{7, 65, 1000, false};
  for (const hc::aead_batch& other : {shifted, not_final}) {
    const batch_result o = gpu_batch(key, other, plain, &good);
    std::vector<std::uint32_t> want(65, 0u);
    if (!other.final_is_last) want.assign(65, 1u), want[64] = 0;  // only the flag differs
    CHECK(o.ok == want);
  }
}

TEST_CASE("GPU age STREAM: argument checks", "[gpu][chacha]") {
  hc::aead_workspace ws;
  const std::uint8_t key[32] = {};
  hc::device_buffer d(256);
  CHECK_NOTHROW(ws.seal(key, hc::aead_batch{0, 0, 0, false}, nullptr, nullptr, nullptr));
  CHECK_THROWS_AS(ws.seal(key, hc::aead_batch{0, 1, 65537, false}, d.get(), d.get(), nullptr),
                  hetpipe::gpu_error);
  CHECK_THROWS_AS(
      ws.seal(key, hc::aead_batch{~std::uint64_t{0}, 2, 10, false}, d.get(), d.get(), nullptr),
      hetpipe::gpu_error);
  CHECK_THROWS_AS(ws.open(key, hc::aead_batch{0, 1, 10, false}, d.get(), d.get(), nullptr, nullptr),
                  hetpipe::gpu_error);
}

TEST_CASE("GPU age STREAM throughput (informational)", "[gpu][chacha][timing]") {
  for (const std::uint32_t chunks : {64u, 1024u, 4096u}) {
    const hc::aead_batch b{0, chunks, 65536, false};
    hc::stream s(0);
    hc::device_buffer d_plain(hc::plain_bytes(b)), d_sealed(hc::sealed_bytes(b)), d_ok(4 * chunks);
    hc::memset_async(d_plain.get(), 0x5a, hc::plain_bytes(b), s);
    hc::aead_workspace ws;
    std::uint8_t key[32];
    for (int i = 0; i < 32; ++i) key[i] = static_cast<std::uint8_t>(i * 7);
    hc::event t0(true), t1(true), t2(true);
    ws.seal(key, b, d_plain.get(), d_sealed.get(), s.handle());  // warm-up
    const int reps = chunks >= 1024 ? 5 : 50;
    t0.record(s);
    for (int i = 0; i < reps; ++i) ws.seal(key, b, d_plain.get(), d_sealed.get(), s.handle());
    t1.record(s);
    for (int i = 0; i < reps; ++i)
      ws.open(key, b, d_sealed.get(), d_plain.get(), static_cast<std::uint32_t*>(d_ok.get()),
              s.handle());
    t2.record(s);
    s.synchronize();
    const double mb = static_cast<double>(hc::plain_bytes(b)) * reps / 1e6;
    std::printf("chacha20-poly1305 %u x 64 KiB: seal %.1f GB/s, open %.1f GB/s\n", chunks,
                mb / hc::elapsed_ms(t0, t1), mb / hc::elapsed_ms(t1, t2));
    std::vector<std::uint32_t> ok(chunks);
    hc::copy_d2h_async(ok.data(), d_ok.get(), 4 * chunks, s);
    s.synchronize();
    CHECK(ok == std::vector<std::uint32_t>(chunks, 1u));
  }
}

#endif  // HETPIPE_WITH_CUDA
