// A user's own operator: the byte histogram of each file (and its Shannon entropy), with a host
// implementation and, when CUDA is compiled in, a device implementation in histogram_device.cu.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include <hetpipe/hetpipe.hpp>

struct byte_histogram final : hetpipe::partial {
  std::array<std::uint64_t, 256> bins{};
};

#ifdef HISTOGRAM_WITH_CUDA
// Defined in histogram_device.cu.
std::unique_ptr<hetpipe::device_reducer> make_histogram_device(unsigned buffers);
#endif
