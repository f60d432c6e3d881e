#include "host/crypto_lib.hpp"

#include <dlfcn.h>

#include <string>
#include <type_traits>

#include "hetpipe/error.hpp"

namespace hetpipe::host::crypto {

const functions& lib() {
  static const functions loaded = [] {
    ::dlerror();  // a stale message is not this load's
    // Lazy: libcrypto's own calls bind as they are first made, as they did when it was linked
    // (RTLD_NOW bound all of them here and cost `encrypt` 0.3-0.6 ms more).
    void* handle = ::dlopen(soname, RTLD_LAZY | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = ::dlerror();
      throw error("", std::string("cannot load ") + soname + ": " +
                          (why ? why : "unknown dynamic loader error"));
    }
    functions f;
    const auto find = [handle](auto& fn, const char* name) {
      void* p = ::dlsym(handle, name);
      if (p == nullptr)
        throw error("", std::string("cannot load ") + soname + ": it has no " + name);
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
    };
#define HETPIPE_CRYPTO_FIND(name) find(f.name, #name);
    HETPIPE_CRYPTO_FUNCTIONS(HETPIPE_CRYPTO_FIND)
#undef HETPIPE_CRYPTO_FIND
    return f;
  }();
  return loaded;
}

}  // namespace hetpipe::host::crypto
