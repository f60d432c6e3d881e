#include "pipeline/src/stat_all.hpp"

#include <omp.h>

#include <algorithm>
#include <cerrno>
#include <thread>

namespace hetpipe::detail {

int path_threads(std::size_t n) {
  constexpr std::size_t per_thread = 256;
  return static_cast<int>(std::clamp<std::size_t>(
      n / per_thread, 1, std::max(1u, std::thread::hardware_concurrency())));
}

std::vector<path_stat> stat_all(const std::vector<std::string>& paths, bool follow_links) {
  std::vector<path_stat> out(paths.size());
  const auto n = static_cast<long>(paths.size());
  const int threads = path_threads(paths.size());
#pragma omp parallel for num_threads(threads) schedule(static, 64) if (threads > 1)
  for (long i = 0; i < n; ++i)
    if ((follow_links ? ::stat(paths[i].c_str(), &out[i].st)
                      : ::lstat(paths[i].c_str(), &out[i].st)) != 0)
      out[i].error = errno;
  return out;
}

}  // namespace hetpipe::detail
