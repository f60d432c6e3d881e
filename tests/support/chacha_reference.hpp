// A plain, scalar ChaCha20-Poly1305 (RFC 8439) and the age v1 STREAM chunking, written for
// obviousness rather than speed: Poly1305 runs on a small big-number type (32-bit digits,
// schoolbook products, reduction by folding 2^130 = 5 mod p). Shared by the CPU test of itself
// (tests/host/test_chacha_reference.cpp, against the RFC vectors) and the GPU kernel tests.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace hetpipe::test::chacha_ref {

using bytes = std::vector<std::uint8_t>;

inline std::uint32_t load32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
         (std::uint32_t{p[3]} << 24);
}

inline std::uint32_t rotl(std::uint32_t x, int n) {
  return (x << n) | (x >> (32 - n));
}

// RFC 8439 section 2.3: the 64-byte block for key, counter and 12-byte nonce.
inline std::array<std::uint8_t, 64> block(const std::uint8_t key[32], std::uint32_t counter,
                                          const std::uint8_t nonce[12]) {
  std::uint32_t s[16];
  s[0] = 0x61707865u;  // "expand 32-byte k"
  s[1] = 0x3320646eu;
  s[2] = 0x79622d32u;
  s[3] = 0x6b206574u;
  for (int i = 0; i < 8; ++i) s[4 + i] = load32(key + 4 * i);
  s[12] = counter;
  for (int i = 0; i < 3; ++i) s[13 + i] = load32(nonce + 4 * i);
  std::uint32_t x[16];
  std::memcpy(x, s, sizeof x);
  auto qr = [&x](int a, int b, int c, int d) {
    x[a] += x[b], x[d] ^= x[a], x[d] = rotl(x[d], 16);
    x[c] += x[d], x[b] ^= x[c], x[b] = rotl(x[b], 12);
    x[a] += x[b], x[d] ^= x[a], x[d] = rotl(x[d], 8);
    x[c] += x[d], x[b] ^= x[c], x[b] = rotl(x[b], 7);
  };
  for (int i = 0; i < 10; ++i) {
    qr(0, 4, 8, 12), qr(1, 5, 9, 13), qr(2, 6, 10, 14), qr(3, 7, 11, 15);
    qr(0, 5, 10, 15), qr(1, 6, 11, 12), qr(2, 7, 8, 13), qr(3, 4, 9, 14);
  }
  std::array<std::uint8_t, 64> out{};
  for (int i = 0; i < 16; ++i) {
    const std::uint32_t v = x[i] + s[i];
    for (int j = 0; j < 4; ++j) out[4 * i + j] = static_cast<std::uint8_t>(v >> (8 * j));
  }
  return out;
}

// RFC 8439 section 2.4: in XOR the keystream starting at block `counter`.
inline bytes chacha20(const std::uint8_t key[32], std::uint32_t counter,
                      const std::uint8_t nonce[12], const std::uint8_t* in, std::size_t len) {
  bytes out(len);
  for (std::size_t off = 0; off < len; off += 64) {
    const auto ks = block(key, counter + static_cast<std::uint32_t>(off / 64), nonce);
    for (std::size_t i = 0; i < 64 && off + i < len; ++i) out[off + i] = in[off + i] ^ ks[i];
  }
  return out;
}

// Non-negative integers below 2^320 as ten little-endian 32-bit digits.
struct big {
  std::array<std::uint32_t, 10> d{};

  static big from_bytes(const std::uint8_t* p, std::size_t n) {  // little-endian, n <= 40
    big r;
    for (std::size_t i = 0; i < n; ++i) r.d[i / 4] |= std::uint32_t{p[i]} << (8 * (i % 4));
    return r;
  }
  friend big operator+(const big& a, const big& b) {
    big r;
    std::uint64_t c = 0;
    for (int i = 0; i < 10; ++i) {
      c += std::uint64_t{a.d[i]} + b.d[i];
      r.d[i] = static_cast<std::uint32_t>(c);
      c >>= 32;
    }
    return r;
  }
  friend big operator-(const big& a, const big& b) {  // a >= b
    big r;
    std::int64_t c = 0;
    for (int i = 0; i < 10; ++i) {
      c += std::int64_t{a.d[i]} - std::int64_t{b.d[i]};
      r.d[i] = static_cast<std::uint32_t>(c);
      c = c < 0 ? -1 : 0;
    }
    return r;
  }
  friend big operator*(const big& a, const big& b) {  // the product must stay below 2^320
    big r;
    for (int i = 0; i < 10; ++i) {
      std::uint64_t c = 0;
      for (int j = 0; i + j < 10; ++j) {
        c += std::uint64_t{a.d[i]} * b.d[j] + r.d[i + j];
        r.d[i + j] = static_cast<std::uint32_t>(c);
        c >>= 32;
      }
    }
    return r;
  }
  friend bool operator==(const big& a, const big& b) = default;
  friend bool operator<(const big& a, const big& b) {
    for (int i = 9; i >= 0; --i)
      if (a.d[i] != b.d[i]) return a.d[i] < b.d[i];
    return false;
  }
  big shr(int bits) const {  // floor(this / 2^bits), 0 <= bits < 288
    big r;
    const int w = bits / 32, b = bits % 32;
    for (int i = 0; i + w < 10; ++i) {
      std::uint64_t v = d[i + w];
      if (i + w + 1 < 10) v |= std::uint64_t{d[i + w + 1]} << 32;
      r.d[i] = static_cast<std::uint32_t>(v >> b);
    }
    return r;
  }
  big low(int bits) const {  // this mod 2^bits, 0 < bits <= 320
    big r = *this;
    for (int i = 0; i < 10; ++i) {
      const int lo = 32 * i;
      if (lo >= bits)
        r.d[i] = 0;
      else if (lo + 32 > bits)
        r.d[i] &= (1u << (bits - lo)) - 1u;
    }
    return r;
  }
};

inline big poly_p() {  // 2^130 - 5
  big p;
  p.d[0] = 0xfffffffbu;
  p.d[1] = p.d[2] = p.d[3] = 0xffffffffu;
  p.d[4] = 3;
  return p;
}

inline big mod_p(big x) {
  big five;
  five.d[0] = 5;
  for (;;) {
    const big hi = x.shr(130);
    bool zero = true;
    for (auto v : hi.d) zero = zero && v == 0;
    if (zero) break;
    x = x.low(130) + hi * five;  // x = lo + 2^130 hi = lo + 5 hi (mod p)
  }
  if (!(x < poly_p())) x = x - poly_p();
  return x;
}

// RFC 8439 section 2.5: Poly1305 of msg under the one-time key (r || s).
inline std::array<std::uint8_t, 16> poly1305(const std::uint8_t key[32], const std::uint8_t* msg,
                                             std::size_t len) {
  std::uint8_t rb[16];
  std::memcpy(rb, key, 16);
  for (int i : {3, 7, 11, 15}) rb[i] &= 15;
  for (int i : {4, 8, 12}) rb[i] &= 252;
  const big r = big::from_bytes(rb, 16), s = big::from_bytes(key + 16, 16);
  big acc;
  for (std::size_t off = 0; off < len; off += 16) {
    const std::size_t m = len - off < 16 ? len - off : 16;
    std::uint8_t buf[17] = {};
    std::memcpy(buf, msg + off, m);
    buf[m] = 1;  // the block with one byte 0x01 appended
    acc = mod_p((acc + big::from_bytes(buf, 17)) * r);
  }
  const big t = (acc + s).low(128);
  std::array<std::uint8_t, 16> tag{};
  for (int i = 0; i < 16; ++i) tag[i] = static_cast<std::uint8_t>(t.d[i / 4] >> (8 * (i % 4)));
  return tag;
}

// RFC 8439 section 2.8: ciphertext || tag.
inline bytes aead_seal(const std::uint8_t key[32], const std::uint8_t nonce[12],
                       const std::uint8_t* aad, std::size_t aad_len, const std::uint8_t* plain,
                       std::size_t len) {
  const auto otk = block(key, 0, nonce);
  bytes ct = chacha20(key, 1, nonce, plain, len);
  bytes mac;
  auto pad16 = [&mac] { mac.resize((mac.size() + 15) / 16 * 16, 0); };
  mac.insert(mac.end(), aad, aad + aad_len);
  pad16();
  mac.insert(mac.end(), ct.begin(), ct.end());
  pad16();
  for (std::uint64_t v : {std::uint64_t{aad_len}, std::uint64_t{len}})
    for (int i = 0; i < 8; ++i) mac.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  const auto tag = poly1305(otk.data(), mac.data(), mac.size());
  ct.insert(ct.end(), tag.begin(), tag.end());
  return ct;
}

// The plaintext, or false when the tag does not verify (sealed = ciphertext || tag).
inline bool aead_open(const std::uint8_t key[32], const std::uint8_t nonce[12],
                      const std::uint8_t* aad, std::size_t aad_len, const std::uint8_t* sealed,
                      std::size_t sealed_len, bytes& plain) {
  if (sealed_len < 16) return false;
  const std::size_t len = sealed_len - 16;
  const auto otk = block(key, 0, nonce);
  bytes mac;
  auto pad16 = [&mac] { mac.resize((mac.size() + 15) / 16 * 16, 0); };
  mac.insert(mac.end(), aad, aad + aad_len);
  pad16();
  mac.insert(mac.end(), sealed, sealed + len);
  pad16();
  for (std::uint64_t v : {std::uint64_t{aad_len}, std::uint64_t{len}})
    for (int i = 0; i < 8; ++i) mac.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  const auto tag = poly1305(otk.data(), mac.data(), mac.size());
  if (std::memcmp(tag.data(), sealed + len, 16) != 0) return false;
  plain = chacha20(key, 1, nonce, sealed, len);
  return true;
}

// age STREAM: the nonce of chunk `counter` (11-byte big-endian counter, then the last flag).
inline std::array<std::uint8_t, 12> age_nonce(std::uint64_t counter, bool last) {
  std::array<std::uint8_t, 12> n{};
  for (int i = 0; i < 8; ++i) n[10 - i] = static_cast<std::uint8_t>(counter >> (8 * i));
  n[11] = last ? 1 : 0;
  return n;
}

constexpr std::size_t chunk_bytes = 65536;

// A batch of `chunks` chunks from counter `first` (all full but the last, last_len bytes):
// plaintext -> concatenated sealed chunks.
inline bytes age_seal_batch(const std::uint8_t key[32], std::uint64_t first, std::uint32_t chunks,
                            std::uint32_t last_len, bool final_is_last, const bytes& plain) {
  bytes out;
  for (std::uint32_t c = 0; c < chunks; ++c) {
    const bool last = c + 1 == chunks;
    const std::size_t len = last ? last_len : chunk_bytes;
    const auto nonce = age_nonce(first + c, last && final_is_last);
    const bytes sealed =
        aead_seal(key, nonce.data(), nullptr, 0, plain.data() + c * chunk_bytes, len);
    out.insert(out.end(), sealed.begin(), sealed.end());
  }
  return out;
}

}  // namespace hetpipe::test::chacha_ref
