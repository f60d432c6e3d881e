// `hetpipe count`: lines, words, characters and bytes of files, printed as `wc` prints them.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include <hetpipe/count.hpp>

namespace hetpipe::cli {

struct count_output {
  bool lines = true, words = true, chars = false, bytes = true;  // the columns, in this order
  bool recursive = false;                                        // -r: folders are walked
  bool json = false;
};

// The counts of the files `paths` name on `out`: one line per file, its columns right-aligned to
// the width `wc` uses, then a "total" line when there is more than one path; with no paths,
// standard input without a name. As with wc, a path that cannot be read (missing, a folder
// without -r, unreadable) is reported on stderr, "hetpipe: NAME: reason", the others are still
// counted, and the result is 1 (else 0). A file that fails in the job is reported too, the job
// run again without it; with a stream among the inputs (it cannot be read twice), the files are
// opened and read a little before the job instead, and one that fails midway fails the count.
int print_counts(const std::vector<std::string>& paths, const options& opt, const count_output& how,
                 std::ostream& out);

// A count line: each chosen column right-aligned to `width`, separated by spaces, then " name"
// unless name is empty.
std::string count_line(const text_counts& c, const count_output& how, int width,
                       const std::string& name);

}  // namespace hetpipe::cli
