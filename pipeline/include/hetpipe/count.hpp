// Text counts: lines, words, characters and bytes of each file, as `wc` gives them, computed
// chunk-parallel on CPU and GPU lanes and joined exactly, so the chunk size, the lanes and the
// thread count never change a count.
//
//   auto r = hetpipe::count_text({"notes.txt"}, hetpipe::options{});
//   r[0].counts.lines;   // '\n' bytes, as `wc -l` counts
//
// A word is a maximal run of bytes that are not ASCII white space (space, \t \n \v \f \r): what
// Python's bytes.split() gives, and what `wc -w` counts in text without control characters (GNU
// wc does not let other unprintable bytes start a word, and in a UTF-8 locale also splits at
// Unicode spaces such as U+3000). Characters are the bytes outside 0x80..0xBF, the code points of
// valid UTF-8 text (`wc -m` in a UTF-8 locale; it counts none for an invalid sequence).
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
  std::uint64_t chars = 0;
  std::uint64_t bytes = 0;
};

struct count_result {
  std::string file;  // as given ("-" for standard input)
  text_counts counts;
};

// What count_text() counts beyond lines, words and bytes.
struct count_spec {
  // Characters: a quarter of a CPU lane's rate (2-core Zen 4 box, one core: 9.3 against 6.7 GB/s).
  // Without, count_result::counts.chars is 0.
  bool chars = true;
};

// Counts of each file ("-" reads standard input). Throws hetpipe::error naming the file for any
// input that cannot be read.
std::vector<count_result> count_text(const std::vector<std::string>& files, const options& opt,
                                     job_report* report = nullptr);
std::vector<count_result> count_text(const std::vector<std::string>& files, const count_spec& spec,
                                     const options& opt, job_report* report = nullptr);

}  // namespace hetpipe
