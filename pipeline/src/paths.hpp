// What paths say: whether two name one file that may not exist yet, and a name's extension.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <system_error>

namespace hetpipe::detail {

// Equal for two paths exactly when their files are (or would be) in one folder, so that two
// paths name one file when their names are equal and these are: the folder's device and inode
// where it exists (./o and o, l/o with l a link to the folder, a bind mount), else its path with
// links, "." and ".." resolved as far as it exists. One stat where the folder exists.
inline std::string folder_key(const std::filesystem::path& p) {
  const std::filesystem::path folder = p.has_parent_path() ? p.parent_path() : ".";
  if (struct stat st{}; ::stat(folder.c_str(), &st) == 0)
    return "inode " + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  std::error_code ec;
  const auto resolved = std::filesystem::weakly_canonical(folder, ec);
  return "path " + (ec ? folder.lexically_normal() : resolved).string();
}

// A file name's extension in lower case (".PNG" is ".png").
inline std::string lower_extension(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

}  // namespace hetpipe::detail
