// NumPy .npy files: a strict reader of the header (format versions 1.0, 2.0 and 3.0).
//
// A .npy file is: the magic "\x93NUMPY", one byte major and one byte minor version, the header
// length (uint16 little-endian in version 1.0, uint32 little-endian in 2.0 and 3.0), then the
// header itself: a Python dict literal with the keys 'descr', 'fortran_order' and 'shape', padded
// with spaces and ending with '\n' (latin-1 text in 1.0 and 2.0, UTF-8 in 3.0). The array data
// follows immediately and runs to the end of the file.
//
// hetpipe accepts little-endian (or native, '=', or byte-order-free '|' for single bytes) u1 i1 u2
// i2 u4 i4 u8 i8 f4 f8 arrays in C order with 0, 1 or 2 dimensions. Everything else is refused with
// an input_error whose reason says why.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hetpipe/dtype.hpp"

namespace hetpipe::io {

struct npy_header {
  dtype type;
  std::vector<std::uint64_t> shape;  // () -> a scalar: shape empty, 1 element
  std::uint64_t data_offset;         // bytes before the array data (magic + lengths + header)
  std::uint64_t data_bytes;          // product(shape) * dtype_size(type)
  int version_major;                 // 1, 2 or 3
};

// The longest preamble (magic, version, length and header text) parse_npy accepts: headers of the
// arrays hetpipe reads are about a hundred bytes; anything longer than this is refused.
inline constexpr std::size_t npy_max_preamble = 64 * 1024;

// Parses the header at the start of `bytes`, the first bytes of the file named `name` (give at
// least npy_max_preamble bytes, or the whole file when it is shorter). `file_size` is the file's
// total size: the data after the header must be exactly data_bytes long.
// Throws input_error(name, reason) for anything not accepted; std::invalid_argument when the call
// itself is wrong (fewer bytes given than the header needs although the file has them, or more
// bytes than file_size).
npy_header parse_npy(std::string_view name, std::span<const std::byte> bytes,
                     std::uint64_t file_size);

// Opens `path`, reads its preamble and parses it (input_error as parse_npy; io_error, with the
// negative errno as code, when the file cannot be opened or read).
npy_header read_npy_header(const std::string& path);

// True when `first_bytes` starts with the .npy magic "\x93NUMPY".
bool looks_like_npy(std::span<const std::byte> first_bytes) noexcept;

}  // namespace hetpipe::io
