// Whole-file age decryption in memory (binary and armored) with a fixed identity, and with a
// fixed passphrase at a small scrypt work factor; the seeds (fuzz_seeds) are files encrypted to
// them, so that mutations reach the MAC, the payload nonce and the STREAM chunks.
#include "fuzz_age.hpp"
#include "fuzz_common.hpp"

namespace age = hetpipe::host::age;
using hetpipe::fuzz::expect_clean;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<age::identity> ids{hetpipe::fuzz::fixed_identity()};
  expect_clean("decrypt", [&] { age::decrypt(data, size, ids, "fuzz.age"); });
  expect_clean("decrypt_with_passphrase", [&] {
    age::decrypt_with_passphrase(data, size, hetpipe::fuzz::fixed_passphrase,
                                 hetpipe::fuzz::fixed_log2_work + 2, "fuzz.age");
  });
  return 0;
}
