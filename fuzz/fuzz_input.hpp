// fuzz/fuzz_input.hpp — turns a fuzzer's byte string into values, for the fuzz targets and for
// the tests that replay tests/regressions/ (so a regression input means the same thing in both).
//
// Each value is one selector byte and a payload. The selector chooses a family: small sizes
// (where the valid problems live), small signed values, the edge table (0, -1, 2^31, 2^63-1,
// INT64_MIN, ...), raw 64-bit values and powers of two, so that a short input already reaches
// both the valid region and the overflow cliffs. Past the end of the input every read returns a
// neutral value, so any prefix of a seed is itself a valid input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

namespace convarith::fuzz {

class ByteReader {
public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }
  size_t remaining() const { return empty() ? 0 : size_ - pos_; }

  uint8_t u8(uint8_t fallback = 0) { return empty() ? fallback : data_[pos_++]; }

  uint64_t raw64() {
    uint64_t v = 0;
    for (int b = 0; b < 8; ++b)
      v |= static_cast<uint64_t>(u8()) << (8 * b);
    return v;
  }

  // A 64-bit value drawn from the families above; `fallback` once the input is exhausted.
  int64_t value(int64_t fallback = 1) {
    if (empty())
      return fallback;
    const uint8_t sel = u8();
    switch (sel % 8) {
    case 0:
    case 1:
    case 2:
      return u8(1) % 10; // 0..9: most valid problems live here
    case 3:
      return static_cast<int8_t>(u8()); // -128..127
    case 4: {
      static constexpr int64_t kEdges[] = {0,
                                           1,
                                           -1,
                                           2,
                                           int64_t{1} << 31,
                                           (int64_t{1} << 31) - 1,
                                           int64_t{1} << 32,
                                           int64_t{1} << 62,
                                           std::numeric_limits<int64_t>::max(),
                                           std::numeric_limits<int64_t>::max() - 1,
                                           std::numeric_limits<int64_t>::max() / 2,
                                           std::numeric_limits<int64_t>::min(),
                                           std::numeric_limits<int64_t>::min() + 1,
                                           3037000499, // floor(sqrt(2^63 - 1)): squares just fit
                                           3037000500, // and just overflow
                                           2097152};   // 2^21: cubes reach 2^63
      return kEdges[u8() % (sizeof(kEdges) / sizeof(kEdges[0]))];
    }
    case 5:
      return static_cast<int64_t>(raw64());
    case 6: {
      const uint8_t e = u8();
      return (int64_t{1} << (e % 63)) - ((e & 0x80) ? 1 : 0);
    }
    default:
      return static_cast<int64_t>(u8()) | (static_cast<int64_t>(u8()) << 8); // 0..65535
    }
  }

  bool flag() { return (u8() & 1) != 0; }

  // A short string of arbitrary bytes (length from one byte, capped at `max_len`).
  std::string bytes(size_t max_len) {
    size_t len = u8() % (max_len + 1);
    std::string s;
    while (len-- > 0 && !empty())
      s.push_back(static_cast<char>(u8()));
    return s;
  }

private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

} // namespace convarith::fuzz
