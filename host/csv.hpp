// CSV records to numbers for exact column statistics: fields split at a delimiter (RFC 4180
// quoting within one line), each picked field parsed to the correctly rounded double, and a
// piece's values added to exact column accumulators (host/stats_host.hpp).
//
//   using namespace hetpipe::host;
//   csv::layout l{',', 3, {0, 2}};           // records of 3 fields; keep the first and third
//   std::vector<column_acc> acc(2);
//   const std::string_view text = "1,x,2.5\n3,y,\n";
//   auto bad = csv::accumulate(text.data(), text.size(), l, acc.data());
//   // no bad record; column 0: 1 and 3; column 1: 2.5 and one missing value (a NaN)
//
// A record is a line, or several where a quoted field holds line breaks (RFC 4180): it ends at the
// first line break with an even number of quotes before it in the record. A piece cut at a line
// break inside a quoted field ends in an open record (accumulate's open_at), whose text the caller
// joins to what follows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/stats_host.hpp"

namespace hetpipe::host::csv {

struct field {
  std::string_view text;  // between the quotes for a quoted field, its "" pairs left in
  bool quoted = false;
};

// Splits record `line` (a last '\r' is part of the last field unless the caller strips it; a quoted
// field may hold line breaks) into fields at `delim`, appending them to `out` (cleared first).
// Returns nullptr, or why the text is not a CSV record: unclosed_quote (a quoted field not closed
// by its end), text after a closing quote, or a quote inside an unquoted field.
const char* split(std::string_view line, char delim, std::vector<field>& out);
extern const char* const unclosed_quote;

// Where the record starting at data[at] ends: its terminating '\n' (the first line break with an
// even number of quotes before it in the record), or `size` when none does (an open record when
// the quotes are still odd there: *open set). `line_end` is the first '\n' at or after `at`, or
// size.
std::size_t record_end(const char* data, std::size_t size, std::size_t at, std::size_t line_end,
                       bool* open);

// A field's text with its "" pairs made one quote (for header names).
std::string unquote(const field& f);

// The value of a field: spaces and tabs around it are ignored; empty means a missing value (NaN);
// else a decimal number as strtod reads it in the C locale ([+-]digits[.digits][e[+-]digits],
// inf, infinity, nan in any case), rounded to the nearest double (ties to even). False when the
// text is anything else (hexadecimal included).
bool number(std::string_view text, double& v);

struct layout {
  char delim = ',';
  std::size_t fields = 0;           // fields every record has
  std::vector<std::uint32_t> pick;  // fields kept, in the order of the accumulators
  // A kept field that is not a number: an error (strict), or the mark of a text column, its value
  // then left out (accumulate's `text`).
  bool strict = true;
};

struct bad_record {
  std::size_t at = 0;         // offset of the record's first byte in the piece
  std::size_t field = 0;      // with not_a_number: the 0-based field
  bool not_a_number = false;  // else the record is malformed (quotes, number of fields)
  std::string reason;
};

// Adds the picked values of every record in data[0..size) to acc[0..pick.size()): whole records,
// the last one with or without its '\n', a '\r' before a '\n' dropped, empty lines skipped. Stops
// at the first record that is not well formed, has another number of fields, or (strict layout)
// holds a picked field that is not a number, and returns it (the records before it are added).
// Not strict, such a field sets text[c] = 1 for its column c (text: pick.size() flags) and
// counts as a NaN there. A last record still inside a quoted field at the end of the data is an
// unclosed_quote error, or with `open_at` not null its offset goes there (else `size`) and it is
// left out.
std::optional<bad_record> accumulate(const char* data, std::size_t size, const layout& l,
                                     column_acc* acc, std::uint8_t* text = nullptr,
                                     std::size_t* open_at = nullptr);

// accumulate() with every record cut by split(), as a record holding a quote is: the reference that
// accumulate's search for delimiters and line breaks is tested against.
std::optional<bad_record> accumulate_by_split(const char* data, std::size_t size, const layout& l,
                                              column_acc* acc, std::uint8_t* text = nullptr,
                                              std::size_t* open_at = nullptr);

// Records (non-empty lines, or lines joined by a quoted line break) in data[0..size), as
// accumulate() counts them.
std::uint64_t count_records(const char* data, std::size_t size);

}  // namespace hetpipe::host::csv
