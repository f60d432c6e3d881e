#include "pipeline/src/walk.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <utility>
#include <vector>

namespace hetpipe::detail {

// readdir's file types answer without a stat but for symbolic links (and file systems that leave
// the type unknown). 20 000 entries, 2-core box: 15 ms; std::filesystem's directory_entry objects
// took 37-48 ms.
void walk(const std::string& dir, const walk_visitor& v) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), &::closedir);
  if (!d) {
    v.error(dir, errno);
    return;
  }
  std::vector<std::pair<std::string, unsigned char>> entries;
  for (;;) {
    errno = 0;
    const dirent* e = ::readdir(d.get());
    if (!e) {
      if (const int err = errno) v.error(dir, err);
      break;
    }
    const char* n = e->d_name;
    if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'))) continue;
    entries.emplace_back(n, e->d_type);
  }
  d.reset();
  std::sort(entries.begin(), entries.end());
  const std::string prefix = dir.empty() || dir.back() == '/' ? dir : dir + '/';
  for (auto& [name, type] : entries) {
    std::string path = prefix + name;
    if (type == DT_UNKNOWN || type == DT_LNK) {
      struct stat st {};
      if (::lstat(path.c_str(), &st) != 0) continue;
      const bool link = S_ISLNK(st.st_mode);
      if (link && ::stat(path.c_str(), &st) != 0) continue;  // a dangling link
      type = S_ISDIR(st.st_mode)   ? (link ? DT_LNK : DT_DIR)
             : S_ISREG(st.st_mode) ? DT_REG
                                   : DT_UNKNOWN;
    }
    if (type == DT_DIR) {
      if (!v.skip_folder || !v.skip_folder(path)) walk(path, v);
    } else if (type == DT_REG) {
      v.file(std::move(path));
    }
  }
}

}  // namespace hetpipe::detail
