#include "stats_cmd.hpp"

#include <ostream>

#include <hetpipe/checksum.hpp>
#include <hetpipe/error.hpp>

#include "format.hpp"
#include "per_file.hpp"

namespace hetpipe::cli {

int print_stats(const std::vector<std::string>& files, std::optional<dtype> raw_type,
                const csv_spec& csv, const options& opt, bool json, std::ostream& out) {
  // A job may run again without a file that failed only when every input can be read again.
  bool again = true;
  for (const auto& e : expand_paths_each(files, false)) again = again && !e.once && e.path != "-";
  std::vector<stats_result> results(files.size());
  std::vector<std::string> errors(files.size());
  run_without_failures(
      files, errors, again,
      // Only a file's own fault (it cannot be read, or its content is bad) is reported in its
      // place; usage errors, a failed GPU and a cancelled job end the command.
      [](const error& e) {
        return dynamic_cast<const io_error*>(&e) || dynamic_cast<const input_error*>(&e);
      },
      [&](const std::vector<std::size_t>& which) {
        std::vector<std::string> run;
        for (const std::size_t i : which) run.push_back(files[i]);
        auto got = stats(run, raw_type, csv, opt);
        for (std::size_t k = 0; k < got.size(); ++k) results[which[k]] = std::move(got[k]);
      });
  int rc = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    results[i].file = files[i];
    rc = errors[i].empty() ? rc : 1;
  }
  if (json) {
    out << stats_json_text(results, errors) << "\n";
    return rc;
  }
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (!errors[i].empty()) {
      out.flush();  // the tables before it first, in order on a terminal
      print_error(files[i], errors[i]);
      continue;
    }
    std::vector<stats_result> one;
    one.push_back(std::move(results[i]));
    out << to_table(one);
  }
  return rc;
}

}  // namespace hetpipe::cli
