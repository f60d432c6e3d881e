// Shared by the libFuzzer harnesses (tests/fuzz/README.md): the contract every parser keeps on
// bad input. Bytes in; the parser either returns or throws one of hetpipe's own errors
// (hetpipe::error and its subclasses: input_error, input_skipped, usage_error, io_error...).
// Anything else (std::length_error, std::bad_alloc, std::out_of_range, a crash, a sanitizer
// report, a timeout) is a bug, reported by abort() with the exception's type and message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>

#include <hetpipe/error.hpp>

namespace hetpipe::fuzz {

// Runs f(); returns true when it returned, false when it threw a hetpipe::error; aborts on any
// other exception.
template <class F>
bool expect_clean(const char* what, F&& f) {
  try {
    f();
    return true;
  } catch (const hetpipe::error&) {
    return false;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FUZZ BUG in %s: %s: %s\n", what, typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "FUZZ BUG in %s: a non-std exception\n", what);
    std::abort();
  }
}

// An invariant of the harness itself (a round trip that must hold): abort with a message.
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FUZZ BUG: %s\n", what);
    std::abort();
  }
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace hetpipe::fuzz
