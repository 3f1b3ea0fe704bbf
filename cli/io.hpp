// cli/io.hpp — the one place the `convarith` command (cli/) and the bench harness (bench/) decide
// how much memory they may take, read a file, and write one. Header-only so that
// convarith_bench_lib (which the CLI links, not the other way round) uses the same code.
//
// Memory: every host allocation sized by a problem or by a file is planned first (HostMemory) and
// refused, before anything is allocated, when the total passes host_memory_limit(): 7/8 of the
// smallest of the physical memory, the cgroup's memory.max and the address space RLIMIT_AS still
// leaves (the rest is the margin for the program itself). CONVARITH_MEMORY_LIMIT=BYTES lowers it.
// A refusal is a kOutOfRange Status whose message gives the bytes needed, per buffer, and the limit.
//
// Reading: only regular files (a device such as /dev/zero, a FIFO or a directory is refused before
// a byte is read), never more than the caller's cap and the file's size.
//
// Writing: a fresh file from mkstemp() next to the destination, written, fsync'ed, then renamed
// over it. Never a fixed temporary name, never through a symlink planted at one, and an existing
// destination stays as it was unless the whole write succeeded.
#pragma once

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "convarith/status.hpp"

namespace convarith::cli {

constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();

inline uint64_t saturating_mul(uint64_t a, uint64_t b) {
  if (a != 0 && b > kUnlimited / a)
    return kUnlimited;
  return a * b;
}
inline uint64_t saturating_add(uint64_t a, uint64_t b) {
  return b > kUnlimited - a ? kUnlimited : a + b;
}

// "1600000000000 bytes (1.46 TiB)"; the saturated value reads "more than 2^64 bytes".
inline std::string byte_text(uint64_t bytes) {
  if (bytes == kUnlimited)
    return "more than 2^64 bytes";
  std::string s = std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
  if (bytes >= 1024) {
    const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = static_cast<double>(bytes) / 1024;
    int u = 0;
    while (v >= 1024 && u < 5) {
      v /= 1024;
      ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, " (%.2f %s)", v, units[u]);
    s += buf;
  }
  return s;
}

struct MemoryLimit {
  uint64_t bytes = kUnlimited; // what HostMemory::check allows
  std::string how;             // how it was derived, for messages
};

namespace detail {

// The first number in a small file (/sys/fs/cgroup/memory.max, /proc/self/statm), or kUnlimited.
inline uint64_t first_number_in(const char* path) {
  std::FILE* f = std::fopen(path, "re");
  if (!f)
    return kUnlimited;
  unsigned long long v = 0;
  const int got = std::fscanf(f, "%llu", &v);
  std::fclose(f);
  return got == 1 ? static_cast<uint64_t>(v) : kUnlimited;
}

inline const char* file_kind(mode_t mode) {
  return S_ISCHR(mode)    ? "a character device"
         : S_ISBLK(mode)  ? "a block device"
         : S_ISDIR(mode)  ? "a directory"
         : S_ISFIFO(mode) ? "a FIFO"
         : S_ISSOCK(mode) ? "a socket"
         : S_ISLNK(mode)  ? "a symbolic link"
         : S_ISREG(mode)  ? "a regular file"
                          : "an unknown kind of file";
}

} // namespace detail

// Computed on each call (cheap: a few syscalls), so it follows setrlimit and the environment.
inline MemoryLimit host_memory_limit() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const uint64_t physical =
      pages > 0 && page > 0 ? saturating_mul(static_cast<uint64_t>(pages), static_cast<uint64_t>(page)) : kUnlimited;
  const uint64_t cgroup = detail::first_number_in("/sys/fs/cgroup/memory.max"); // "max": kUnlimited
  uint64_t address_space = kUnlimited;
  struct rlimit rl {};
  if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    const uint64_t mapped_pages = detail::first_number_in("/proc/self/statm");
    const uint64_t mapped =
        mapped_pages == kUnlimited ? 0 : saturating_mul(mapped_pages, static_cast<uint64_t>(page > 0 ? page : 4096));
    const uint64_t cap = static_cast<uint64_t>(rl.rlim_cur);
    address_space = cap > mapped ? cap - mapped : 0;
  }
  uint64_t smallest = physical;
  std::string which = "physical memory " + byte_text(physical);
  if (cgroup < smallest) {
    smallest = cgroup;
    which = "the cgroup's memory.max " + byte_text(cgroup);
  }
  if (address_space < smallest) {
    smallest = address_space;
    which = "what RLIMIT_AS leaves, " + byte_text(address_space);
  }
  MemoryLimit limit;
  limit.bytes = smallest == kUnlimited ? kUnlimited : smallest - smallest / 8;
  limit.how = "7/8 of " + which + ", the smallest of physical memory, cgroup memory.max and RLIMIT_AS";
  if (const char* env = std::getenv("CONVARITH_MEMORY_LIMIT"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(env, &end, 10);
    if (errno == 0 && end != env && *end == '\0' && env[0] != '-' && static_cast<uint64_t>(v) < limit.bytes) {
      limit.bytes = static_cast<uint64_t>(v);
      limit.how = "CONVARITH_MEMORY_LIMIT=" + std::string(env);
    }
  }
  return limit;
}

// The host buffers one step is about to allocate, checked together before any of them is.
class HostMemory {
public:
  // `count` elements of `element_bytes` each (the product saturates instead of wrapping).
  HostMemory& add(const std::string& what, uint64_t count, uint64_t element_bytes) {
    items_.push_back({what, count, element_bytes, saturating_mul(count, element_bytes)});
    total_ = saturating_add(total_, items_.back().bytes);
    return *this;
  }
  uint64_t total() const { return total_; }

  // OK, or kOutOfRange: "<purpose> needs N bytes (x.y GiB) of memory (y: ... ), more than the limit
  // of ... (7/8 of ...); nothing was allocated".
  Status check(const std::string& purpose, const MemoryLimit& limit = host_memory_limit()) const {
    if (total_ <= limit.bytes)
      return Status::ok();
    std::string parts;
    for (const Item& it : items_) {
      if (!parts.empty())
        parts += "; ";
      parts += it.what + ": ";
      if (it.element_bytes == 1)
        parts += byte_text(it.bytes);
      else
        parts += std::to_string(it.count) + " x " + std::to_string(it.element_bytes) + " = " + byte_text(it.bytes);
    }
    return out_of_range(purpose + " needs " + byte_text(total_) + " of memory (" + parts +
                        "), more than the limit of " + byte_text(limit.bytes) + " (" + limit.how +
                        "); nothing was allocated");
  }

private:
  struct Item {
    std::string what;
    uint64_t count, element_bytes, bytes;
  };
  std::vector<Item> items_;
  uint64_t total_ = 0;
};

// ---- reading -------------------------------------------------------------------------------------

// An open regular file (closed by the destructor).
class InputFile {
public:
  InputFile() = default;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  InputFile(InputFile&& o) noexcept : fd_(o.fd_), size_(o.size_), path_(std::move(o.path_)) { o.fd_ = -1; }
  ~InputFile() {
    if (fd_ >= 0)
      ::close(fd_);
  }

  // Opens `path` without blocking (a FIFO with no writer would block a plain open) and refuses
  // anything that is not a regular file: "PATH: not a regular file (a character device)".
  static Result<InputFile> open(const std::string& path) {
    if (path.empty())
      return invalid_argument("empty file name");
    InputFile f;
    f.path_ = path;
    f.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (f.fd_ < 0)
      return invalid_argument(path + ": cannot open (" + std::strerror(errno) + ")");
    struct stat st {};
    if (::fstat(f.fd_, &st) != 0)
      return invalid_argument(path + ": cannot stat (" + std::strerror(errno) + ")");
    if (!S_ISREG(st.st_mode))
      return invalid_argument(path + ": not a regular file (" + detail::file_kind(st.st_mode) + ")");
    // Back to blocking reads (they never block on a regular file anyway).
    const int flags = ::fcntl(f.fd_, F_GETFL);
    if (flags >= 0)
      (void)::fcntl(f.fd_, F_SETFL, flags & ~O_NONBLOCK);
    f.size_ = static_cast<uint64_t>(st.st_size);
    return f;
  }

  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Reads exactly `n` bytes at the current position; a shorter file (one that shrank after open)
  // is "truncated".
  Status read_exact(void* dst, uint64_t n) {
    unsigned char* p = static_cast<unsigned char*>(dst);
    uint64_t done = 0;
    while (done < n) {
      const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n - done, uint64_t{1} << 30));
      const ssize_t got = ::read(fd_, p + done, chunk);
      if (got < 0 && errno == EINTR)
        continue;
      if (got < 0)
        return invalid_argument(path_ + ": read error (" + std::strerror(errno) + ")");
      if (got == 0)
        return invalid_argument(path_ + ": truncated (ended after " + std::to_string(done) + " of the " +
                                std::to_string(n) + " bytes being read; did it change while being read?)");
      done += static_cast<uint64_t>(got);
    }
    return Status::ok();
  }

  // True when the file has no byte after the current position (one that grew after open has).
  bool at_end() {
    unsigned char b = 0;
    ssize_t got;
    do
      got = ::read(fd_, &b, 1);
    while (got < 0 && errno == EINTR);
    return got == 0;
  }

private:
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string path_;
};

// The whole of a regular file of at most `max_bytes` bytes; `what` names it in messages
// ("the layer file"). Larger files, devices and FIFOs are refused before anything is read.
inline Result<std::string> read_regular_file(const std::string& path, uint64_t max_bytes, const std::string& what) {
  Result<InputFile> opened = InputFile::open(path);
  if (!opened)
    return Status(opened.status().code(), what + " " + opened.status().message());
  InputFile f = std::move(opened).value();
  if (f.size() > max_bytes)
    return invalid_argument(what + " " + path + ": " + byte_text(f.size()) + ", more than the " + byte_text(max_bytes) +
                            " it may have");
  CONVARITH_RETURN_IF_ERROR(HostMemory().add(path, f.size(), 1).check("reading " + what + " " + path));
  std::string bytes(static_cast<size_t>(f.size()), '\0');
  CONVARITH_RETURN_IF_ERROR(f.read_exact(bytes.data(), bytes.size()));
  if (!f.at_end())
    return invalid_argument(what + " " + path + ": it grew while being read (more than its " + byte_text(f.size()) +
                            ")");
  return bytes;
}

// ---- writing -------------------------------------------------------------------------------------

struct ByteSpan {
  const void* data;
  size_t size;
};

// Writes the concatenation of `parts` to `path` atomically (see the top of this file). Errors name
// the path and end in "nothing was written".
inline Status write_file_atomic(const std::string& path, std::initializer_list<ByteSpan> parts) {
  if (path.empty())
    return invalid_argument("output path is empty");
  // rename() would replace whatever is there: a device (--out /dev/null as root), a FIFO or a
  // directory is refused; a regular file or a symlink (the link is replaced, not its target) is not.
  struct stat existing {};
  if (::lstat(path.c_str(), &existing) == 0 && !S_ISREG(existing.st_mode) && !S_ISLNK(existing.st_mode))
    return invalid_argument(path + ": exists and is not a regular file (" + detail::file_kind(existing.st_mode) +
                            "); nothing was written");
  // The temporary file lives next to the destination so that rename() stays on one file system.
  std::string tmp = path + ".tmp-XXXXXX";
  const int fd = ::mkstemp(&tmp[0]); // O_CREAT | O_EXCL: never opens an existing file or symlink
  if (fd < 0)
    return invalid_argument(path + ": cannot create a temporary file next to it (" + std::strerror(errno) +
                            "); nothing was written");
  // mkstemp creates 0600; give the result the permissions a plain open() would (0666 & ~umask).
  const mode_t mask = ::umask(0);
  ::umask(mask);
  auto fail = [&](const char* step) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    return invalid_argument(path + ": " + step + " (" + why + "); nothing was written");
  };
  if (::fchmod(fd, static_cast<mode_t>(0666 & ~mask)) != 0)
    return fail("cannot set permissions");
  for (const ByteSpan& part : parts) {
    const char* p = static_cast<const char*>(part.data);
    size_t done = 0;
    while (done < part.size) {
      const ssize_t n = ::write(fd, p + done, part.size - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        if (n == 0)
          errno = EIO;
        return fail("write failed");
      }
      done += static_cast<size_t>(n);
    }
  }
  if (::fsync(fd) != 0)
    return fail("fsync failed");
  if (::close(fd) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return invalid_argument(path + ": close failed (" + why + "); nothing was written");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return invalid_argument(path + ": cannot rename the temporary file into place (" + why + "); nothing was written");
  }
  return Status::ok();
}

inline Status write_file_atomic(const std::string& path, const std::string& bytes) {
  return write_file_atomic(path, {ByteSpan{bytes.data(), bytes.size()}});
}

} // namespace convarith::cli
