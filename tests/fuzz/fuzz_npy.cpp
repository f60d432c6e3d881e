// .npy headers: looks_like_npy and parse_npy over the input as a whole file, then again as the
// preamble of a larger file (the size taken from the input's last 8 bytes, so that shape products
// near 2^64 meet file sizes near it too).
#include <cstring>
#include <span>
#include <stdexcept>

#include "fuzz_common.hpp"
#include "io/npy.hpp"

namespace io = hetpipe::io;
using hetpipe::fuzz::expect_clean;
using hetpipe::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  io::looks_like_npy(bytes);
  io::npy_header h{};
  const bool ok = expect_clean("parse_npy", [&] { h = io::parse_npy("fuzz.npy", bytes, size); });
  if (ok) {
    require(h.data_offset + h.data_bytes == size, "data_offset + data_bytes != file size");
    require(h.shape.size() <= 2, "more than 2 dimensions accepted");
    require(h.version_major >= 1 && h.version_major <= 3, "bad version accepted");
    std::uint64_t n = hetpipe::dtype_size(h.type);
    for (std::uint64_t d : h.shape) n *= d;
    require(n == h.data_bytes, "data_bytes differs from the shape's product");
  }
  if (size >= 8 && size <= io::npy_max_preamble) {
    std::uint64_t extra;
    std::memcpy(&extra, data + size - 8, 8);
    const std::uint64_t file_size = size + (extra % (~std::uint64_t{0} - size));
    expect_clean("parse_npy (preamble)", [&] {
      try {
        io::parse_npy("fuzz.npy", bytes, file_size);
      } catch (const std::invalid_argument&) {
        // The caller's fault by the contract: fewer bytes given than the header needs while the
        // (claimed) file has them.
      }
    });
  }
  return 0;
}
