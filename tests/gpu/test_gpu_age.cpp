// age encryption on GPU lanes against CPU lanes: the same ciphertext bytes for a fixed file key
// and nonce, decryption back to the plaintext, and a modified chunk refused with no output.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>

#include <hetpipe/hetpipe.hpp>

#include "support/age_files.hpp"
#include "support/options.hpp"
#include "support/random.hpp"
#include "support/temp_dir.hpp"

using namespace hetpipe;
using test::payload_of;
using test::read_all;

TEST_CASE("GPU and hybrid age encryption equal the CPU byte for byte", "[gpu][age]") {
  test::temp_dir dir;
  const age_key key = generate_age_key();
  test::write_identity(dir.file("key.txt"), key);
  encrypt_spec e;
  e.recipients = {key.recipient};
  e.fixed_file_key = std::array<std::uint8_t, 16>{7, 7, 7, 1, 2, 3};
  e.fixed_nonce = std::array<std::uint8_t, 16>{5, 4, 3, 2, 1};
  decrypt_spec d;
  d.identity_files = {dir.file("key.txt")};
  for (std::size_t n : {1u, 65535u, 65536u, 65537u, (9u << 20) + 12345u}) {
    CAPTURE(n);
    const auto data = test::random_bytes(n, n);
    test::write_file(dir.file("p"), data.data(), data.size());
    encrypt(dir.file("p"), dir.file("cpu.age"), e,
            test::device_options(device_mode::cpu, 1u << 20));
    const auto want = payload_of(read_all(dir.file("cpu.age")));
    for (std::size_t chunk : {65536u, 1u << 20, 4u << 20})
      for (auto mode : {device_mode::gpu, device_mode::automatic}) {
        CAPTURE(chunk, static_cast<int>(mode));
        encrypt(dir.file("p"), dir.file("g.age"), e, test::device_options(mode, chunk));
        CHECK((payload_of(read_all(dir.file("g.age"))) == want));
        decrypt(dir.file("cpu.age"), dir.file("g.out"), d, test::device_options(mode, chunk));
        CHECK((read_all(dir.file("g.out")) == data));
      }
  }
  // A modified chunk: the GPU lane refuses it and no output appears.
  auto bad = read_all(dir.file("cpu.age"));
  bad[bad.size() - 70000] ^= 1;
  test::write_file(dir.file("bad.age"), bad.data(), bad.size());
  CHECK_THROWS_AS(decrypt(dir.file("bad.age"), dir.file("bad.out"), d,
                          test::device_options(device_mode::gpu, 1u << 20)),
                  input_error);
  CHECK_FALSE(std::filesystem::exists(dir.file("bad.out")));
}
