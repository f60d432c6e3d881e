// CRC32 (zlib/gzip: reflected 0x04C11DB7, init and final xor 0xFFFFFFFF) and CRC32C (Castagnoli,
// iSCSI: reflected 0x1EDC6F41) on the CPU through ISA-L, plus the GF(2) algebra that joins the CRCs
// of neighbouring chunks exactly, so chunks may be checksummed anywhere and in any order.
//
//   using namespace hetpipe::host;
//   crc_update(crc_kind::crc32, 0, "123456789", 9);             // 0xCBF43926
//   crc_update(crc_kind::crc32c, 0, "123456789", 9);            // 0xE3069283
//   crc_combine(crc_kind::crc32, crc("1234"), crc("56789"), 5);  // == crc("123456789")
//
// Polynomials are kept bit-reflected: bit 31 of a std::uint32_t holds the coefficient of x^0 and
// bit 0 that of x^31, as in the CRC register itself (1 is 0x80000000, x is 0x40000000).
#pragma once

#include <cstddef>
#include <cstdint>

namespace hetpipe::host {

enum class crc_kind { crc32 = 0, crc32c = 1 };

// Standard CRC of data[0..len) continued from `crc`, the finished CRC of what came before (0 for
// nothing): crc_update(k, crc_update(k, 0, a), b) is the CRC of a‖b. len == 0 returns crc.
std::uint32_t crc_update(crc_kind kind, std::uint32_t crc, const void* data, std::size_t len);

// The CRC of a‖b from crc_a = CRC(a), crc_b = CRC(b) and len_b = |b| in bytes: O(log len_b)
// multiplications mod P, no pass over any byte. With len_b == 0 (b empty, crc_b == 0) it returns
// crc_a. Associative: parts may be joined pairwise in any grouping (a tree over chunks).
std::uint32_t crc_combine(crc_kind kind, std::uint32_t crc_a, std::uint32_t crc_b,
                          std::uint64_t len_b);

// --- The algebra underneath (reflected representation, see above) ---

// The reflected generator polynomial without its x^32 term: 0xEDB88320 (crc32), 0x82F63B78.
std::uint32_t crc_poly(crc_kind kind);

// a * b mod P over GF(2).
std::uint32_t crc_mulmod(crc_kind kind, std::uint32_t a, std::uint32_t b);

// x^(8 * len) mod P from precomputed x^(8 * d * 16^i): one multiplication per non-zero
// hexadecimal digit of len, O(log len).
std::uint32_t crc_xpow8(crc_kind kind, std::uint64_t len);

// A raw CRC register advanced over len zero bytes: crc_raw * x^(8 * len) mod P. The finished CRC
// obeys CRC(a‖b) = crc_shift(k, CRC(a), |b|) ^ CRC(b) (the inversions cancel), which is
// crc_combine.
std::uint32_t crc_shift(crc_kind kind, std::uint32_t crc_raw, std::uint64_t len);

}  // namespace hetpipe::host
