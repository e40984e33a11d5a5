#include "tools/nfs/sshfs_mount.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace snaphaven::nfs {
namespace {

constexpr char kSshd[] = "/usr/sbin/sshd";
// sshd's privilege-separation directory; it refuses to start without it.
constexpr char kPrivsepDir[] = "/run/sshd";

std::string ErrnoText(int error) { return strerror(error); }

// `name` on $PATH or in the usual system directories (Bazel's strict
// action environment has a short PATH without the sbin directories).
std::string FindExecutable(const std::string& name) {
  std::vector<std::string> dirs;
  if (const char* path = getenv("PATH")) {
    dirs = absl::StrSplit(path, ':', absl::SkipEmpty());
  }
  for (const char* dir : {"/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"}) {
    dirs.push_back(dir);
  }
  for (const std::string& dir : dirs) {
    std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string FuserMount() {
  std::string found = FindExecutable("fusermount3");
  return found.empty() ? FindExecutable("fusermount") : found;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string LastLines(const std::string& text, size_t n) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  size_t from = lines.size() > n ? lines.size() - n : 0;
  return absl::StrJoin(lines.begin() + from, lines.end(), "\n");
}

absl::Status WriteFile(const std::string& path, const std::string& contents, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return absl::InternalError(absl::StrCat("create ", path, ": ", ErrnoText(errno)));
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      close(fd);
      return absl::InternalError(absl::StrCat("write ", path, ": ", ErrnoText(error)));
    }
    done += n;
  }
  close(fd);
  return absl::OkStatus();
}

// fork+exec with stdin from /dev/null and stdout+stderr appended to
// `log_path`. The child gets SIGTERM if the calling thread dies, so a
// crashed test does not leave a daemon behind.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  {
    // A header in the log says what ran.
    std::ofstream log(log_path, std::ios::app);
    log << "$ " << absl::StrJoin(argv, " ") << "\n";
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;  // parent, or -1
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(126);  // the parent died already
  int in = open("/dev/null", O_RDONLY);
  int out = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (in < 0 || out < 0) _exit(126);
  dup2(in, 0);
  dup2(out, 1);
  dup2(out, 2);
  execv(args[0], args.data());
  _exit(127);
}

// Exit code (128+N for signal N) of a child, or -1 if it is still running
// after `timeout`.
int WaitChild(pid_t pid, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    pid_t got = waitpid(pid, &status, WNOHANG);
    if (got == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (got < 0) return errno == ECHILD ? 0 : -1;
    if (absl::Now() >= deadline) return -1;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

// Runs a command to completion; its output goes to `log_path`.
absl::Status RunCommand(const std::vector<std::string>& argv, const std::string& log_path,
                        absl::Duration timeout = absl::Seconds(30)) {
  pid_t pid = Spawn(argv, log_path);
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", ErrnoText(errno)));
  int code = WaitChild(pid, timeout);
  if (code == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return absl::DeadlineExceededError(absl::StrCat(
        absl::StrJoin(argv, " "), " did not finish in ", absl::FormatDuration(timeout)));
  }
  if (code != 0) {
    return absl::InternalError(absl::StrCat(absl::StrJoin(argv, " "), " exited with ", code, ":\n",
                                            LastLines(ReadFileOrEmpty(log_path), 10)));
  }
  return absl::OkStatus();
}

// Ends a child: SIGTERM, then SIGKILL if it lingers; reaps it.
void EndChild(pid_t pid) {
  if (pid <= 0) return;
  if (WaitChild(pid, absl::ZeroDuration()) != -1) return;  // already gone
  kill(pid, SIGTERM);
  if (WaitChild(pid, absl::Seconds(5)) != -1) return;
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

// A TCP port on 127.0.0.1 that is free now (the kernel's choice).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

bool PortAccepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
std::string UnescapeMountPath(absl::string_view escaped) {
  std::string out;
  for (size_t i = 0; i < escaped.size(); ++i) {
    if (escaped[i] == '\\' && i + 3 < escaped.size()) {
      int value = (escaped[i + 1] - '0') * 64 + (escaped[i + 2] - '0') * 8 + (escaped[i + 3] - '0');
      out.push_back(static_cast<char>(value));
      i += 3;
    } else {
      out.push_back(escaped[i]);
    }
  }
  return out;
}

// An absolute path with its parent's symlinks resolved, without touching
// the last component (a dead FUSE mount point fails every stat with
// ENOTCONN).
std::string ResolveParent(const std::string& path) {
  std::string trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  size_t slash = trimmed.rfind('/');
  std::string parent = slash == std::string::npos ? "." : trimmed.substr(0, slash);
  if (parent.empty()) parent = "/";
  std::string base = slash == std::string::npos ? trimmed : trimmed.substr(slash + 1);
  char resolved[PATH_MAX];
  if (realpath(parent.c_str(), resolved) == nullptr) return trimmed;
  std::string dir = resolved;
  return dir == "/" ? "/" + base : dir + "/" + base;
}

}  // namespace

absl::Status LoopbackSshfs::Available() {
  auto missing = [](const std::string& what) {
    return absl::FailedPreconditionError(
        absl::StrCat("no loopback sshfs here: ", what,
                     " (tools/setup.sh installs openssh-server, sshfs and fuse3)"));
  };
  if (access(kSshd, X_OK) != 0) {
    return missing(absl::StrCat(kSshd, " is missing (openssh-server)"));
  }
  if (FindExecutable("ssh-keygen").empty()) {
    return missing("ssh-keygen is missing (openssh-client)");
  }
  if (FindExecutable("ssh").empty()) return missing("ssh is missing (openssh-client)");
  if (FindExecutable("sshfs").empty()) return missing("sshfs is missing (sshfs)");
  if (FuserMount().empty()) return missing("fusermount3 is missing (fuse3)");
  int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("no loopback sshfs here: cannot open /dev/fuse (", ErrnoText(errno),
                     "): FUSE is not available to this process (a container without "
                     "/dev/fuse, or not root)"));
  }
  close(fd);
  struct stat st;
  if (stat(kPrivsepDir, &st) != 0 && geteuid() != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no loopback sshfs here: sshd needs ", kPrivsepDir, ", which is missing, and only root ",
        "can create it"));
  }
  if (access("/proc/self/mountinfo", R_OK) != 0) {
    return absl::FailedPreconditionError("no loopback sshfs here: /proc/self/mountinfo unreadable");
  }
  return absl::OkStatus();
}

LoopbackSshfs::LoopbackSshfs(std::string scratch_dir) : scratch_(std::move(scratch_dir)) {}

LoopbackSshfs::~LoopbackSshfs() {
  absl::Status stopped = Stop();
  if (!stopped.ok()) fprintf(stderr, "LoopbackSshfs: %s\n", std::string(stopped.message()).c_str());
}

absl::Status LoopbackSshfs::Start(absl::Duration timeout) {
  if (sshd_pid_ > 0) return absl::FailedPreconditionError("sshd already started");
  absl::Status available = Available();
  if (!available.ok()) return available;
  if (mkdir(scratch_.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("mkdir ", scratch_, ": ", ErrnoText(errno)));
  }
  char resolved[PATH_MAX];
  if (realpath(scratch_.c_str(), resolved) == nullptr) {
    return absl::InternalError(absl::StrCat("realpath ", scratch_, ": ", ErrnoText(errno)));
  }
  scratch_ = resolved;
  struct passwd* pw = getpwuid(geteuid());
  if (pw == nullptr) return absl::InternalError("no user name for this uid");
  user_ = pw->pw_name;
  if (mkdir(kPrivsepDir, 0755) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("mkdir ", kPrivsepDir, ": ", ErrnoText(errno)));
  }

  // Fresh keys: ssh-keygen would ask before overwriting.
  const std::string keygen = FindExecutable("ssh-keygen");
  const std::string keygen_log = scratch_ + "/ssh-keygen.log";
  for (const char* key : {"host_key", "client_key"}) {
    std::string path = absl::StrCat(scratch_, "/", key);
    unlink(path.c_str());
    unlink((path + ".pub").c_str());
    absl::Status made = RunCommand(
        {keygen, "-q", "-t", "ed25519", "-N", "", "-C", "snaphaven-test", "-f", path}, keygen_log);
    if (!made.ok()) return made;
  }
  std::string client_public = ReadFileOrEmpty(scratch_ + "/client_key.pub");
  if (client_public.empty()) return absl::InternalError("ssh-keygen wrote no client_key.pub");
  absl::Status written = WriteFile(scratch_ + "/authorized_keys", client_public, 0600);
  if (!written.ok()) return written;

  // A port is free when chosen but another process may take it before sshd
  // binds it: try again with another one.
  absl::Status started;
  for (int attempt = 0; attempt < 5; ++attempt) {
    started = StartSshdOnce(timeout);
    if (started.ok() || !absl::StrContains(started.message(), "Address already in use")) break;
  }
  return started;
}

absl::Status LoopbackSshfs::StartSshdOnce(absl::Duration timeout) {
  port_ = FreePort();
  if (port_ <= 0) return absl::InternalError(absl::StrCat("no free port: ", ErrnoText(errno)));
  const std::string config_path = scratch_ + "/sshd_config";
  auto quoted = [](const std::string& path) { return absl::StrCat("\"", path, "\""); };
  std::string config = absl::StrCat(
      "# A private sshd for one test (tools/nfs/sshfs_mount.cc): loopback only, one key.\n",
      "ListenAddress 127.0.0.1\n",
      "Port ", port_, "\n",
      "HostKey ", quoted(scratch_ + "/host_key"), "\n",
      "PidFile ", quoted(scratch_ + "/sshd.pid"), "\n",
      "AuthorizedKeysFile ", quoted(scratch_ + "/authorized_keys"), "\n",
      "AuthenticationMethods publickey\n",
      "PubkeyAuthentication yes\n",
      "PasswordAuthentication no\n",
      "KbdInteractiveAuthentication no\n",
      "HostbasedAuthentication no\n",
      "PermitRootLogin prohibit-password\n",
      "AllowUsers ", user_, "\n",
      "UsePAM no\n",
      // Test directories (and $TEST_TMPDIR's parents) may be group-writable.
      "StrictModes no\n",
      "PermitTTY no\n",
      "X11Forwarding no\n",
      "AllowTcpForwarding no\n",
      "AllowAgentForwarding no\n",
      "PrintMotd no\n",
      "UseDNS no\n",
      "LogLevel INFO\n",
      "Subsystem sftp internal-sftp\n");
  absl::Status written = WriteFile(config_path, config, 0600);
  if (!written.ok()) return written;
  const std::string log = scratch_ + "/sshd.log";
  absl::Status checked = RunCommand({kSshd, "-t", "-f", config_path}, log);
  if (!checked.ok()) return checked;

  // -D: stays in the foreground as our child; -e: logs to stderr (the log).
  sshd_pid_ = Spawn({kSshd, "-D", "-e", "-f", config_path}, log);
  if (sshd_pid_ < 0) return absl::InternalError(absl::StrCat("fork: ", ErrnoText(errno)));
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int code = WaitChild(sshd_pid_, absl::ZeroDuration());
    if (code != -1) {
      sshd_pid_ = -1;
      return absl::InternalError(absl::StrCat("sshd exited with ", code, " before accepting:\n",
                                              LastLines(ReadFileOrEmpty(log), 10)));
    }
    if (PortAccepts(port_)) return absl::OkStatus();
    if (absl::Now() > deadline) {
      EndChild(sshd_pid_);
      sshd_pid_ = -1;
      return absl::DeadlineExceededError(
          absl::StrCat("sshd did not accept on 127.0.0.1:", port_, " within ",
                       absl::FormatDuration(timeout), ":\n", LastLines(ReadFileOrEmpty(log), 10)));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::Status LoopbackSshfs::Mount(const std::string& export_dir, const std::string& mount_point,
                                  const std::vector<std::string>& extra_options,
                                  absl::Duration timeout) {
  if (sshd_pid_ <= 0) return absl::FailedPreconditionError("Mount() before Start()");
  char resolved[PATH_MAX];
  if (realpath(export_dir.c_str(), resolved) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("export ", export_dir, ": ", ErrnoText(errno)));
  }
  const std::string remote = absl::StrCat(user_, "@127.0.0.1:", resolved);
  if (mkdir(mount_point.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("mkdir ", mount_point, ": ", ErrnoText(errno)));
  }
  ActiveMount mount;
  mount.mount_point = ResolveParent(mount_point);
  if (IsMountPoint(mount.mount_point)) {
    return absl::FailedPreconditionError(absl::StrCat(mount.mount_point, " is already mounted"));
  }
  mount.log = absl::StrCat(scratch_, "/sshfs-", ++mounts_made_, ".log");

  std::vector<std::string> options = {
      absl::StrCat("IdentityFile=", scratch_, "/client_key"),
      "IdentitiesOnly=yes",
      "StrictHostKeyChecking=no",
      "UserKnownHostsFile=/dev/null",
      "BatchMode=yes",  // never prompt: fail instead
      "LogLevel=ERROR",  // no "Permanently added ... to the list of known hosts"
      absl::StrCat("ssh_command=", FindExecutable("ssh")),
      "auto_unmount",  // fusermount3 unmounts if sshfs dies
  };
  options.insert(options.end(), extra_options.begin(), extra_options.end());
  std::vector<std::string> argv = {FindExecutable("sshfs"),
                                   "-f",  // our child, so we know its pid
                                   "-F", "/dev/null",
                                   "-p", absl::StrCat(port_),
                                   "-o", absl::StrJoin(options, ","),
                                   remote, mount.mount_point};
  mount.sshfs_pid = Spawn(argv, mount.log);
  if (mount.sshfs_pid < 0) return absl::InternalError(absl::StrCat("fork: ", ErrnoText(errno)));
  absl::Time deadline = absl::Now() + timeout;
  while (!IsMountPoint(mount.mount_point)) {
    int code = WaitChild(mount.sshfs_pid, absl::ZeroDuration());
    if (code != -1) {
      return absl::InternalError(absl::StrCat("sshfs exited with ", code, " before mounting ",
                                              remote, ":\n",
                                              LastLines(ReadFileOrEmpty(mount.log), 10)));
    }
    if (absl::Now() > deadline) {
      EndChild(mount.sshfs_pid);
      return absl::DeadlineExceededError(absl::StrCat(
          "sshfs did not mount ", remote, " on ", mount.mount_point, " within ",
          absl::FormatDuration(timeout), ":\n", LastLines(ReadFileOrEmpty(mount.log), 10)));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  mounts_.push_back(std::move(mount));
  return absl::OkStatus();
}

absl::Status LoopbackSshfs::UnmountOne(ActiveMount& mount) {
  const std::string fusermount = FuserMount();
  absl::Status status;
  if (IsMountPoint(mount.mount_point)) {
    status = RunCommand({fusermount, "-u", mount.mount_point}, mount.log);
  }
  // sshfs -f exits once its file system is unmounted.
  if (status.ok() && WaitChild(mount.sshfs_pid, absl::Seconds(10)) != -1) mount.sshfs_pid = -1;
  if (IsMountPoint(mount.mount_point)) {
    // Busy (a test left a file open): detach it lazily.
    absl::Status lazy = RunCommand({fusermount, "-u", "-z", mount.mount_point}, mount.log);
    if (status.ok()) status = lazy;
  }
  EndChild(mount.sshfs_pid);
  mount.sshfs_pid = -1;
  if (IsMountPoint(mount.mount_point)) {
    return absl::InternalError(absl::StrCat("cannot unmount ", mount.mount_point, ": ",
                                            status.message()));
  }
  return absl::OkStatus();
}

absl::Status LoopbackSshfs::Unmount(const std::string& mount_point) {
  std::string wanted = ResolveParent(mount_point);
  for (auto it = mounts_.begin(); it != mounts_.end(); ++it) {
    if (it->mount_point != wanted) continue;
    absl::Status status = UnmountOne(*it);
    mounts_.erase(it);
    return status;
  }
  return absl::NotFoundError(absl::StrCat(mount_point, " was not mounted by this harness"));
}

absl::Status LoopbackSshfs::Stop() {
  absl::Status status;
  // Newest first, in case one mount point lies inside another.
  while (!mounts_.empty()) {
    absl::Status one = UnmountOne(mounts_.back());
    if (status.ok()) status = one;
    mounts_.pop_back();
  }
  EndChild(sshd_pid_);
  sshd_pid_ = -1;
  return status;
}

std::string LoopbackSshfs::Logs() const {
  std::string out = absl::StrCat("--- ", scratch_, "/sshd.log\n",
                                 LastLines(ReadFileOrEmpty(scratch_ + "/sshd.log"), 20), "\n");
  for (int i = 1; i <= mounts_made_; ++i) {
    std::string log = absl::StrCat(scratch_, "/sshfs-", i, ".log");
    absl::StrAppend(&out, "--- ", log, "\n", LastLines(ReadFileOrEmpty(log), 20), "\n");
  }
  return out;
}

bool LoopbackSshfs::IsMountPoint(const std::string& path) {
  std::string wanted = ResolveParent(path);
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ...
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    if (fields.size() > 4 && UnescapeMountPath(fields[4]) == wanted) return true;
  }
  return false;
}

}  // namespace snaphaven::nfs
