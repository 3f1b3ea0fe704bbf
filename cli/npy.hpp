// cli/npy.hpp — NumPy .npy files: float32 ('<f4'), C order, format versions 1.0, 2.0 and 3.0.
//
// Anything else (another dtype, big-endian, fortran_order True, a bad magic string, a header
// that does not parse, a shape whose element count overflows, a file shorter or longer than the
// header promises) is an error naming the file and what was found. Writing is atomic: the
// bytes go to a temporary file in the destination's directory, which is renamed over the
// destination only when complete, so a failure never leaves a partial file (and never removes
// an existing one).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "convarith/status.hpp"

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
// Writes atomically (temporary file in the same directory + rename).
Status write_npy(const std::string& path, const std::vector<int64_t>& shape, const float* data);
// Atomic write of arbitrary bytes (used by write_npy; exposed for tests and other outputs).
Status write_file_atomic(const std::string& path, const std::string& bytes);

} // namespace convarith::cli
