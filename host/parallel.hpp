// parallel_for: an OpenMP loop whose body may throw. An exception must not leave an OpenMP
// region, so each iteration catches its own; the first one caught is rethrown after the loop,
// once every thread has finished (the other iterations still run).
//
//   hetpipe::host::parallel_for(items.size(), 4, [&](std::size_t i) { work(items[i]); });
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>

namespace hetpipe::host {

// body(i) for i in [0, n) on up to `threads` threads of a team of the calling thread's (one: the
// calling thread alone), one iteration at a time per thread.
template <class Body>
void parallel_for(std::size_t n, int threads, Body&& body) {
  if (n == 0) return;
  std::exception_ptr failure;
  const int team = static_cast<int>(std::min<std::size_t>(std::max(threads, 1), n));
#pragma omp parallel for num_threads(team) schedule(dynamic, 1) if (team > 1)
  for (std::size_t i = 0; i < n; ++i) {
    try {
      body(i);
    } catch (...) {
#pragma omp critical(hetpipe_parallel_for)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace hetpipe::host
