// tests/test_cli_reliability.cpp — what the `convarith` command promises a hostile or careless
// user (issue 18): allocations sized by a problem or a file are refused with the bytes needed and
// the limit (cli/io.hpp), the .npy reader reads regular files only and never more than the header
// declares, every output file is written through a fresh temporary file (no fixed F.tmp, no
// planted symlink followed), a failed write to standard output is exit 1, and the small rules of
// the command line (an empty --out, a repeated option, --suite with --layer). Most tests run the
// built binary, as a user would; the rest call the pieces in-process.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../bench/bench.hpp"
#include "convarith/plan.hpp"
#include "io.hpp"
#include "npy.hpp"

namespace convarith::cli {
int bench_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
} // namespace convarith::cli

namespace convarith::cli {
namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// A fresh directory per test, removed with everything in it afterwards.
class TempDir {
public:
  TempDir() {
    std::string t = ::testing::TempDir() + "convarith_rel_XXXXXX";
    path_ = mkdtemp(&t[0]) ? t : std::string();
  }
  ~TempDir() { (void)std::system(("rm -rf '" + path_ + "'").c_str()); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // The names in the directory, sorted, space separated.
  std::string listing() const {
    const std::string list = file(".listing");
    (void)std::system(("ls -A '" + path_ + "' | grep -v '^.listing$' | tr '\\n' ' ' > '" + list + "'").c_str());
    std::string s = slurp(list);
    std::remove(list.c_str());
    return s;
  }

private:
  std::string path_;
};

// A float32 .npy file of `shape` holding `values` (or ones).
std::string npy(const std::vector<int64_t>& shape, std::vector<float> values = {}) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  if (values.empty())
    values.assign(static_cast<size_t>(n), 1.0f);
  Result<std::string> bytes = encode_npy(shape, values.data());
  EXPECT_TRUE(bytes.is_ok()) << bytes.status().to_string();
  return bytes.is_ok() ? *bytes : std::string();
}

// A file of `header` followed by a hole up to `size` bytes (sparse: costs no disk or time).
void sparse_file(const std::string& path, const std::string& header, uint64_t size) {
  spit(path, header);
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(size)), 0) << path;
}

#ifdef CONVARITH_CLI_BINARY

struct Outcome {
  int code;
  std::string out, err;
};

// Runs `ENV convarith ARGS >stdout 2>stderr`; `stdout_to` "" collects standard output.
Outcome convarith(const std::string& args, const std::string& stdout_to = "", const std::string& env = "") {
  const std::string base = ::testing::TempDir() + "convarith_rel_" + std::to_string(::getpid());
  const std::string out = stdout_to.empty() ? base + ".out" : stdout_to;
  const std::string cmd =
      env + (env.empty() ? "" : " ") + "'" + CONVARITH_CLI_BINARY + "' " + args + " >" + out + " 2>" + base + ".err";
  const int status = std::system(cmd.c_str());
  Outcome o{WIFEXITED(status) ? WEXITSTATUS(status) : -1, stdout_to.empty() ? slurp(out) : "", slurp(base + ".err")};
  std::remove((base + ".out").c_str());
  std::remove((base + ".err").c_str());
  return o;
}

// ---- refused allocations --------------------------------------------------------------------------

TEST(CliReliability, TinyInputHugeOutputIsRefusedWithTheBytesNeeded) {
  TempDir dir;
  spit(dir.file("x.npy"), npy({1, 1, 1}));
  spit(dir.file("w.npy"), npy({1, 1, 1}));
  const std::string io = " --x " + dir.file("x.npy") + " --w " + dir.file("w.npy") + " --out " + dir.file("y.npy");
  // y has 1 + 10^11 elements: 400000000004 bytes, plus 8 for x and w.
  Outcome o = convarith("run conv --pads 0,100000000000 --device cpu" + io);
  EXPECT_EQ(o.code, 1) << o.err;
  EXPECT_TRUE(contains(o.err, "needs 400000000012 bytes")) << o.err;
  EXPECT_TRUE(contains(o.err, "100000000001 x 4 = 400000000004 bytes")) << o.err;
  EXPECT_TRUE(contains(o.err, "more than the limit of")) << o.err;
  EXPECT_TRUE(contains(o.err, "nothing was allocated")) << o.err;
  EXPECT_FALSE(exists(dir.file("y.npy")));
  // conv-transpose with a huge stride: y has (1-1)*s + 1 + a = 10^11 elements.
  o = convarith("run conv-transpose --strides 100000000000 --output-padding 99999999999 --device cpu" + io);
  EXPECT_EQ(o.code, 1) << o.err;
  EXPECT_TRUE(contains(o.err, "y 1x1x100000000000: 100000000000 x 4 = 400000000000 bytes")) << o.err;
  EXPECT_FALSE(exists(dir.file("y.npy")));
}

TEST(CliReliability, CheckReferenceCountsAgainstTheLimit) {
  TempDir dir;
  spit(dir.file("x.npy"), npy({1, 1, 100000}));
  const std::string args =
      "run avg-pool --kernel-shape 1 --device cpu --x " + dir.file("x.npy") + " --out " + dir.file("y.npy");
  // x and y are 800 KB: under 1.5 MB; --check adds 16 bytes per output (1.6 MB): over.
  const std::string env = "CONVARITH_MEMORY_LIMIT=1500000";
  Outcome o = convarith(args, "", env);
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(exists(dir.file("y.npy")));
  std::remove(dir.file("y.npy").c_str());
  o = convarith(args + " --check", "", env);
  EXPECT_EQ(o.code, 1) << o.err;
  EXPECT_TRUE(contains(o.err, "--check's fp64 reference and magnitudes: 100000 x 16 = 1600000 bytes")) << o.err;
  EXPECT_TRUE(contains(o.err, "CONVARITH_MEMORY_LIMIT=1500000")) << o.err;
  EXPECT_FALSE(exists(dir.file("y.npy")));
}

TEST(CliReliability, BenchRefusesAHugeLayerBeforeAllocating) {
  Outcome o = convarith("bench --device cpu --no-peer --reps 1 --warmup 0 --layer conv --x-shape 1,1,100000000000 "
                        "--kernel-shape 1");
  EXPECT_EQ(o.code, 1) << o.err;
  // x, w, y (2*10^11 + 1 floats), the output copy (10^11 floats) and the reference (10^11 x 16).
  EXPECT_TRUE(contains(o.err, "needs 2800000000004 bytes")) << o.err;
  EXPECT_TRUE(contains(o.err, "the fp64 reference and magnitudes: 100000000000 x 16")) << o.err;
  EXPECT_TRUE(contains(o.out, "FAILED")) << o.out;
}

#if defined(CONVARITH_HAVE_GIF)
TEST(CliReliability, GifPixelsCountAgainstTheLimit) {
  TempDir dir;
  const std::string args = "draw conv --x-shape 1,1,5,5 --kernel-shape 3,3 --out " + dir.file("a.gif");
  Outcome o = convarith(args, "", "CONVARITH_MEMORY_LIMIT=100000");
  EXPECT_EQ(o.code, 1) << o.err;
  EXPECT_TRUE(contains(o.err, "drawing the GIF needs")) << o.err;
  EXPECT_TRUE(contains(o.err, "the rendered images")) << o.err;
  EXPECT_FALSE(exists(dir.file("a.gif")));
  o = convarith(args);
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(slurp(dir.file("a.gif")).substr(0, 6), "GIF89a");
}
#endif

// ---- the .npy reader ------------------------------------------------------------------------------

TEST(CliReliability, DevZeroAsXIsNotARegularFile) {
  TempDir dir;
  spit(dir.file("w.npy"), npy({1, 1, 1}));
  Outcome o = convarith("run conv --x /dev/zero --w " + dir.file("w.npy") + " --out " + dir.file("y.npy"));
  EXPECT_EQ(o.code, 2) << o.err;
  EXPECT_TRUE(contains(o.err, "--x /dev/zero: not a regular file (a character device)")) << o.err;
  EXPECT_FALSE(exists(dir.file("y.npy")));
}

TEST(CliReliability, ReaderRefusesDevicesFifosAndDirectoriesWithoutBlocking) {
  TempDir dir;
  Result<NpyArray> r = read_npy("/dev/zero");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "/dev/zero: not a regular file (a character device)");
  // A FIFO with no writer: a plain open() would block forever.
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0600), 0);
  r = read_npy(dir.file("fifo"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(contains(r.status().message(), "fifo: not a regular file (a FIFO)")) << r.status().message();
  r = read_npy(dir.file(""));
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(contains(r.status().message(), "not a regular file (a directory)")) << r.status().message();
  // A symlink to a device is the device.
  ASSERT_EQ(::symlink("/dev/zero", dir.file("link.npy").c_str()), 0);
  r = read_npy(dir.file("link.npy"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(contains(r.status().message(), "a character device")) << r.status().message();
}

TEST(CliReliability, DeclaredSizeIsCheckedAgainstTheFileSizeBeforeReading) {
  TempDir dir;
  // A huge declared shape over 4 bytes of data.
  const std::string huge = npy({1, 1, 1}).substr(0, 128);
  std::string header = huge;
  const std::string one = "(1, 1, 1)", big = "(1000000, 1000000, 1000)";
  header.replace(header.find(one), one.size(), big);
  header.erase(header.find('\n') - (big.size() - one.size()), big.size() - one.size()); // keep the padding
  spit(dir.file("huge.npy"), header + std::string(4, '\0'));
  ASSERT_EQ(slurp(dir.file("huge.npy")).size(), 132u);
  Result<NpyArray> r = read_npy(dir.file("huge.npy"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(contains(r.status().message(), dir.file("huge.npy") +
                                                 ": the header's shape (1000000, 1000000, 1000) needs "
                                                 "4000000000000000 bytes of float32 data, but the file has 4 after "
                                                 "the header (truncated: 3999999999999996 missing)"))
      << r.status().message();
  // A valid header followed by 4 GiB of extra data (a hole): refused from the sizes, not read.
  const std::string small = npy({1, 1, 1});
  sparse_file(dir.file("extra.npy"), small, uint64_t{4} << 30);
  r = read_npy(dir.file("extra.npy"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(contains(r.status().message(), "needs 4 bytes of float32 data, but the file has " +
                                                 std::to_string((uint64_t{4} << 30) - 128) + " after the header (" +
                                                 std::to_string((uint64_t{4} << 30) - 132) + " extra bytes)"))
      << r.status().message();
}

TEST(CliReliability, AMatchingButHugeFileIsRefusedByTheMemoryLimit) {
  TempDir dir;
  // (1, 1, 2^28): 1 GiB of data in a sparse file; the limit is lowered to 1 MB.
  std::string header = npy({1, 1, 1}).substr(0, 128);
  const std::string one = "(1, 1, 1)", big = "(1, 1, 268435456)";
  header.replace(header.find(one), one.size(), big);
  header.erase(header.find('\n') - (big.size() - one.size()), big.size() - one.size());
  sparse_file(dir.file("big.npy"), header, 128 + (uint64_t{1} << 30));
  ASSERT_EQ(::setenv("CONVARITH_MEMORY_LIMIT", "1000000", 1), 0);
  Result<NpyArray> r = read_npy(dir.file("big.npy"));
  ::unsetenv("CONVARITH_MEMORY_LIMIT");
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(contains(r.status().message(), "reading " + dir.file("big.npy") + " needs 1073741824 bytes"))
      << r.status().message();
  EXPECT_TRUE(contains(r.status().message(), "268435456 x 4")) << r.status().message();
  EXPECT_TRUE(contains(r.status().message(), "CONVARITH_MEMORY_LIMIT=1000000")) << r.status().message();
}

TEST(CliReliability, OverlongHeaderIsRefused) {
  // A v2 header that claims 2 MiB and has them: more than the 1 MiB the reader accepts.
  std::string b("\x93NUMPY\x02\x00", 8);
  const uint32_t len = 2u << 20;
  for (int i = 0; i < 4; ++i)
    b += static_cast<char>((len >> (8 * i)) & 0xff);
  b += std::string(len, ' ');
  Result<NpyArray> r = parse_npy(b, "long.npy");
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(contains(r.status().message(), "claims 2097152 bytes, more than the 1048576")) << r.status().message();
  TempDir dir;
  spit(dir.file("long.npy"), b);
  r = read_npy(dir.file("long.npy"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(contains(r.status().message(), "claims 2097152 bytes, more than the 1048576")) << r.status().message();
}

TEST(CliReliability, LayerFileMustBeARegularFileOfBoundedSize) {
  Outcome o = convarith("bench --device cpu --layers /dev/zero");
  EXPECT_EQ(o.code, 2) << o.err;
  EXPECT_TRUE(contains(o.err, "the layer file /dev/zero: not a regular file (a character device)")) << o.err;
  TempDir dir;
  sparse_file(dir.file("layers.csv"), "# a layer file\n", 17 << 20);
  o = convarith("bench --device cpu --layers " + dir.file("layers.csv"));
  EXPECT_EQ(o.code, 2) << o.err;
  EXPECT_TRUE(contains(o.err, "17825792 bytes (17.00 MiB), more than the 16777216 bytes")) << o.err;
}

// ---- output files ---------------------------------------------------------------------------------

TEST(CliReliability, DrawLeavesAnExistingTmpFileAndAPlantedSymlinkAlone) {
  TempDir dir;
  spit(dir.file("a.svg.tmp"), "the user's own file");
  spit(dir.file("target"), "must not change");
  ASSERT_EQ(::symlink(dir.file("target").c_str(), dir.file("b.svg.tmp").c_str()), 0);
  for (const char* name : {"a.svg", "b.svg"}) {
    Outcome o = convarith("draw conv --x-shape 1,1,5,5 --kernel-shape 3,3 --out " + dir.file(name));
    EXPECT_EQ(o.code, 0) << o.err;
    EXPECT_TRUE(contains(slurp(dir.file(name)), "<svg")) << name;
  }
  EXPECT_EQ(slurp(dir.file("a.svg.tmp")), "the user's own file");
  EXPECT_EQ(slurp(dir.file("target")), "must not change");
  struct stat st {};
  ASSERT_EQ(::lstat(dir.file("b.svg.tmp").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  // No temporary file is left behind.
  EXPECT_EQ(dir.listing(), "a.svg a.svg.tmp b.svg b.svg.tmp target ");
}

TEST(CliReliability, OutputOverADeviceOrFifoIsRefused) {
  TempDir dir;
  ASSERT_EQ(::mkfifo(dir.file("fifo.svg").c_str(), 0600), 0);
  Outcome o = convarith("draw conv --x-shape 1,1,5,5 --kernel-shape 3,3 --out " + dir.file("fifo.svg"));
  EXPECT_EQ(o.code, 1) << o.err;
  EXPECT_TRUE(contains(o.err, "exists and is not a regular file (a FIFO); nothing was written")) << o.err;
  struct stat st {};
  ASSERT_EQ(::lstat(dir.file("fifo.svg").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode)); // not replaced by a regular file
  EXPECT_EQ(dir.listing(), "fifo.svg ");
  // Through the helper every command uses.
  const Status s = write_file_atomic(dir.file("fifo.svg"), std::string("x"));
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(dir.listing(), "fifo.svg ");
}

TEST(CliReliability, BenchJsonIsWrittenAtomically) {
  TempDir dir;
  spit(dir.file("r.json.tmp"), "keep");
  Outcome o = convarith("bench --device cpu --no-peer --reps 1 --warmup 0 --json " + dir.file("r.json") +
                        " --layer avg-pool --x-shape 1,1,8 --kernel-shape 2");
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(contains(slurp(dir.file("r.json")), "convarith-bench-1"));
  EXPECT_EQ(slurp(dir.file("r.json.tmp")), "keep");
  EXPECT_EQ(dir.listing(), "r.json r.json.tmp ");
  // Into a directory that does not exist: exit 1, the reason on stderr.
  o = convarith("bench --device cpu --no-peer --reps 1 --warmup 0 --json " + dir.file("no/r.json") +
                " --layer avg-pool --x-shape 1,1,8 --kernel-shape 2");
  EXPECT_EQ(o.code, 1) << o.err;
  EXPECT_TRUE(contains(o.err, "--json " + dir.file("no/r.json") + ": cannot create a temporary file")) << o.err;
}

// ---- standard output ------------------------------------------------------------------------------

TEST(CliReliability, AFailedWriteToStandardOutputIsExitOne) {
  TempDir dir;
  spit(dir.file("x.npy"), npy({1, 1, 4}));
  const std::vector<std::string> commands = {
      "shape conv --x-shape 1,1,5 --kernel-shape 3",
      "shape conv --x-shape 1,1,5 --kernel-shape 3 --json",
      "run max-pool --kernel-shape 2 --device cpu --x " + dir.file("x.npy") + " --out " + dir.file("y.npy"),
      "bench --device cpu --no-peer --reps 1 --warmup 0 --layer avg-pool --x-shape 1,1,8 --kernel-shape 2",
      "draw conv --x-shape 1,1,5,5 --kernel-shape 3,3",
      "help",
      "help run",
      "--version"};
  for (const std::string& c : commands) {
    Outcome ok = convarith(c);
    EXPECT_EQ(ok.code, 0) << c << ": " << ok.err;
    EXPECT_FALSE(ok.out.empty()) << c;
    Outcome full = convarith(c, "/dev/full");
    EXPECT_EQ(full.code, 1) << c;
    EXPECT_TRUE(contains(full.err, "convarith: writing to standard output failed (")) << c << ": " << full.err;
  }
}

TEST(CliReliability, AnAllocationThatFailsAnywayIsExitOneWithAMessage) {
  // The smallest address-space limit the binary starts under (ASan builds never do: skipped), then
  // 32 MiB more: far too little for this animation's SVG (about 200 MB), whose size is bounded by
  // the drawing's own caps rather than planned against the memory limit.
  int start_kib = 0;
  for (int kib = 32 << 10; kib <= 512 << 10 && start_kib == 0; kib += 8 << 10)
    if (convarith("--version", "", "ulimit -v " + std::to_string(kib) + ";").code == 0)
      start_kib = kib;
  if (start_kib == 0)
    GTEST_SKIP() << "the binary does not start under an address-space limit (a sanitizer build?)";
  Outcome o = convarith("draw conv --x-shape 1,1,150,150 --kernel-shape 3,3", "",
                        "ulimit -v " + std::to_string(start_kib + (32 << 10)) + ";");
  EXPECT_EQ(o.code, 1) << o.err;
  EXPECT_TRUE(contains(o.err, "convarith: out of memory (an allocation failed; nothing was written)")) << o.err;
}

// ---- the command line -----------------------------------------------------------------------------

TEST(CliReliability, EmptyOutIsRefusedBeforeAnyWork) {
  // --x names a file that does not exist: the complaint is about --out, so nothing was read.
  Outcome o = convarith("run max-pool --kernel-shape 2 --x /nonexistent/x.npy --out ''");
  EXPECT_EQ(o.code, 2) << o.err;
  EXPECT_TRUE(contains(o.err, "--out is empty")) << o.err;
  EXPECT_FALSE(contains(o.err, "nonexistent")) << o.err;
  o = convarith("draw conv --x-shape 1,1,5,5 --kernel-shape 3,3 --out ''");
  EXPECT_EQ(o.code, 2) << o.err;
  EXPECT_TRUE(contains(o.err, "--out is empty")) << o.err;
  EXPECT_TRUE(o.out.empty()) << "the drawing went to stdout";
  o = convarith("bench --json '' --layer avg-pool --x-shape 1,1,8 --kernel-shape 2");
  EXPECT_EQ(o.code, 2) << o.err;
  EXPECT_TRUE(contains(o.err, "--json is empty")) << o.err;
}

TEST(CliReliability, ARepeatedOptionIsAnError) {
  TempDir dir;
  spit(dir.file("x.npy"), npy({1, 1, 4}));
  const std::string run = "run max-pool --kernel-shape 2 --x " + dir.file("x.npy") + " --out " + dir.file("y.npy");
  for (const std::string& c : {run + " --device cpu --device cpu", run + " --kernel-shape 2",
                               std::string("shape conv --x-shape 1,1,5 "
                                           "--kernel-shape 3 --json --json"),
                               std::string("draw conv --x-shape 1,1,5,5 --kernel-shape 3,3 --frame 0 --frame=1")}) {
    Outcome o = convarith(c);
    EXPECT_EQ(o.code, 2) << c;
    EXPECT_TRUE(contains(o.err, "given more than once")) << c << ": " << o.err;
  }
  EXPECT_FALSE(exists(dir.file("y.npy")));
}

#endif // CONVARITH_CLI_BINARY

struct BenchRun {
  int code;
  std::string out, err;
};

BenchRun bench(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code = bench_main(args, out, err);
  return {code, out.str(), err.str()};
}

TEST(CliReliability, BenchOptionsAreGivenOnceAndSuiteDoesNotGoWithLayer) {
  const std::vector<std::string> layer = {"--layer", "avg-pool", "--x-shape", "1,1,8", "--kernel-shape", "2"};
  auto with = [&](std::vector<std::string> before, std::vector<std::string> after = {}) {
    before.insert(before.end(), layer.begin(), layer.end());
    before.insert(before.end(), after.begin(), after.end());
    return bench(before);
  };
  BenchRun r = bench({"--reps", "2", "--reps", "3", "--suite", "smoke"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--reps given more than once")) << r.err;
  // Once before --layer and once after it.
  r = with({"--device", "cpu", "--reps", "1"}, {"--reps", "2"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--reps given more than once")) << r.err;
  r = with({"--suite", "smoke"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--suite cannot be combined with --layer")) << r.err;
  r = with({}, {"--suite=smoke"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--suite cannot be combined with --layer")) << r.err;
  r = with({"--layers", "bench/layers.csv"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--layers cannot be combined with --layer")) << r.err;
  // The same layer alone runs.
  r = with({"--device", "cpu", "--no-peer", "--reps", "1", "--warmup", "0"});
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST(CliReliability, BenchWorkspacesCountAgainstTheLimit) {
  ProblemDesc d;
  d.op = Op::kConv;
  d.rank = 2;
  d.n = 1;
  d.c = 64;
  d.k = 64;
  d.input = {64, 64, 1};
  d.kernel = {3, 3, 1};
  d.pad_lo = {1, 1, 0};
  d.pad_hi = {1, 1, 0};
  Result<ConvProblem> p = ConvProblem::make(d);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  Result<Plan> plan = Plan::create(*p, Device::kCpu, "cpu_gemm");
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  const uint64_t ws = plan->workspace_bytes();
  ASSERT_GT(ws, 0u);
  // What LayerBench holds before any workspace: x, w, y, the checked copy of y, the fp64 reference.
  const uint64_t x = 64 * 64 * 64, w = 64 * 64 * 9, y = 64 * 64 * 64;
  const uint64_t base = (x + w + y) * 4 + y * 4 + y * 16;
  bench::Layer layer;
  layer.id = "ws";
  layer.problem = *p;
  bench::Options options;
  options.with_peer = false;
  auto check_gemm = [&](uint64_t limit) {
    EXPECT_EQ(::setenv("CONVARITH_MEMORY_LIMIT", std::to_string(limit).c_str(), 1), 0);
    Result<std::unique_ptr<bench::LayerBench>> lb = bench::LayerBench::create(layer, Device::kCpu, options);
    bench::CaseResult r;
    if (lb.is_ok()) {
      const std::vector<std::string> names = (*lb)->implementations();
      for (size_t i = 0; i < names.size(); ++i)
        if (names[i] == "convarith:cpu_gemm")
          r = (*lb)->check(i);
    } else {
      r.status = lb.status().to_string();
    }
    ::unsetenv("CONVARITH_MEMORY_LIMIT");
    return r;
  };
  const bench::CaseResult refused = check_gemm(base + ws - 1);
  EXPECT_FALSE(refused.correct);
  EXPECT_EQ(refused.status.rfind("error: kOutOfRange: benchmarking ws with convarith:cpu_gemm needs " +
                                     std::to_string(base + ws) + " bytes",
                                 0),
            0u)
      << refused.status;
  EXPECT_TRUE(contains(refused.status, "the workspace of convarith:cpu_gemm: " + std::to_string(ws) + " bytes"))
      << refused.status;
  const bench::CaseResult fits = check_gemm(base + ws);
  EXPECT_TRUE(fits.correct) << fits.status;
  // One byte less than the buffers themselves: the layer is refused as a whole.
  const bench::CaseResult none = check_gemm(base - 1);
  EXPECT_TRUE(contains(none.status,
                       "kOutOfRange: benchmarking ws (" + p->name() + ") needs " + std::to_string(base) + " bytes"))
      << none.status;
}

// ---- the limit itself -----------------------------------------------------------------------------

TEST(CliReliability, HostMemorySaturatesAndNamesEveryBuffer) {
  HostMemory m;
  m.add("a", uint64_t{1} << 62, 16).add("b", 3, 4);
  EXPECT_EQ(m.total(), kUnlimited);
  const Status s = m.check("a test");
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(contains(s.message(), "a test needs more than 2^64 bytes of memory (a: 4611686018427387904 x 16 = "
                                    "more than 2^64 bytes; b: 3 x 4 = 12 bytes)"))
      << s.message();
  EXPECT_TRUE(HostMemory().add("small", 1000, 4).check("ok").is_ok());
  MemoryLimit tight;
  tight.bytes = 3999;
  tight.how = "a test limit";
  const Status t = HostMemory().add("x", 1000, 4).check("one more", tight);
  ASSERT_FALSE(t.is_ok());
  EXPECT_TRUE(contains(t.message(), "needs 4000 bytes (3.91 KiB)")) << t.message();
  EXPECT_TRUE(contains(t.message(), "more than the limit of 3999 bytes (3.91 KiB) (a test limit)")) << t.message();
}

TEST(CliReliability, TheLimitFollowsRlimitAsAndTheEnvironment) {
  const MemoryLimit normal = host_memory_limit();
  EXPECT_LT(normal.bytes, kUnlimited); // physical memory is always known on Linux
  EXPECT_TRUE(contains(normal.how, "7/8 of")) << normal.how;
  struct rlimit saved {};
  ASSERT_EQ(getrlimit(RLIMIT_AS, &saved), 0);
  // Soft limit = what is mapped now + 64 MiB: the limit is at most 7/8 of that 64 MiB (plus slack
  // for the mappings that change between the two reads).
  std::ifstream statm("/proc/self/statm");
  uint64_t pages = 0;
  statm >> pages;
  const uint64_t now = pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  struct rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(now + (uint64_t{64} << 20));
  if (saved.rlim_max != RLIM_INFINITY && tight.rlim_cur > saved.rlim_max)
    GTEST_SKIP() << "the hard RLIMIT_AS is below what this test needs";
  ASSERT_EQ(setrlimit(RLIMIT_AS, &tight), 0);
  const MemoryLimit limited = host_memory_limit();
  ASSERT_EQ(setrlimit(RLIMIT_AS, &saved), 0);
  EXPECT_LE(limited.bytes, uint64_t{64} << 20);
  EXPECT_GE(limited.bytes, uint64_t{40} << 20);
  EXPECT_TRUE(contains(limited.how, "what RLIMIT_AS leaves")) << limited.how;
  // The environment lowers the limit, never raises it.
  ASSERT_EQ(::setenv("CONVARITH_MEMORY_LIMIT", "12345", 1), 0);
  EXPECT_EQ(host_memory_limit().bytes, 12345u);
  ASSERT_EQ(::setenv("CONVARITH_MEMORY_LIMIT", "18446744073709551614", 1), 0);
  EXPECT_EQ(host_memory_limit().bytes, normal.bytes);
  ASSERT_EQ(::setenv("CONVARITH_MEMORY_LIMIT", "-5", 1), 0);
  EXPECT_EQ(host_memory_limit().bytes, normal.bytes);
  ::unsetenv("CONVARITH_MEMORY_LIMIT");
}

} // namespace
} // namespace convarith::cli
