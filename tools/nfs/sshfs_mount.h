// A real network file system over loopback, for tests: a private sshd on
// 127.0.0.1 and sshfs (FUSE + SFTP) mounts of local directories through it.
//
//   absl::Status available = nfs::LoopbackSshfs::Available();
//   if (!available.ok()) GTEST_SKIP() << available.message();
//   nfs::LoopbackSshfs server(scratch_dir);
//   ASSERT_TRUE(server.Start().ok());
//   ASSERT_TRUE(server.Mount(export_dir, mount_point).ok());
//   ... mount_point/ is export_dir/ seen through SFTP ...
//   // the destructor unmounts everything and stops sshd
//
// What it does:
//  - Start(): in the scratch dir, generates an ed25519 host key and client key
//    (ssh-keygen), authorizes the client key, writes an sshd_config
//    (ListenAddress 127.0.0.1, a free port, public-key authentication only,
//    only the current user (root) may log in, `Subsystem sftp internal-sftp`,
//    PidFile in the scratch dir, StrictModes no since test directories may be
//    group-writable, UsePAM no), checks it with `sshd -t`, creates /run/sshd
//    (sshd's privilege-separation directory) when missing, runs
//    `/usr/sbin/sshd -D -e -f <config>` as a child (log in <scratch>/sshd.log)
//    and waits until the port accepts connections.
//  - Mount(): runs `sshfs -f` as a child: `sshfs -f -F /dev/null -p PORT -o
//    IdentityFile=<client key>,IdentitiesOnly=yes,StrictHostKeyChecking=no,
//    UserKnownHostsFile=/dev/null,BatchMode=yes,LogLevel=ERROR,auto_unmount
//    USER@127.0.0.1:<export> <mount point>` (log in <scratch>/sshfs-N.log), and
//    waits until the mount point shows in /proc/self/mountinfo.
//    `-F /dev/null` keeps the user's ~/.ssh/config out of it. `auto_unmount`
//    makes fusermount3 remove the mount if sshfs dies, and both children get
//    SIGTERM if the test process dies (PR_SET_PDEATHSIG), so a crashed test
//    leaves no stale mount behind.
//  - Cache options: sshfs's defaults (its directory/attribute cache,
//    dir_cache=yes with a 20 s timeout, and the kernel's 1 s attribute
//    cache). Everything a test changes on the destination goes through the
//    mount, and sshfs drops or updates its cache entries on its own writes,
//    renames, unlinks and setattrs, so they are never stale for the test;
//    this is also what a user gets. A test that changes the export directly
//    (server side) while mounted must mount with "dir_cache=no" (an
//    `extra_options` entry) or wait out the timeout. Reading the export
//    directly is always current (it is the server's own file system).
//  - Unmount()/destructor: `fusermount3 -u` (or `fusermount -u`) of each mount,
//    falling back to a lazy `-u -z` and then killing sshfs; then SIGTERM to
//    sshd and waiting for it.
//
// Meant for root (tests run as root here): it creates /run/sshd and opens
// /dev/fuse. Needs /usr/sbin/sshd (openssh-server), ssh-keygen and ssh
// (openssh-client), sshfs, fusermount3 (fuse3) and a /dev/fuse this process
// can open; Available() says which is missing. See "A real network file
// system for tests" in /work/shared/docs/offline-bazel.md.

#ifndef SNAPHAVEN_TOOLS_NFS_SSHFS_MOUNT_H_
#define SNAPHAVEN_TOOLS_NFS_SSHFS_MOUNT_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace snaphaven::nfs {

class LoopbackSshfs {
 public:
  // OK when this machine can run the harness; otherwise FailedPrecondition
  // naming what is missing and how to get it (for GTEST_SKIP).
  static absl::Status Available();

  // `scratch_dir` holds keys, configuration and logs; created if missing.
  explicit LoopbackSshfs(std::string scratch_dir);
  ~LoopbackSshfs();  // unmounts every mount, then stops sshd
  LoopbackSshfs(const LoopbackSshfs&) = delete;
  LoopbackSshfs& operator=(const LoopbackSshfs&) = delete;

  // Keys, sshd_config, sshd running and accepting on 127.0.0.1:port().
  absl::Status Start(absl::Duration timeout = absl::Seconds(20));

  // Mounts `export_dir` (an existing local directory) on `mount_point`
  // (created if missing) through sshd. `extra_options` are added to sshfs's
  // -o list, e.g. "disable_hardlink" or "dir_cache=no". Several mounts, of
  // the same or different exports, may be active at once.
  absl::Status Mount(const std::string& export_dir, const std::string& mount_point,
                     const std::vector<std::string>& extra_options = {},
                     absl::Duration timeout = absl::Seconds(20));

  // Unmounts one mount made by Mount() and waits for its sshfs to exit.
  absl::Status Unmount(const std::string& mount_point);

  // Unmounts everything and stops sshd (what the destructor does).
  absl::Status Stop();

  int port() const { return port_; }
  const std::string& scratch_dir() const { return scratch_; }
  // The last lines of the sshd and sshfs logs, for failure messages.
  std::string Logs() const;

  // Whether `path` is a mount point now (per /proc/self/mountinfo).
  static bool IsMountPoint(const std::string& path);

 private:
  struct ActiveMount {
    std::string mount_point;  // absolute, symlinks resolved
    pid_t sshfs_pid = -1;
    std::string log;
  };

  absl::Status StartSshdOnce(absl::Duration timeout);
  absl::Status UnmountOne(ActiveMount& mount);

  std::string scratch_;
  std::string user_;
  int port_ = 0;
  pid_t sshd_pid_ = -1;
  int mounts_made_ = 0;
  std::vector<ActiveMount> mounts_;
};

}  // namespace snaphaven::nfs

#endif  // SNAPHAVEN_TOOLS_NFS_SSHFS_MOUNT_H_
