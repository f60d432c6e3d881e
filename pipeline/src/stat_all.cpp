#include "pipeline/src/stat_all.hpp"

#include <omp.h>

#include <algorithm>
#include <cerrno>
#include <thread>

namespace hetpipe::detail {

std::vector<path_stat> stat_all(const std::vector<std::string>& paths) {
  std::vector<path_stat> out(paths.size());
  // A stat is a few microseconds of path lookup in the kernel: threads pay off only for many.
  constexpr std::size_t per_thread = 256;
  const auto n = static_cast<long>(paths.size());
  const int threads = static_cast<int>(std::clamp<std::size_t>(
      paths.size() / per_thread, 1, std::max(1u, std::thread::hardware_concurrency())));
#pragma omp parallel for num_threads(threads) schedule(static, 64) if (threads > 1)
  for (long i = 0; i < n; ++i)
    if (::stat(paths[i].c_str(), &out[i].st) != 0) out[i].error = errno;
  return out;
}

}  // namespace hetpipe::detail
