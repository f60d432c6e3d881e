// PNG (libspng): read_png_shape, both decode_png overloads, sniff_format and decode_image on
// arbitrary bytes. The caller-buffer overload gets exactly read_png_shape's sample count (its
// contract); both overloads must agree, and an accepted image encodes and decodes back to itself.
#include <cstring>
#include <vector>

#include "fuzz_common.hpp"
#include "host/image.hpp"

namespace img = hetpipe::host::img;
using hetpipe::fuzz::expect_clean;
using hetpipe::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const img::image_format f = img::sniff_format(data, size);
  img::image_shape shape;
  const bool shape_ok =
      expect_clean("read_png_shape", [&] { shape = img::read_png_shape(data, size); });
  img::image im;
  const bool ok = expect_clean("decode_png", [&] { im = img::decode_png(data, size); });
  require(!ok || shape_ok, "decode_png accepted what read_png_shape refused");
  if (f == img::image_format::png) {
    img::image im2;
    const bool ok2 = expect_clean("decode_image", [&] { im2 = img::decode_image(data, size); });
    require(ok == ok2, "decode_image and decode_png disagree");
  }
  if (shape_ok) {
    // The caller's buffer, sized from the header as the GPU path sizes its pinned staging. A
    // header the file cannot back must have been refused by read_png_shape already; the harness
    // still caps what it allocates itself at 256 MiB.
    if (shape.samples() <= (std::size_t{1} << 27)) {
      std::vector<std::uint16_t> buf(shape.samples());
      img::image_shape s2;
      const bool ok3 = expect_clean(
          "decode_png(buffer)", [&] { s2 = img::decode_png(data, size, buf.data(), buf.size()); });
      require(ok3 == ok, "the two decode_png overloads disagree");
      if (ok3 && ok) {
        require(s2 == im.shape && s2 == shape, "decode_png shapes differ");
        require(std::memcmp(buf.data(), im.samples.data(), buf.size() * 2) == 0,
                "the two decode_png overloads give different samples");
      }
    }
  }
  if (ok) {
    require(im.samples.size() == im.shape.samples(), "sample count differs from the shape");
    for (std::uint16_t v : im.samples) require(v <= im.shape.maxval, "sample above maxval");
    if (im.samples.size() <= 4096) {
      const std::vector<std::uint8_t> again = img::encode_png(im, 1);
      const img::image back = img::decode_png(again.data(), again.size());
      require(back.shape == im.shape && back.samples == im.samples, "PNG round trip differs");
    }
    img::recycle_samples(std::move(im.samples));
  }
  return 0;
}
