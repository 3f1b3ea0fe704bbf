// cli/npy.cpp — .npy reading and atomic writing (float32, little-endian, C order).
//
// The format: the magic "\x93NUMPY", a major and minor version byte, the header length
// (2 bytes little-endian in 1.0, 4 bytes in 2.0 and 3.0), then a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces and a newline,
// then the raw data. 3.0 only differs by allowing UTF-8 in the header, which this parser never
// needs to interpret.
#include "npy.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "convarith/arithmetic.hpp"

namespace convarith::cli {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

bool host_is_little_endian() {
  const uint32_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

uint32_t load_le(const std::string& bytes, size_t at, int count) {
  uint32_t v = 0;
  for (int i = count - 1; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(bytes[at + static_cast<size_t>(i)]);
  return v;
}

// Shows at most 60 characters of what was found, with control bytes escaped.
std::string excerpt(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 60; ++i) {
    const unsigned char ch = static_cast<unsigned char>(s[i]);
    if (ch >= 0x20 && ch < 0x7f) {
      out += static_cast<char>(ch);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", ch);
      out += buf;
    }
  }
  if (s.size() > 60)
    out += "...";
  return out;
}

// A parser for the one dict literal numpy writes (keys and values in any order).
class HeaderParser {
public:
  HeaderParser(const std::string& text, const std::string& file) : t_(text), file_(file) {}

  Status parse(std::string* descr, bool* fortran, std::vector<int64_t>* shape) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    skip_ws();
    if (!eat('{'))
      return error("expected '{' at the start");
    while (true) {
      skip_ws();
      if (eat('}'))
        break;
      std::string key;
      CONVARITH_RETURN_IF_ERROR(parse_string(&key));
      skip_ws();
      if (!eat(':'))
        return error("expected ':' after '" + key + "'");
      skip_ws();
      if (key == "descr") {
        if (have_descr)
          return error("'descr' appears twice");
        have_descr = true;
        CONVARITH_RETURN_IF_ERROR(parse_string(descr));
      } else if (key == "fortran_order") {
        if (have_fortran)
          return error("'fortran_order' appears twice");
        have_fortran = true;
        if (t_.compare(pos_, 4, "True") == 0) {
          *fortran = true;
          pos_ += 4;
        } else if (t_.compare(pos_, 5, "False") == 0) {
          *fortran = false;
          pos_ += 5;
        } else {
          return error("'fortran_order' is neither True nor False");
        }
      } else if (key == "shape") {
        if (have_shape)
          return error("'shape' appears twice");
        have_shape = true;
        CONVARITH_RETURN_IF_ERROR(parse_tuple(shape));
      } else {
        return error("unexpected key '" + key + "' (expected descr, fortran_order and shape)");
      }
      skip_ws();
      if (eat(','))
        continue;
      skip_ws();
      if (eat('}'))
        break;
      return error("expected ',' or '}' after the value of '" + key + "'");
    }
    skip_ws();
    if (pos_ != t_.size())
      return error("unexpected text after the closing '}'");
    if (!have_descr)
      return error("no 'descr' key");
    if (!have_fortran)
      return error("no 'fortran_order' key");
    if (!have_shape)
      return error("no 'shape' key");
    return Status::ok();
  }

private:
  Status error(const std::string& what) const {
    return invalid_argument(file_ + ": malformed .npy header (" + what + " at offset " + std::to_string(pos_) +
                            "): \"" + excerpt(t_) + "\"");
  }
  void skip_ws() {
    while (pos_ < t_.size() && (t_[pos_] == ' ' || t_[pos_] == '\t' || t_[pos_] == '\n' || t_[pos_] == '\r'))
      ++pos_;
  }
  bool eat(char ch) {
    if (pos_ < t_.size() && t_[pos_] == ch) {
      ++pos_;
      return true;
    }
    return false;
  }
  Status parse_string(std::string* out) {
    if (pos_ >= t_.size() || (t_[pos_] != '\'' && t_[pos_] != '"'))
      return error("expected a quoted string");
    const char q = t_[pos_++];
    const size_t end = t_.find(q, pos_);
    if (end == std::string::npos)
      return error("unterminated string");
    *out = t_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return Status::ok();
  }
  Status parse_tuple(std::vector<int64_t>* out) {
    out->clear();
    if (!eat('('))
      return error("'shape' is not a tuple");
    while (true) {
      skip_ws();
      if (eat(')'))
        return Status::ok();
      if (pos_ >= t_.size() || t_[pos_] < '0' || t_[pos_] > '9')
        return error("'shape' holds a non-integer");
      int64_t v = 0;
      while (pos_ < t_.size() && t_[pos_] >= '0' && t_[pos_] <= '9') {
        const int64_t digit = t_[pos_++] - '0';
        if (v > (std::numeric_limits<int64_t>::max() - digit) / 10)
          return error("a 'shape' entry overflows 64 bits");
        v = v * 10 + digit;
      }
      out->push_back(v);
      skip_ws();
      if (eat(')'))
        return Status::ok();
      if (!eat(','))
        return error("expected ',' or ')' in 'shape'");
    }
  }

  const std::string& t_;
  const std::string& file_;
  size_t pos_ = 0;
};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

} // namespace

Result<NpyArray> parse_npy(const std::string& bytes, const std::string& name) {
  if (bytes.size() < kMagicSize || bytes.compare(0, kMagicSize, kMagic, kMagicSize) != 0)
    return invalid_argument(name + ": not a .npy file (bad magic: starts with \"" +
                            excerpt(bytes.substr(0, kMagicSize)) + "\", expected \"\\x93NUMPY\")");
  if (bytes.size() < kMagicSize + 2)
    return invalid_argument(name + ": truncated .npy file (" + std::to_string(bytes.size()) +
                            " bytes, ends inside the version)");
  const int major = static_cast<unsigned char>(bytes[6]);
  const int minor = static_cast<unsigned char>(bytes[7]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    return invalid_argument(name + ": unsupported .npy format version " + std::to_string(major) + "." +
                            std::to_string(minor) + " (1.0, 2.0 and 3.0 are supported)");
  const int len_bytes = major == 1 ? 2 : 4;
  const size_t prefix = kMagicSize + 2 + static_cast<size_t>(len_bytes);
  if (bytes.size() < prefix)
    return invalid_argument(name + ": truncated .npy file (" + std::to_string(bytes.size()) +
                            " bytes, ends inside the header length)");
  const size_t header_len = load_le(bytes, kMagicSize + 2, len_bytes);
  if (bytes.size() - prefix < header_len)
    return invalid_argument(name + ": truncated .npy file (the header claims " + std::to_string(header_len) +
                            " bytes, but only " + std::to_string(bytes.size() - prefix) + " follow)");
  const std::string header = bytes.substr(prefix, header_len);

  std::string descr;
  bool fortran = false;
  std::vector<int64_t> shape;
  CONVARITH_RETURN_IF_ERROR(HeaderParser(header, name).parse(&descr, &fortran, &shape));
  if (descr != "<f4") {
    std::string why = "only little-endian float32 ('<f4') is supported";
    if (descr == ">f4")
      why = "big-endian float32; " + why;
    return invalid_argument(name + ": dtype '" + descr + "' (" + why + ")");
  }
  if (fortran)
    return invalid_argument(name + ": fortran_order is True (only C order is supported; save with "
                                   "numpy.ascontiguousarray)");
  int64_t count = 1;
  for (int64_t d : shape) {
    if (!checked_mul(count, d, &count))
      return out_of_range(name + ": shape " + shape_text(shape) + " has more elements than fit in 64 bits");
  }
  int64_t data_bytes = 0;
  if (!checked_mul(count, 4, &data_bytes))
    return out_of_range(name + ": shape " + shape_text(shape) + " needs more bytes than fit in 64 bits");
  const size_t have = bytes.size() - prefix - header_len;
  if (static_cast<uint64_t>(data_bytes) != have) {
    return invalid_argument(name + ": the header's shape " + shape_text(shape) + " needs " +
                            std::to_string(data_bytes) + " bytes of float32 data, but the file has " +
                            std::to_string(have) + (static_cast<uint64_t>(data_bytes) > have ? " (truncated)" : ""));
  }
  NpyArray out;
  out.shape = std::move(shape);
  out.data.resize(static_cast<size_t>(count));
  if (count > 0)
    std::memcpy(out.data.data(), bytes.data() + prefix + header_len, have);
  if (!host_is_little_endian()) {
    for (float& f : out.data) {
      unsigned char b[4];
      std::memcpy(b, &f, 4);
      std::swap(b[0], b[3]);
      std::swap(b[1], b[2]);
      std::memcpy(&f, b, 4);
    }
  }
  return out;
}

Result<NpyArray> read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return invalid_argument(path + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad())
    return invalid_argument(path + ": read error");
  return parse_npy(buf.str(), path);
}

Result<std::string> encode_npy(const std::vector<int64_t>& shape, const float* data) {
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0)
      return invalid_argument("encode_npy: negative dimension in shape " + shape_text(shape));
    if (!checked_mul(count, d, &count))
      return out_of_range("encode_npy: shape " + shape_text(shape) + " overflows 64 bits");
  }
  if (count > 0 && data == nullptr)
    return invalid_argument("encode_npy: null data for " + std::to_string(count) + " values");
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_text(shape) + ", }";
  // numpy aligns the data to 64 bytes and ends the header with a newline; version 1.0 has a
  // 2-byte header length, so longer headers (shapes are short: never in practice) need 2.0.
  const auto padded = [&](size_t prefix_bytes) { return (prefix_bytes + dict.size() + 1 + 63) / 64 * 64; };
  const bool v1 = padded(10) - 10 <= 65535;
  const size_t prefix = v1 ? 10 : 12;
  const size_t total = padded(prefix);
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict += '\n';
  std::string out(kMagic, kMagicSize);
  out += static_cast<char>(v1 ? 1 : 2);
  out += '\0';
  const size_t len = dict.size();
  for (size_t i = 0; i < (v1 ? 2u : 4u); ++i)
    out += static_cast<char>((len >> (8 * i)) & 0xff);
  out += dict;
  const size_t header_end = out.size();
  out.resize(header_end + static_cast<size_t>(count) * 4);
  if (count > 0)
    std::memcpy(&out[header_end], data, static_cast<size_t>(count) * 4);
  if (!host_is_little_endian()) {
    for (size_t i = header_end; i < out.size(); i += 4) {
      std::swap(out[i], out[i + 3]);
      std::swap(out[i + 1], out[i + 2]);
    }
  }
  return out;
}

Status write_file_atomic(const std::string& path, const std::string& bytes) {
  if (path.empty())
    return invalid_argument("output path is empty");
  // The temporary file lives next to the destination so that rename() stays on one file system.
  std::string tmp = path + ".tmp-XXXXXX";
  const int fd = mkstemp(&tmp[0]);
  if (fd < 0)
    return invalid_argument(path + ": cannot create a temporary file next to it (" + std::strerror(errno) + ")");
  // mkstemp creates 0600; give the result the permissions a plain open() would (0666 & ~umask).
  const mode_t mask = umask(0);
  umask(mask);
  auto fail = [&](const char* what) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    return invalid_argument(path + ": " + what + " (" + why + "); nothing was written");
  };
  if (fchmod(fd, static_cast<mode_t>(0666 & ~mask)) != 0)
    return fail("cannot set permissions");
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return fail("write failed");
    done += static_cast<size_t>(n);
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

Status write_npy(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  Result<std::string> bytes = encode_npy(shape, data);
  if (!bytes)
    return Status(bytes.status().code(), path + ": " + bytes.status().message());
  return write_file_atomic(path, *bytes);
}

} // namespace convarith::cli
