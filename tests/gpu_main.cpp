// Main of the [gpu] tests: without a usable CUDA device (or without CUDA compiled in) every test
// is reported to CTest as skipped (exit 77), never as passed.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <string_view>

#include <hetpipe/pipeline.hpp>

int main(int argc, char** argv) {
  bool listing = false;
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]).rfind("--list", 0) == 0) listing = true;
  if (!listing && hetpipe::gpu_count() == 0) {
    std::fprintf(stderr, "skipped: no usable CUDA device%s\n",
#if HETPIPE_WITH_CUDA
                 ""
#else
                 " (built without CUDA)"
#endif
    );
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
