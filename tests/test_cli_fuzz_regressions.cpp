// tests/test_cli_fuzz_regressions.cpp — replays the CLI fuzz targets' regression inputs
// (tests/regressions/attributes/, tests/regressions/npy/, tests/regressions/npy_file/: inputs that
// once broke an invariant or crashed) and their committed seed corpora (fuzz/corpus/fuzz_attributes/,
// fuzz/corpus/fuzz_npy/, fuzz/corpus/fuzz_npy_file/)
// through the very harnesses the fuzzers run (fuzz/cli_harness.hpp), in the normal test build and
// under ASan/UBSan in .ci/sanitize.sh. (Named test_cli_* so it links the CLI's code.)
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../fuzz/cli_harness.hpp"

namespace convarith {
namespace {

std::filesystem::path source_dir() {
  if (const char* env = std::getenv("CONVARITH_SOURCE_DIR"))
    return env;
  return std::filesystem::path(__FILE__).parent_path().parent_path();
}

std::vector<std::filesystem::path> files_in(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.is_regular_file())
      out.push_back(entry.path());
  return out;
}

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Replays every file of the target's seed corpus (which must exist) and regression folder (which may
// be empty: no crash found yet). Returns how many files ran.
size_t replay(const char* target, const char* regressions, std::string (*check)(const uint8_t*, size_t)) {
  const std::filesystem::path root = source_dir();
  std::vector<std::filesystem::path> files = files_in(root / "fuzz" / "corpus" / target);
  EXPECT_GE(files.size(), 5u) << "fuzz/corpus/" << target << " not found under " << root;
  for (const auto& f : files_in(root / "tests" / "regressions" / regressions))
    files.push_back(f);
  for (const auto& path : files) {
    const std::string bytes = read_bytes(path);
    EXPECT_EQ(check(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), "") << path;
  }
  return files.size();
}

TEST(CliFuzzRegressions, AttributeInputs) {
  EXPECT_GE(replay("fuzz_attributes", "attributes", fuzz::check_attribute_bytes), 5u);
  // The seeds decode to layers the parser accepts (all but the overflow seed), so the fuzzer starts
  // from inside the valid region rather than from the first error.
  int parsed = 0;
  for (const auto& path : files_in(source_dir() / "fuzz" / "corpus" / "fuzz_attributes")) {
    const std::string bytes = read_bytes(path);
    fuzz::ByteReader r(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    (void)r.value(0);
    const Result<cli::ParsedLayer> layer = cli::parse_layer(fuzz::decode_args(r));
    if (layer.is_ok() && ConvProblem::make(layer->desc).is_ok())
      ++parsed;
  }
  EXPECT_GE(parsed, 6);
}

TEST(CliFuzzRegressions, NpyInputs) {
  EXPECT_GE(replay("fuzz_npy", "npy", fuzz::check_npy_bytes), 5u);
}

TEST(CliFuzzRegressions, NpyFileInputs) {
  EXPECT_GE(replay("fuzz_npy_file", "npy_file", fuzz::check_npy_file_bytes), 10u);
}

// The file harness sees what read_npy does: the device and hole kinds are checked, not skipped.
TEST(CliFuzzRegressions, NpyFileHarnessChecksEachKind) {
  const auto run = [](const std::string& input) {
    return fuzz::check_npy_file_bytes(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  };
  EXPECT_EQ(run(std::string("\x06\x00\x00", 3)), ""); // /dev/zero
  EXPECT_EQ(run(std::string("\x06\x00\x01", 3)), ""); // a FIFO
  const Result<std::string> good = cli::encode_npy({2, 2}, std::vector<float>{1, 2, 3, 4}.data());
  ASSERT_TRUE(good.is_ok());
  EXPECT_EQ(run(std::string("\x00\x00", 2) + *good), ""); // a regular file: read_npy == parse_npy
  EXPECT_EQ(run(std::string("\x54\x00", 2) + *good), ""); // + a 2^20-byte hole: extra bytes
  // The limit the file harness runs under is back to what it was afterwards.
  EXPECT_EQ(std::getenv("CONVARITH_MEMORY_LIMIT"), nullptr);
}

// The harnesses can fail: a seed that parses is checked field by field, and a lying header is caught.
TEST(CliFuzzRegressions, HarnessesSeeWhatTheParsersDo) {
  const std::vector<std::string> args = {"conv", "--x-shape", "1,3,8,8", "--kernel-shape", "3,3", "--pads", "1,2,1,2"};
  const Result<cli::ParsedLayer> parsed = cli::parse_layer(args);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().to_string();
  EXPECT_EQ(parsed->desc.pad_lo[0], 1);
  EXPECT_EQ(parsed->desc.pad_hi[0], 1); // ONNX order: begins of every axis, then ends
  EXPECT_EQ(parsed->desc.pad_lo[1], 2);
  EXPECT_EQ(fuzz::check_attribute_args(args), "");

  const Result<std::string> good = cli::encode_npy({2, 2}, std::vector<float>{1, 2, 3, 4}.data());
  ASSERT_TRUE(good.is_ok());
  EXPECT_EQ(fuzz::check_npy_file(*good), "");
  // A truncated file is an error that names the file (the harness requires that).
  const Result<cli::NpyArray> bad = cli::parse_npy(good->substr(0, good->size() - 3), "fuzz.npy");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(fuzz::check_npy_file(good->substr(0, good->size() - 3)), "");
}

} // namespace
} // namespace convarith
