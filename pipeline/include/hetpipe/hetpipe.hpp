// The one header an embedding program needs. CUDA-free: GPU implementations of a user's operator
// live in the user's own .cu files and meet the engine through hetpipe::device_reducer.
#pragma once

#include <hetpipe/age.hpp>
#include <hetpipe/checksum.hpp>
#include <hetpipe/count.hpp>
#include <hetpipe/dtype.hpp>
#include <hetpipe/error.hpp>
#include <hetpipe/framing.hpp>
#include <hetpipe/image.hpp>
#include <hetpipe/info.hpp>
#include <hetpipe/operator.hpp>
#include <hetpipe/options.hpp>
#include <hetpipe/pipeline.hpp>
#include <hetpipe/stats.hpp>
