// fuzz/cli_harness.hpp — harnesses for the CLI's parsers, shared by fuzz/fuzz_attributes.cpp,
// fuzz/fuzz_npy.cpp and fuzz/fuzz_npy_file.cpp (libFuzzer) and tests/test_cli_fuzz_regressions.cpp
// (which replays tests/regressions/{attributes,npy,npy_file}/ in the normal test build). Each
// returns "" or the first broken invariant.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "attributes.hpp"
#include "convarith/convarith.hpp"
#include "fuzz_input.hpp"
#include "npy.hpp"
#include "problem_harness.hpp"

namespace convarith::fuzz {

// ---- attributes ---------------------------------------------------------------------------------

// Words a hostile or careless user types: every option, every op spelling, numbers at the edges of
// int64, malformed lists. Raw byte strings are mixed in by the decoder.
inline const std::vector<std::string>& attribute_words() {
  static const std::vector<std::string> words = {"conv",
                                                 "conv-transpose",
                                                 "conv_transpose",
                                                 "max-pool",
                                                 "max_pool",
                                                 "avg-pool",
                                                 "avg_pool",
                                                 "Conv",
                                                 "pool",
                                                 "--x-shape",
                                                 "--w-shape",
                                                 "--kernel-shape",
                                                 "--strides",
                                                 "--pads",
                                                 "--dilations",
                                                 "--group",
                                                 "--auto-pad",
                                                 "--output-padding",
                                                 "--output-shape",
                                                 "--ceil-mode",
                                                 "--count-include-pad",
                                                 "--out-channels",
                                                 "--json",
                                                 "--",
                                                 "-",
                                                 "--strides=2,2",
                                                 "--pads=1,1,1,1",
                                                 "--x-shape=1,1,5,5",
                                                 "--group=",
                                                 "=",
                                                 "0",
                                                 "1",
                                                 "2",
                                                 "3",
                                                 "4",
                                                 "7",
                                                 "-1",
                                                 "-0",
                                                 "+1",
                                                 "01",
                                                 "1,1",
                                                 "2,2",
                                                 "3,3",
                                                 "0,0",
                                                 "1,2",
                                                 "1,1,1",
                                                 "1,1,1,1",
                                                 "0,0,0,0",
                                                 "1,2,3,4",
                                                 "1,3,8,8",
                                                 "2,4,5,5",
                                                 "1,4,6",
                                                 "1,1,5,5,5",
                                                 "4,2,3,3",
                                                 "2,2,3",
                                                 "1,3,224,224",
                                                 "64,3,7,7",
                                                 "9223372036854775807",
                                                 "9223372036854775808",
                                                 "-9223372036854775808",
                                                 "18446744073709551616",
                                                 "4294967296",
                                                 "2147483648",
                                                 "3037000500,3037000500",
                                                 "2097152,2097152,2097152",
                                                 "1,,2",
                                                 ",",
                                                 ",1",
                                                 "1,",
                                                 " 1",
                                                 "1 ",
                                                 "0x10",
                                                 "1e3",
                                                 "1.5",
                                                 "SAME_UPPER",
                                                 "SAME_LOWER",
                                                 "VALID",
                                                 "NOTSET",
                                                 "EXPLICIT",
                                                 "HALF",
                                                 "FULL",
                                                 "same_upper",
                                                 "same",
                                                 "",
                                                 std::string("1\0", 2),
                                                 "\xff\xfe"};
  return words;
}

inline std::vector<std::string> decode_args(ByteReader& r) {
  std::vector<std::string> args;
  const std::vector<std::string>& words = attribute_words();
  while (!r.empty() && args.size() < 40) {
    const uint8_t sel = r.u8();
    if (sel % 8 == 7)
      args.push_back(r.bytes(24));
    else if (sel % 8 == 6)
      args.push_back(std::to_string(r.value())); // any int64, in decimal
    else
      args.push_back(words[r.u8() % words.size()]);
  }
  return args;
}

inline std::string check_attribute_args(const std::vector<std::string>& args) {
  const Result<cli::ParsedLayer> parsed = cli::parse_layer(args);
  if (!parsed) {
    if (parsed.status().message().empty())
      return "parse_layer failed with an empty message";
    return "";
  }
  const cli::LayerArgs& la = parsed->args;
  const ProblemDesc& d = parsed->desc;
  if (!la.x_shape)
    return "parse_layer succeeded without --x-shape";
  const std::vector<int64_t>& xs = *la.x_shape;
  if (xs.size() < 3 || xs.size() > 5 || d.rank != static_cast<int>(xs.size()) - 2 || d.n != xs[0] || d.c != xs[1])
    return "desc rank/N/C do not come from --x-shape " + cli::join(xs);
  for (size_t j = 0; j + 2 < xs.size(); ++j) {
    if (d.input[j] != xs[j + 2])
      return "desc input size differs from --x-shape " + cli::join(xs);
    if (la.strides && (la.strides->size() != xs.size() - 2 || d.stride[j] != (*la.strides)[j]))
      return "desc strides differ from --strides " + cli::join(*la.strides);
    if (la.dilations && (la.dilations->size() != xs.size() - 2 || d.dilation[j] != (*la.dilations)[j]))
      return "desc dilations differ from --dilations " + cli::join(*la.dilations);
    if (la.kernel_shape && (la.kernel_shape->size() != xs.size() - 2 || d.kernel[j] != (*la.kernel_shape)[j]))
      return "desc kernel differs from --kernel-shape " + cli::join(*la.kernel_shape);
    if (la.pads && (la.pads->size() != 2 * (xs.size() - 2) || d.pad_lo[j] != (*la.pads)[j] ||
                    d.pad_hi[j] != (*la.pads)[j + xs.size() - 2]))
      return "desc pads differ from --pads " + cli::join(*la.pads) + " (ONNX order: all begins, then all ends)";
  }
  if (la.group && d.groups != *la.group)
    return "desc groups differ from --group";
  if (la.auto_pad && d.pad_mode != *la.auto_pad)
    return "desc pad mode differs from --auto-pad";
  // The description goes to the same factory as any caller's; a tiny problem also runs.
  return check_problem(d, /*run_algorithms=*/true);
}

// The number parsers on their own: decimal text of any int64 parses back to it iff it is >= 0.
inline std::string check_count_round_trip(int64_t v) {
  const std::string text = std::to_string(v);
  const Result<int64_t> got = cli::parse_count("--group", text);
  if (v >= 0 && (!got || got.value() != v))
    return "parse_count(\"" + text + "\") did not give " + text;
  if (v < 0 && got)
    return "parse_count(\"" + text + "\") accepted a negative number";
  if (!got && got.status().message().find(text) == std::string::npos)
    return "parse_count's error does not quote the text: " + got.status().message();
  return "";
}

inline std::string check_attribute_bytes(const uint8_t* data, size_t size) {
  ByteReader r(data, size);
  const std::string err = check_count_round_trip(r.value(0));
  if (!err.empty())
    return err;
  const std::vector<std::string> args = decode_args(r);
  for (const std::string& a : args) {
    const Result<std::vector<int64_t>> list = cli::parse_list("--strides", a);
    if (!list)
      continue;
    for (int64_t v : *list)
      if (v < 0)
        return "parse_list(\"" + a + "\") gave a negative value";
    const Result<std::vector<int64_t>> again = cli::parse_list("--strides", cli::join(*list));
    if (!again || *again != *list)
      return "parse_list does not round-trip \"" + a + "\" through join()";
  }
  return check_attribute_args(args);
}

// ---- .npy ---------------------------------------------------------------------------------------

// Input byte 0 chooses the mode: even = the rest is the file as is; odd = the rest is a header
// text (up to the first 0xFF byte) and a payload, wrapped in a well-formed magic, version and
// header length so that the fuzzer spends its time in the header parser and the size checks.
inline std::string decode_npy_bytes(const uint8_t* data, size_t size) {
  if (size == 0)
    return std::string();
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0)
    return rest;
  const size_t cut = rest.find('\xff');
  const std::string header = rest.substr(0, cut);
  const std::string payload = cut == std::string::npos ? std::string() : rest.substr(cut + 1);
  const bool v2 = data[0] & 2;
  std::string file("\x93NUMPY", 6);
  file.push_back(static_cast<char>(v2 ? 2 : 1));
  file.push_back(0);
  const size_t len = header.size();
  file.push_back(static_cast<char>(len & 0xFF));
  file.push_back(static_cast<char>((len >> 8) & 0xFF));
  if (v2) {
    file.push_back(static_cast<char>((len >> 16) & 0xFF));
    file.push_back(static_cast<char>((len >> 24) & 0xFF));
  }
  return file + header + payload;
}

inline std::string check_npy_file(const std::string& file) {
  const Result<cli::NpyArray> arr = cli::parse_npy(file, "fuzz.npy");
  if (!arr) {
    if (arr.status().message().find("fuzz.npy") == std::string::npos)
      return "parse_npy's error does not name the file: " + arr.status().message();
    return "";
  }
  Wide count = 1; // saturates: a shape like (2^40, 2^40, 0) is empty, and its partial products are huge
  for (int64_t dim : arr->shape) {
    if (dim < 0)
      return "parse_npy accepted a negative dimension";
    count = count > (Wide{1} << 64) ? (dim == 0 ? 0 : count) : count * dim;
  }
  if (count > static_cast<Wide>(file.size()))
    return "parse_npy accepted more elements than the file holds";
  if (count != static_cast<Wide>(arr->data.size()))
    return "parse_npy: data size differs from the shape's product";
  const Result<std::string> enc = cli::encode_npy(arr->shape, arr->data.data());
  if (!enc)
    return "encode_npy failed on a parsed array: " + enc.status().to_string();
  const Result<cli::NpyArray> back = cli::parse_npy(*enc, "round-trip.npy");
  if (!back)
    return "parse_npy rejects encode_npy's output: " + back.status().to_string();
  if (back->shape != arr->shape || back->data.size() != arr->data.size() ||
      (!arr->data.empty() && std::memcmp(back->data.data(), arr->data.data(), arr->data.size() * sizeof(float)) != 0))
    return "encode_npy/parse_npy do not round-trip";
  return "";
}

inline std::string check_npy_bytes(const uint8_t* data, size_t size) {
  return check_npy_file(decode_npy_bytes(data, size));
}

// ---- .npy files on disk -------------------------------------------------------------------------

// A private directory for the files the harness writes, made once per process and removed at exit:
// under /dev/shm when it can (tmpfs: about 10x more inputs per second than a disk), else $TMPDIR
// or /tmp.
inline const std::string& npy_scratch_dir() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    for (std::string base : {std::string("/dev/shm"), std::string(tmp && *tmp ? tmp : "/tmp")}) {
      std::string t = base + "/convarith_fuzz_npy_XXXXXX";
      if (!mkdtemp(&t[0]))
        continue;
      static std::string removed;
      removed = t;
      std::atexit([] {
        for (const char* f : {"/in.npy", "/fifo", "/link"})
          ::unlink((removed + f).c_str());
        ::rmdir(removed.c_str());
      });
      return t;
    }
    return std::string();
  }();
  return dir;
}

// Sets CONVARITH_MEMORY_LIMIT for the lifetime of the object, then puts the old value back.
class ScopedMemoryLimit {
public:
  explicit ScopedMemoryLimit(const char* bytes) {
    const char* old = std::getenv("CONVARITH_MEMORY_LIMIT");
    had_ = old != nullptr;
    if (had_)
      old_ = old;
    ::setenv("CONVARITH_MEMORY_LIMIT", bytes, 1);
  }
  ~ScopedMemoryLimit() {
    if (had_)
      ::setenv("CONVARITH_MEMORY_LIMIT", old_.c_str(), 1);
    else
      ::unsetenv("CONVARITH_MEMORY_LIMIT");
  }
  ScopedMemoryLimit(const ScopedMemoryLimit&) = delete;
  ScopedMemoryLimit& operator=(const ScopedMemoryLimit&) = delete;

private:
  bool had_ = false;
  std::string old_;
};

// The memory limit the file harness runs under: a declared size past it must be refused, never
// allocated (libFuzzer's -malloc_limit_mb catches an allocation that slips through).
constexpr uint64_t kNpyFileMemoryLimit = uint64_t{1} << 20;

inline bool write_whole(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return false;
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      ::close(fd);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return ::close(fd) == 0;
}

// Input byte 0 chooses what read_npy is given; the rest is decoded as fuzz_npy decodes its input:
//   kind 0-3: a regular file holding those bytes: read_npy must agree exactly with parse_npy on the
//             same bytes (same shape and data, or the same error message);
//   kind 4-5: the same file followed by a hole of 2^(10 + byte 0 / 8) bytes, 1 KiB to 2 TiB (a sparse
//             file: it costs nothing): a valid file becomes "extra bytes", a short one may now match its
//             huge declared shape and must be refused by the memory limit, never allocated;
//   kind 6-7: something that is not a regular file (/dev/zero, a FIFO with no writer, a directory, a
//             symlink to /dev/zero): "not a regular file", without blocking or reading.
inline std::string check_npy_file_bytes(const uint8_t* data, size_t size) {
  const std::string& dir = npy_scratch_dir();
  if (dir.empty())
    return "cannot create a scratch directory";
  const uint8_t sel = size > 0 ? data[0] : 0;
  const int kind = sel % 8;
  const std::string file = decode_npy_bytes(size > 0 ? data + 1 : data, size > 0 ? size - 1 : 0);
  const std::string path = dir + "/in.npy";
  const ScopedMemoryLimit limit(std::to_string(kNpyFileMemoryLimit).c_str());

  if (kind >= 6) {
    const int which = file.empty() ? 0 : static_cast<unsigned char>(file[0]) % 4;
    std::string target = "/dev/zero";
    if (which == 1) {
      target = dir + "/fifo";
      ::unlink(target.c_str());
      if (::mkfifo(target.c_str(), 0600) != 0)
        return "mkfifo failed";
    } else if (which == 2) {
      target = dir;
    } else if (which == 3) {
      target = dir + "/link";
      ::unlink(target.c_str());
      if (::symlink("/dev/zero", target.c_str()) != 0)
        return "symlink failed";
    }
    const Result<cli::NpyArray> r = cli::read_npy(target);
    if (r)
      return "read_npy accepted " + target + ", which is not a regular file";
    if (r.status().message().find(target + ": not a regular file (") != 0)
      return "read_npy on " + target + " did not say it is not a regular file: " + r.status().message();
    return "";
  }

  if (!write_whole(path, file))
    return "cannot write " + path;
  if (kind >= 4) {
    const uint64_t hole = uint64_t{1} << (10 + sel / 8);
    if (::truncate(path.c_str(), static_cast<off_t>(file.size() + hole)) != 0)
      return ""; // a file system without room for such a file (EFBIG): nothing to check here
    const uint64_t file_size = file.size() + hole;
    const Result<cli::NpyArray> r = cli::read_npy(path);
    if (!r) {
      if (r.status().message().find(path) == std::string::npos)
        return "read_npy's error does not name the file: " + r.status().message();
      // A complete file followed by the hole: the ordinary extra-bytes error with the numbers.
      if (cli::parse_npy(file, path).is_ok() &&
          r.status().message().find(std::to_string(hole) + " extra bytes") == std::string::npos)
        return "a valid file plus " + std::to_string(hole) +
               " bytes is not reported as extra bytes: " + r.status().message();
      return "";
    }
    const uint64_t bytes = static_cast<uint64_t>(r->data.size()) * 4;
    if (bytes > kNpyFileMemoryLimit)
      return "read_npy allocated " + std::to_string(bytes) + " bytes, past the memory limit";
    if (bytes > file_size)
      return "read_npy returned more data than the file holds";
    return "";
  }

  const Result<cli::NpyArray> disk = cli::read_npy(path);
  const Result<cli::NpyArray> memory = cli::parse_npy(file, path);
  if (disk.is_ok() != memory.is_ok())
    return "read_npy and parse_npy disagree on the same bytes: " +
           (disk ? std::string("read_npy accepted, parse_npy: ") + memory.status().message()
                 : std::string("parse_npy accepted, read_npy: ") + disk.status().message());
  if (!disk) {
    if (disk.status().message() != memory.status().message())
      return "read_npy and parse_npy give different errors: \"" + disk.status().message() + "\" vs \"" +
             memory.status().message() + "\"";
    return "";
  }
  if (disk->shape != memory->shape || disk->data.size() != memory->data.size() ||
      (!disk->data.empty() &&
       std::memcmp(disk->data.data(), memory->data.data(), disk->data.size() * sizeof(float)) != 0))
    return "read_npy and parse_npy read different arrays from the same bytes";
  return check_npy_file(file);
}

} // namespace convarith::fuzz
