// tests/test_cli_npy.cpp — .npy reading and atomic writing (cli/npy.*): round trips, the headers
// numpy writes in versions 1.0, 2.0 and 3.0, and every malformed file, written byte by byte here.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "npy.hpp"

namespace convarith::cli {
namespace {

// A fresh directory per test, removed with its files afterwards.
class TempDir {
public:
  TempDir() {
    std::string t = ::testing::TempDir() + "convarith_npy_XXXXXX";
    path_ = mkdtemp(&t[0]) ? t : std::string();
  }
  ~TempDir() {
    for (const std::string& f : files())
      std::remove((path_ + "/" + f).c_str());
    ::rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    if (DIR* d = opendir(path_.c_str())) {
      while (dirent* e = readdir(d))
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
          out.emplace_back(e->d_name);
      closedir(d);
    }
    return out;
  }

private:
  std::string path_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A .npy file with the given version and header text (padded as numpy does) and data bytes.
std::string npy_bytes(int major, const std::string& dict, const std::string& data) {
  std::string out = std::string("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  const size_t prefix = major == 1 ? 10 : 12;
  std::string header = dict;
  while ((prefix + header.size() + 1) % 64 != 0)
    header += ' ';
  header += '\n';
  for (size_t i = 0; i < (major == 1 ? 2u : 4u); ++i)
    out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string floats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

const char kDict23[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";

// The parse fails with a message naming the file and containing every one of `parts`.
void expect_bad(const std::string& bytes, const std::vector<std::string>& parts) {
  Result<NpyArray> r = parse_npy(bytes, "bad.npy");
  ASSERT_FALSE(r.is_ok()) << "parsed";
  EXPECT_EQ(r.status().message().rfind("bad.npy", 0), 0u) << r.status().message();
  for (const std::string& p : parts)
    EXPECT_NE(r.status().message().find(p), std::string::npos)
        << "message \"" << r.status().message() << "\" lacks \"" << p << "\"";
}

TEST(CliNpy, ReadsWhatNumpyWritesInEveryVersion) {
  const std::vector<float> v{1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f};
  for (int major : {1, 2, 3}) {
    Result<NpyArray> r = parse_npy(npy_bytes(major, kDict23, floats(v)), "v.npy");
    ASSERT_TRUE(r.is_ok()) << "version " << major << ": " << r.status().message();
    EXPECT_EQ(r->shape, (std::vector<int64_t>{2, 3}));
    ASSERT_EQ(r->data.size(), 6u);
    EXPECT_EQ(std::memcmp(r->data.data(), v.data(), 24), 0) << "version " << major;
  }
}

TEST(CliNpy, HeaderVariants) {
  // Key order, double quotes, no trailing comma, 1-tuples, scalars, empty dims, whitespace.
  const std::vector<float> five{1, 2, 3, 4, 5};
  Result<NpyArray> r =
      parse_npy(npy_bytes(1, "{\"shape\": (5,), \"fortran_order\": False, \"descr\": \"<f4\"}", floats(five)), "a");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->shape, std::vector<int64_t>{5});
  EXPECT_EQ(r->data, five);
  r = parse_npy(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", floats({7.0f})), "s");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_TRUE(r->shape.empty());
  EXPECT_EQ(r->data, std::vector<float>{7.0f});
  r = parse_npy(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3, 4), }", ""), "z");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->shape, (std::vector<int64_t>{0, 3, 4}));
  EXPECT_TRUE(r->data.empty());
  r = parse_npy(npy_bytes(1, "{ 'descr' : '<f4' ,'fortran_order':False,'shape':( 1 ,2 ) }", floats({1, 2})), "w");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->shape, (std::vector<int64_t>{1, 2}));
}

TEST(CliNpy, RoundTripIsBitExact) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<std::vector<int64_t>> shapes{{2, 3, 4, 5}, {7}, {}, {0, 3}, {1, 1, 1, 1, 3}};
  for (const std::vector<int64_t>& shape : shapes) {
    int64_t count = 1;
    for (int64_t d : shape)
      count *= d;
    std::vector<float> v(static_cast<size_t>(count));
    for (size_t i = 0; i < v.size(); ++i)
      v[i] = static_cast<float>(i) * 0.37f - 5.0f;
    if (v.size() >= 3) {
      v[0] = nan;
      v[1] = -inf;
      v[2] = -0.0f;
    }
    const std::string path = dir.file("rt.npy");
    ASSERT_TRUE(write_npy(path, shape, v.data()).is_ok());
    Result<NpyArray> r = read_npy(path);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_EQ(r->shape, shape);
    ASSERT_EQ(r->data.size(), v.size());
    if (!v.empty()) {
      EXPECT_EQ(std::memcmp(r->data.data(), v.data(), v.size() * 4), 0);
    }
    // The file is what numpy writes: version 1.0, data 64-byte aligned, header ends in '\n'.
    const std::string bytes = slurp(path);
    EXPECT_EQ(bytes[6], 1);
    const size_t header_end = bytes.size() - v.size() * 4;
    EXPECT_EQ(header_end % 64, 0u);
    EXPECT_EQ(bytes[header_end - 1], '\n');
  }
  // Only the destination remains: no temporary files.
  EXPECT_EQ(dir.files(), std::vector<std::string>{"rt.npy"});
}

TEST(CliNpy, EncodeMatchesNumpyHeader) {
  Result<std::string> e = encode_npy({2, 3}, std::vector<float>(6, 1.0f).data());
  ASSERT_TRUE(e.is_ok());
  // numpy.save(np.ones((2,3), np.float32)) writes exactly this header (128 bytes with the prefix).
  EXPECT_EQ(e->substr(0, 10), std::string("\x93NUMPY\x01\x00\x76\x00", 10));
  EXPECT_EQ(e->substr(10, 59), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
  EXPECT_EQ(e->size(), 128u + 24u);
  e = encode_npy({5}, std::vector<float>(5, 1.0f).data());
  ASSERT_TRUE(e.is_ok());
  EXPECT_NE(e->find("'shape': (5,), }"), std::string::npos);
  EXPECT_FALSE(encode_npy({2, -1}, nullptr).is_ok());
  EXPECT_FALSE(encode_npy({2}, nullptr).is_ok());
}

TEST(CliNpy, BadMagicAndVersion) {
  expect_bad("", {"not a .npy file", "bad magic"});
  expect_bad("PK\x03\x04 a zip file", {"bad magic", "PK\\x03\\x04"});
  expect_bad(std::string("\x93NUMPZ\x01\x00", 8), {"bad magic"});
  expect_bad(std::string("\x93NUMPY\x01", 7), {"truncated", "7 bytes"});
  expect_bad(std::string("\x93NUMPY\x04\x00\x10\x00\x00\x00", 12), {"unsupported .npy format version 4.0"});
  expect_bad(std::string("\x93NUMPY\x01\x01\x10\x00", 10), {"version 1.1"});
  expect_bad(std::string("\x93NUMPY\x02\x00\x10\x00", 10), {"truncated", "header length"});
}

TEST(CliNpy, HeaderLengthPastTheEnd) {
  std::string b = npy_bytes(1, kDict23, floats(std::vector<float>(6, 1.0f)));
  b[8] = '\xff';
  b[9] = '\x7f'; // 32767 header bytes claimed
  expect_bad(b, {"truncated", "32767", "only"});
  std::string b2 = npy_bytes(2, kDict23, "");
  b2[11] = '\x7f'; // about 2 GB claimed in a 4-byte length
  expect_bad(b2, {"truncated", "header claims"});
}

TEST(CliNpy, WrongDtypeOrOrder) {
  const std::string six = floats(std::vector<float>(6, 1.0f));
  expect_bad(npy_bytes(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", six),
             {"dtype '>f4'", "big-endian", "'<f4'"});
  expect_bad(npy_bytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", six + six),
             {"dtype '<f8'", "only little-endian float32"});
  expect_bad(npy_bytes(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }", "abcdef"), {"dtype '|u1'"});
  expect_bad(npy_bytes(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 3), }", six),
             {"malformed .npy header", "quoted string"});
  expect_bad(npy_bytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", six),
             {"fortran_order is True", "C order"});
}

TEST(CliNpy, MalformedHeaders) {
  const std::string six = floats(std::vector<float>(6, 1.0f));
  expect_bad(npy_bytes(1, "'descr': '<f4'", six), {"malformed .npy header", "expected '{'"});
  expect_bad(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ", six), {"malformed"});
  expect_bad(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False}", six), {"no 'shape' key"});
  expect_bad(npy_bytes(1, "{'shape': (2, 3), 'fortran_order': False}", six), {"no 'descr' key"});
  expect_bad(npy_bytes(1, "{'shape': (2, 3), 'descr': '<f4'}", six), {"no 'fortran_order' key"});
  expect_bad(npy_bytes(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", six),
             {"'descr' appears twice"});
  expect_bad(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", six),
             {"unexpected key 'x'"});
  expect_bad(npy_bytes(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}", six), {"neither True nor False"});
  expect_bad(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}", six), {"not a tuple"});
  expect_bad(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3)}", six), {"non-integer"});
  expect_bad(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}", six), {"expected ',' or ')'"});
  expect_bad(npy_bytes(1, "{'descr': '<f4, 'fortran_order': False, 'shape': (2, 3)}", six), {"malformed"});
  expect_bad(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} junk", six),
             {"unexpected text after the closing '}'"});
}

TEST(CliNpy, SizeMismatchAndOverflow) {
  const std::string six = floats(std::vector<float>(6, 1.0f));
  expect_bad(npy_bytes(1, kDict23, six.substr(0, 23)), {"shape (2, 3)", "needs 24 bytes", "has 23", "truncated"});
  expect_bad(npy_bytes(1, kDict23, six + "x"), {"needs 24 bytes", "has 25"});
  expect_bad(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", six),
             {"shape (4294967296, 4294967296)", "64 bits"});
  expect_bad(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }", six),
             {"bytes than fit in 64 bits"});
  expect_bad(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", six),
             {"overflows 64 bits"});
}

TEST(CliNpy, ReadErrorsNameTheFile) {
  Result<NpyArray> r = read_npy("/nonexistent/dir/x.npy");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("/nonexistent/dir/x.npy: cannot open"), std::string::npos);
  TempDir dir;
  spit(dir.file("t.npy"), std::string("\x93NUMPY\x01\x00\x76\x00{'descr'", 17));
  r = read_npy(dir.file("t.npy"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message().rfind(dir.file("t.npy") + ": truncated", 0), 0u) << r.status().message();
}

TEST(CliNpy, AtomicWriteNeverLeavesPartialFiles) {
  TempDir dir;
  const std::vector<float> v{1, 2, 3};
  // Replacing an existing file.
  spit(dir.file("y.npy"), "old contents");
  ASSERT_TRUE(write_npy(dir.file("y.npy"), {3}, v.data()).is_ok());
  Result<NpyArray> r = read_npy(dir.file("y.npy"));
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->data, v);
  // Into a missing directory: an error naming the path, nothing created.
  Status s = write_npy(dir.file("missing/y.npy"), {3}, v.data());
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find(dir.file("missing/y.npy")), std::string::npos) << s.message();
  // Over a directory: the rename fails after the temporary file was written; it is cleaned up.
  ASSERT_EQ(::mkdir(dir.file("adir").c_str(), 0755), 0);
  s = write_npy(dir.file("adir"), {3}, v.data());
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("nothing was written"), std::string::npos) << s.message();
  std::vector<std::string> files = dir.files();
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"adir", "y.npy"}));
  ::rmdir(dir.file("adir").c_str());
  // A failed encode (negative dimension) leaves the existing file untouched.
  EXPECT_FALSE(write_npy(dir.file("y.npy"), {-3}, v.data()).is_ok());
  EXPECT_TRUE(read_npy(dir.file("y.npy")).is_ok());
  // The written file gets ordinary permissions (mkstemp's 0600 is widened by the umask rule).
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("y.npy").c_str(), &st), 0);
  const mode_t mask = umask(0);
  umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0666 & ~mask);
}

} // namespace
} // namespace convarith::cli
