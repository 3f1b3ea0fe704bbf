// cli/npy.cpp — .npy reading and atomic writing (float32 or float16, little-endian, C order).
//
// The format: the magic "\x93NUMPY", a major and minor version byte, the header length
// (2 bytes little-endian in 1.0, 4 bytes in 2.0 and 3.0), then a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces and a newline,
// then the raw data. 3.0 only differs by allowing UTF-8 in the header, which this parser never
// needs to interpret.
#include "npy.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

#include "convarith/arithmetic.hpp"
#include "io.hpp"

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

namespace {

const char* type_words(NpyType t) {
  return t == NpyType::kF32 ? "float32" : "float16";
}
uint64_t type_bytes(NpyType t) {
  return t == NpyType::kF32 ? 4 : 2;
}

// What the header says: the shape, and where and how long the data is.
struct NpyHeader {
  std::vector<int64_t> shape;
  NpyType type = NpyType::kF32;
  uint64_t count = 0;       // product(shape)
  uint64_t data_bytes = 0;  // element bytes * count
  uint64_t data_offset = 0; // prefix + header length
};

// numpy writes a few hundred bytes (and itself refuses more than 10000 unless told otherwise).
constexpr uint64_t kMaxNpyHeaderBytes = uint64_t{1} << 20;

// The magic, version, header length and dict at the start of `bytes`, which holds the first bytes
// of a file of `total_size` bytes: all of them, or at least the whole header when it fits.
Result<NpyHeader> parse_npy_header(const std::string& bytes, uint64_t total_size, const std::string& name,
                                   NpyType want) {
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
  if (total_size - prefix < header_len)
    return invalid_argument(name + ": truncated .npy file (the header claims " + std::to_string(header_len) +
                            " bytes, but only " + std::to_string(total_size - prefix) + " follow)");
  if (header_len > kMaxNpyHeaderBytes)
    return invalid_argument(name + ": the .npy header claims " + std::to_string(header_len) + " bytes, more than the " +
                            std::to_string(kMaxNpyHeaderBytes) + " this reader accepts (numpy writes a few hundred)");
  if (bytes.size() - prefix < header_len)
    return internal_error(name + ": the header was not read in full");
  const std::string header = bytes.substr(prefix, header_len);

  std::string descr;
  bool fortran = false;
  NpyHeader out;
  CONVARITH_RETURN_IF_ERROR(HeaderParser(header, name).parse(&descr, &fortran, &out.shape));
  if (descr != npy_descr(want)) {
    const NpyType other = want == NpyType::kF32 ? NpyType::kF16 : NpyType::kF32;
    std::string why =
        std::string("only little-endian ") + type_words(want) + " ('" + npy_descr(want) + "') is supported here";
    if (want == NpyType::kF32)
      why = "only little-endian float32 ('<f4') is supported"; // the message of the float32-only reader
    if (descr == npy_descr(other))
      why = std::string(type_words(other)) + ", but " + type_words(want) + " ('" + npy_descr(want) + "') is wanted";
    else if (descr == ">f4" || descr == ">f2")
      why = std::string("big-endian ") + (descr == ">f4" ? "float32" : "float16") + "; " + why;
    return invalid_argument(name + ": dtype '" + descr + "' (" + why + ")");
  }
  out.type = want;
  if (fortran)
    return invalid_argument(name + ": fortran_order is True (only C order is supported; save with "
                                   "numpy.ascontiguousarray)");
  int64_t count = 1;
  for (int64_t d : out.shape) {
    if (!checked_mul(count, d, &count))
      return out_of_range(name + ": shape " + shape_text(out.shape) + " has more elements than fit in 64 bits");
  }
  int64_t data_bytes = 0;
  if (!checked_mul(count, static_cast<int64_t>(type_bytes(want)), &data_bytes))
    return out_of_range(name + ": shape " + shape_text(out.shape) + " needs more bytes than fit in 64 bits");
  out.count = static_cast<uint64_t>(count);
  out.data_bytes = static_cast<uint64_t>(data_bytes);
  out.data_offset = prefix + header_len;
  return out;
}

// The data after the header must be exactly what the shape declares.
Status check_npy_data_size(const std::string& name, const NpyHeader& h, uint64_t have) {
  if (h.data_bytes == have)
    return Status::ok();
  const bool short_file = h.data_bytes > have;
  const uint64_t diff = short_file ? h.data_bytes - have : have - h.data_bytes;
  return invalid_argument(
      name + ": the header's shape " + shape_text(h.shape) + " needs " + std::to_string(h.data_bytes) + " bytes of " +
      type_words(h.type) + " data, but the file has " + std::to_string(have) + " after the header (" +
      (short_file ? "truncated: " + std::to_string(diff) + " missing" : std::to_string(diff) + " extra bytes") + ")");
}

// Little-endian file bytes <-> host values, in place (elements of `size` bytes).
void swap_bytes_if_big_endian(void* data, uint64_t count, size_t size) {
  if (host_is_little_endian())
    return;
  unsigned char* p = static_cast<unsigned char*>(data);
  for (uint64_t i = 0; i < count; ++i, p += size)
    std::reverse(p, p + size);
}

// The array's storage for the header's type and count; returns where the data bytes go.
unsigned char* allocate(NpyArray& out, const NpyHeader& h) {
  out.shape = h.shape;
  out.type = h.type;
  if (h.type == NpyType::kF32) {
    out.data.resize(static_cast<size_t>(h.count));
    return reinterpret_cast<unsigned char*>(out.data.data());
  }
  out.half.resize(static_cast<size_t>(h.count));
  return reinterpret_cast<unsigned char*>(out.half.data());
}

} // namespace

const char* npy_descr(NpyType t) {
  return t == NpyType::kF32 ? "<f4" : "<f2";
}

Result<NpyArray> parse_npy(const std::string& bytes, const std::string& name, NpyType want) {
  Result<NpyHeader> h = parse_npy_header(bytes, bytes.size(), name, want);
  if (!h)
    return h.status();
  CONVARITH_RETURN_IF_ERROR(check_npy_data_size(name, *h, bytes.size() - h->data_offset));
  NpyArray out;
  unsigned char* dst = allocate(out, *h);
  if (h->count > 0)
    std::memcpy(dst, bytes.data() + h->data_offset, static_cast<size_t>(h->data_bytes));
  swap_bytes_if_big_endian(dst, h->count, static_cast<size_t>(type_bytes(h->type)));
  return out;
}

Result<NpyArray> read_npy(const std::string& path, NpyType want) {
  Result<InputFile> opened = InputFile::open(path);
  if (!opened)
    return opened.status();
  InputFile f = std::move(opened).value();
  // The fixed prefix first (magic, version, header length), then the header it announces, never
  // more than the file holds; parse_npy_header reports a short or malformed start.
  std::string head(static_cast<size_t>(std::min<uint64_t>(f.size(), 12)), '\0');
  CONVARITH_RETURN_IF_ERROR(f.read_exact(head.data(), head.size()));
  const bool v1 = head.size() > 6 && head[6] == 1;
  const size_t prefix = v1 ? 10 : 12;
  if (head.size() >= prefix && head.compare(0, kMagicSize, kMagic, kMagicSize) == 0) {
    const uint64_t header_len = load_le(head, kMagicSize + 2, v1 ? 2 : 4);
    const uint64_t end = std::min<uint64_t>(f.size(), prefix + std::min(header_len, kMaxNpyHeaderBytes));
    if (end > head.size()) {
      const size_t had = head.size();
      head.resize(static_cast<size_t>(end));
      CONVARITH_RETURN_IF_ERROR(f.read_exact(&head[had], head.size() - had));
    }
  }
  Result<NpyHeader> h = parse_npy_header(head, f.size(), path, want);
  if (!h)
    return h.status();
  CONVARITH_RETURN_IF_ERROR(check_npy_data_size(path, *h, f.size() - h->data_offset));
  CONVARITH_RETURN_IF_ERROR(HostMemory()
                                .add("the data of shape " + shape_text(h->shape), h->count, type_bytes(h->type))
                                .check("reading " + path));
  // Only what was read past the header so far (a 10-byte v1 prefix can over-read into the data
  // when the header is short) goes first.
  NpyArray out;
  unsigned char* dst = allocate(out, *h);
  const uint64_t already = head.size() - h->data_offset;
  if (already > 0)
    std::memcpy(dst, head.data() + h->data_offset, static_cast<size_t>(already));
  CONVARITH_RETURN_IF_ERROR(f.read_exact(dst + already, h->data_bytes - already));
  if (!f.at_end())
    return invalid_argument(path + ": extra bytes (the file grew past the " + std::to_string(f.size()) +
                            " bytes it had when opened)");
  swap_bytes_if_big_endian(dst, h->count, static_cast<size_t>(type_bytes(h->type)));
  return out;
}

Result<std::string> encode_npy_header(const std::vector<int64_t>& shape, NpyType type) {
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0)
      return invalid_argument("encode_npy: negative dimension in shape " + shape_text(shape));
    if (!checked_mul(count, d, &count))
      return out_of_range("encode_npy: shape " + shape_text(shape) + " overflows 64 bits");
  }
  int64_t bytes = 0;
  if (!checked_mul(count, static_cast<int64_t>(type_bytes(type)), &bytes))
    return out_of_range("encode_npy: shape " + shape_text(shape) + " needs more bytes than fit in 64 bits");
  std::string dict =
      std::string("{'descr': '") + npy_descr(type) + "', 'fortran_order': False, 'shape': " + shape_text(shape) + ", }";
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
  return out;
}

namespace {

uint64_t element_count(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape)
    n *= static_cast<uint64_t>(d); // encode_npy_header checked the product
  return n;
}

} // namespace

namespace {

Result<std::string> encode(const std::vector<int64_t>& shape, NpyType type, const void* data) {
  Result<std::string> header = encode_npy_header(shape, type);
  if (!header)
    return header.status();
  const uint64_t count = element_count(shape), size = type_bytes(type);
  if (count > 0 && data == nullptr)
    return invalid_argument("encode_npy: null data for " + std::to_string(count) + " values");
  CONVARITH_RETURN_IF_ERROR(HostMemory()
                                .add("the header", header->size(), 1)
                                .add("the data of shape " + shape_text(shape), count, size)
                                .check("encoding a .npy file"));
  std::string out = std::move(header).value();
  const size_t header_end = out.size();
  out.resize(header_end + static_cast<size_t>(count * size));
  if (count > 0)
    std::memcpy(&out[header_end], data, static_cast<size_t>(count * size));
  swap_bytes_if_big_endian(&out[header_end], count, static_cast<size_t>(size));
  return out;
}

Status write(const std::string& path, const std::vector<int64_t>& shape, NpyType type, const void* data) {
  if (path.empty())
    return invalid_argument("output path is empty");
  Result<std::string> header = encode_npy_header(shape, type);
  if (!header)
    return Status(header.status().code(), path + ": " + header.status().message());
  const uint64_t count = element_count(shape);
  if (count > 0 && data == nullptr)
    return invalid_argument(path + ": null data for " + std::to_string(count) + " values");
  if (host_is_little_endian()) // the values are the file's bytes: no copy
    return write_file_atomic(path,
                             {ByteSpan{header->data(), header->size()}, ByteSpan{data, count * type_bytes(type)}});
  Result<std::string> bytes = encode(shape, type, data);
  if (!bytes)
    return Status(bytes.status().code(), path + ": " + bytes.status().message());
  return write_file_atomic(path, *bytes);
}

} // namespace

Result<std::string> encode_npy(const std::vector<int64_t>& shape, const float* data) {
  return encode(shape, NpyType::kF32, data);
}
Result<std::string> encode_npy_f16(const std::vector<int64_t>& shape, const uint16_t* half_bits) {
  return encode(shape, NpyType::kF16, half_bits);
}

Status write_npy(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  return write(path, shape, NpyType::kF32, data);
}
Status write_npy_f16(const std::string& path, const std::vector<int64_t>& shape, const uint16_t* half_bits) {
  return write(path, shape, NpyType::kF16, half_bits);
}

} // namespace convarith::cli
