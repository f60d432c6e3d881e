// Catch2 v2 matchers for exceptions: REQUIRE_THROWS_MATCHES(expr, type, test::what(string
// matcher)).
#pragma once

#include <exception>
#include <string>
#include <utility>

#include <catch2/catch.hpp>

namespace hetpipe::test {

template <class StringMatcher>
class what_matcher : public Catch::MatcherBase<std::exception> {
 public:
  explicit what_matcher(StringMatcher m) : m_(std::move(m)) {}
  bool match(const std::exception& e) const override { return m_.match(std::string(e.what())); }
  std::string describe() const override { return "has a message that " + m_.toString(); }

 private:
  StringMatcher m_;
};

// The exception's what() satisfies the given string matcher.
template <class StringMatcher>
what_matcher<StringMatcher> what(StringMatcher m) {
  return what_matcher<StringMatcher>(std::move(m));
}

}  // namespace hetpipe::test
