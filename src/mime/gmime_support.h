// What the GMime-based parsers in src/mime share: one-time library set-up and
// an owning pointer for GObjects. Internal to src/mime (it includes GMime's
// headers, which no public header of ours does).
// Thread-safety: EnsureGMimeInitialised may be called from any thread.
#pragma once

#include <gmime/gmime.h>

#include <memory>
#include <mutex>

namespace blindlist::mime {

inline void EnsureGMimeInitialised() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

struct GObjectUnref {
  void operator()(void* object) const { g_object_unref(object); }
};
template <typename T>
using GObjectPtr = std::unique_ptr<T, GObjectUnref>;

}  // namespace blindlist::mime
