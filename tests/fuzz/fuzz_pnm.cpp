// PNM (P5/P6): read_pnm_header, check_raster, decode_pnm and decode_image on arbitrary bytes.
// Round trip: an image decode_pnm accepts encodes (encode_pnm) and decodes to the same image.
#include <cstring>

#include "fuzz_common.hpp"
#include "host/image.hpp"

namespace img = hetpipe::host::img;
using hetpipe::fuzz::expect_clean;
using hetpipe::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  img::pnm_header h;
  const bool header_ok =
      expect_clean("read_pnm_header", [&] { h = img::read_pnm_header(data, size); });
  if (header_ok) {
    require(h.raster_offset <= size, "raster_offset past the end");
    require(size - h.raster_offset ==
                h.shape.samples() * img::bytes_per_sample(img::pnm_layout(h.shape)),
            "raster size differs from the shape");
    expect_clean("check_raster", [&] {
      img::check_raster(h.shape, data + h.raster_offset, img::pnm_layout(h.shape));
    });
  }
  img::image im;
  const bool ok = expect_clean("decode_pnm", [&] { im = img::decode_pnm(data, size); });
  require(!ok || header_ok, "decode_pnm accepted what read_pnm_header refused");
  img::image im2;
  const bool ok2 = expect_clean("decode_image", [&] { im2 = img::decode_image(data, size); });
  require(ok == ok2, "decode_image and decode_pnm disagree");
  if (ok) {
    require(im.shape == h.shape, "decode_pnm's shape differs from read_pnm_header's");
    require(im.samples.size() == im.shape.samples(), "sample count differs from the shape");
    for (std::uint16_t v : im.samples) require(v <= im.shape.maxval, "sample above maxval");
    const std::vector<std::uint8_t> again = img::encode_pnm(im);
    const img::image back = img::decode_pnm(again.data(), again.size());
    require(back.shape == im.shape && back.samples == im.samples, "PNM round trip differs");
    img::recycle_samples(std::move(im.samples));
  }
  return 0;
}
