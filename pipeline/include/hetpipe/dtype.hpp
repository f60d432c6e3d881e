// Element types of numeric inputs. The numeric values are part of the ABI between the pipeline and
// the GPU kernels (which receive them as plain integers): never reorder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace hetpipe {

enum class dtype : std::uint8_t { u8 = 0, i8, u16, i16, u32, i32, u64, i64, f32, f64 };

constexpr std::size_t dtype_size(dtype t) noexcept {
  switch (t) {
    case dtype::u8:
    case dtype::i8:
      return 1;
    case dtype::u16:
    case dtype::i16:
      return 2;
    case dtype::u32:
    case dtype::i32:
    case dtype::f32:
      return 4;
    default:
      return 8;
  }
}
constexpr bool dtype_is_float(dtype t) noexcept {
  return t == dtype::f32 || t == dtype::f64;
}
constexpr bool dtype_is_signed(dtype t) noexcept {
  return t == dtype::i8 || t == dtype::i16 || t == dtype::i32 || t == dtype::i64 ||
         dtype_is_float(t);
}

constexpr std::string_view dtype_name(dtype t) noexcept {
  constexpr std::string_view names[] = {"u8",  "i8",  "u16", "i16", "u32",
                                        "i32", "u64", "i64", "f32", "f64"};
  return names[static_cast<int>(t)];
}

// Accepts hetpipe's names (u8 ... f64) and numpy's (uint8, int16, float32, ...).
inline std::optional<dtype> parse_dtype(std::string_view s) noexcept {
  struct alias {
    std::string_view name;
    dtype type;
  };
  constexpr alias table[] = {
      {"u8", dtype::u8},   {"uint8", dtype::u8},    {"i8", dtype::i8},   {"int8", dtype::i8},
      {"u16", dtype::u16}, {"uint16", dtype::u16},  {"i16", dtype::i16}, {"int16", dtype::i16},
      {"u32", dtype::u32}, {"uint32", dtype::u32},  {"i32", dtype::i32}, {"int32", dtype::i32},
      {"u64", dtype::u64}, {"uint64", dtype::u64},  {"i64", dtype::i64}, {"int64", dtype::i64},
      {"f32", dtype::f32}, {"float32", dtype::f32}, {"f64", dtype::f64}, {"float64", dtype::f64},
  };
  for (const auto& a : table)
    if (a.name == s) return a.type;
  return std::nullopt;
}

}  // namespace hetpipe
