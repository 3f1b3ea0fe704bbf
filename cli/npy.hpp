// cli/npy.hpp — NumPy .npy files: float32 ('<f4') or float16 ('<f2', read and written as raw IEEE
// half bits), C order, format versions 1.0, 2.0 and 3.0. The caller says which dtype it wants.
//
// Anything else (another dtype or not the one wanted, big-endian, fortran_order True, a bad magic string, a header
// that does not parse or claims more than 1 MiB, a shape whose element count overflows, a file
// shorter or longer than the header promises) is an error naming the file and what was found.
//
// read_npy reads a regular file only (a device such as /dev/zero, a FIFO or a directory is "not a
// regular file" before a byte is read): the fixed prefix, then the header it announces, then checks
// the shape's byte count against the file's size ("truncated" / "extra bytes", with the numbers)
// and the memory limit (cli/io.hpp), and only then reads exactly that many bytes.
//
// Writing is atomic: the bytes go to a fresh temporary file in the destination's directory,
// which is renamed over the destination only when complete, so a failure never leaves a partial
// file (and never removes an existing one).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "convarith/status.hpp"
#include "io.hpp"

namespace convarith::cli {

// The element types this reader and writer take.
enum class NpyType { kF32, kF16 };
const char* npy_descr(NpyType t); // "<f4", "<f2"

struct NpyArray {
  std::vector<int64_t> shape; // () for a scalar
  NpyType type = NpyType::kF32;
  std::vector<float> data;    // kF32: product(shape) values, C order
  std::vector<uint16_t> half; // kF16: product(shape) IEEE binary16 bit patterns, C order
  size_t size() const { return type == NpyType::kF32 ? data.size() : half.size(); }
};

// Parses the bytes of a .npy file whose dtype must be `want`; `name` (the file name) is used in
// messages (a file of the other dtype is refused naming both).
Result<NpyArray> parse_npy(const std::string& bytes, const std::string& name, NpyType want = NpyType::kF32);
// Reads and parses `path`.
Result<NpyArray> read_npy(const std::string& path, NpyType want = NpyType::kF32);

// The bytes of a version 1.0 file (2.0 when the header needs more than 65535 bytes).
// `data` holds product(shape) values (may be nullptr when that is 0).
Result<std::string> encode_npy(const std::vector<int64_t>& shape, const float* data);
Result<std::string> encode_npy_f16(const std::vector<int64_t>& shape, const uint16_t* half_bits);
// Just the header (magic, version, length, dict padded to 64 bytes) for `shape`.
Result<std::string> encode_npy_header(const std::vector<int64_t>& shape, NpyType type = NpyType::kF32);
// Writes atomically (cli/io.hpp write_file_atomic: a fresh temporary file + rename), the header
// and then `data` itself (no copy on a little-endian host).
Status write_npy(const std::string& path, const std::vector<int64_t>& shape, const float* data);
Status write_npy_f16(const std::string& path, const std::vector<int64_t>& shape, const uint16_t* half_bits);

} // namespace convarith::cli
