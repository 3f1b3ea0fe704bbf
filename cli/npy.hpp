// cli/npy.hpp — NumPy .npy files: float32 ('<f4'), C order, format versions 1.0, 2.0 and 3.0.
//
// Anything else (another dtype, big-endian, fortran_order True, a bad magic string, a header
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

struct NpyArray {
  std::vector<int64_t> shape; // () for a scalar
  std::vector<float> data;    // product(shape) values, C order
};

// Parses the bytes of a .npy file; `name` (the file name) is used in messages.
Result<NpyArray> parse_npy(const std::string& bytes, const std::string& name);
// Reads and parses `path`.
Result<NpyArray> read_npy(const std::string& path);

// The bytes of a version 1.0 file (2.0 when the header needs more than 65535 bytes).
// `data` holds product(shape) floats (may be nullptr when that is 0).
Result<std::string> encode_npy(const std::vector<int64_t>& shape, const float* data);
// Just the header (magic, version, length, dict padded to 64 bytes) for `shape`.
Result<std::string> encode_npy_header(const std::vector<int64_t>& shape);
// Writes atomically (cli/io.hpp write_file_atomic: a fresh temporary file + rename), the header
// and then `data` itself (no copy on a little-endian host).
Status write_npy(const std::string& path, const std::vector<int64_t>& shape, const float* data);

} // namespace convarith::cli
