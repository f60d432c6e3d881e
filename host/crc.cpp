// CRC32/CRC32C through ISA-L and their combination in GF(2)[x] / P (contract: crc.hpp).
#include "host/crc.hpp"

#include <isa-l/crc.h>

#include <array>
#include <climits>

namespace hetpipe::host {
namespace {

constexpr std::uint32_t poly_crc32 = 0xEDB88320u;   // 0x04C11DB7 reflected
constexpr std::uint32_t poly_crc32c = 0x82F63B78u;  // 0x1EDC6F41 reflected
constexpr std::uint32_t one = 0x80000000u;          // the polynomial 1, reflected

// a * b mod P: walk the coefficients of a from x^0 (bit 31) up while b runs through b * x^i.
constexpr std::uint32_t mulmod(std::uint32_t a, std::uint32_t b, std::uint32_t poly) {
  std::uint32_t p = 0;
  for (std::uint32_t bit = one; bit != 0 && a != 0; bit >>= 1) {
    if (a & bit) {
      p ^= b;
      a ^= bit;
    }
    b = (b >> 1) ^ ((b & 1u) ? poly : 0u);  // b *= x: x^31 (bit 0) wraps round to x^32 = P - x^32
  }
  return p;
}

// x^(8 * d * 16^i) mod P for the 16 hexadecimal digits i of a 64-bit length and d = 0..15:
// x^(8 * len) is then one multiplication per non-zero digit.
using digit_powers = std::array<std::array<std::uint32_t, 16>, 16>;

constexpr digit_powers make_digit_powers(std::uint32_t poly) {
  digit_powers t{};
  std::uint32_t base = one >> 8;  // x^8: one byte
  for (std::size_t i = 0; i < 16; ++i) {
    t[i][0] = one;
    for (std::size_t d = 1; d < 16; ++d) t[i][d] = mulmod(t[i][d - 1], base, poly);
    base = mulmod(t[i][15], base, poly);  // x^(8 * 16^(i+1))
  }
  return t;
}

constexpr digit_powers powers_crc32 = make_digit_powers(poly_crc32);
constexpr digit_powers powers_crc32c = make_digit_powers(poly_crc32c);

}  // namespace

std::uint32_t crc_poly(crc_kind kind) {
  return kind == crc_kind::crc32 ? poly_crc32 : poly_crc32c;
}

std::uint32_t crc_mulmod(crc_kind kind, std::uint32_t a, std::uint32_t b) {
  return mulmod(a, b, crc_poly(kind));
}

std::uint32_t crc_xpow8(crc_kind kind, std::uint64_t len) {
  const digit_powers& t = kind == crc_kind::crc32 ? powers_crc32 : powers_crc32c;
  const std::uint32_t poly = crc_poly(kind);
  std::uint32_t p = one;
  for (std::size_t i = 0; len != 0; ++i, len >>= 4)
    if (len & 15u) p = mulmod(p, t[i][len & 15u], poly);
  return p;
}

std::uint32_t crc_shift(crc_kind kind, std::uint32_t crc_raw, std::uint64_t len) {
  return mulmod(crc_raw, crc_xpow8(kind, len), crc_poly(kind));
}

std::uint32_t crc_combine(crc_kind kind, std::uint32_t crc_a, std::uint32_t crc_b,
                          std::uint64_t len_b) {
  // CRC(m) = ~R(~0, m) with R(s, m) = s * x^(8|m|) + R(0, m) linear; the inversions of a's end,
  // b's start and b's end cancel to crc_a * x^(8|b|) + crc_b.
  return crc_shift(kind, crc_a, len_b) ^ crc_b;
}

std::uint32_t crc_update(crc_kind kind, std::uint32_t crc, const void* data, std::size_t len) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (kind == crc_kind::crc32) {
    // crc32_gzip_refl inverts on entry and exit, like zlib's crc32(crc, buf, len).
    return crc32_gzip_refl(crc, p, len);
  }
  // crc32_iscsi works on the raw register (no inversion, int length): invert around it, and feed
  // at most 1 GiB per call.
  std::uint32_t raw = ~crc;
  while (len != 0) {
    const std::size_t n = len < (std::size_t{1} << 30) ? len : (std::size_t{1} << 30);
    raw = crc32_iscsi(const_cast<unsigned char*>(p), static_cast<int>(n), raw);
    p += n;
    len -= n;
  }
  return ~raw;
}

}  // namespace hetpipe::host
