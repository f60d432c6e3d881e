// `hetpipe stats`: exact column statistics of .npy, CSV and raw files, as a table or JSON.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <hetpipe/stats.hpp>

namespace hetpipe::cli {

// The statistics of `files` on `out`, a table (or, with `json`, a JSON array) entry per file in
// the order given. A file that cannot be read or is not what it should be (missing, not a .npy, a
// bad CSV record) is reported in its place, "hetpipe: FILE: reason" on stderr (with --json an
// {"error", "file"} entry), the job run again without it, the others still computed; the result
// is then 1 (else 0). Standard input or another stream among the files cannot be read twice:
// there the first bad file fails the whole call (the exception goes out), as usage errors do.
int print_stats(const std::vector<std::string>& files, std::optional<dtype> raw_type,
                const csv_spec& csv, const options& opt, bool json, std::ostream& out);

}  // namespace hetpipe::cli
