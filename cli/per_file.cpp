#include "per_file.hpp"

namespace hetpipe::cli {

void run_without_failures(const std::vector<std::string>& files, std::vector<std::string>& errors,
                          bool again, const std::function<bool(const error&)>& own,
                          const std::function<void(const std::vector<std::size_t>&)>& job,
                          const std::function<void()>& first_failure) {
  bool failed_before = false;
  while (true) {
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < files.size(); ++i)
      if (errors[i].empty()) which.push_back(i);
    if (which.empty()) return;
    try {
      job(which);
      return;
    } catch (const error& e) {
      if (!again || !own(e)) throw;
      std::size_t k = 0;
      while (k < which.size() && files[which[k]] != e.file()) ++k;
      if (k == which.size()) throw;  // not one file's (standard output, say)
      errors[which[k]] = e.reason();
      if (!failed_before && first_failure) first_failure();
      failed_before = true;
    }
  }
}

}  // namespace hetpipe::cli
