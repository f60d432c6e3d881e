// Text counts: lines, words and bytes of each file, as `wc` gives them, computed chunk-parallel
// on CPU and GPU lanes and joined exactly, so the chunk size, the lanes and the thread count never
// change a count.
//
//   auto r = hetpipe::count_text({"notes.txt"}, hetpipe::options{});
//   r[0].counts.lines;   // '\n' bytes, as `wc -l` counts
//
// A word is a maximal run of bytes that are not ASCII white space (space, \t \n \v \f \r): what
// Python's bytes.split() gives, and what `wc -w` counts in text without control characters (GNU
// wc does not let other unprintable bytes start a word, and in a UTF-8 locale also splits at
// Unicode spaces such as U+3000).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <hetpipe/options.hpp>
#include <hetpipe/pipeline.hpp>

namespace hetpipe {

struct text_counts {
  std::uint64_t lines = 0;
  std::uint64_t words = 0;
  std::uint64_t bytes = 0;
};

struct count_result {
  std::string file;  // as given ("-" for standard input)
  text_counts counts;
};

// Counts of each file ("-" reads standard input). Throws hetpipe::error naming the file for any
// input that cannot be read.
std::vector<count_result> count_text(const std::vector<std::string>& files, const options& opt,
                                     job_report* report = nullptr);

}  // namespace hetpipe
