// host/tune.cpp — algorithm "tune": cache keys, the in-memory cache, the cache file and the timing of a plan on
// scratch buffers (see host/tune.hpp, docs/DESIGN.md §10).
#include "tune.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <new>
#include <sstream>

#include "convarith/version.hpp"
#include "row.hpp"

#if defined(CONVARITH_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

namespace convarith::detail {
namespace {

constexpr const char* kFileHeader = "convarith-tune-cache 1";
constexpr int64_t kMaxFileBytes = 16 << 20;

// Tabs and line ends are the file's separators: never inside a field.
std::string clean(std::string s) {
  for (char& ch : s)
    if (ch == '\t' || ch == '\n' || ch == '\r')
      ch = ' ';
  return s;
}

std::string hexfloat(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}

std::string tensor_key(const ConvProblem& p, TensorId id) {
  const TensorDesc& t = p.tensor(id);
  if (t.rank == 0)
    return "-";
  return std::string(dtype_name(t.dtype)) + ":" + layout_name(t.layout);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}

std::string hex64(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string joined(const TuneKey& k) {
  return k.library + "\t" + k.device + "\t" + k.driver + "\t" + k.problem;
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos)
      return out;
    start = tab + 1;
  }
}

std::string errno_text(int err) {
  return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")";
}

// The pattern each scratch tensor is filled with: +-0.25 and +-0.5 in the tensor's dtype (finite, normal, exact in
// every dtype, so no row meets a denormal or a NaN while it is timed).
void fill(unsigned char* dst, int64_t elements, DataType t) {
  static const uint32_t f32[4] = {0x3E800000u, 0xBF000000u, 0x3F000000u, 0xBE800000u};
  static const uint16_t f16[4] = {0x3400u, 0xB800u, 0x3800u, 0xB400u};
  static const uint16_t bf16[4] = {0x3E80u, 0xBF00u, 0x3F00u, 0xBE80u};
  for (int64_t i = 0; i < elements; ++i) {
    const size_t j = static_cast<size_t>(i % 4);
    if (t == DataType::kF32)
      std::memcpy(dst + i * 4, &f32[j], 4);
    else
      std::memcpy(dst + i * 2, t == DataType::kF16 ? &f16[j] : &bf16[j], 2);
  }
}

void* host_alloc(size_t bytes) {
  return ::operator new(std::max<size_t>(bytes, 1), std::align_val_t(64), std::nothrow);
}
void host_free(void* p) {
  if (p != nullptr)
    ::operator delete(p, std::align_val_t(64));
}

#if defined(CONVARITH_HAVE_CUDA)
Status cuda_check(cudaError_t err, const char* what) {
  if (err == cudaSuccess)
    return Status::ok();
  (void)cudaGetLastError();
  return device_error(std::string("tune: ") + what + " failed: " + cudaGetErrorName(err) + " (" +
                      cudaGetErrorString(err) + ")");
}
#endif

} // namespace

std::atomic<uint64_t>& tuning_runs() {
  static std::atomic<uint64_t> runs{0};
  return runs;
}

TuneKey tune_key(const ConvProblem& p, const DeviceInfo& dev, bool prepared_weights) {
  TuneKey k;
  k.library = version_string();
  k.driver = "-";
  switch (dev.device) {
  case Device::kCpu:
    k.device = "cpu|" + cpu_model_name() + "|" + std::to_string(dev.cpu_threads) + " threads";
    break;
  case Device::kEmulated:
    k.device = "emulated|" + dev.name + "|host " + cpu_model_name() + "|" +
               std::to_string(cpu_device_info().cpu_threads) + " threads";
    break;
  case Device::kCuda: {
    std::string name = dev.name;
#if defined(CONVARITH_HAVE_CUDA)
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, dev.ordinal) == cudaSuccess)
      name = prop.name;
    else
      (void)cudaGetLastError();
    int driver = 0, runtime = 0;
    if (cudaDriverGetVersion(&driver) != cudaSuccess)
      (void)cudaGetLastError();
    if (cudaRuntimeGetVersion(&runtime) != cudaSuccess)
      (void)cudaGetLastError();
    k.driver = "driver " + std::to_string(driver) + " runtime " + std::to_string(runtime);
#endif
    k.device = "cuda|" + name + "|sm_" + std::to_string(dev.cc_major) + std::to_string(dev.cc_minor) + "|" +
               std::to_string(dev.sms) + " SMs";
    break;
  }
  }
  std::string s = std::string("op=") + op_name(p.op()) + " n=" + std::to_string(p.n()) + " c=" + std::to_string(p.c()) +
                  " k=" + std::to_string(p.k()) + " g=" + std::to_string(p.groups()) +
                  " rank=" + std::to_string(p.rank());
  for (int j = 0; j < p.rank(); ++j) {
    const AxisParams& a = p.axis(j);
    s += " ax" + std::to_string(j) + "=" + std::to_string(a.i) + "," + std::to_string(a.k) + "," + std::to_string(a.s) +
         "," + std::to_string(a.p_lo) + "," + std::to_string(a.p_hi) + "," + std::to_string(a.d) + "," +
         std::to_string(a.a);
  }
  s += std::string(" ceil=") + (p.ceil_mode() ? "1" : "0") + " cip=" + (p.count_include_pad() ? "1" : "0");
  for (TensorId id : {TensorId::kX, TensorId::kW, TensorId::kBias, TensorId::kZ, TensorId::kY})
    s += std::string(" ") + tensor_name(id) + "=" + tensor_key(p, id);
  const Epilogue& e = p.epilogue();
  s += std::string(" math=") + math_mode_name(p.math()) + " act=" + activation_name(e.activation) +
       " alpha=" + hexfloat(e.alpha) + " beta=" + hexfloat(e.beta) + " leaky=" + hexfloat(e.leaky_alpha) +
       " clip=" + hexfloat(e.clip_min) + "," + hexfloat(e.clip_max);
  // A winner timed with the weights prepared once is not the winner of runs that prepare them each time.
  if (prepared_weights)
    s += " weights=prepared";
  k.problem = s;
  k.device = clean(k.device);
  k.driver = clean(k.driver);
  k.library = clean(k.library);
  return k;
}

std::unique_lock<std::mutex> tuning_lock() {
  static std::mutex m;
  return std::unique_lock<std::mutex>(m);
}

namespace {
std::map<std::string, TuneEntry>& memory() {
  static std::map<std::string, TuneEntry> m;
  return m;
}
} // namespace

std::optional<TuneEntry> memory_lookup(const TuneKey& key) {
  const auto it = memory().find(joined(key));
  if (it == memory().end())
    return std::nullopt;
  return it->second;
}

void memory_store(const TuneKey& key, const TuneEntry& entry) {
  memory()[joined(key)] = entry;
}

void clear_tune_cache() {
  std::unique_lock<std::mutex> lock = tuning_lock();
  memory().clear();
}

TuneFile tune_file_load(const std::string& path, std::vector<std::string>& warnings) {
  TuneFile f;
  f.path = path;
  const std::string who = "tune cache " + path + ": ";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) {
      f.read_ok = true; // first use: nothing to read, nothing to warn about
      return f;
    }
    warnings.push_back(who + "cannot be read: " + errno_text(err) + "; ignored (and not written)");
    f.writable = false;
    return f;
  }
  if (!S_ISREG(st.st_mode)) {
    warnings.push_back(who + "is not a regular file; ignored (and not written)");
    f.writable = false;
    return f;
  }
  if (st.st_size > kMaxFileBytes) {
    warnings.push_back(who + "is " + std::to_string(static_cast<long long>(st.st_size)) + " bytes, more than the " +
                       std::to_string(kMaxFileBytes) + " a cache file may have; ignored (and not written)");
    f.writable = false;
    return f;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    warnings.push_back(who + "cannot be opened for reading: " + errno_text(errno) + "; ignored (and not written)");
    f.writable = false;
    return f;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) {
    warnings.push_back(who + "read failed; ignored (and not written)");
    f.writable = false;
    return f;
  }
  const std::string text = buf.str();
  const auto corrupt = [&](const std::string& why) {
    warnings.push_back(who + "corrupt or truncated (" + why + "); ignored");
    return f;
  };
  if (text.empty() || text.back() != '\n')
    return corrupt(text.empty() ? "empty" : "the last line is unfinished");
  // The last line is "end <entries> <fnv1a-64 of everything before it>".
  const size_t last = text.rfind('\n', text.size() - 2);
  const std::string body = last == std::string::npos ? std::string() : text.substr(0, last + 1);
  const std::string tail = text.substr(last == std::string::npos ? 0 : last + 1);
  std::istringstream lines(body);
  std::string line;
  if (!std::getline(lines, line) || line != kFileHeader)
    return corrupt("the first line is not '" + std::string(kFileHeader) + "'");
  std::vector<std::pair<TuneKey, TuneEntry>> entries;
  int line_no = 1;
  while (std::getline(lines, line)) {
    ++line_no;
    const std::vector<std::string> fields = split_tabs(line);
    if (fields.size() != 8 || fields[0] != "entry")
      return corrupt("line " + std::to_string(line_no) + " is not an entry of 8 tab-separated fields");
    TuneKey k{fields[1], fields[2], fields[3], fields[4]};
    TuneEntry e{fields[5], fields[6], 0};
    char* end = nullptr;
    e.median_us = std::strtod(fields[7].c_str(), &end);
    if (fields[7].empty() || end == nullptr || *end != '\0' || !(e.median_us >= 0))
      return corrupt("line " + std::to_string(line_no) + ": median '" + fields[7] + "' is not a time");
    if (e.winner.empty() || e.auto_row.empty())
      return corrupt("line " + std::to_string(line_no) + " names no row");
    entries.emplace_back(std::move(k), std::move(e));
  }
  const std::string want_tail = "end " + std::to_string(entries.size()) + " " + hex64(fnv1a(body)) + "\n";
  if (tail != want_tail)
    return corrupt(tail.rfind("end ", 0) == 0 ? "its entry count or checksum does not match the entries"
                                              : "the end line is missing");
  f.entries = std::move(entries);
  f.read_ok = true;
  return f;
}

std::optional<TuneEntry> tune_file_lookup(const TuneFile& file, const TuneKey& key,
                                          std::vector<std::string>& warnings) {
  for (const auto& [k, e] : file.entries) {
    if (k.device != key.device || k.problem != key.problem)
      continue;
    if (k.library == key.library && k.driver == key.driver)
      return e;
    std::string why;
    if (k.library != key.library)
      why = "written by convarith " + k.library + ", this is " + key.library;
    else
      why = "written under " + k.driver + ", this is " + key.driver;
    warnings.push_back("tune cache " + file.path + ": the entry for this problem is stale (" + why + "); ignored");
  }
  return std::nullopt;
}

void tune_file_store(TuneFile& file, const TuneKey& key, const TuneEntry& entry, std::vector<std::string>& warnings) {
  const std::string who = "tune cache " + file.path + ": ";
  auto& es = file.entries;
  es.erase(
      std::remove_if(es.begin(), es.end(),
                     [&](const auto& kv) { return kv.first.device == key.device && kv.first.problem == key.problem; }),
      es.end());
  es.emplace_back(key, entry);
  std::string body = std::string(kFileHeader) + "\n";
  for (const auto& [k, e] : es) {
    char us[64];
    std::snprintf(us, sizeof us, "%.6g", e.median_us);
    body += "entry\t" + k.library + "\t" + k.device + "\t" + k.driver + "\t" + k.problem + "\t" + clean(e.winner) +
            "\t" + clean(e.auto_row) + "\t" + us + "\n";
  }
  const std::string text = body + "end " + std::to_string(es.size()) + " " + hex64(fnv1a(body)) + "\n";

  // A fresh temporary file next to the destination, renamed over it when complete: a reader never sees half a
  // file, and a failure leaves the old file as it was.
  const size_t slash = file.path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : file.path.substr(0, slash));
  std::string tmpl =
      (slash == std::string::npos ? std::string() : file.path.substr(0, slash + 1)) + ".convarith-tune-XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  const int fd = ::mkstemp(name.data());
  if (fd < 0) {
    warnings.push_back(who + "not written: cannot create a temporary file in " + dir + ": " + errno_text(errno) +
                       " (the result is kept in this process's memory only)");
    return;
  }
  const char* p = text.data();
  size_t left = text.size();
  int err = 0;
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      err = errno;
      break;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (err == 0 && ::fchmod(fd, 0644) != 0)
    err = errno;
  if (::close(fd) != 0 && err == 0)
    err = errno;
  if (err == 0 && ::rename(name.data(), file.path.c_str()) != 0)
    err = errno;
  if (err != 0) {
    ::unlink(name.data());
    warnings.push_back(who + "not written: " + errno_text(err) + " (the result is kept in this process's memory only)");
  }
}

Result<std::unique_ptr<TuneScratch>> TuneScratch::create(const ConvProblem& p, Device device, size_t workspace_bytes) {
  std::unique_ptr<TuneScratch> s(new TuneScratch());
  s->device_ = device;
  const TensorId ids[5] = {TensorId::kX, TensorId::kW, TensorId::kBias, TensorId::kZ, TensorId::kY};
  size_t largest = 0;
  for (TensorId id : ids)
    largest = std::max(largest, static_cast<size_t>(std::max<int64_t>(p.tensor(id).bytes(), 0)));
  if (device != Device::kCuda) {
    for (int i = 0; i < 5; ++i) {
      const TensorDesc& t = p.tensor(ids[i]);
      if (t.rank == 0 || t.elements == 0)
        continue;
      s->buf_[i] = host_alloc(static_cast<size_t>(t.bytes()));
      if (s->buf_[i] == nullptr)
        return out_of_range("tune: cannot allocate " + std::to_string(t.bytes()) + " bytes of scratch for " +
                            tensor_name(ids[i]));
      fill(static_cast<unsigned char*>(s->buf_[i]), t.elements, t.dtype);
    }
    if (workspace_bytes > 0) {
      s->buf_[5] = host_alloc(workspace_bytes);
      if (s->buf_[5] == nullptr)
        return out_of_range("tune: cannot allocate a workspace of " + std::to_string(workspace_bytes) + " bytes");
    }
    return s;
  }
#if defined(CONVARITH_HAVE_CUDA)
  unsigned char* staging = static_cast<unsigned char*>(host_alloc(largest));
  if (staging == nullptr)
    return out_of_range("tune: cannot allocate " + std::to_string(largest) + " bytes of host staging");
  Status st;
  for (int i = 0; i < 5 && st.is_ok(); ++i) {
    const TensorDesc& t = p.tensor(ids[i]);
    if (t.rank == 0 || t.elements == 0)
      continue;
    fill(staging, t.elements, t.dtype);
    st = cuda_check(cudaMalloc(&s->buf_[i], static_cast<size_t>(t.bytes())), "cudaMalloc(scratch)");
    if (st.is_ok())
      st = cuda_check(cudaMemcpy(s->buf_[i], staging, static_cast<size_t>(t.bytes()), cudaMemcpyHostToDevice),
                      "cudaMemcpy(scratch)");
  }
  host_free(staging);
  if (st.is_ok() && workspace_bytes > 0)
    st = cuda_check(cudaMalloc(&s->buf_[5], workspace_bytes), "cudaMalloc(workspace)");
  cudaStream_t stream = nullptr;
  if (st.is_ok())
    st = cuda_check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  s->stream_ = stream;
  cudaEvent_t start = nullptr, stop = nullptr;
  if (st.is_ok())
    st = cuda_check(cudaEventCreate(&start), "cudaEventCreate");
  s->start_ = start;
  if (st.is_ok())
    st = cuda_check(cudaEventCreate(&stop), "cudaEventCreate");
  s->stop_ = stop;
  if (!st.is_ok())
    return st;
  return s;
#else
  (void)largest;
  return device_error("tune: convarith was built without CUDA");
#endif
}

TuneScratch::~TuneScratch() {
  if (device_ != Device::kCuda) {
    for (void* b : buf_)
      host_free(b);
    return;
  }
#if defined(CONVARITH_HAVE_CUDA)
  for (void* b : buf_)
    if (b != nullptr)
      (void)cudaFree(b);
  if (start_ != nullptr)
    (void)cudaEventDestroy(static_cast<cudaEvent_t>(start_));
  if (stop_ != nullptr)
    (void)cudaEventDestroy(static_cast<cudaEvent_t>(stop_));
  if (stream_ != nullptr)
    (void)cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
#endif
}

Result<double> TuneScratch::time(const Plan& plan, int warmup, int reps) {
  Tensors t;
  t.x = buf_[0];
  t.w = plan.has_prepared_weights() ? nullptr : buf_[1]; // a plan with weights runs on its prepared ones
  t.bias = buf_[2];
  t.z = buf_[3];
  t.y = buf_[4];
  const size_t ws = plan.workspace_bytes();
  void* workspace = ws > 0 ? buf_[5] : nullptr;
  std::vector<double> us;
  for (int i = 0; i < warmup + reps; ++i) {
    tuning_runs().fetch_add(1, std::memory_order_relaxed);
    if (device_ != Device::kCuda) {
      const auto t0 = std::chrono::steady_clock::now();
      CONVARITH_RETURN_IF_ERROR(plan.run(t, workspace, ws));
      const auto t1 = std::chrono::steady_clock::now();
      if (i >= warmup)
        us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      continue;
    }
#if defined(CONVARITH_HAVE_CUDA)
    auto stream = static_cast<cudaStream_t>(stream_);
    auto start = static_cast<cudaEvent_t>(start_), stop = static_cast<cudaEvent_t>(stop_);
    CONVARITH_RETURN_IF_ERROR(cuda_check(cudaEventRecord(start, stream), "cudaEventRecord"));
    CONVARITH_RETURN_IF_ERROR(plan.run(t, workspace, ws, stream));
    CONVARITH_RETURN_IF_ERROR(cuda_check(cudaEventRecord(stop, stream), "cudaEventRecord"));
    CONVARITH_RETURN_IF_ERROR(cuda_check(cudaEventSynchronize(stop), "cudaEventSynchronize"));
    float ms = 0;
    CONVARITH_RETURN_IF_ERROR(cuda_check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime"));
    if (i >= warmup)
      us.push_back(static_cast<double>(ms) * 1e3);
#endif
  }
  if (us.empty())
    return internal_error("tune: no timed run");
  std::sort(us.begin(), us.end());
  const size_t m = us.size() / 2;
  return us.size() % 2 == 1 ? us[m] : 0.5 * (us[m - 1] + us[m]);
}

} // namespace convarith::detail
