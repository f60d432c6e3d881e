// Telling whether two paths name one file that may not exist yet.
#pragma once

#include <filesystem>
#include <system_error>

namespace hetpipe::detail {

// The folder a file at `p` is (or would be) in, with links, "." and ".." resolved as far as
// it exists: two paths name one file when their names are equal and their folders are one
// (./o and o; l/o, l a link to the folder). ec is set when the folder cannot be resolved.
inline std::filesystem::path resolved_folder(const std::filesystem::path& p, std::error_code& ec) {
  return std::filesystem::weakly_canonical(p.has_parent_path() ? p.parent_path() : ".", ec);
}

}  // namespace hetpipe::detail
