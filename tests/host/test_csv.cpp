// host/csv: splitting records, numbers as strtod reads them, and a piece's values into exact
// column accumulators.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "host/csv.hpp"

using namespace hetpipe;
namespace csv = host::csv;

namespace {

std::vector<std::string> texts(std::string_view line, char delim = ',') {
  std::vector<csv::field> f;
  const char* why = csv::split(line, delim, f);
  REQUIRE(why == nullptr);
  std::vector<std::string> out;
  for (const auto& x : f) out.push_back((x.quoted ? "Q:" : "") + csv::unquote(x));
  return out;
}

}  // namespace

TEST_CASE("csv::split cuts a line into fields, quotes holding delimiters and quotes", "[csv]") {
  using v = std::vector<std::string>;
  CHECK(texts("a,b,c") == v{"a", "b", "c"});
  CHECK(texts("") == v{""});
  CHECK(texts(",") == v{"", ""});
  CHECK(texts("1,,3,") == v{"1", "", "3", ""});
  CHECK(texts("\"a,b\",c") == v{"Q:a,b", "c"});
  CHECK(texts("\"say \"\"hi\"\"\",2") == v{"Q:say \"hi\"", "2"});
  CHECK(texts(" \"x\" , y ") == v{"Q:x", " y "});  // spaces around a quoted field are dropped
  CHECK(texts("\"\"") == v{"Q:"});
  CHECK(texts("a\tb,c", '\t') == v{"a", "b,c"});
  CHECK(texts("a;b", ';') == v{"a", "b"});
  // A space (or a tab) that is the delimiter is never a blank around a quoted field, as with
  // Python's csv module (delimiter=' '): it still cuts fields, empty ones too.
  CHECK(texts("a \"b c\" 3", ' ') == v{"a", "Q:b c", "3"});
  CHECK(texts("a  \"b\"", ' ') == v{"a", "", "Q:b"});
  CHECK(texts("\"x\"\t\t\"y\"", '\t') == v{"Q:x", "", "Q:y"});
  std::vector<csv::field> f;
  CHECK(csv::split("\"open,1", ',', f) != nullptr);
  CHECK(csv::split("\"a\"b,1", ',', f) != nullptr);
  CHECK(csv::split("a\"b,1", ',', f) != nullptr);
}

TEST_CASE("csv::number reads what strtod reads, rounded the same way", "[csv]") {
  const char* good[] = {"0",
                        "-0",
                        "+1.5",
                        " 2 ",
                        "1e3",
                        "1E-3",
                        ".5",
                        "5.",
                        "-.25e+2",
                        "inf",
                        "-Infinity",
                        "NaN",
                        "1e-400",
                        "-1e-400",
                        "1e400",
                        "4.9e-324",
                        "2.2250738585072011e-308",
                        "9007199254740993",
                        "0.1000000000000000055511151231257827021181583404541015625",
                        "1.7976931348623157e308",
                        "123456789012345678901234567890"};
  for (const char* t : good) {
    CAPTURE(t);
    double v = 0;
    REQUIRE(csv::number(t, v));
    const double want = std::strtod(t, nullptr);
    if (std::isnan(want)) {
      CHECK(std::isnan(v));
    } else {
      CHECK(std::memcmp(&v, &want, sizeof v) == 0);  // the sign of zero too
    }
  }
  const char* bad[] = {"abc", "1.2.3", "0x10", "1e", "--1", "+-1", "1 2", "1,5", "e5", "+"};
  for (const char* t : bad) {
    CAPTURE(t);
    double v = 0;
    CHECK_FALSE(csv::number(t, v));
  }
  // Out of range, the digits alone deciding which way (no sign after the 'e', or no 'e').
  for (const std::string& t : std::vector<std::string>{
           "0." + std::string(400, '0') + "1", "1" + std::string(400, '0') + "e-5",
           "0.0000001e-320", "-1000e305", "00001e308", "1" + std::string(320, '0'),
           "0." + std::string(330, '0') + "1e+2", "100e-326"}) {
    CAPTURE(t.substr(0, 40), t.size());
    double got = 0;
    REQUIRE(csv::number(t, got));
    const double want = std::strtod(t.c_str(), nullptr);
    CHECK(std::memcmp(&got, &want, sizeof got) == 0);
  }
  double v = 0;
  REQUIRE(csv::number("  ", v));  // empty: a missing value
  CHECK(std::isnan(v));
  // Random decimal strings of up to 25 significant digits and any exponent: the same bits.
  std::mt19937_64 g(17);
  for (int k = 0; k < 20000; ++k) {
    std::string t = g() % 2 ? "-" : "";
    const int digits = 1 + static_cast<int>(g() % 25);
    const int point = static_cast<int>(g() % (digits + 2));  // digits + 1: none
    for (int d = 0; d < digits; ++d) {
      if (d == point) t += '.';
      t += static_cast<char>('0' + g() % 10);
    }
    if (g() % 2) t += "e" + std::to_string(static_cast<int>(g() % 700) - 350);
    double got = 0;
    CAPTURE(t);
    REQUIRE(csv::number(t, got));
    const double want = std::strtod(t.c_str(), nullptr);
    CHECK(std::memcmp(&got, &want, sizeof got) == 0);
  }
}

TEST_CASE("csv::accumulate adds each record's picked values and stops at a bad record", "[csv]") {
  const csv::layout l{',', 3, {2, 0}};
  std::vector<host::column_acc> acc(2);
  const std::string data = "1,x,10\r\n\n2,y,\n\r\n-3,\"q,q\",\"2.5\"";  // the last line has no '\n'
  REQUIRE_FALSE(csv::accumulate(data.data(), data.size(), l, acc.data()));
  CHECK(csv::count_records(data.data(), data.size()) == 3);
  const column_stats c0 = host::finalize(dtype::f64, acc[0]),
                     c1 = host::finalize(dtype::f64, acc[1]);
  CHECK(c0.count == 2);
  CHECK(c0.nan_count == 1);
  CHECK(c0.sum == 12.5);
  CHECK(c1.count == 3);
  CHECK(c1.sum == 0);
  CHECK(std::get<double>(c1.min) == -3);

  std::vector<host::column_acc> more(2);
  const std::string bad = "1,a,2\n3,b\n";
  auto r = csv::accumulate(bad.data(), bad.size(), l, more.data());
  REQUIRE(r);
  CHECK(r->at == 6);
  CHECK(r->reason.find("2 fields") != std::string::npos);
  CHECK_FALSE(r->not_a_number);
  const std::string text = "1,a,2\n4,b,5\nz,c,6\n";
  r = csv::accumulate(text.data(), text.size(), l, more.data());
  REQUIRE(r);
  CHECK(r->at == 12);
  CHECK(r->field == 0);
  CHECK(r->not_a_number);
  CHECK(r->reason == "'z' is not a number");
  const std::string quoted = "1,a,\"2\"\"\"\n";
  r = csv::accumulate(quoted.data(), quoted.size(), l, more.data());
  REQUIRE(r);
  CHECK(r->reason == "'2\"' is not a number");
  const std::string open = "1,\"a,2\n";
  r = csv::accumulate(open.data(), open.size(), l, more.data());
  REQUIRE(r);
  CHECK(r->reason.find("not closed") != std::string::npos);
}

TEST_CASE("csv records go on over lines inside quoted fields (RFC 4180)", "[csv]") {
  const csv::layout l{',', 3, {0, 2}, false};
  const std::string text = "1,\"a\nb\",2\r\n\n3,\"x\"\"\n\n\",4\n5,\"\",6";
  std::vector<hetpipe::host::column_acc> acc(2);
  std::vector<std::uint8_t> is_text(2);
  REQUIRE_FALSE(csv::accumulate(text.data(), text.size(), l, acc.data(), is_text.data()));
  const auto a = hetpipe::host::finalize(hetpipe::dtype::f64, acc[0]);
  const auto b = hetpipe::host::finalize(hetpipe::dtype::f64, acc[1]);
  CHECK(a.count == 3);
  CHECK(a.sum == 9);
  CHECK(b.sum == 12);
  CHECK(is_text == std::vector<std::uint8_t>{0, 0});
  CHECK(csv::count_records(text.data(), text.size()) == 3);
  bool open = true;
  CHECK(csv::record_end(text.data(), text.size(), 0, 4, &open) == 10);  // its "\n" after "\r"
  CHECK_FALSE(open);

  // Data that ends inside a quoted field: an error, or (open_at) a record left open.
  const std::string cut = "1,2,3\n4,\"x\ny,5\n";
  std::vector<hetpipe::host::column_acc> c(2);
  auto bad = csv::accumulate(cut.data(), cut.size(), l, c.data());
  REQUIRE(bad);
  CHECK(bad->at == 6);
  CHECK(std::string(bad->reason) == csv::unclosed_quote);
  std::vector<hetpipe::host::column_acc> d(2);
  std::size_t open_at = 0;
  REQUIRE_FALSE(csv::accumulate(cut.data(), cut.size(), l, d.data(), nullptr, &open_at));
  CHECK(open_at == 6);
  CHECK(hetpipe::host::finalize(hetpipe::dtype::f64, d[0]).count == 1);  // the record before it
  CHECK(csv::record_end(cut.data(), cut.size(), 6, 14, &open) == cut.size());
  CHECK(open);
  // Closed, but malformed after its closing quote: named at the record's start.
  const std::string after = "1,\"a\nb\"c,2\n";
  std::vector<hetpipe::host::column_acc> e(2);
  bad = csv::accumulate(after.data(), after.size(), l, e.data());
  REQUIRE(bad);
  CHECK(bad->at == 0);
  CHECK(bad->reason == "text after a closing quote");
}

TEST_CASE("csv::number reads short decimals as strtod does", "[csv]") {
  // The text the fast path takes (digits and one point, at most 17 characters) and the values
  // next to its bound (w <= 2^53): every one against strtod, bit for bit.
  std::vector<std::string> texts = {"9007199254740992",
                                    "9007199254740993",
                                    "9007199254740991",
                                    "900719925474099.3",
                                    ".9007199254740993",
                                    "0",
                                    "00000000000000000",
                                    "0.0000000000000001",
                                    "5.",
                                    ".5",
                                    "99999999999999999",
                                    "1234567.890123456",
                                    "0.1",
                                    "0.3"};
  std::mt19937_64 g(29);
  for (int k = 0; k < 200000; ++k) {
    const int digits = 1 + static_cast<int>(g() % 17);
    const int point = static_cast<int>(g() % (digits + 1));  // digits: none (or a last point)
    std::string t;
    for (int d = 0; d < digits; ++d) {
      if (d == point) t += '.';
      t += static_cast<char>('0' + g() % 10);
    }
    if (point == digits && g() % 2) t += '.';
    if (t.size() <= 17) texts.push_back(std::move(t));
  }
  for (const std::string& t : texts) {
    for (const std::string& s : {t, "-" + t, "+" + t}) {
      CAPTURE(s);
      double got = 0;
      REQUIRE(csv::number(s, got));
      const double want = std::strtod(s.c_str(), nullptr);
      REQUIRE(std::memcmp(&got, &want, sizeof got) == 0);  // the sign of zero too
    }
  }
  double v = 0;
  for (const char* t : {".", "-.", "1..2", "1.2.", "12a", "1 2", "-"}) {
    CAPTURE(t);
    CHECK_FALSE(csv::number(t, v));
  }
}

TEST_CASE("csv::accumulate gives what accumulate_by_split gives, on random records", "[csv]") {
  // accumulate cuts a record at the delimiters and line breaks it finds 64 bytes at a time, and
  // reads only the picked fields; a record with quotes it does not take (spaces around them, ""
  // pairs, line breaks inside, text after them) goes through split(). Both must give the same
  // values, errors (offset, field, reason), text flags and open record.
  const std::vector<std::string> numbers = {
      "12",      "-3.5",         " 7 ",      "1e3",      "",
      "nan",     "0.25",         "-0",       "\r",       "4.",
      ".5",      "\"4\"",        "\"-2.5\"", "\"\"",     "\" 3 \"",
      "\"1\"\r", "123456789.25", "\"12,5\"", "\"12;5\"", "9007199254740993"};
  const std::vector<std::string> others = {
      "abc",    "\"4\"\"\"", "\"a,b\"", "\"x\"\"y\"", "\"\"", "\"2\nz\"", "1\"2",
      "1\"2\"", "\"a\"b",    " \"5\" ", "\"open\n",   "1 2",  "0x10"};
  std::mt19937_64 g(41);
  const auto pick_one = [&](const std::vector<std::string>& v) { return v[g() % v.size()]; };
  for (int round = 0; round < 3000; ++round) {
    const char delim = ",;\t |"[g() % 5];
    csv::layout l;
    l.delim = delim;
    l.fields = 1 + g() % 7;
    for (std::size_t c = 0, n = 1 + g() % 4; c < n; ++c)
      l.pick.push_back(static_cast<std::uint32_t>(g() % l.fields));
    l.strict = g() % 2;
    const int bad_share = static_cast<int>(g() % 3);  // 0: none, else 1 record in 40 or in 8
    std::string text;
    const std::size_t records = 1 + g() % 60;
    for (std::size_t r = 0; r < records; ++r) {
      if (g() % 20 == 0) {
        text += g() % 2 ? "\n" : "\r\n";  // an empty line
        continue;
      }
      const bool bad = bad_share && g() % (bad_share == 1 ? 40 : 8) == 0;
      std::size_t fields = l.fields;
      if (bad && g() % 2) fields = g() % 2 ? fields + 1 : std::max<std::size_t>(1, fields - 1);
      for (std::size_t f = 0; f < fields; ++f) {
        if (f) text += delim;
        std::string s = bad && g() % 3 == 0 ? pick_one(others) : pick_one(numbers);
        if (s.find(delim) != std::string::npos && s.front() != '"') s = "1";
        text += s;
      }
      if (r + 1 < records || g() % 2) text += g() % 4 ? "\n" : "\r\n";
    }
    // The whole text, and a piece cut anywhere (so records end at every offset of a 64-byte block).
    const std::size_t from = g() % 3 ? 0 : g() % (text.size() + 1);
    const std::size_t size = g() % 2 ? text.size() - from : g() % (text.size() - from + 1);
    const bool with_open = g() % 2;
    CAPTURE(round, text.substr(from, size), l.fields, l.pick, l.strict, with_open);
    std::vector<host::column_acc> a(l.pick.size()), b(l.pick.size());
    std::vector<std::uint8_t> ta(l.pick.size()), tb(l.pick.size());
    std::size_t oa = 1, ob = 2;
    const auto ra = csv::accumulate(text.data() + from, size, l, a.data(), ta.data(),
                                    with_open ? &oa : nullptr);
    const auto rb = csv::accumulate_by_split(text.data() + from, size, l, b.data(), tb.data(),
                                             with_open ? &ob : nullptr);
    REQUIRE(ra.has_value() == rb.has_value());
    if (ra) {
      CHECK(ra->at == rb->at);
      CHECK(ra->field == rb->field);
      CHECK(ra->not_a_number == rb->not_a_number);
      CHECK(ra->reason == rb->reason);
    }
    CHECK(ta == tb);
    if (with_open) CHECK(oa == ob);
    for (std::size_t c = 0; c < a.size(); ++c) {
      CAPTURE(c);
      CHECK(a[c].count == b[c].count);
      CHECK(a[c].nan_count == b[c].nan_count);
      CHECK(a[c].posinf == b[c].posinf);
      CHECK(a[c].neginf == b[c].neginf);
      CHECK(a[c].min_key == b[c].min_key);
      CHECK(a[c].max_key == b[c].max_key);
      CHECK(a[c].s == b[c].s);
      CHECK(a[c].q == b[c].q);
    }
  }
}
