// What the stats operators (binary in stats_op.cpp, CSV in csv_stats.cpp) share: exact column
// accumulators as a partial, their merge, and the correctly rounded results at the end.
#pragma once

#include <algorithm>
#include <memory>
#include <vector>

#include <hetpipe/operator.hpp>
#include <hetpipe/stats.hpp>

#include "host/parallel.hpp"
#include "host/stats_host.hpp"

namespace hetpipe::detail {

struct stats_partial : partial {
  std::vector<host::column_acc> columns;
  std::vector<std::uint8_t> text;  // CSV: a column met a field that is not a number (else empty)
  bool fresh = false;              // the identity, nothing merged into it yet
};

inline std::unique_ptr<partial> stats_identity(std::size_t cols) {
  auto p = std::make_unique<stats_partial>();
  p->columns.resize(cols);
  p->fresh = true;
  return p;
}

// total ⊕= next. The first merge takes the chunk's accumulators as they are (the identity's sums
// are zero): a million columns would otherwise hold a third copy of their big integers.
inline void merge_stats(partial& total, partial& next) {
  auto& t = static_cast<stats_partial&>(total);
  auto& n = static_cast<stats_partial&>(next);
  if (t.fresh) {
    t.columns.swap(n.columns);
    t.text.swap(n.text);
    t.fresh = false;
    return;
  }
  for (std::size_t c = 0; c < t.columns.size(); ++c) t.columns[c].merge(n.columns[c]);
  for (std::size_t c = 0; c < n.text.size(); ++c) t.text[c] |= n.text[c];
}

// r.columns from the accumulators of `p`. Correct rounding takes big-integer division: a
// microsecond or so a column, on `threads` threads for wide files.
inline void finalize_stats(dtype type, const stats_partial& p, stats_result& r, int threads) {
  r.columns.resize(p.columns.size());
  const std::size_t block = 1024;
  host::parallel_for((p.columns.size() + block - 1) / block, p.columns.size() > block ? threads : 1,
                     [&](std::size_t b) {
                       const std::size_t end = std::min(p.columns.size(), (b + 1) * block);
                       for (std::size_t c = b * block; c < end; ++c)
                         r.columns[c] = host::finalize(type, p.columns[c]);
                     });
}

// The stats of CSV inputs (csv_stats.cpp), one result per file in order.
std::vector<stats_result> csv_stats(const std::vector<std::string>& files, const csv_spec& csv,
                                    const options& opt, job_report* report);

}  // namespace hetpipe::detail
