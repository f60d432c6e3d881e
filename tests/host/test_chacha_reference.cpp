// The scalar ChaCha20-Poly1305 reference (tests/support/chacha_reference.hpp) against RFC 8439's
// vectors (and OpenSSL where the build links it), then the GPU code's __host__ __device__ pieces
// (cuda/chacha_device.cuh, compiled here by the host compiler) against that reference: the block
// function, the age nonce, the 26-bit-limb arithmetic with its bounds, and a line-by-line CPU
// replay of the batch kernel's schedule for one chunk (keystream trade, per-lane Horner with r^32,
// lane and warp weights). The kernels themselves run in tests/gpu/test_cuda_chacha.cpp.
#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "cuda/chacha_device.cuh"
#include "support/chacha_reference.hpp"
#include "support/hex.hpp"
#include "support/random.hpp"

#ifdef HETPIPE_TEST_OPENSSL
#include <openssl/evp.h>
#endif

namespace {

namespace ref = hetpipe::test::chacha_ref;
namespace cd = hetpipe::cuda::chacha_detail;
using bytes = std::vector<std::uint8_t>;

bytes hex(const std::string& s) {
  return hetpipe::test::from_hex(s);
}
bytes str(const char* s) {
  return hetpipe::test::bytes_of(s);
}

const bytes key_00_1f =
    hex("000102030405060708090a0b0c0d0e0f"
        "101112131415161718191a1b1c1d1e1f");
const char* sunscreen =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
    "sunscreen would be it.";

}  // namespace

TEST_CASE("chacha reference: RFC 8439 block function (2.3.2)", "[chacha]") {
  const bytes nonce = hex("000000090000004a00000000");
  const auto b = ref::block(key_00_1f.data(), 1, nonce.data());
  CHECK(bytes(b.begin(), b.end()) == hex("10f1e7e4d13b5915500fdd1fa32071c4"
                                         "c7d1f4c733c068030422aa9ac3d46c4e"
                                         "d2826446079faa0914c2d705d98b02a2"
                                         "b5129cd1de164eb9cbd083e8a2503c4e"));
}

TEST_CASE("chacha reference: RFC 8439 encryption (2.4.2)", "[chacha]") {
  const bytes nonce = hex("000000000000004a00000000");
  const bytes pt = str(sunscreen);
  CHECK(ref::chacha20(key_00_1f.data(), 1, nonce.data(), pt.data(), pt.size()) ==
        hex("6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
            "f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
            "07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
            "5af90bbf74a35be6b40b8eedf2785e42874d"));
}

TEST_CASE("chacha reference: RFC 8439 Poly1305 (2.5.2, A.3 #5-#11)", "[chacha]") {
  const bytes key =
      hex("85d6be7857556d337f4452fe42d506a8"
          "0103808afb0db2fd4abff6af4149f51b");
  const bytes msg = str("Cryptographic Forum Research Group");
  const auto tag = ref::poly1305(key.data(), msg.data(), msg.size());
  CHECK(bytes(tag.begin(), tag.end()) == hex("a8061dc1305136c6c22b8baf0c0127a9"));

  struct vec {
    const char *r, *s, *data, *tag;
  };
  const vec a3[] = {
      {"02", "00", "ffffffffffffffffffffffffffffffff", "03"},
      {"02", "ffffffffffffffffffffffffffffffff", "02000000000000000000000000000000", "03"},
      {"01", "00",
       "ffffffffffffffffffffffffffffffff f0ffffffffffffffffffffffffffffff "
       "11000000000000000000000000000000",
       "05"},
      {"01", "00",
       "ffffffffffffffffffffffffffffffff fbfefefefefefefefefefefefefefefe "
       "01010101010101010101010101010101",
       "00"},
      {"02", "00", "fdffffffffffffffffffffffffffffff", "faffffffffffffffffffffffffffffff"},
      {"0100000000000000 04", "00",
       "e33594d7505e43b90000000000000000 3394d7505e4379cd0100000000000000 "
       "00000000000000000000000000000000 01000000000000000000000000000000",
       "14000000000000005500000000000000"},
      {"0100000000000000 04", "00",
       "e33594d7505e43b90000000000000000 3394d7505e4379cd0100000000000000 "
       "00000000000000000000000000000000",
       "13000000000000000000000000000000"},
  };
  for (const vec& v : a3) {
    bytes k = hex(v.r);
    k.resize(16, 0);
    bytes s = hex(v.s);
    s.resize(16, 0);
    k.insert(k.end(), s.begin(), s.end());
    bytes want = hex(v.tag);
    want.resize(16, 0);
    const bytes data = hex(v.data);
    const auto t = ref::poly1305(k.data(), data.data(), data.size());
    CHECK(bytes(t.begin(), t.end()) == want);
  }
}

TEST_CASE("chacha reference: RFC 8439 AEAD (2.8.2) and key generation (A.4)", "[chacha]") {
  const bytes key =
      hex("808182838485868788898a8b8c8d8e8f"
          "909192939495969798999a9b9c9d9e9f");
  const bytes nonce = hex("070000004041424344454647");
  const bytes aad = hex("50515253c0c1c2c3c4c5c6c7");
  const bytes pt = str(sunscreen);
  const bytes want =
      hex("d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
          "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
          "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
          "3ff4def08e4b7a9de576d26586cec64b6116"
          "1ae10b594f09e26a7e902ecbd0600691");
  const bytes sealed =
      ref::aead_seal(key.data(), nonce.data(), aad.data(), aad.size(), pt.data(), pt.size());
  CHECK(sealed == want);
  const auto otk = ref::block(key.data(), 0, nonce.data());
  CHECK(bytes(otk.begin(), otk.begin() + 32) ==
        hex("7bac2b252db447af09b67a55a4e955840ae1d6731075d9eb2a9375783ed553ff"));
  bytes back;
  REQUIRE(ref::aead_open(key.data(), nonce.data(), aad.data(), aad.size(), sealed.data(),
                         sealed.size(), back));
  CHECK(back == pt);
  for (std::size_t i : {std::size_t{0}, pt.size() - 1, pt.size(), sealed.size() - 1}) {
    bytes bad = sealed;
    bad[i] ^= 0x01;
    CHECK_FALSE(ref::aead_open(key.data(), nonce.data(), aad.data(), aad.size(), bad.data(),
                               bad.size(), back));
  }

  // A.4 #1 and #2: the one-time key is the first 32 bytes of block 0.
  const bytes zero_key(32, 0), zero_nonce(12, 0);
  auto k1 = ref::block(zero_key.data(), 0, zero_nonce.data());
  CHECK(bytes(k1.begin(), k1.begin() + 32) ==
        hex("76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"));
  bytes key2(32, 0);
  key2[31] = 1;
  const bytes nonce2 = hex("000000000000000000000002");
  auto k2 = ref::block(key2.data(), 0, nonce2.data());
  CHECK(bytes(k2.begin(), k2.begin() + 32) ==
        hex("ecfa254f845f647473d3cb140da9e87606cb33066c447b87bc2666dde3fbb739"));
}

TEST_CASE("chacha reference: age STREAM nonce", "[chacha]") {
  const auto n = ref::age_nonce(0x0102030405060708ull, true);
  CHECK(bytes(n.begin(), n.end()) == hex("000000010203040506070801"));
  const auto z = ref::age_nonce(0, false);
  CHECK(bytes(z.begin(), z.end()) == bytes(12, 0));
}

#ifdef HETPIPE_TEST_OPENSSL
TEST_CASE("chacha reference: agrees with OpenSSL's chacha20-poly1305", "[chacha]") {
  std::mt19937_64 g(8439);
  for (std::size_t len : {0, 1, 15, 16, 17, 63, 64, 65, 255, 4096, 65535, 65536, 65537}) {
    const bytes key = hetpipe::test::random_bytes(32, g),
                nonce = hetpipe::test::random_bytes(12, g),
                pt = hetpipe::test::random_bytes(len, g),
                aad = hetpipe::test::random_bytes(g() % 40, g);
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    REQUIRE(ctx != nullptr);
    REQUIRE(EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), nullptr, nullptr, nullptr) == 1);
    REQUIRE(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, nullptr) == 1);
    REQUIRE(EVP_EncryptInit_ex(ctx, nullptr, nullptr, key.data(), nonce.data()) == 1);
    int n = 0;
    if (!aad.empty())
      REQUIRE(EVP_EncryptUpdate(ctx, nullptr, &n, aad.data(), static_cast<int>(aad.size())) == 1);
    bytes out(len + 16);
    int total = 0;
    if (len != 0) {
      REQUIRE(EVP_EncryptUpdate(ctx, out.data(), &n, pt.data(), static_cast<int>(len)) == 1);
      total = n;
    }
    REQUIRE(EVP_EncryptFinal_ex(ctx, out.data() + total, &n) == 1);
    REQUIRE(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, out.data() + len) == 1);
    EVP_CIPHER_CTX_free(ctx);
    CHECK(ref::aead_seal(key.data(), nonce.data(), aad.data(), aad.size(), pt.data(), len) == out);
  }
}
#endif

// ---------------------------------------------------------------------------------------------
// The device code, compiled for the host.

namespace {

std::array<std::uint32_t, 8> key_words(const std::uint8_t* key) {
  std::array<std::uint32_t, 8> w{};
  for (int i = 0; i < 8; ++i) w[i] = ref::load32(key + 4 * i);
  return w;
}

// fe value as a big number.
ref::big to_big(const cd::fe& a) {
  ref::big r;
  for (int i = 4; i >= 0; --i) {
    ref::big limb;
    limb.d[0] = a.v[i];
    ref::big shift;
    shift.d[0] = 1u << 26;
    r = r * shift + limb;
  }
  return r;
}

bool limbs_below(const cd::fe& a, std::uint64_t bound) {
  for (auto v : a.v)
    if (v >= bound) return false;
  return true;
}

// fe_mul with its contract checked: inputs < 2^28, output < 2^27 and congruent.
cd::fe mul(const cd::fe& a, const cd::fe& b) {
  REQUIRE(limbs_below(a, 1u << 28));
  REQUIRE(limbs_below(b, 1u << 28));
  const cd::fe r = cd::fe_mul(a, b);
  REQUIRE(limbs_below(r, 1u << 27));
  return r;
}
cd::fe carry(const cd::fe& a) {
  REQUIRE(limbs_below(a, 1u << 31));
  const cd::fe r = cd::fe_carry(a);
  REQUIRE(limbs_below(r, (1u << 26) + 1));
  return r;
}
cd::fe pow(const cd::fe* pow2, std::uint32_t e) {
  REQUIRE(e >= 1);
  REQUIRE(e < 4096);
  return cd::fe_pow(pow2, e);
}

cd::fe random_fe(std::mt19937_64& g, std::uint32_t bound) {
  cd::fe a;
  for (auto& v : a.v) {
    const int kind = static_cast<int>(g() % 4);
    v = kind == 0 ? bound - 1 : kind == 1 ? 0 : static_cast<std::uint32_t>(g() % bound);
  }
  return a;
}

std::array<std::uint8_t, 16> tag_of(const std::uint32_t t[4]) {
  std::array<std::uint8_t, 16> b{};
  for (int i = 0; i < 16; ++i) b[i] = static_cast<std::uint8_t>(t[i / 4] >> (8 * (i % 4)));
  return b;
}

// ((value mod p) + s) mod 2^128 by the reference.
std::array<std::uint8_t, 16> ref_tag(const ref::big& v, const std::uint32_t s[4]) {
  ref::big sb;
  for (int i = 0; i < 4; ++i) sb.d[i] = s[i];
  const ref::big t = (ref::mod_p(v) + sb).low(128);
  std::array<std::uint8_t, 16> b{};
  for (int i = 0; i < 16; ++i) b[i] = static_cast<std::uint8_t>(t.d[i / 4] >> (8 * (i % 4)));
  return b;
}

// The batch kernel's work on one chunk, replayed step by step on the CPU (same index arithmetic,
// same operations, same order; the warp shuffle-reduction included). Returns out || tag for seal,
// and for open the plaintext with the tag the kernel computes appended.
bytes replay_chunk(bool seal, const std::uint8_t key[32], std::uint64_t counter, bool last,
                   const std::uint8_t* in, std::uint32_t len) {
  using namespace cd;
  using u8 = std::uint8_t;
  const auto kw = key_words(key);
  u32 nonce[3];
  age_nonce_words(counter, last, nonce);
  const u32 n = (len + 15) / 16;
  bytes out(len + 16, 0);

  u32 k0[16];
  chacha20_block(kw.data(), 0, nonce, k0);
  fe s_pow[pow_count];
  fe p = fe_clamped_r(k0[0], k0[1], k0[2], k0[3]);
  s_pow[0] = p;
  for (u32 k = 1; k < pow_count; ++k) s_pow[k] = p = mul(p, p);
  const u32 s_s[4] = {k0[4], k0[5], k0[6], k0[7]};

  fe s_warp[chunk_warps];
  for (u32 warp = 0; warp < chunk_warps; ++warp) {
    fe h[32];
    u32 p_last[32] = {};
    for (auto& x : h) x = fe_zero();
    const fe R = s_pow[lane_stride_pow];
    std::array<std::array<u32, 4>, 128> s_ks{};
    for (u32 round = 0; round < rounds; ++round) {
      const u32 block64 = warp * (warp_blocks16 / 4) + round * 32;
      const u32 span = block64 * 64;
      if (span >= len) continue;
      for (u32 lane = 0; lane < 32; ++lane) {
        u32 ks[16];
        chacha20_block(kw.data(), 1 + block64 + lane, nonce, ks);
        for (u32 q = 0; q < 4; ++q)
          s_ks[keystream_slot(lane, q)] = {ks[4 * q], ks[4 * q + 1], ks[4 * q + 2], ks[4 * q + 3]};
      }
      for (u32 lane = 0; lane < 32; ++lane) {
        for (u32 k = 0; k < 4; ++k) {
          const u32 i = k * 32 + lane;
          const u32 off = span + i * 16;
          if (off >= len) continue;
          const u32 valid = len - off < 16 ? len - off : 16;
          u8 x[16] = {}, y[16] = {};
          std::memcpy(x, in + off, valid);
          const auto& ksw = s_ks[keystream_slot(i / 4, i % 4)];
          for (u32 j = 0; j < valid; ++j)
            y[j] = x[j] ^ static_cast<u8>(ksw[j / 4] >> (8 * (j % 4)));
          std::memcpy(out.data() + off, y, valid);
          const u8* c = seal ? y : x;
          const fe m = fe_from_words(ref::load32(c), ref::load32(c + 4), ref::load32(c + 8),
                                     ref::load32(c + 12), 1u << 24);
          h[lane] = fe_add(mul(h[lane], R), m);
          p_last[lane] = off / 16;
        }
      }
    }
    const bool warp_has = n > warp * warp_blocks16;
    const u32 lastb = warp_has ? warp_last_block(warp, n) : 0;
    for (u32 lane = 0; lane < 32; ++lane)
      if (warp_has && lane < n - warp * warp_blocks16 && lastb != p_last[lane])
        h[lane] = mul(h[lane], pow(s_pow, lastb - p_last[lane]));
    for (int d = 16; d > 0; d /= 2) {  // __shfl_down_sync: a lane past 31 reads its own value
      fe next[32];
      for (int l = 0; l < 32; ++l) next[l] = carry(fe_add(h[l], h[l + d < 32 ? l + d : l]));
      std::memcpy(h, next, sizeof h);
    }
    s_warp[warp] = warp_has ? mul(h[0], pow(s_pow, n + 1 - lastb)) : fe_zero();
  }
  fe acc = s_warp[0];
  for (u32 w = 1; w < chunk_warps; ++w) acc = fe_add(acc, s_warp[w]);
  acc = fe_add(acc, mul(fe_from_words(0, 0, len, 0, 1u << 24), s_pow[0]));
  REQUIRE(limbs_below(acc, 1u << 31));
  u32 tag[4];
  fe_tag(acc, s_s, tag);
  const auto tb = tag_of(tag);
  std::memcpy(out.data() + len, tb.data(), 16);
  return out;
}

}  // namespace

TEST_CASE("chacha device code on the host: block function and age nonce", "[chacha]") {
  std::mt19937_64 g(7539);
  for (int t = 0; t < 200; ++t) {
    const bytes key = hetpipe::test::random_bytes(32, g);
    const std::uint64_t counter = t < 3 ? (t == 0 ? 0 : t == 1 ? ~0ull : 1ull << 63) : g();
    const bool last = (t & 1) != 0;
    const auto nb = ref::age_nonce(counter, last);
    std::uint32_t nw[3];
    cd::age_nonce_words(counter, last, nw);
    for (int i = 0; i < 3; ++i) CHECK(nw[i] == ref::load32(nb.data() + 4 * i));
    const std::uint32_t block_counter = static_cast<std::uint32_t>(g());
    std::uint32_t out[16];
    cd::chacha20_block(key_words(key.data()).data(), block_counter, nw, out);
    const auto want = ref::block(key.data(), block_counter, nb.data());
    for (int i = 0; i < 16; ++i) CHECK(out[i] == ref::load32(want.data() + 4 * i));
  }
}

TEST_CASE("chacha device code on the host: 26-bit limb arithmetic is exact", "[chacha]") {
  std::mt19937_64 g(1305);
  const ref::big p = ref::poly_p();
  for (int t = 0; t < 20000; ++t) {
    const cd::fe a = random_fe(g, 1u << 28), b = random_fe(g, 1u << 28);
    const cd::fe r = mul(a, b);
    CHECK(ref::mod_p(to_big(r)) == ref::mod_p(to_big(a) * to_big(b)));
    const cd::fe c = random_fe(g, 1u << 31);
    const cd::fe cc = carry(c);
    CHECK(ref::mod_p(to_big(cc)) == ref::mod_p(to_big(c)));
    std::uint32_t s[4];
    for (auto& w : s) w = static_cast<std::uint32_t>(g());
    if (t % 3 == 0) s[0] = s[1] = s[2] = s[3] = 0xffffffffu;
    std::uint32_t tag[4];
    cd::fe_tag(c, s, tag);
    CHECK(tag_of(tag) == ref_tag(to_big(c), s));
  }
  // fe_tag around p: h = p - 2 .. p + 6, given as limbs (2^26 - 7 + k, 2^26 - 1, ...) and carried.
  for (std::uint32_t k = 0; k < 9; ++k) {
    cd::fe h;
    h.v[0] = (1u << 26) - 7 + k;
    h.v[1] = h.v[2] = h.v[3] = h.v[4] = (1u << 26) - 1;
    const std::uint32_t s[4] = {0, 0, 0, 0};
    std::uint32_t tag[4];
    cd::fe_tag(carry(h), s, tag);
    ref::big kb, two;
    kb.d[0] = k;
    two.d[0] = 2;
    CHECK(tag_of(tag) == ref_tag(p + kb - two, s));
  }
}

TEST_CASE("chacha device code on the host: Poly1305 vectors through the limb arithmetic",
          "[chacha]") {
  // Plain sequential Horner with the device functions, as poly1305_one's kernel runs it.
  auto poly = [](const bytes& key, const bytes& msg) {
    using namespace cd;
    const fe r = fe_clamped_r(ref::load32(key.data()), ref::load32(key.data() + 4),
                              ref::load32(key.data() + 8), ref::load32(key.data() + 12));
    fe h = fe_zero();
    for (std::size_t off = 0; off < msg.size(); off += 16) {
      const std::size_t m = std::min<std::size_t>(16, msg.size() - off);
      std::uint8_t b[16] = {};
      std::memcpy(b, msg.data() + off, m);
      u32 hibit = 1u << 24;
      if (m < 16) b[m] = 1, hibit = 0;
      fe x = fe_from_words(ref::load32(b), ref::load32(b + 4), ref::load32(b + 8),
                           ref::load32(b + 12), 0);
      x.v[4] += hibit;
      h = carry(fe_add(mul(h, r), x));
    }
    h = mul(h, r);
    const u32 s[4] = {ref::load32(key.data() + 16), ref::load32(key.data() + 20),
                      ref::load32(key.data() + 24), ref::load32(key.data() + 28)};
    u32 tag[4];
    fe_tag(h, s, tag);
    return tag_of(tag);
  };
  std::mt19937_64 g(99);
  for (int t = 0; t < 300; ++t) {
    bytes key = hetpipe::test::random_bytes(32, g);
    bytes msg = hetpipe::test::random_bytes(g() % 200, g);
    if (t % 4 == 0) std::fill(msg.begin(), msg.end(), 0xff);
    if (t % 5 == 0) std::fill(key.begin(), key.begin() + 16, 0xff);
    CHECK(poly(key, msg) == ref::poly1305(key.data(), msg.data(), msg.size()));
  }
  const bytes key =
      hex("85d6be7857556d337f4452fe42d506a8"
          "0103808afb0db2fd4abff6af4149f51b");
  const auto t = poly(key, str("Cryptographic Forum Research Group"));
  CHECK(bytes(t.begin(), t.end()) == hex("a8061dc1305136c6c22b8baf0c0127a9"));
}

TEST_CASE("chacha device code on the host: keystream slots are a conflict-free permutation",
          "[chacha]") {
  std::vector<int> seen(128, 0);
  for (std::uint32_t b = 0; b < 32; ++b)
    for (std::uint32_t q = 0; q < 4; ++q) ++seen.at(cd::keystream_slot(b, q));
  for (int v : seen) CHECK(v == 1);
  // A 16-byte shared access is served per 8 lanes: their slots must fall in 8 distinct groups of
  // 16 bytes modulo 128 bytes. Writes: lanes 8j..8j+7 store quarter q of their own block.
  for (std::uint32_t j = 0; j < 4; ++j)
    for (std::uint32_t q = 0; q < 4; ++q) {
      std::vector<int> banks(8, 0);
      for (std::uint32_t l = 8 * j; l < 8 * j + 8; ++l) ++banks[cd::keystream_slot(l, q) % 8];
      for (int v : banks) CHECK(v == 1);
    }
  // Reads: lanes 8j..8j+7 of step k read units i = 32k + l.
  for (std::uint32_t k = 0; k < 4; ++k)
    for (std::uint32_t j = 0; j < 4; ++j) {
      std::vector<int> banks(8, 0);
      for (std::uint32_t l = 8 * j; l < 8 * j + 8; ++l) {
        const std::uint32_t i = 32 * k + l;
        ++banks[cd::keystream_slot(i / 4, i % 4) % 8];
      }
      for (int v : banks) CHECK(v == 1);
    }
}

TEST_CASE("chacha device code on the host: replay of the batch kernel's chunk schedule",
          "[chacha]") {
  std::mt19937_64 g(65536);
  const std::uint32_t lens[] = {0,     1,     15,    16,    17,    63,    64,    511,
                                512,   2047,  2048,  2049,  8191,  8192,  8193,  8208,
                                16384, 30000, 57344, 57345, 65520, 65521, 65535, 65536};
  for (std::uint32_t len : lens) {
    for (int variant = 0; variant < 2; ++variant) {
      const bytes key = hetpipe::test::random_bytes(32, g);
      bytes pt = hetpipe::test::random_bytes(len, g);
      if (variant == 1) std::fill(pt.begin(), pt.end(), 0xff);
      const std::uint64_t counter = variant == 0 ? g() : 0xfffffffffffffffeull;
      const bool last = (len & 1) != 0;
      const auto nonce = ref::age_nonce(counter, last);
      const bytes want = ref::aead_seal(key.data(), nonce.data(), nullptr, 0, pt.data(), len);
      INFO("len " << len << " variant " << variant);
      CHECK(replay_chunk(true, key.data(), counter, last, pt.data(), len) == want);
      // Open: the replay decrypts and computes the tag of the ciphertext it was given.
      bytes opened = replay_chunk(false, key.data(), counter, last, want.data(), len);
      CHECK((len == 0 || std::memcmp(opened.data(), pt.data(), len) == 0));  // pt may be null
      CHECK(std::memcmp(opened.data() + len, want.data() + len, 16) == 0);
    }
  }
  // Ciphertext of all-ones bytes (the largest message limbs), through the open path.
  for (std::uint32_t len : {16u, 8192u, 65536u}) {
    const bytes key = hetpipe::test::random_bytes(32, g);
    const bytes ct(len + 16, 0xff);
    const auto nonce = ref::age_nonce(5, false);
    bytes mac(ct.begin(), ct.begin() + len);
    mac.resize((len + 15) / 16 * 16, 0);
    for (int i = 0; i < 8; ++i) mac.push_back(0);
    for (int i = 0; i < 8; ++i)
      mac.push_back(static_cast<std::uint8_t>(std::uint64_t{len} >> (8 * i)));
    const auto otk = ref::block(key.data(), 0, nonce.data());
    const auto tag = ref::poly1305(otk.data(), mac.data(), mac.size());
    const bytes opened = replay_chunk(false, key.data(), 5, false, ct.data(), len);
    CHECK(std::memcmp(opened.data() + len, tag.data(), 16) == 0);
  }
}
