// The fixed identity and passphrase of the age harnesses and their seeds (fuzz_seeds.cpp).
#pragma once

#include "host/age.hpp"

namespace hetpipe::fuzz {

inline hetpipe::host::age::identity fixed_identity() {
  hetpipe::host::age::identity id;
  for (int i = 0; i < 32; ++i) id.secret[i] = static_cast<std::uint8_t>(0xA0 + i);
  return id;
}
inline constexpr const char* fixed_passphrase = "fuzz passphrase";
inline constexpr int fixed_log2_work = 4;  // cheap scrypt, so that decryption stays fast

}  // namespace hetpipe::fuzz
