// age v1 building blocks: RFC 8439 / RFC 5869 / BIP 173 vectors, the specification's key example,
// C2SP CCTV age test vectors (age testkit), strict header and armor parsing, the STREAM payload,
// and interoperability with the `age` binary (Debian package "age") both ways.
#include <openssl/evp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "hetpipe/error.hpp"
#include "host/age.hpp"

namespace age = hetpipe::host::age;
using bytes = std::vector<std::uint8_t>;

namespace {

bytes unhex(std::string_view h) {
  bytes b;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2)
    b.push_back(static_cast<std::uint8_t>(std::stoul(std::string(h.substr(i, 2)), nullptr, 16)));
  return b;
}

std::string hex(const std::uint8_t* p, std::size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

std::string sha256_hex(const bytes& b) {
  unsigned char md[32];
  unsigned int len = 0;
  REQUIRE(EVP_Digest(b.data(), b.size(), md, &len, EVP_sha256(), nullptr) == 1);
  return hex(md, len);
}

bytes as_bytes(std::string_view s) {
  return bytes(s.begin(), s.end());
}

bytes test_data(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

age::parsed_header parse(std::string_view text) {
  return age::parse_header(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
}

std::string reason_of_parse(std::string_view text) {
  try {
    parse(text);
  } catch (const hetpipe::input_error& e) {
    return e.reason();
  }
  return "";
}

// The CCTV testkit's identity, file key and X25519 header ("x25519" vector).
constexpr std::string_view cctv_identity =
    "AGE-SECRET-KEY-1XMWWC06LY3EE5RYTXM9MFLAZ2U56JJJ36S0MYPDRWSVLUL66MV4QX3S7F6";
constexpr std::string_view cctv_file_key = "59454c4c4f57205355424d4152494e45";  // YELLOW SUBMARINE
constexpr std::string_view cctv_x25519_header =
    "age-encryption.org/v1\n"
    "-> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\n"
    "EmECAEcKN+n/Vs9SbWiV+Hu0r+E8R77DdWYyd83nw7U\n"
    "--- Vn+54jqiiUCE+WZcEVY3f1sqHjlu/z1LCQ/T7Xm7qI0\n";

// A scratch directory removed at the end of the test.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    char tmpl[] = "/tmp/hetpipe-age-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void write_file(const std::string& path, const bytes& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  REQUIRE(f.good());
}

bytes read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  return bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

int run(const std::string& cmd) {
  const int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool have_age_binary() {
  return run("command -v age >/dev/null 2>&1") == 0;
}

}  // namespace

TEST_CASE("age AEAD primitive reproduces RFC 8439 section 2.8.2", "[age]") {
  const bytes key = unhex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  const bytes nonce = unhex("070000004041424344454647");
  const bytes aad = unhex("50515253c0c1c2c3c4c5c6c7");
  const bytes pt = as_bytes(
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
      "future, sunscreen would be it.");
  const std::string expect =
      "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da"
      "92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585"
      "808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116"
      "1ae10b594f09e26a7e902ecbd0600691";
  bytes ct(pt.size() + age::tag_len);
  age::chacha20_poly1305_seal(key.data(), nonce.data(), aad.data(), aad.size(), pt.data(),
                              pt.size(), ct.data());
  CHECK(hex(ct.data(), ct.size()) == expect);

  bytes back(pt.size());
  REQUIRE(age::chacha20_poly1305_open(key.data(), nonce.data(), aad.data(), aad.size(), ct.data(),
                                      ct.size(), back.data()));
  CHECK(back == pt);
  ct[5] ^= 1;
  CHECK_FALSE(age::chacha20_poly1305_open(key.data(), nonce.data(), aad.data(), aad.size(),
                                          ct.data(), ct.size(), back.data()));
  CHECK(back == bytes(pt.size(), 0));  // no unauthenticated plaintext is left behind
}

TEST_CASE("age HKDF-SHA-256 reproduces RFC 5869 test case 1", "[age]") {
  const bytes ikm(22, 0x0b);
  const bytes salt = unhex("000102030405060708090a0b0c");
  const bytes info = unhex("f0f1f2f3f4f5f6f7f8f9");
  bytes okm(42);
  age::hkdf_sha256(ikm.data(), ikm.size(), salt.data(), salt.size(),
                   {reinterpret_cast<const char*>(info.data()), info.size()}, okm.data(),
                   okm.size());
  CHECK(hex(okm.data(), okm.size()) ==
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST_CASE("age Bech32 follows BIP 173 and age's key encodings", "[age]") {
  SECTION("BIP 173 valid strings decode, invalid ones are rejected") {
    for (const char* s :
         {"A12UEL5L", "a12uel5l", "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", "?1ezyfcl"})
      CHECK_NOTHROW(age::bech32_decode(s));
    CHECK(age::bech32_decode("A12UEL5L").hrp == "a");
    for (const char* s : {"pzry9x0s0muk",   // no separator
                          "1pzry9x0s0muk",  // empty HRP
                          "x1b4n0q5v",      // invalid data character
                          "li1dgmt3",       // checksum too short
                          "A1G7SGD8",       // checksum computed over the upper-case form
                          "a12UEL5L",       // mixed case
                          "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxx"})  // bad checksum
      CHECK_THROWS_AS(age::bech32_decode(s), hetpipe::input_error);
  }

  SECTION("the specification's example key and recipient") {
    age::identity id;
    id.secret.fill(0x42);
    CHECK(age::encode_identity(id) ==
          "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX");
    CHECK(age::encode_recipient(age::recipient_of(id)) ==
          "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj");
  }

  SECTION("generated keys round-trip, in either case") {
    for (int i = 0; i < 20; ++i) {
      const age::identity id = age::generate_identity();
      const std::string s = age::encode_identity(id);
      CHECK(s.rfind("AGE-SECRET-KEY-1", 0) == 0);
      CHECK(age::parse_identity(s).secret == id.secret);
      std::string lower = s;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      CHECK(age::parse_identity(lower).secret == id.secret);
      const age::recipient r = age::recipient_of(id);
      const std::string rs = age::encode_recipient(r);
      CHECK(rs.rfind("age1", 0) == 0);
      CHECK(age::parse_recipient(rs) == r);
    }
  }

  SECTION("corruptions are rejected with a reason") {
    const age::identity id = age::generate_identity();
    const std::string s = age::encode_identity(id);
    const std::string r = age::encode_recipient(age::recipient_of(id));
    auto reason = [](auto f) {
      try {
        f();
      } catch (const hetpipe::input_error& e) {
        return e.reason();
      }
      return std::string("(accepted)");
    };
    for (std::size_t pos : {std::size_t{16}, s.size() / 2, s.size() - 1}) {
      std::string bad = s;
      bad[pos] = bad[pos] == 'Q' ? 'P' : 'Q';
      CHECK_THAT(reason([&] { age::parse_identity(bad); }), Catch::Contains("checksum"));
    }
    std::string mixed = s;
    mixed[20] = static_cast<char>(std::tolower(static_cast<unsigned char>(mixed[20])));
    if (mixed != s)
      CHECK_THAT(reason([&] { age::parse_identity(mixed); }), Catch::Contains("case"));
    CHECK_THAT(reason([&] { age::parse_identity(r); }), Catch::Contains("not an age identity"));
    CHECK_THAT(reason([&] { age::parse_recipient(s); }),
               Catch::Contains("an age secret key is not a recipient"));
    CHECK_THAT(reason([&] { age::parse_recipient("ssh-ed25519 AAAAC3Nza x@y"); }),
               Catch::Contains("SSH keys are not supported"));
    CHECK_THAT(reason([&] { age::parse_identity("-----BEGIN OPENSSH PRIVATE KEY-----"); }),
               Catch::Contains("SSH keys are not supported"));
    const bytes short_key(31, 7);
    const std::string r31 = age::bech32_encode("age", short_key.data(), short_key.size());
    CHECK_THAT(reason([&] { age::parse_recipient(r31); }), Catch::Contains("31 bytes"));
    CHECK_THAT(reason([&] { age::parse_recipient(r.substr(0, r.size() - 1)); }),
               Catch::Contains("checksum"));
    // Key bytes never appear in a message.
    CHECK(reason([&] { age::parse_recipient(s); }).find(s.substr(16, 20)) == std::string::npos);
  }
}

TEST_CASE("age identity files skip comments and blank lines and name bad lines", "[age]") {
  const age::identity a = age::generate_identity(), b = age::generate_identity();
  const std::string text = "# created: today\r\n# public key: age1...\n\n" +
                           age::encode_identity(a) + "\r\n  \n  " + age::encode_identity(b) +
                           "  \n# end";
  const auto ids = age::parse_identity_file(text, "keys.txt");
  REQUIRE(ids.size() == 2);
  CHECK(ids[0].secret == a.secret);
  CHECK(ids[1].secret == b.secret);

  try {
    age::parse_identity_file("# x\n" + age::encode_identity(a) + "\nAGE-SECRET-KEY-1QQQQ\n",
                             "keys.txt");
    FAIL("accepted a bad line");
  } catch (const hetpipe::input_error& e) {
    CHECK(e.file() == "keys.txt");
    CHECK_THAT(e.reason(), Catch::StartsWith("line 3:"));
  }
  CHECK_THROWS_AS(age::parse_identity_file("# only comments\n\n"), hetpipe::input_error);
}

TEST_CASE("age X25519 stanzas unwrap with the right identity only", "[age]") {
  const age::identity id = age::generate_identity(), other = age::generate_identity();
  const age::file_key fk = age::generate_file_key();
  const age::stanza s = age::wrap_x25519(fk, age::recipient_of(id));
  CHECK(s.type == "X25519");
  REQUIRE(s.args.size() == 1);
  CHECK(s.args[0].size() == 43);
  CHECK(s.body.size() == 32);

  const auto got = age::unwrap_x25519(s, id);
  REQUIRE(got);
  CHECK(got->bytes == fk.bytes);
  CHECK_FALSE(age::unwrap_x25519(s, other));

  // A given ephemeral secret makes the stanza reproducible (tests only).
  std::array<std::uint8_t, 32> eph{};
  eph.fill(0x5a);
  const age::stanza d1 = age::wrap_x25519(fk, age::recipient_of(id), eph);
  const age::stanza d2 = age::wrap_x25519(fk, age::recipient_of(id), eph);
  CHECK(d1.args == d2.args);
  CHECK(d1.body == d2.body);
  CHECK(d1.args[0].size() == 43);
  REQUIRE(age::unwrap_x25519(d1, id));
  CHECK(age::unwrap_x25519(d1, id)->bytes == fk.bytes);

  age::stanza foreign = s;
  foreign.type = "scrypt";
  CHECK_FALSE(age::unwrap_x25519(foreign, id));  // not ours: ignored
  age::stanza extra = s;
  extra.args.push_back("x");
  CHECK_THROWS_AS(age::unwrap_x25519(extra, id), hetpipe::input_error);
  age::stanza long_body = s;
  long_body.body.push_back(0);
  CHECK_THROWS_AS(age::unwrap_x25519(long_body, id), hetpipe::input_error);
  age::stanza zero_share = s;
  zero_share.args[0] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";  // low order: shared secret 0
  CHECK_THROWS_AS(age::unwrap_x25519(zero_share, id), hetpipe::input_error);
}

TEST_CASE("age scrypt stanzas unwrap with the right passphrase and bounded work", "[age]") {
  const age::file_key fk = age::generate_file_key();
  const age::stanza s = age::wrap_scrypt(fk, "correct horse battery staple", 10);
  CHECK(s.type == "scrypt");
  REQUIRE(s.args.size() == 2);
  CHECK(s.args[1] == "10");
  const auto got = age::unwrap_scrypt(s, "correct horse battery staple", 20);
  REQUIRE(got);
  CHECK(got->bytes == fk.bytes);
  CHECK_FALSE(age::unwrap_scrypt(s, "wrong horse", 20));
  CHECK_THROWS_AS(age::unwrap_scrypt(s, "correct horse battery staple", 9), hetpipe::input_error);
  for (const char* w : {"010", "+10", "0x0a", "", "10a", "99999999999999999999"}) {
    age::stanza bad = s;
    bad.args[1] = w;
    CHECK_THROWS_AS(age::unwrap_scrypt(bad, "correct horse battery staple", 20),
                    hetpipe::input_error);
  }
  CHECK_THROWS_AS(age::wrap_scrypt(fk, "p", 0), hetpipe::usage_error);
  const std::array<std::uint8_t, 16> salt{1, 2, 3};
  CHECK(age::wrap_scrypt(fk, "p", 10, salt).body == age::wrap_scrypt(fk, "p", 10, salt).body);

  age::header alone{{s}, {}};
  CHECK_NOTHROW(age::check_scrypt_alone(alone));
  age::header mixed{{s, age::wrap_x25519(fk, age::recipient_of(age::generate_identity()))}, {}};
  CHECK_THROWS_AS(age::check_scrypt_alone(mixed), hetpipe::input_error);

  const bytes msg = test_data(1000, 3);
  const bytes file = age::encrypt_with_passphrase("pw", 10, msg.data(), msg.size());
  CHECK(age::decrypt_with_passphrase(file.data(), file.size(), "pw", 18) == msg);
  CHECK_THROWS_AS(age::decrypt_with_passphrase(file.data(), file.size(), "pW", 18),
                  hetpipe::input_error);
}

TEST_CASE("age headers serialize canonically and parse back", "[age]") {
  const age::file_key fk = age::generate_file_key();
  std::vector<age::stanza> stanzas;
  std::uint32_t seed = 1;
  for (std::size_t n : {0, 1, 47, 48, 49, 96, 100}) {
    stanzas.push_back({"test-" + std::to_string(n), {"a", "b=c", "~!"}, test_data(n, seed++)});
  }
  stanzas.push_back({"noargs", {}, test_data(32, 99)});
  const std::string text = age::seal_header(stanzas, fk);

  // Body lines: 64 columns, then a final line shorter than 64 (empty after 48 and 96 bytes).
  CHECK(text.find("-> test-0 a b=c ~!\n\n-> test-1") != std::string::npos);
  const std::size_t at48 = text.find("-> test-48 a b=c ~!\n");
  REQUIRE(at48 != std::string::npos);
  const std::size_t body48 = text.find('\n', at48) + 1;
  CHECK(text.substr(body48 + 64, 2) == "\n\n");
  const std::size_t at96 = text.find("-> test-96 a b=c ~!\n");
  const std::size_t body96 = text.find('\n', at96) + 1;
  CHECK(text.substr(body96 + 64, 1) == "\n");
  CHECK(text.substr(body96 + 129, 2) == "\n\n");
  const std::size_t at49 = text.find("-> test-49 a b=c ~!\n");
  const std::size_t body49 = text.find('\n', at49) + 1;
  CHECK(text[body49 + 64] == '\n');
  CHECK(text[body49 + 67] == '\n');  // 49 bytes: 64 columns, then 2
  const std::size_t at47 = text.find("-> test-47 a b=c ~!\n");
  const std::size_t body47 = text.find('\n', at47) + 1;
  CHECK(text.substr(body47 + 63, 4) == "\n-> ");  // 47 bytes: one line of 63 columns

  const std::string with_payload = text + "PAYLOAD";
  const auto p = parse(with_payload);
  REQUIRE(p.hdr.stanzas.size() == stanzas.size());
  for (std::size_t i = 0; i < stanzas.size(); ++i) {
    CHECK(p.hdr.stanzas[i].type == stanzas[i].type);
    CHECK(p.hdr.stanzas[i].args == stanzas[i].args);
    CHECK(p.hdr.stanzas[i].body == stanzas[i].body);
  }
  CHECK(with_payload.substr(p.payload_offset) == "PAYLOAD");
  CHECK(with_payload.substr(p.mac_input_len - 3, 4) == "--- ");
  CHECK(age::serialize_header(p.hdr) == text);
  CHECK(age::serialize_header_without_mac(p.hdr) == text.substr(0, p.mac_input_len));
  const auto* data = reinterpret_cast<const std::uint8_t*>(with_payload.data());
  CHECK(age::verify_header_mac(fk, data, p));
  CHECK_FALSE(age::verify_header_mac(age::generate_file_key(), data, p));
  CHECK(age::find_header_end(data, with_payload.size()) == p.payload_offset);
  CHECK_FALSE(age::find_header_end(data, p.payload_offset - 1));

  std::string tampered = with_payload;
  tampered[tampered.find("b=c")] = 'B';
  CHECK_FALSE(age::verify_header_mac(fk, reinterpret_cast<const std::uint8_t*>(tampered.data()),
                                     parse(tampered)));

  CHECK_THROWS_AS(age::serialize_header({{{"bad type", {}, {}}}, {}}), hetpipe::usage_error);
  CHECK_THROWS_AS(age::serialize_header({{{"t", {""}, {}}}, {}}), hetpipe::usage_error);
  CHECK_THROWS_AS(age::serialize_header({}), hetpipe::usage_error);
}

TEST_CASE("age header parsing rejects non-canonical encodings", "[age]") {
  const std::string v = "age-encryption.org/v1\n";
  const std::string mac = "--- Vn+54jqiiUCE+WZcEVY3f1sqHjlu/z1LCQ/T7Xm7qI0\n";
  const std::string line64(64, 'A');
  struct bad {
    std::string text, reason;
  };
  const std::vector<bad> cases = {
      {"age-encryption.org/v2\n-> a\n\n" + mac, "unsupported age format version \"v2\""},
      {"age-encryption.org/v1\r\n-> a\n\n" + mac, "unsupported age format version"},
      {"not-age\n", "not an age file"},
      {v + mac, "no recipient stanzas"},
      {v + "-> a\nAA==\n" + mac, "padding"},
      {v + "-> a\nAB\n" + mac, "non-canonical"},  // 'B' leaves a non-zero trailing bit
      {v + "-> a\nAAAAA\n" + mac, "impossible length"},
      {v + "-> a\n" + line64 + "A\n" + mac, "longer than 64"},
      {v + "-> a\n" + line64 + "\n" + mac, "shorter than 64"},  // missing the final line
      {v + "-> a\n" + mac, "shorter than 64"},                  // missing body
      {v + "-> a\nA A\n" + mac, "invalid character"},
      {v + "-> \n\n" + mac, "no arguments"},
      {v + "->\n\n" + mac, "expected a stanza"},
      {v + "-> a  b\n\n" + mac, "empty stanza argument"},
      {v + "-> a b \n\n" + mac, "empty stanza argument"},
      {v + "-> a\r\n\n" + mac, "non-VCHAR"},
      {v + "-> a\n\r\n" + mac, "invalid character"},
      {v + "-> a\n\n---\n", "malformed MAC line"},
      {v + "-> a\n\n---  Vn+54jqiiUCE+WZcEVY3f1sqHjlu/z1LCQ/T7Xm7qI0\n", "malformed MAC line"},
      {v + "-> a\n\n--- Vn+54jqiiUCE+WZcEVY3f1sqHjlu/z1LCQ/T7Xm7qI0 \n", "malformed MAC line"},
      {v + "-> a\n\n--- Vn+54jqiiUCE+WZcEVY3f1sqHjlu/z1LCQ/T7Xm7qI1\n", "non-canonical"},
      {v + "-> a\n\n--- Vn+54jqiiUCE+WZcEVY3f1sqHjlu/z1LCQ/T7Xm7qI0", "truncated"},
      {v + "-> a\n\n", "truncated"},
      {v + "foo\n", "expected a stanza"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    CHECK_THAT(reason_of_parse(c.text), Catch::Contains(c.reason));
  }
  CHECK(reason_of_parse(v + "-> a\n\n" + mac).empty());
}

TEST_CASE("age header parsing agrees with CCTV testkit vectors", "[age]") {
  const age::identity id = age::parse_identity(cctv_identity);
  const bytes fk_expect = unhex(cctv_file_key);

  SECTION("x25519: the stanza unwraps to the file key and the MAC verifies") {
    const auto p = parse(cctv_x25519_header);
    REQUIRE(p.hdr.stanzas.size() == 1);
    const auto fk = age::unwrap(p.hdr, {id});
    REQUIRE(fk);
    CHECK(bytes(fk->bytes.begin(), fk->bytes.end()) == fk_expect);
    CHECK(age::verify_header_mac(
        *fk, reinterpret_cast<const std::uint8_t*>(cctv_x25519_header.data()), p));
    CHECK(p.payload_offset == cctv_x25519_header.size());
  }
  SECTION("stanza_empty_last_line: an unknown stanza with a 48-byte body is accepted") {
    const std::string text =
        "age-encryption.org/v1\n"
        "-> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\n"
        "EmECAEcKN+n/Vs9SbWiV+Hu0r+E8R77DdWYyd83nw7U\n"
        "-> stanza\n"
        "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\n"
        "\n"
        "--- +3PC416gxa7Mk7WxpX0kb6DVfSuCun0niGre+G4bZhE\n";
    const auto p = parse(text);
    REQUIRE(p.hdr.stanzas.size() == 2);
    CHECK(p.hdr.stanzas[1].body == bytes(48, 'A'));
    const auto fk = age::unwrap(p.hdr, {id});
    REQUIRE(fk);
    CHECK(age::verify_header_mac(*fk, reinterpret_cast<const std::uint8_t*>(text.data()), p));
  }
  SECTION("stanza_not_canonical and hmac_not_canonical are header failures") {
    CHECK_THAT(reason_of_parse("age-encryption.org/v1\n"
                               "-> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\n"
                               "EmECAEcKN+n/Vs9SbWiV+Hu0r+E8R77DdWYyd83nw7U\n"
                               "-> stanza\n"
                               "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\n"
                               "QUF\n"
                               "--- nQM2VCzmNLPrUurNWN+SW9wVp/9uTMQ/6CTUM7l8c84\n"),
               Catch::Contains("non-canonical"));
    CHECK_THAT(reason_of_parse("age-encryption.org/v1\n"
                               "-> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\n"
                               "hjabGXwSLQ9c3S6Lw2i+S2Tu2fiwQHHslbBN6B41FLE\n"
                               "--- WyJp9F/9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwhrcNh\n"),
               Catch::Contains("non-canonical"));
  }
}

TEST_CASE("age CCTV armored files decrypt to the expected payloads", "[age]") {
  const std::vector<age::identity> ids = {age::parse_identity(cctv_identity)};
  const std::string head =
      "-----BEGIN AGE ENCRYPTED FILE-----\n"
      "YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBURWlGMHlwcXIrYnB2Y3FY\n"
      "TnlDVkpwTDdPdXdQZFZ3UEw3S1FFYkZET0NjCkVtRUNBRWNLTituL1ZzOVNiV2lW\n"
      "K0h1MHIrRThSNzdEZFdZeWQ4M253N1UKLS0tIFZuKzU0anFpaVVDRStXWmNFVlkz\n";
  const std::string armored = head +
                              "ZjFzcUhqbHUvejFMQ1EvVDdYbTdxSTAK7s9ix86RtDMnTmjU8vkTTLdMW/73vqpS\n"
                              "yPC8DpksHoMx+2Y=\n"
                              "-----END AGE ENCRYPTED FILE-----\n";
  const std::string full_last_line =
      head +
      "ZjFzcUhqbHUvejFMQ1EvVDdYbTdxSTAK7s9ix86RtDMnTmjU8vkTTLdMW3bj4iHS\n"
      "YS3WWUtZB5wJqKgEe8kpsp0iOnD2CNG4DVKBC0Z7SAcCFb8xdwV9CRavSEE7OU1c\n"
      "-----END AGE ENCRYPTED FILE-----\n";
  auto dec = [&](const std::string& t) {
    return age::decrypt(reinterpret_cast<const std::uint8_t*>(t.data()), t.size(), ids);
  };
  CHECK(sha256_hex(dec(armored)) ==
        "013f54400c82da08037759ada907a8b864e97de81c088a182062c4b5622fd2ab");
  CHECK(sha256_hex(dec(full_last_line)) ==
        "724a112a2cac139a4fca3ea0f799f2e5ccd1d0db46af654dee40567bff16ee33");

  // armor_crlf, armor_whitespace_outside, armor_no_eol: accepted.
  std::string crlf;
  for (char c : armored) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  CHECK_NOTHROW(dec(crlf));
  CHECK_NOTHROW(dec("\n   \t\n" + armored + "\n   \t\n"));
  CHECK_NOTHROW(dec(armored.substr(0, armored.size() - 1)));

  // The binary form re-armors to the same text (the armor is canonical).
  const bytes bin = age::dearmor(armored);
  CHECK(age::armor(bin.data(), bin.size()) == armored);
  // The binary form decrypts too, and any flipped payload bit is caught.
  CHECK(sha256_hex(age::decrypt(bin.data(), bin.size(), ids)) ==
        "013f54400c82da08037759ada907a8b864e97de81c088a182062c4b5622fd2ab");
  bytes flipped = bin;
  flipped.back() ^= 0x80;
  CHECK_THROWS_AS(age::decrypt(flipped.data(), flipped.size(), ids), hetpipe::input_error);
  bytes extended = bin;
  extended.push_back(0);
  CHECK_THROWS_AS(age::decrypt(extended.data(), extended.size(), ids), hetpipe::input_error);
  CHECK_THROWS_AS(age::decrypt(bin.data(), bin.size(), {age::generate_identity()}),
                  hetpipe::input_error);
}

TEST_CASE("age armor round-trips and rejects non-canonical PEM", "[age]") {
  for (std::size_t n : {0, 1, 2, 3, 47, 48, 49, 95, 96, 97, 1000}) {
    const bytes b = test_data(n, static_cast<std::uint32_t>(n) + 7);
    const std::string a = age::armor(b.data(), b.size());
    CHECK(age::dearmor(a) == b);
  }
  const bytes b = test_data(100, 5);
  const std::string a = age::armor(b.data(), b.size());  // 136 columns: 64, 64, 8
  const std::size_t l2 = a.find('\n') + 1;               // first body line
  const std::size_t l3 = l2 + 65;                        // second body line
  auto reason = [](const std::string& t) {
    try {
      age::dearmor(t);
    } catch (const hetpipe::input_error& e) {
      return e.reason();
    }
    return std::string("(accepted)");
  };
  CHECK_THAT(reason("garbage\n" + a), Catch::Contains("does not start"));
  CHECK_THAT(reason(a + "garbage\n"), Catch::Contains("does not end"));
  CHECK_THAT(reason(a.substr(0, l3) + "\n" + a.substr(l3)), Catch::Contains("blank line"));
  CHECK_THAT(reason(a.substr(0, l2 + 10) + "\n" + a.substr(l2 + 10)),
             Catch::Contains("shorter than 64"));
  CHECK_THAT(reason(a.substr(0, l2 + 64) + a.substr(l3)), Catch::Contains("longer than 64"));
  CHECK_THAT(reason(a.substr(0, l2 + 5) + " " + a.substr(l2 + 6)),
             Catch::Contains("invalid character"));
  std::string lower = a;
  lower.replace(0, 10, "-----begin");
  CHECK_THAT(reason(lower), Catch::Contains("does not start"));
  // 100 bytes end with "==" padding; non-zero bits before it, or padding removed, are refused.
  const std::size_t end = a.find("==\n");
  REQUIRE(end != std::string::npos);
  std::string bits = a;
  bits[end - 1] = bits[end - 1] == 'A' ? 'B' : static_cast<char>(bits[end - 1] ^ 1);
  CHECK_THAT(reason(bits), Catch::Contains("non-canonical"));
  std::string nopad = a;
  nopad.erase(end, 2);
  CHECK_THAT(reason(nopad), Catch::Contains("multiple of 4"));
  CHECK_THAT(reason(a.substr(0, a.find("-----END"))), Catch::Contains("does not end"));
  CHECK_THAT(reason("-----BEGIN AGE ENCRYPTED FILE-----\nProc-Type: 4\n\n" + a.substr(l2)),
             Catch::Contains("invalid character"));
}

// The streaming armorer and dearmorer: any split of the input gives the whole-text result, the
// same bytes or the same refusal.
TEST_CASE("age armor streams in pieces of any size", "[age]") {
  const auto armor_in = [](const bytes& b, std::size_t piece) {
    age::armorer a;
    std::string t;
    for (std::size_t at = 0; at < b.size(); at += piece)
      a.put(b.data() + at, std::min(piece, b.size() - at), t);
    a.finish(t);
    return t;
  };
  const auto dearmor_in = [](const std::string& t, std::size_t piece) {
    age::dearmorer d("f");
    bytes out;
    try {
      for (std::size_t at = 0; at < t.size(); at += piece)
        d.put(std::string_view(t).substr(at, piece), out);
      d.finish(out);
    } catch (const hetpipe::input_error& e) {
      CHECK(e.file() == "f");
      return std::string("refused: ") + e.reason();
    }
    return std::string(out.begin(), out.end());
  };
  const auto dearmor_whole = [](const std::string& t) {
    try {
      const bytes b = age::dearmor(t, "f");
      return std::string(b.begin(), b.end());
    } catch (const hetpipe::input_error& e) {
      return std::string("refused: ") + e.reason();
    }
  };
  for (std::size_t n : {0, 1, 47, 48, 49, 96, 100, 1000, 5000}) {
    INFO("n = " << n);
    const bytes b = test_data(n, static_cast<std::uint32_t>(n) + 3);
    const std::string a = age::armor(b.data(), b.size());
    for (std::size_t piece : {1, 2, 3, 47, 48, 49, 64, 65, 66, 1000}) {
      INFO("piece = " << piece);
      CHECK(armor_in(b, piece) == a);
      CHECK(dearmor_in(a, piece) == std::string(b.begin(), b.end()));
    }
  }
  const bytes b = test_data(100, 5);
  const std::string a = age::armor(b.data(), b.size());
  const std::size_t l2 = a.find('\n') + 1, l3 = l2 + 65, end = a.find("-----END");
  std::string crlf;
  for (char c : a) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  const std::string texts[] = {
      a,
      crlf,
      std::string(300, ' ') + "\n\t" + a + std::string(300, '\n'),
      a.substr(0, a.size() - 1) + std::string(300, ' '),  // the END line's end: spaces, no newline
      a.substr(0, a.size() - 1) + std::string(300, ' ') + "\n  \r\n",
      "",
      " \n\t ",
      "garbage\n" + a,
      a + "garbage\n",
      a.substr(0, a.size() - 1) + std::string(300, ' ') + "x",
      a.substr(0, l3) + "\n" + a.substr(l3),
      a.substr(0, l2 + 10) + "\n" + a.substr(l2 + 10),
      a.substr(0, l2 + 64) + a.substr(l3),
      a.substr(0, l2) + std::string(5000, 'A') + "\n" + a.substr(l2),
      a.substr(0, l2 + 5) + " " + a.substr(l2 + 6),
      a.substr(0, end),
      a.substr(0, l2 - 1),  // the BEGIN line alone
      a.substr(0, l2 - 1) + std::string(200, ' '),
      a.substr(0, l2) + "AAAA====\n" + a.substr(end),
      a.substr(0, l2) + "AA=A\n" + a.substr(end),
      a.substr(0, l2) + "AA==\n" + a.substr(end),
      a.substr(0, l2) + "AB==\n" + a.substr(end),
      a.substr(0, l2) + "AAA\n" + a.substr(end),
      a.substr(0, l2) + a.substr(end),  // no body: an empty file
      // Lines past longest_line with a character no armor holds after it, or before it (found by
      // fuzz_age_header: the whole text said "invalid character", the pieces "longer than 64").
      a.substr(0, l2) + std::string(90, 'A') + "-----\n" + a.substr(l2),
      a.substr(0, l2) + "AA-" + std::string(100, 'A') + "\n" + a.substr(l2),
      // Text after the END line on the same line, past longest_line or within it (fuzz again: the
      // whole text said "longer than 64 columns", the pieces "does not end").
      a.substr(0, a.size() - 1) + std::string(60, ' ') + "x\n",
      a.substr(0, a.size() - 1) + " x\n",
      // ... after a last line that is not sound: that is said first, whole or cut.
      a.substr(0, end - 1) + "A\n" + a.substr(end, a.size() - end - 1) + std::string(60, ' ') +
          "x\n",
  };
  for (const std::string& t : texts) {
    INFO("text:\n" << t);
    const std::string whole = dearmor_whole(t);
    for (std::size_t piece : {1, 2, 7, 64, 65, 81, 100000}) {
      INFO("piece = " << piece);
      CHECK(dearmor_in(t, piece) == whole);
    }
  }
  CHECK(dearmor_whole(texts[1]) == std::string(b.begin(), b.end()));
  CHECK(dearmor_whole(texts[2]) == std::string(b.begin(), b.end()));
  CHECK(dearmor_whole(texts[3]) == std::string(b.begin(), b.end()));
  CHECK(dearmor_whole(texts[4]) == std::string(b.begin(), b.end()));
  CHECK_THAT(dearmor_whole(texts[5]), Catch::Contains("empty input"));
  CHECK_THAT(dearmor_whole(texts[9]), Catch::Contains("does not end"));
  CHECK_THAT(dearmor_whole(texts[13]), Catch::Contains("longer than 64"));
  CHECK_THAT(dearmor_whole(texts[24]), Catch::Contains("longer than 64"));
  CHECK_THAT(dearmor_whole(texts[25]), Catch::Contains("longer than 64"));
  CHECK_THAT(dearmor_whole(texts[26]), Catch::Contains("does not end"));
  CHECK_THAT(dearmor_whole(texts[27]), Catch::Contains("does not end"));
  CHECK_THAT(dearmor_whole(texts[28]), Catch::Contains("multiple of 4"));
  CHECK_THAT(dearmor_whole(texts[16]), Catch::Contains("does not end"));
  CHECK_THAT(dearmor_whole(texts[18]), Catch::Contains("too much base64 padding"));
  CHECK_THAT(dearmor_whole(texts[19]), Catch::Contains("padding inside"));
  CHECK(dearmor_whole(texts[20]) == std::string(1, '\0'));
  CHECK_THAT(dearmor_whole(texts[21]), Catch::Contains("non-canonical"));
  CHECK_THAT(dearmor_whole(texts[22]), Catch::Contains("multiple of 4"));
  CHECK(dearmor_whole(texts[23]).empty());
}

TEST_CASE("age STREAM batch helpers match chunk-by-chunk sealing", "[age]") {
  const age::file_key fk = age::generate_file_key();
  std::uint8_t nonce[16];
  age::random_bytes(nonce, sizeof nonce);
  const age::stream_key k = age::payload_key(fk, nonce);

  const auto n0 = age::chunk_nonce(0x0102030405060708ull, true);
  CHECK(hex(n0.data(), n0.size()) == "000000010203040506070801");
  const auto n1 = age::chunk_nonce(1, false);
  CHECK(hex(n1.data(), n1.size()) == "000000000000000000000100");

  for (std::size_t n : {std::size_t{0}, std::size_t{1}, age::chunk_size - 1, age::chunk_size,
                        age::chunk_size + 1, std::size_t{200000}, 3 * age::chunk_size}) {
    INFO("n = " << n);
    const bytes pt = test_data(n, static_cast<std::uint32_t>(n));
    bytes batch(age::sealed_size(n, true));
    age::seal_chunks(k, 0, true, pt.data(), n, batch.data());

    // One chunk at a time, the last one flagged.
    bytes single;
    std::size_t off = 0;
    std::uint64_t counter = 0;
    do {
      const std::size_t len = std::min(age::chunk_size, n - off);
      bytes c(len + age::tag_len);
      age::seal_chunk(k, counter++, off + len == n, pt.data() + off, len, c.data());
      single.insert(single.end(), c.begin(), c.end());
      off += len;
    } while (off < n);
    CHECK(batch == single);

    bytes back(age::opened_size(batch.size(), true, 0));
    CHECK(back.size() == n);
    CHECK(age::open_chunks(k, 0, true, batch.data(), batch.size(), back.data()));
    CHECK(back == pt);
    if (n > 0) {
      bytes bad = batch;
      bad[bad.size() / 2] ^= 4;
      std::uint64_t failed = ~std::uint64_t{0};
      CHECK_FALSE(age::open_chunks(k, 0, true, bad.data(), bad.size(), back.data(), &failed));
      CHECK(failed == bad.size() / 2 / age::sealed_chunk_size);  // the chunk that was changed
    }
  }

  // seal_chunk / open_chunk work in place (out == in).
  {
    const bytes pt = test_data(1000, 9);
    bytes expect(pt.size() + age::tag_len), buf(pt.size() + age::tag_len);
    age::seal_chunk(k, 7, true, pt.data(), pt.size(), expect.data());
    std::copy(pt.begin(), pt.end(), buf.begin());
    age::seal_chunk(k, 7, true, buf.data(), pt.size(), buf.data());
    CHECK(buf == expect);
    REQUIRE(age::open_chunk(k, 7, true, buf.data(), buf.size(), buf.data()));
    CHECK(bytes(buf.begin(), buf.begin() + 1000) == pt);
    CHECK_FALSE(age::open_chunk(k, 7, false, expect.data(), expect.size(), buf.data()));
  }

  // A payload cut into pipeline buffers of whole chunks seals to the same bytes as one call.
  const std::size_t n = 5 * age::chunk_size + 123;
  const bytes pt = test_data(n, 77);
  bytes whole(age::sealed_size(n, true));
  age::seal_chunks(k, 0, true, pt.data(), n, whole.data());
  bytes parts(whole.size());
  age::seal_chunks(k, 0, false, pt.data(), 2 * age::chunk_size, parts.data());
  age::seal_chunks(k, 2, true, pt.data() + 2 * age::chunk_size, n - 2 * age::chunk_size,
                   parts.data() + 2 * age::sealed_chunk_size);
  CHECK(parts == whole);
  bytes back(n);
  CHECK(age::open_chunks(k, 0, false, whole.data(), 2 * age::sealed_chunk_size, back.data()));
  CHECK(age::open_chunks(k, 2, true, whole.data() + 2 * age::sealed_chunk_size,
                         whole.size() - 2 * age::sealed_chunk_size,
                         back.data() + 2 * age::chunk_size));
  CHECK(back == pt);
  // Reordering chunks or dropping the final one is detected.
  CHECK_FALSE(age::open_chunks(k, 1, false, whole.data(), 2 * age::sealed_chunk_size, back.data()));
  CHECK_FALSE(age::open_chunks(k, 0, true, whole.data(), 2 * age::sealed_chunk_size, back.data()));

  // Impossible layouts.
  CHECK_THROWS_AS(age::seal_chunks(k, 0, false, pt.data(), 100, parts.data()),
                  hetpipe::usage_error);
  CHECK_THROWS_AS(age::seal_chunks(k, 3, true, pt.data(), 0, parts.data()), hetpipe::usage_error);
  CHECK_THROWS_AS(age::opened_size(0, true, 0), hetpipe::input_error);
  CHECK_THROWS_AS(age::opened_size(15, true, 0), hetpipe::input_error);
  CHECK(age::opened_size(16, true, 0) == 0);
  CHECK_THROWS_AS(age::opened_size(age::sealed_chunk_size + 16, true, 0), hetpipe::input_error);
  CHECK_THROWS_AS(age::opened_size(age::sealed_chunk_size + 1, false, 0), hetpipe::usage_error);
  CHECK(age::opened_size(2 * age::sealed_chunk_size, true, 0) == 2 * age::chunk_size);
}

TEST_CASE("age batch sealing from several threads equals one thread", "[age]") {
  const age::file_key fk = age::generate_file_key();
  const std::uint8_t nonce[16] = {1, 2, 3};
  const age::stream_key k = age::payload_key(fk, nonce);
  constexpr std::size_t per = 4 * age::chunk_size, parts = 8;
  const std::size_t n = parts * per - 1000;
  const bytes pt = test_data(n, 123);
  bytes one(age::sealed_size(n, true)), many(one.size()), back(n);
  age::seal_chunks(k, 0, true, pt.data(), n, one.data());
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < parts; ++t)
    threads.emplace_back([&, t] {
      const std::size_t off = t * per, len = std::min(per, n - off);
      const bool last = t + 1 == parts;
      for (int rep = 0; rep < 3; ++rep)
        age::seal_chunks(k, t * (per / age::chunk_size), last, pt.data() + off, len,
                         many.data() + t * (per + 4 * age::tag_len));
    });
  for (auto& th : threads) th.join();
  CHECK(many == one);
  threads.clear();
  std::vector<int> ok(parts, 0);
  for (std::size_t t = 0; t < parts; ++t)
    threads.emplace_back([&, t] {
      const std::size_t off = t * (per + 4 * age::tag_len);
      const std::size_t len = std::min(per + 4 * age::tag_len, one.size() - off);
      ok[t] = age::open_chunks(k, t * (per / age::chunk_size), t + 1 == parts, one.data() + off,
                               len, back.data() + t * per);
    });
  for (auto& th : threads) th.join();
  CHECK(std::count(ok.begin(), ok.end(), 1) == static_cast<long>(parts));
  CHECK(back == pt);
}

TEST_CASE("age whole-file round trip through the library", "[age]") {
  const age::identity a = age::generate_identity(), b = age::generate_identity();
  for (std::size_t n : {0, 1, 65536, 65537}) {
    const bytes msg = test_data(n, static_cast<std::uint32_t>(n) + 1);
    const bytes file =
        age::encrypt({age::recipient_of(a), age::recipient_of(b)}, msg.data(), msg.size());
    CHECK(age::decrypt(file.data(), file.size(), {b}) == msg);
    const std::string arm = age::armor(file.data(), file.size());
    CHECK(age::decrypt(reinterpret_cast<const std::uint8_t*>(arm.data()), arm.size(), {a}) == msg);
  }
}

TEST_CASE("age files interoperate with the age binary", "[age]") {
  if (!have_age_binary()) {
    WARN("the age binary is not installed (apt-get install age): interoperability not checked");
    return;
  }
  temp_dir dir;
  const age::identity id = age::generate_identity();
  const std::string recip = age::encode_recipient(age::recipient_of(id));
  {
    std::ofstream f(dir / "id.txt");
    f << "# hetpipe test identity\n# public key: " << recip << "\n"
      << age::encode_identity(id) << "\n";
  }
  const std::vector<age::identity> ids = {id};

  for (std::size_t n : {0, 1, 65535, 65536, 65537, 200000}) {
    INFO("n = " << n);
    const bytes msg = test_data(n, static_cast<std::uint32_t>(n) + 11);
    write_file(dir / "plain", msg);

    SECTION("ours decrypts with age -d (n = " + std::to_string(n) + ")") {
      const age::recipient other = age::recipient_of(age::generate_identity());
      const bytes file = age::encrypt({other, age::recipient_of(id)}, msg.data(), msg.size());
      write_file(dir / "ours.age", file);
      REQUIRE(run("age -d -i " + (dir / "id.txt") + " " + (dir / "ours.age") + " > " +
                  (dir / "out")) == 0);  // -o is created lazily: not at all for empty output
      CHECK(read_file(dir / "out") == msg);
      const std::string arm = age::armor(file.data(), file.size());
      write_file(dir / "ours.asc", bytes(arm.begin(), arm.end()));
      REQUIRE(run("age -d -i " + (dir / "id.txt") + " " + (dir / "ours.asc") + " > " +
                  (dir / "out2")) == 0);
      CHECK(read_file(dir / "out2") == msg);
    }
    SECTION("age -r output decrypts with ours (n = " + std::to_string(n) + ")") {
      REQUIRE(run("age -r " + recip + " -o " + (dir / "theirs.age") + " " + (dir / "plain")) == 0);
      const bytes file = read_file(dir / "theirs.age");
      CHECK(age::decrypt(file.data(), file.size(), ids) == msg);
      // The header reparses and reserializes byte for byte (age writes canonical headers).
      const auto p = age::parse_header(file.data(), file.size());
      CHECK(
          age::serialize_header(p.hdr) ==
          std::string(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(p.payload_offset)));

      REQUIRE(run("age -a -r " + recip + " -o " + (dir / "theirs.asc") + " " + (dir / "plain")) ==
              0);
      const bytes arm = read_file(dir / "theirs.asc");
      CHECK(age::is_armored(arm.data(), arm.size()));
      CHECK(age::decrypt(arm.data(), arm.size(), ids) == msg);
    }
  }

  SECTION("age-keygen identities parse, and their recipients match age-keygen -y") {
    REQUIRE(run("age-keygen -o " + (dir / "k.txt") + " 2>/dev/null") == 0);
    REQUIRE(run("age-keygen -y -o " + (dir / "k.pub") + " " + (dir / "k.txt")) == 0);
    const bytes kt = read_file(dir / "k.txt"), kp = read_file(dir / "k.pub");
    const auto keys = age::parse_identity_file(
        {reinterpret_cast<const char*>(kt.data()), kt.size()}, dir / "k.txt");
    REQUIRE(keys.size() == 1);
    std::string pub(kp.begin(), kp.end());
    while (!pub.empty() && (pub.back() == '\n' || pub.back() == '\r')) pub.pop_back();
    CHECK(age::encode_recipient(age::recipient_of(keys[0])) == pub);
  }
}
