// Jobs over many files that report a file's failure in its place and go on with the others.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <hetpipe/error.hpp>

namespace hetpipe::cli {

// Runs job(which), `which` the indexes of the files whose errors[] entry is empty, until it goes
// through. When it throws an error that `own` takes as one file's fault (error::file() names a
// file of the run: the first of that name), and the files can be read again (`again`), the reason
// goes to that file's errors[] entry and the job runs again without it; before that first rerun
// `first_failure` (if any) runs once, e.g. to open every other file ahead, so that many failing
// files cost one run more in all. Anything else propagates.
void run_without_failures(const std::vector<std::string>& files, std::vector<std::string>& errors,
                          bool again, const std::function<bool(const error&)>& own,
                          const std::function<void(const std::vector<std::size_t>&)>& job,
                          const std::function<void()>& first_failure = {});

}  // namespace hetpipe::cli
