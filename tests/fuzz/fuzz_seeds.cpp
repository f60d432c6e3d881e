// Writes the seed corpora of the harnesses: fuzz_seeds OUTDIR makes OUTDIR/<harness>/ for each
// (pnm, png, npy, csv, age_header, age_keys, age_decrypt, text) with a few small valid inputs made
// by hetpipe's own encoders, so that no corpus lives in the repository.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz_age.hpp"
#include "host/age.hpp"
#include "host/image.hpp"
#include "support/images.hpp"

namespace img = hetpipe::host::img;
namespace age = hetpipe::host::age;
namespace fs = std::filesystem;

namespace {

fs::path root;
int counter = 0;

void put(const std::string& dir, const void* p, std::size_t n) {
  fs::create_directories(root / dir);
  std::ofstream f(root / dir / ("seed-" + std::to_string(++counter)), std::ios::binary);
  f.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
}
void put(const std::string& dir, const std::string& s) {
  put(dir, s.data(), s.size());
}
void put(const std::string& dir, const std::vector<std::uint8_t>& v) {
  put(dir, v.data(), v.size());
}

std::string npy(const std::string& magic_version, const std::string& dict, std::size_t data) {
  const bool v1 = magic_version[0] == 1;
  std::string h = dict;
  const std::size_t pre = 8 + (v1 ? 2 : 4);
  while ((pre + h.size() + 1) % 64 != 0) h += ' ';
  h += '\n';
  std::string s = "\x93NUMPY";
  s += magic_version;
  const std::size_t n = h.size();
  s += static_cast<char>(n & 255);
  s += static_cast<char>(n >> 8);
  if (!v1) s += std::string("\0\0", 2);
  return s + h + std::string(data, '\x01');
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds OUTDIR\n");
    return 2;
  }
  root = argv[1];

  // PNM: P5/P6 at maxval 255, 65535 and in between, odd sizes, a comment in the header.
  for (auto [w, h, ch, m] : {std::array<std::uint32_t, 4>{3, 2, 1, 255},
                             {5, 3, 3, 255},
                             {2, 3, 1, 65535},
                             {3, 1, 3, 65535},
                             {4, 4, 1, 15},
                             {1, 1, 3, 1000}})
    put("pnm", img::encode_pnm(hetpipe::test::random_image(w, h, ch, m, counter)));
  {
    std::string s = "P5\n# a comment\n3 2 # width and height\n255\n";
    s += std::string("\x01\x02\x03\x04\x05\x06", 6);
    put("pnm", s);
  }

  // PNG: 8 and 16 bits, gray, gray + alpha, RGB, RGBA.
  for (std::uint32_t ch = 1; ch <= 4; ++ch)
    for (std::uint32_t m : {255u, 65535u})
      put("png",
          img::encode_png(hetpipe::test::random_image(3 + ch, 2 + ch % 2, ch, m, counter), 9));

  // .npy: versions 1, 2 and 3, scalars, 1-D and 2-D, every dtype size.
  put("npy", npy(std::string("\x01\x00", 2),
                 "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 24));
  put("npy", npy(std::string("\x01\x00", 2),
                 "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }", 6));
  put("npy", npy(std::string("\x02\x00", 2),
                 "{'descr': '<i4', 'fortran_order': False, 'shape': (), }", 4));
  put("npy", npy(std::string("\x03\x00", 2),
                 "{\"descr\": \"<u2\", \"fortran_order\": False, \"shape\": (0, 5)}", 0));

  // CSV (fuzz_csv.cpp): the first byte's bits 0-1 pick the delimiter, 2-3 the fields less one,
  // 4-7 the kept fields.
  put("csv", std::string("\xF8") + "1,2.5,-3e4\n\"4\",,nan\r\n\n  7 ,inf,0.1\n");
  put("csv", std::string("\x35") + "12;x\n-0;\"a;b\"\n");
  put("csv", std::string("\x16") + "1.5\t\"q\"\"q\"\n2e-310\t\n");

  // age: the fixed identity, its recipient, an identity file; files encrypted to the fixed
  // identity and passphrase (binary and armored, empty, short and two-chunk payloads).
  const age::identity id = hetpipe::fuzz::fixed_identity();
  const std::string ids = age::encode_identity(id),
                    rcp = age::encode_recipient(age::recipient_of(id));
  put("age_keys", ids);
  put("age_keys", rcp);
  put("age_keys", "# created: now\n# public key: " + rcp + "\n" + ids + "\r\n\n");
  std::vector<std::uint8_t> text(100, 'x');
  for (std::size_t n : {std::size_t{0}, std::size_t{100}}) {
    const auto f = age::encrypt({age::recipient_of(id)}, text.data(), n);
    put("age_decrypt", f);
    put("age_header", f);
    put("age_decrypt", age::armor(f.data(), f.size()));
    put("age_header", age::armor(f.data(), f.size()));
  }
  {
    const auto f = age::encrypt(
        {age::recipient_of(id), age::recipient_of(age::generate_identity())}, text.data(), 30);
    put("age_decrypt", f);
    put("age_header", f);
  }
  const auto pf = age::encrypt_with_passphrase(hetpipe::fuzz::fixed_passphrase,
                                               hetpipe::fuzz::fixed_log2_work, text.data(), 50);
  put("age_decrypt", pf);
  put("age_header", pf);

  // Text: first byte 0 ops, 1 sizes, 2 sum lines (fuzz_text.cpp).
  for (const char* s : {"gray,blur:sigma=1.5,sobel,resize:0.5,resize:64x48,threshold:128,invert",
                        " grey , blur:2 , resize:3x2", "threshold:t=7,resize:1e-1"})
    put("text", std::string(1, '\0') + s);
  for (const char* s : {"4K", "2M", "1GiB", "65536", "512kB"})
    put("text", std::string(1, '\1') + s);
  for (const char* s : {"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262  a.bin",
                        "\\0a1b2c3d *dir/we\\\\ird\\nname\\r", "00000000  -"})
    put("text", std::string(1, '\2') + s);
  std::printf("seeds written under %s\n", root.c_str());
  return 0;
}
