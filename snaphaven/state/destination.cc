#include "snaphaven/state/destination.h"

#include "snaphaven/storage/file_system.h"

namespace snaphaven {

std::string ManifestLogPath(const std::string& manifest) { return manifest + ".log"; }

StateDir::StateDir(const std::string& destination)
    : dir(JoinPath(destination, std::string(kStateDirName))),
      manifest(JoinPath(dir, "manifest")),
      manifest_log(ManifestLogPath(manifest)),
      manifest_rebuild(manifest + ".rebuild"),
      lock(JoinPath(dir, "lock")),
      temp(JoinPath(dir, "tmp")),
      marker(JoinPath(dir, "id")),
      node(JoinPath(dir, "node")),
      dir_cache(JoinPath(dir, "dircache")),
      verify_cursor(JoinPath(dir, "verify_cursor")),
      quarantine(JoinPath(dir, "quarantine")),
      retention_trash(JoinPath(dir, "retention-trash")) {}

}  // namespace snaphaven
