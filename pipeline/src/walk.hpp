// Walking a folder for `checksum -r` and `image -r`: entries sorted by name, folders walked
// depth first, regular files (and links to them) kept, as find(1) walks: links to folders are not
// followed (no loops), and FIFOs, devices and dangling links are passed over. A folder that
// cannot be opened or read is reported, and the walk goes on past it.
//
//   detail::walk("photos", [&](std::string f) { files.push_back(std::move(f)); },
//                [&](const std::string& dir, int err) { bad.push_back({dir, err}); });
#pragma once

#include <functional>
#include <string>

namespace hetpipe::detail {

struct walk_visitor {
  std::function<void(std::string path)> file;                  // a regular file, in order
  std::function<void(const std::string& dir, int err)> error;  // errno of a folder's open or read
  // Called for each folder below the first: true leaves it out (null: none is).
  std::function<bool(const std::string& dir)> skip_folder;
};

void walk(const std::string& dir, const walk_visitor& v);

}  // namespace hetpipe::detail
