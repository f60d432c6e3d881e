// host/text_count: counts of a piece, and joining pieces cut anywhere.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <string>

#include "host/text_count.hpp"
#include "support/text.hpp"

using namespace hetpipe;

namespace {

host::text_tally tally(const std::string& s) {
  return host::count_text(s.data(), s.size());
}

}  // namespace

TEST_CASE("count_text counts lines, words and bytes of hand-checked strings", "[count]") {
  struct row {
    std::string text;
    std::uint64_t lines, words;
    bool starts, ends;
  };
  const row rows[] = {
      {"", 0, 0, false, false},
      {"a", 0, 1, true, true},
      {" ", 0, 0, false, false},
      {"\n", 1, 0, false, false},
      {"hello world\n", 1, 2, true, false},
      {"  two\twords  ", 0, 2, false, false},
      {"a\vb\fc\rd", 0, 4, true, true},
      {"\n\n\nx", 3, 1, false, true},
      {std::string("\0\x01\x80\xff", 4), 0, 1, true, true},  // unprintable bytes are word bytes
      {"x\n y \n\n", 3, 2, true, false},
  };
  for (const row& r : rows) {
    CAPTURE(r.text);
    const host::text_tally t = tally(r.text);
    CHECK(t.lines == r.lines);
    CHECK(t.words == r.words);
    CHECK(t.bytes == r.text.size());
    CHECK(t.starts_in_word == r.starts);
    CHECK(t.ends_in_word == r.ends);
  }
}

TEST_CASE("count_text pieces joined at every cut give the whole's counts", "[count]") {
  const std::string s = "one two\nthree  four\tfive\n\nsix";
  const host::text_tally whole = tally(s);
  CHECK(whole.lines == 3);
  CHECK(whole.words == 6);
  for (std::size_t a = 0; a <= s.size(); ++a)
    for (std::size_t b = a; b <= s.size(); ++b) {
      CAPTURE(a, b);
      host::text_tally t = tally(s.substr(0, a));
      host::append(t, tally(s.substr(a, b - a)));
      host::append(t, tally(s.substr(b)));
      CHECK(t.lines == whole.lines);
      CHECK(t.words == whole.words);
      CHECK(t.bytes == whole.bytes);
      CHECK(t.ends_in_word == whole.ends_in_word);
    }
}

TEST_CASE("count_text equals the byte-by-byte definition on random text of any length", "[count]") {
  std::mt19937_64 g(11);
  // Lengths around the vector widths of the clones (16, 32, 64 bytes) and a few large ones.
  for (std::size_t n : {1u, 2u, 15u, 16u, 17u, 31u, 33u, 63u, 64u, 65u, 127u, 129u, 1000u, 4096u,
                        65537u, 3000001u}) {
    const auto v = test::random_text(n, g);
    const text_counts want = test::reference_counts(v.data(), v.size());
    // At every offset from an aligned start: the loop reads p[i - 1] for its first byte.
    for (std::size_t skip = 0; skip < std::min<std::size_t>(n, 3); ++skip) {
      CAPTURE(n, skip);
      const host::text_tally t = host::count_text(v.data() + skip, n - skip);
      const text_counts ref = test::reference_counts(v.data() + skip, n - skip);
      CHECK(t.lines == ref.lines);
      CHECK(t.words == ref.words);
      CHECK(t.chars == ref.chars);
      const host::text_tally fast = host::count_text(v.data() + skip, n - skip, false);
      CHECK(fast.lines == ref.lines);
      CHECK(fast.words == ref.words);
      CHECK(fast.chars == 0);
    }
    // Random cuts, joined left to right and as a tree: append is associative.
    std::vector<std::size_t> cuts = {0, n};
    for (int k = 0; k < 7; ++k) cuts.push_back(g() % (n + 1));
    std::sort(cuts.begin(), cuts.end());
    std::vector<host::text_tally> parts;
    for (std::size_t k = 0; k + 1 < cuts.size(); ++k)
      parts.push_back(host::count_text(v.data() + cuts[k], cuts[k + 1] - cuts[k]));
    host::text_tally left;
    for (const auto& p : parts) host::append(left, p);
    while (parts.size() > 1) {
      std::vector<host::text_tally> up;
      for (std::size_t k = 0; k < parts.size(); k += 2) {
        host::text_tally t = parts[k];
        if (k + 1 < parts.size()) host::append(t, parts[k + 1]);
        up.push_back(t);
      }
      parts = up;
    }
    for (const host::text_tally& t : {left, parts[0]}) {
      CAPTURE(n);
      CHECK(t.lines == want.lines);
      CHECK(t.words == want.words);
      CHECK(t.chars == want.chars);
      CHECK(t.bytes == want.bytes);
    }
  }
}

TEST_CASE("count_text counts the code points of UTF-8 text as characters", "[count]") {
  const std::string s = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x99\x82\n";  // é, €, 🙂
  CHECK(tally(s).chars == 10);
  CHECK(tally(s).bytes == 16);
  // Cut inside a sequence: the continuation bytes count in neither piece.
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    host::text_tally t = tally(s.substr(0, cut));
    host::append(t, tally(s.substr(cut)));
    CHECK(t.chars == 10);
  }
}
