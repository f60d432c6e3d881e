// Test images: random samples of any shape, written as PNM or PNG files, read back.
#pragma once

#include <cstdint>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "host/image.hpp"
#include "support/temp_dir.hpp"

namespace hetpipe::test {

inline host::img::image random_image(std::uint32_t w, std::uint32_t h, std::uint32_t ch,
                                     std::uint32_t maxval, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  host::img::image im;
  im.shape = {w, h, ch, maxval};
  im.samples.resize(im.shape.samples());
  for (auto& v : im.samples) v = static_cast<std::uint16_t>(g() % (maxval + 1));
  return im;
}

// PNG when `png`, else PNM (P5 / P6).
inline void write_image(const std::string& path, const host::img::image& im, bool png) {
  write_bytes(path, png ? host::img::encode_png(im) : host::img::encode_pnm(im));
}

inline host::img::image read_image(const std::string& path) {
  const auto b = file_bytes(path);
  return host::img::decode_image(b.data(), b.size());
}

}  // namespace hetpipe::test
