// hetpipe::encrypt / decrypt through the pipeline on CPU lanes: the same bytes for every chunk
// size and thread count (fixed file key and nonce), round trips, and errors that leave no output.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>

#include <hetpipe/hetpipe.hpp>

#include "support/age_files.hpp"
#include "support/matchers.hpp"
#include "support/options.hpp"
#include "support/random.hpp"
#include "support/temp_dir.hpp"

using namespace hetpipe;
using test::payload_of;
using test::read_all;

namespace {

encrypt_spec fixed_spec(const std::string& recipient) {
  encrypt_spec e;
  e.recipients = {recipient};
  e.fixed_file_key = std::array<std::uint8_t, 16>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
  e.fixed_nonce = std::array<std::uint8_t, 16>{9, 9, 9, 9, 9, 9, 9, 9, 1, 2, 3, 4, 5, 6, 7, 8};
  return e;
}

}  // namespace

TEST_CASE("age: the same ciphertext for every chunk size and thread count", "[age]") {
  test::temp_dir dir;
  const age_key key = generate_age_key();
  test::write_identity(dir.file("key.txt"), key);
  decrypt_spec d;
  d.identity_files = {dir.file("key.txt")};
  for (std::size_t n : {0u, 1u, 65535u, 65536u, 65537u, 5u << 20}) {
    CAPTURE(n);
    const auto data = test::random_bytes(n, n + 3);
    test::write_file(dir.file("p"), data.data(), data.size());
    std::vector<std::uint8_t> first;
    for (std::size_t chunk : {65536u, 200000u, 1u << 20, 8u << 20})
      for (unsigned threads : {1u, 3u}) {
        CAPTURE(chunk, threads);
        encrypt(dir.file("p"), dir.file("c"), fixed_spec(key.recipient),
                test::cpu_options(chunk, threads));
        const auto c = payload_of(read_all(dir.file("c")));
        if (first.empty()) first = c;
        CHECK((c == first));
        decrypt(dir.file("c"), dir.file("q"), d, test::cpu_options(chunk, threads));
        CHECK((read_all(dir.file("q")) == data));
      }
  }
}

TEST_CASE("age: a failed decryption leaves no output", "[age]") {
  test::temp_dir dir;
  const age_key key = generate_age_key(), other = generate_age_key();
  {
    std::ofstream k(dir.file("other.txt"));
    k << other.identity << "\n";
  }
  const auto data = test::random_bytes(300000, 1);
  test::write_file(dir.file("p"), data.data(), data.size());
  encrypt_spec e;
  e.recipients = {key.recipient};
  encrypt(dir.file("p"), dir.file("c"), e, test::cpu_options(65536, 2));
  decrypt_spec d;
  d.identity_files = {dir.file("other.txt")};
  REQUIRE_THROWS_MATCHES(decrypt(dir.file("c"), dir.file("q"), d, test::cpu_options(65536, 2)),
                         input_error, test::what(Catch::Matchers::Contains("no identity matched")));
  CHECK_FALSE(std::filesystem::exists(dir.file("q")));
  CHECK(age_recipient_of(key.identity) == key.recipient);
  CHECK_THROWS_AS(age_recipient_of("AGE-SECRET-KEY-1NOPE"), input_error);
}
