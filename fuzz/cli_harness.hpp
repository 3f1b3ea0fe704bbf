// fuzz/cli_harness.hpp — harnesses for the CLI's parsers, shared by fuzz/fuzz_attributes.cpp and
// fuzz/fuzz_npy.cpp (libFuzzer) and tests/test_cli_fuzz_regressions.cpp (which replays
// tests/regressions/{attributes,npy}/ in the normal test build). Each returns "" or the first
// broken invariant.
#pragma once

#include <cstdint>
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

} // namespace convarith::fuzz
